"""How many detailed-cascade showers per second does one core simulate at 10, 100 and 500 GeV?

JIT compilation and one shower per energy are excluded (warm-up), then ``--repeats`` timed calls of a batch sized
to ~``--seconds``; showers/s as median and min/max over the repeats, and tracking steps per shower to show that the
cost grows ~linearly with energy (total track length ∝ E0/E_c). The process is pinned to one core with
OMP_NUM_THREADS=1 and NUMBA_NUM_THREADS=1. Writes benchmarks/results/calo_cascade_throughput.json.

    python benchmarks/bench_calo_cascade.py [--repeats 5] [--seconds 1.0]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/numba load their threading runtimes
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

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
    ap.add_argument("--seconds", type=float, default=1.0, help="target wall time of one timed batch")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "calo_cascade_throughput.json")
    args = ap.parse_args()

    from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY
    from hpcgen.seeding import stream
    from hpcgen.sim.calo_cascade import CascadeCuts, simulate_cascade

    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    cuts = CascadeCuts()
    config = {
        "geometry": DEFAULT_GEOMETRY.to_dict(),
        "cuts": dataclasses.asdict(cuts),
        "particle": "e-",
        "energies_gev": list(ENERGIES_GEV),
        "repeats": args.repeats,
        "target_batch_seconds": args.seconds,
        "pinned_core": core,
        "omp_num_threads": os.environ["OMP_NUM_THREADS"],
        "numba_num_threads": os.environ["NUMBA_NUM_THREADS"],
        "warmup": "JIT + one shower per energy untimed; one more untimed shower sizes the timed batch",
    }
    print(f"config: detailed cascade (e-) on {DEFAULT_GEOMETRY.name}, energies {ENERGIES_GEV} GeV, "
          f"{args.repeats} repeats of ~{args.seconds} s, 1 core (#{core}), "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}, "
          f"cuts: e {cuts.electron_cut_mev} MeV, γ {cuts.photon_cut_mev} MeV, k_c {cuts.brems_threshold_mev} MeV, "
          f"step ≤ {cuts.max_step_x0} X0")

    rows = []
    rng = stream(20240, 0)
    for e in ENERGIES_GEV:
        simulate_cascade(np.full(1, e), DEFAULT_GEOMETRY, rng, cuts)  # warm-up (and JIT on the first energy)
        t0 = time.perf_counter()
        simulate_cascade(np.full(1, e), DEFAULT_GEOMETRY, rng, cuts)  # untimed, sizes the batch
        n = max(2, int(args.seconds / (time.perf_counter() - t0)))
        rates, steps = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = simulate_cascade(np.full(n, e), DEFAULT_GEOMETRY, rng, cuts)
            rates.append(n / (time.perf_counter() - t0))
            steps.append(out.tallies["n_steps"].mean())
        s = summarise(rates)
        rows.append({"generator": "cascade", "energy_gev": e, "batch": n, "showers_per_s_median": s["median"],
                     "min": s["min"], "max": s["max"], "repeats": s["n"],
                     "ms_per_shower_median": 1e3 / s["median"], "steps_per_shower_mean": float(np.mean(steps))})
        print(f"  {e:6.1f} GeV  batch {n:4d}  {s['median']:8.2f} showers/s  (min {s['min']:.2f}, max {s['max']:.2f})"
              f"  {1e3 / s['median']:7.1f} ms/shower  {np.mean(steps):9.0f} steps/shower")

    base = rows[0]
    for r in rows[1:]:
        print(f"  cost ratio {r['energy_gev']:.0f}/{base['energy_gev']:.0f} GeV: time "
              f"{base['showers_per_s_median'] / r['showers_per_s_median']:.1f}x, steps "
              f"{r['steps_per_shower_mean'] / base['steps_per_shower_mean']:.1f}x "
              f"(energy {r['energy_gev'] / base['energy_gev']:.0f}x)")

    result = {"schema": "hpcgen.bench/1", "kind": "mc_throughput", "host": host_info(), "config": config,
              "rows": rows, "created": now_iso()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
