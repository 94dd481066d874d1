"""Shared pieces of the benchmark scripts: host description, timestamps, median + spread."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

import numpy as np


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def host_info() -> dict:
    import h5py
    import numba

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": None, "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "h5py": h5py.__version__,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def pin_to_one_core() -> int:
    """Pin this process to its lowest allowed core (one-core throughput figures); returns the core id."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def summarise(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}


def write_result(out: Path, kind: str, config: dict, rows: list, **extra) -> None:
    """Write one hpcgen.bench/1 results file (reports and plots are made only from these)."""
    result = {"schema": "hpcgen.bench/1", "kind": kind, "host": host_info(), "config": config, "rows": rows,
              **extra, "created": now_iso()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
