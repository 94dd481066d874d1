"""Showers per second of the calorimeter Monte Carlos on one core: cascade and GFlash at 10, 100, 500 GeV.

Both generators are timed in the same run (so their ratio is measured under the same machine load), pinned to one
core with OMP_NUM_THREADS=NUMBA_NUM_THREADS=1. Per generator and energy: untimed warm-up (JIT for the cascade), one
untimed batch that sizes the timed batch to ``--seconds``, then ``--repeats`` timed batches; showers/s as median
and min/max. The cascade rows also carry tracking steps per shower, to show its cost growing ≈ linearly with
energy. Writes benchmarks/results/calo_mc_throughput.json (schema hpcgen.bench/1).

    python benchmarks/bench_calo_mc.py [--repeats 5] [--seconds 1.0]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy/numba load their thread pools

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from bench_common import pin_to_one_core, summarise, write_result

ENERGIES_GEV = (10.0, 100.0, 500.0)


def time_generator(name, simulate, energy_gev, rng, seconds, repeats) -> dict:
    simulate(np.full(1, energy_gev), rng)  # warm-up (JIT on first use)
    t0 = time.perf_counter()
    simulate(np.full(4, energy_gev), rng)  # untimed, sizes the batch
    n = max(2, int(seconds * 4 / (time.perf_counter() - t0)))
    rates, steps = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = simulate(np.full(n, energy_gev), rng)
        rates.append(n / (time.perf_counter() - t0))
        if "n_steps" in out.tallies:
            steps.append(float(out.tallies["n_steps"].mean()))
    s = summarise(rates)
    row = {"generator": name, "energy_gev": energy_gev, "batch": n, "showers_per_s": s,
           "ms_per_shower_median": 1e3 / s["median"]}
    if steps:
        row["steps_per_shower_mean"] = float(np.mean(steps))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0, help="target wall time of one timed batch")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "calo_mc_throughput.json")
    args = ap.parse_args()

    from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY as geo
    from hpcgen.seeding import stream
    from hpcgen.sim.calo_cascade import CascadeCuts, simulate_cascade
    from hpcgen.sim.calo_gflash import gflash_params, simulate_gflash

    core = pin_to_one_core()
    cuts, params = CascadeCuts(), gflash_params("literature")
    generators = {
        "cascade": lambda e, rng: simulate_cascade(e, geo, rng, cuts),
        "gflash": lambda e, rng: simulate_gflash(e, geo, rng, params),
    }
    config = {"geometry": geo.to_dict(), "cascade_cuts": dataclasses.asdict(cuts),
              "gflash_params": dataclasses.asdict(params), "particle": "e-", "energies_gev": list(ENERGIES_GEV),
              "repeats": args.repeats, "target_batch_seconds": args.seconds, "pinned_core": core,
              "omp_num_threads": os.environ["OMP_NUM_THREADS"], "numba_num_threads": os.environ["NUMBA_NUM_THREADS"]}
    print(f"config: {geo.name}, e- at {ENERGIES_GEV} GeV, {args.repeats} repeats of ~{args.seconds} s on 1 core "
          f"(#{core}); cascade cuts e {cuts.electron_cut_mev} MeV, γ {cuts.photon_cut_mev} MeV, "
          f"k_c {cuts.brems_threshold_mev} MeV; GFlash literature parameters")
    rows = []
    for e in ENERGIES_GEV:
        for name, sim in generators.items():
            row = time_generator(name, sim, e, stream(20240, len(rows)), args.seconds, args.repeats)
            rows.append(row)
            extra = f"  {row['steps_per_shower_mean']:9.0f} steps/shower" if "steps_per_shower_mean" in row else ""
            s = row["showers_per_s"]
            print(f"  {name:8s} {e:6.1f} GeV  batch {row['batch']:5d}  {s['median']:9.2f} showers/s "
                  f"(min {s['min']:.2f}, max {s['max']:.2f}){extra}")
    ratios = []
    for e in ENERGIES_GEV:
        c, g = (next(r for r in rows if r["generator"] == n and r["energy_gev"] == e) for n in ("cascade", "gflash"))
        ratio = g["showers_per_s"]["median"] / c["showers_per_s"]["median"]
        ratios.append({"energy_gev": e, "gflash_over_cascade": ratio})
        print(f"  {e:6.1f} GeV: GFlash is {ratios[-1]['gflash_over_cascade']:.0f}x faster than the cascade")
    casc = [r for r in rows if r["generator"] == "cascade"]
    for r in casc[1:]:
        print(f"  cascade cost {r['energy_gev']:.0f}/{casc[0]['energy_gev']:.0f} GeV: time "
              f"{casc[0]['showers_per_s']['median'] / r['showers_per_s']['median']:.1f}x, steps "
              f"{r['steps_per_shower_mean'] / casc[0]['steps_per_shower_mean']:.1f}x for "
              f"{r['energy_gev'] / casc[0]['energy_gev']:.0f}x the energy")
    write_result(args.out, "mc_throughput", config, rows, ratios=ratios)


if __name__ == "__main__":
    main()
