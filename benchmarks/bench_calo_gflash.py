"""How many GFlash showers per second does one core simulate at 10, 100 and 500 GeV?

One warm-up call per energy (excluded), then ``--repeats`` timed calls of a fixed batch; showers/s as median and
min/max over the repeats. The process is pinned to one core with OMP_NUM_THREADS=1. Writes
benchmarks/results/calo_gflash_throughput.json.

    python benchmarks/bench_calo_gflash.py [--repeats 5] [--seconds 0.5]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads its BLAS/OpenMP runtime

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from bench_common import host_info, now_iso, summarise

ENERGIES_GEV = (10.0, 100.0, 500.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5, help="target wall time of one timed batch")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "calo_gflash_throughput.json")
    args = ap.parse_args()

    from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY
    from hpcgen.seeding import stream
    from hpcgen.sim.calo_gflash import GFlashParams, simulate_gflash

    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    params = GFlashParams()
    config = {
        "geometry": DEFAULT_GEOMETRY.to_dict(),
        "params": dataclasses.asdict(params),
        "energies_gev": list(ENERGIES_GEV),
        "repeats": args.repeats,
        "target_batch_seconds": args.seconds,
        "pinned_core": core,
        "omp_num_threads": os.environ["OMP_NUM_THREADS"],
        "warmup": "two 16-shower batches per energy, untimed; the second sizes the timed batch",
    }
    print(f"config: GFlash on {DEFAULT_GEOMETRY.name}, energies {ENERGIES_GEV} GeV, {args.repeats} repeats of "
          f"~{args.seconds} s, 1 core (#{core}), OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"c_s={params.sampling_resolution}, step={params.longitudinal_step_x0} X0")

    rows = []
    rng = stream(20240, 0)
    for e in ENERGIES_GEV:
        simulate_gflash(np.full(16, e), DEFAULT_GEOMETRY, rng, params)  # warm-up
        t0 = time.perf_counter()
        simulate_gflash(np.full(16, e), DEFAULT_GEOMETRY, rng, params)  # untimed, sizes the batch
        n = max(16, int(args.seconds * 16 / (time.perf_counter() - t0)))
        rates = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            simulate_gflash(np.full(n, e), DEFAULT_GEOMETRY, rng, params)
            rates.append(n / (time.perf_counter() - t0))
        s = summarise(rates)
        rows.append({"generator": "gflash", "energy_gev": e, "batch": n, "showers_per_s_median": s["median"],
                     "min": s["min"], "max": s["max"], "repeats": s["n"]})
        print(f"  {e:6.1f} GeV  batch {n:5d}  {s['median']:8.1f} showers/s  (min {s['min']:.1f}, max {s['max']:.1f})")

    result = {"schema": "hpcgen.bench/1", "kind": "mc_throughput", "host": host_info(), "config": config,
              "rows": rows, "created": now_iso()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
