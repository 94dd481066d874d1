"""Pieces every validation report shares: the schema name, the two plot styles, markdown and JSON formatting."""

from __future__ import annotations

import math

import numpy as np

SCHEMA = "hpcgen.validate/1"
REF_STYLE = {"color": "0.15"}
TEST_STYLE = {"color": "tab:red"}


def fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and (v == 0 or 1e-3 <= abs(v) < 1e4):
        return f"{v:.4g}"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def md(s) -> str:
    return str(s).replace("|", r"\|")


def json_safe(x):
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x
