"""Shared pieces of the benchmark scripts. The results contract lives in :mod:`hpcgen.bench.results`;
``host_info`` and ``summarise`` are re-exported from there and ``write_result`` is a thin wrapper over it."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from hpcgen.bench import results as _results
from hpcgen.bench.results import host_info, summarise

__all__ = ["host_info", "now_iso", "pin_to_one_core", "summarise", "write_result"]


def pin_to_one_core() -> int:
    """Pin this process to its lowest allowed core (one-core throughput figures); returns the core id."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def write_result(out: Path, kind: str, config: dict, rows: list, **extra) -> None:
    """Check and write one hpcgen.bench/1 results file (reports and plots are made only from these).

    ``host``, ``predictions`` and ``literature`` in ``extra`` go to :func:`hpcgen.bench.results.make_result`; other
    keys (derived ratios, notes) become extra top-level keys before ``created``."""
    result = _results.make_result(kind, config, rows, host=extra.pop("host", None),
                                  predictions=extra.pop("predictions", None), literature=extra.pop("literature", None))
    created = result.pop("created")
    result.update(extra)
    result["created"] = created
    _results.write_result(out, result)
    print(f"wrote {out}")
