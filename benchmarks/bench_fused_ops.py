"""Fused-op speed (compiled kernels vs eager reference vs torch.compile, fwd+bwd): ``hpcgen bench kernels``
(:mod:`hpcgen.bench.kernels`, whose docstring says what is measured) writing benchmarks/results/fused_ops.json unless
``--out`` says otherwise; every other flag is the verb's.

    python benchmarks/bench_fused_ops.py [--batches 16,64,128] [--repeats 15] [--threads 2] [--device cpu|cuda]
"""

from __future__ import annotations

import sys
from pathlib import Path

from hpcgen.cli import main

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", str(ROOT / "benchmarks" / "results" / "fused_ops.json")]
    sys.exit(main(["bench", "kernels", *args]))
