"""Shared pieces of the benchmark scripts. The results contract lives in :mod:`hpcgen.bench.results`; ``summarise``
is re-exported from there and ``write_result`` is a thin wrapper over it that also says where it wrote."""

from __future__ import annotations

import os
from pathlib import Path

from hpcgen.bench import results as _results
from hpcgen.bench.results import summarise

__all__ = ["pin_to_one_core", "summarise", "write_result"]


def pin_to_one_core() -> int:
    """Pin this process to its lowest allowed core (one-core throughput figures); returns the core id."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def write_result(out: Path, kind: str, config: dict, rows: list, **extra) -> None:
    """Check and write one hpcgen.bench/1 results file (reports and plots are made only from these); ``extra`` goes
    to :func:`hpcgen.bench.results.make_result` (host, predictions, literature, or further top-level keys)."""
    _results.write_result(out, _results.make_result(kind, config, rows, **extra))
    print(f"wrote {out}")
