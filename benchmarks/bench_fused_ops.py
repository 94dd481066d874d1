"""Fused-op speed (compiled kernels vs eager reference vs torch.compile, fwd+bwd): a thin wrapper of
``hpcgen bench kernels`` (:mod:`hpcgen.bench.kernels`, whose docstring says what is measured) that writes
benchmarks/results/fused_ops.json.

    python benchmarks/bench_fused_ops.py [--batches 16,64,128] [--repeats 15] [--threads 2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hpcgen.bench.kernels import run_kernels

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="16,64,128")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fused_ops.json")
    a = ap.parse_args()
    run_kernels(a.out, [int(b) for b in a.batches.split(",")], a.repeats, a.warmup, a.threads, a.device)
