"""The benchmark results contract (schema ``hpcgen.bench/1``): one JSON file per benchmark run.

Reports and plots are made only from these files (:mod:`hpcgen.bench.report`), so a figure can always be re-made
without re-running. The canonical contract, enforced by :func:`check_result`:

top level (a JSON object)
    ``schema``       the string ``"hpcgen.bench/1"``;
    ``kind``         non-empty string naming the benchmark (selects the report renderer);
    ``host``         object with ``cpu`` (str), ``cores`` (int), ``gpu``, ``torch``, ``mpi_library``, ``engine``
                     (each str, or null = none / not recorded); extra keys (python, numpy, ...) allowed;
    ``config``       object: the run's settings;
    ``rows``         non-empty list of objects, measured points only;
    ``predictions``  optional list of objects: model output, never mixed into ``rows``;
    ``literature``   optional list of objects, each with a ``source`` string: literature anchors, labelled,
                     never mixed with measured rows;
    ``created``      ISO-8601 timestamp string.
    Other top-level keys (derived ratios, notes) are allowed.

rows
    every row holds at least one *summary*: an object with ``median``, ``min``, ``max`` (numbers,
    ``min <= median <= max``) and ``n`` (int >= 1, the repetitions). A summary may be nested anywhere in the row
    (e.g. ``row["time_ms"]["fused"]``); any object with a ``median`` key is checked as a summary. A row whose
    ``kind`` is ``"prediction"`` or ``"literature"`` is refused: those belong in their own lists.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

SCHEMA = "hpcgen.bench/1"
HOST_STR_OR_NULL = ("gpu", "torch", "mpi_library", "engine")


def summarise(values) -> dict:
    """Median, min, max (floats) and n (int) of repeated measurements."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("summarise needs at least one value")
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mpi_library() -> str | None:
    """First line of ``MPI.Get_library_version()``; MPI is not initialised here (the call is valid before Init)."""
    import sys

    try:
        import mpi4py

        if "mpi4py.MPI" not in sys.modules:
            mpi4py.rc.initialize = False  # import without MPI_Init; only this query is made
        from mpi4py import MPI

        first = MPI.Get_library_version().replace("\x00", "").strip().splitlines()[0]
        return first.split(",")[0].strip() or None  # "Open MPI v5.0.11, package: ..." → "Open MPI v5.0.11"
    except (ImportError, RuntimeError, OSError, IndexError):  # no mpi4py, or no MPI library behind it
        return None


# CPU features that decide which precision and kernels are fast here (hosts differ: AMD EPYC, Intel Xeon with AMX).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def isa_flags() -> list[str]:
    """The SIMD/matrix ISA extensions of this CPU that matter for throughput (of ISA_FLAGS), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in ISA_FLAGS if flag in have]
    except OSError:
        pass
    return []


def _provenance() -> dict:
    """The command line (program name relative, no absolute paths) and the git commit of the project, if any."""
    import subprocess
    import sys

    def arg(a: str) -> str:
        key, eq, value = a.partition("=") if a.startswith("--") else ("", "", a)
        return key + eq + (display_path(value) if value.startswith("/") else value)

    argv = [Path(sys.argv[0]).name if sys.argv else "", *(arg(a) for a in sys.argv[1:])]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"command": " ".join(argv), "commit": commit}


def display_path(path) -> str:
    """A path as a result file records it: relative to the working directory when inside it, else its last two
    parts (results never carry absolute local paths)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(Path(*p.parts[-2:])) if len(p.parts) >= 2 else str(p)


def host_info(engine: str | None = None) -> dict:
    """Describe this host: cpu model, cores, gpu, torch, mpi library, engine, and a few library versions."""
    host = {"cpu": _cpu_model(), "isa": isa_flags(), "cores": os.cpu_count() or 1, "gpu": None, "torch": None,
            "mpi_library": _mpi_library(), "engine": engine, "python": platform.python_version(),
            "numpy": np.__version__}
    try:
        import torch

        host["torch"] = torch.__version__
        if torch.cuda.is_available():
            host["gpu"] = torch.cuda.get_device_name(0)
    except (ImportError, RuntimeError, OSError):  # no torch, or a broken CUDA setup: leave null
        pass
    for pkg in ("numba", "h5py"):
        try:
            host[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    host["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    return host


def make_result(kind: str, config: dict, rows: list, host: dict | None = None, predictions: list | None = None,
                literature: list | None = None, **extra) -> dict:
    """A result dict in schema order; ``host`` defaults to :func:`host_info`, ``created`` is now (UTC). ``extra``:
    further top-level keys (derived ratios, notes), placed before ``created``."""
    result = {"schema": SCHEMA, "kind": kind, "host": host_info() if host is None else host, "config": config,
              "rows": rows}
    if predictions is not None:
        result["predictions"] = predictions
    if literature is not None:
        result["literature"] = literature
    result.update(extra)
    result.setdefault("provenance", _provenance())
    result["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return result


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _summary_problem(s: dict) -> str | None:
    for key in ("median", "min", "max"):
        if not _is_number(s.get(key)):
            return f"{key!r} is {s.get(key)!r}; a summary needs numbers median, min, max and an int n >= 1"
    if not (isinstance(s.get("n"), int) and not isinstance(s.get("n"), bool) and s["n"] >= 1):
        return f"'n' is {s.get('n')!r}; allowed: an int >= 1"
    if not s["min"] <= s["median"] <= s["max"]:
        return f"min {s['min']!r}, median {s['median']!r}, max {s['max']!r}; allowed: min <= median <= max"
    return None


def _check_summaries(obj, where: str, fail) -> int:
    """Check every summary inside ``obj`` (any dict with a ``median`` key); return how many there are."""
    if isinstance(obj, dict):
        if "median" in obj:
            problem = _summary_problem(obj)
            if problem:
                fail(where, problem)
            return 1
        return sum(_check_summaries(v, f"{where}.{k}", fail) for k, v in obj.items())
    if isinstance(obj, list):
        return sum(_check_summaries(v, f"{where}[{i}]", fail) for i, v in enumerate(obj))
    return 0


def check_result(obj, source: str) -> None:
    """Raise a one-line ValueError naming ``source``, the offending field and what is allowed, unless ``obj``
    follows the contract in this module's docstring."""
    def fail(field: str, problem: str):
        raise ValueError(f"{source}: {field}: {problem}".replace("\n", " "))

    if not isinstance(obj, dict):
        fail("top level", f"is a {type(obj).__name__}; allowed: a JSON object")
    if obj.get("schema") != SCHEMA:
        fail("schema", f"is {obj.get('schema')!r}; allowed: {SCHEMA!r}")
    if not (isinstance(obj.get("kind"), str) and obj["kind"]):
        fail("kind", f"is {obj.get('kind')!r}; allowed: a non-empty string")
    host = obj.get("host")
    if not isinstance(host, dict):
        fail("host", f"is {host!r}; allowed: an object with cpu, cores, {', '.join(HOST_STR_OR_NULL)}")
    if not isinstance(host.get("cpu"), str):
        fail("host.cpu", f"is {host.get('cpu')!r}; allowed: a string")
    if not (isinstance(host.get("cores"), int) and not isinstance(host.get("cores"), bool)):
        fail("host.cores", f"is {host.get('cores')!r}; allowed: an int")
    for key in HOST_STR_OR_NULL:
        if key not in host or not (host[key] is None or isinstance(host[key], str)):
            fail(f"host.{key}", f"is {host.get(key, '<missing>')!r}; allowed: a string or null")
    if not isinstance(obj.get("config"), dict):
        fail("config", f"is {obj.get('config')!r}; allowed: an object")
    rows = obj.get("rows")
    if not (isinstance(rows, list) and rows):
        fail("rows", "missing or empty; allowed: a non-empty list of measured points")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            fail(f"rows[{i}]", f"is a {type(row).__name__}; allowed: an object")
        if row.get("kind") in ("prediction", "literature"):
            fail(f"rows[{i}].kind", f"is {row['kind']!r}; rows hold measured points only "
                                    f"(put it under 'predictions' or 'literature')")
        if _check_summaries(row, f"rows[{i}]", fail) == 0:
            fail(f"rows[{i}]", "has no summary; allowed: a row with at least one {median, min, max, n} object")
    for key in ("predictions", "literature"):
        if key in obj:
            if not isinstance(obj[key], list):
                fail(key, f"is a {type(obj[key]).__name__}; allowed: a list of objects")
            for i, item in enumerate(obj[key]):
                if not isinstance(item, dict):
                    fail(f"{key}[{i}]", f"is a {type(item).__name__}; allowed: an object")
                if key == "literature" and not (isinstance(item.get("source"), str) and item["source"]):
                    fail(f"literature[{i}].source", f"is {item.get('source')!r}; allowed: a non-empty string")
    created = obj.get("created")
    try:
        _dt.datetime.fromisoformat(created)
    except (TypeError, ValueError):
        fail("created", f"is {created!r}; allowed: an ISO-8601 timestamp string")


def write_result(path, result: dict) -> None:
    """Check ``result``, then write it to ``path`` atomically (temporary file + ``os.replace``), indent 2."""
    path = Path(path)
    check_result(result, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_result(path) -> dict:
    """Read and check one results file; JSON and contract errors are one-line ValueErrors naming the file."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    check_result(obj, str(path))
    return obj
