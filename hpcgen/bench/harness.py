"""The smallest honest timer, after Horovod's ``pytorch_synthetic_benchmark.py``: untimed warm-up calls, then timed
repetitions, reported as median with min/max (``hpcgen.bench.results.summarise``). The clock is injectable so that
tests can check what is and is not timed without depending on wall-clock speed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable


def time_calls(fn: Callable[[], object], warmup: int, repeats: int, clock: Callable[[], float] = time.perf_counter,
               sync: Callable[[], None] | None = None) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each clock read, so asynchronous work is counted in the
    call that launched it.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got warmup={warmup}, repeats={repeats}")
    for _ in range(warmup):
        fn()
    return [_timed_call(fn, clock, sync) for _ in range(repeats)]


def _timed_call(fn: Callable[[], object], clock: Callable[[], float], sync: Callable[[], None] | None) -> float:
    if sync:
        sync()
    t0 = clock()
    fn()
    if sync:
        sync()
    return clock() - t0


def device_sync(device) -> Callable[[], None] | None:
    """The ``sync`` of :func:`time_calls` for work on the torch ``device``: wait for that GPU's queued kernels on
    CUDA, None on CPU (its calls return when their work is done)."""
    if device.type != "cuda":
        return None
    import torch  # here, so that the timer itself stays free of torch

    return functools.partial(torch.cuda.synchronize, device)


def rates(counts_per_call: float, seconds: list[float]) -> list[float]:
    """Items per second of each timed call that processed ``counts_per_call`` items."""
    return [counts_per_call / s for s in seconds]


def sized_batch(run: Callable[[int], object], seconds: float, max_n: int = 1 << 16) -> int:
    """Batch size whose call of ``run(n)`` takes about ``seconds``: one warm-up call (JIT, cached tables), then
    untimed calls doubling n until one takes a tenth of the target, extrapolated linearly; at least 1."""
    run(1)
    n = 1
    while True:
        t0 = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds / 10 or n >= max_n:
            break
        n *= 2
    return min(max_n, max(1, round(seconds * n / max(elapsed, 1e-9))))


def relative_error(rates_: list[float]) -> float:
    """Relative standard error of the mean of repeated rates (std / √n / mean); inf for fewer than two."""
    n = len(rates_)
    if n < 2:
        return float("inf")
    mean = sum(rates_) / n
    var = sum((r - mean) ** 2 for r in rates_) / (n - 1)
    return (var / n) ** 0.5 / mean if mean > 0 else float("inf")


def time_until_precise(fn: Callable[[], object], items: float, min_repeats: int, target_rel_error: float,
                       max_seconds: float, agree: Callable[[bool], bool] = lambda more: more,
                       clock: Callable[[], float] = time.perf_counter,
                       sync: Callable[[], None] | None = None) -> list[float]:
    """Seconds of repeated timed calls of ``fn`` (each processing ``items``), repeated until there are at least
    ``min_repeats`` and the rate's relative standard error is at most ``target_rel_error``, or ``max_seconds`` of
    timed calls have passed. ``agree(more)`` makes the decision collective (MPI: any rank wanting more → all go
    on), so every rank times the same number of calls. No warm-up here: the caller warms up."""
    times: list[float] = []
    while True:
        times.append(_timed_call(fn, clock, sync))
        more = len(times) < min_repeats or (
            relative_error(rates(items, times)) > target_rel_error and sum(times) < max_seconds)
        if not agree(more):
            return times


def local_mpirun(ranks: int, *args: str) -> list[str]:
    """The command line that runs ``python *args`` as ``ranks`` ranks on this host under the venv's Open MPI, one
    OpenMP thread per rank and no progress bars. DDP's rendezvous gets a free port of its own, so concurrent jobs on
    one host never collide on the default 29500."""
    import os
    import socket
    import sys
    from pathlib import Path

    mpirun = Path(sys.executable).parent / "mpirun"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = ["--allow-run-as-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return [str(mpirun) if mpirun.exists() else "mpirun", *root, "-n", str(ranks), "--oversubscribe",
            "-x", "OMP_NUM_THREADS=1", "-x", "HPCGEN_NO_PROGRESS=1", "-x", f"MASTER_PORT={port}", sys.executable, *args]
