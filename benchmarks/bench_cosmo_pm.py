"""κ maps per second of the particle-mesh generator on one core, at 64³ and 128³ particles, with the time split.

Per particle count (each in its own process, so its peak RSS is its own; torch and OpenMP pinned to one thread on
one core): an untimed warm-up (one realisation with one KDK step, same array sizes), then ``--repeats`` timed
rounds of (a) the Zel'dovich ICs alone, (b) ICs + the N-body run with no lens planes, (c) ``simulate_pm`` for one
realisation with maps_per_realisation = 1 and (d) = ``--maps-per-run``. maps/s = maps / wall time of (c) or (d),
median and min/max over the rounds. The time split uses each stage's fastest round (a background load only adds
time): N-body = (b) − (a), lensing = (c) − (b), per map at many maps per run ((d) − (b))/maps. Defaults otherwise
(mesh 2·n_p, box 256 Mpc, 20 steps, 256² maps of 3.5° at z_s = 1). Writes
benchmarks/results/cosmo_pm_throughput.json (schema hpcgen.bench/1).

    python benchmarks/bench_cosmo_pm.py [--sizes 64 128] [--repeats 3] [--maps-per-run 8]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch/numpy load their thread pools

import argparse
import itertools
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench_common import summarise, write_result

JAX_ANCHOR_S = {64: 0.9, 128: 18.6}  # shared/REFERENCE.md §2: a JAX PM, 20 steps, 2 cores


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(n_p: int, repeats: int, maps_per_run: int, core: int) -> dict:
    """Run in a fresh process: all timings for n_p³ particles."""
    import dataclasses

    import numpy as np
    import torch

    from hpcgen.sim.cosmo_pm import PMConfig, lens_planes, simulate_pm
    from hpcgen.sim.cosmo_spec import CosmoMapSpec
    from hpcgen.sim.pm_nbody import evolve, zeldovich_ics

    os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    spec = CosmoMapSpec()
    cfg = PMConfig(n_particles_side=n_p)
    params = spec.cosmology
    rng = np.random.default_rng(n_p)
    simulate_pm(1, spec, dataclasses.replace(cfg, n_steps=1), rng)  # warm-up: allocations, FFT plans, pyccl tables

    many = dataclasses.replace(cfg, maps_per_realisation=maps_per_run)
    t_ics, t_nbody, t_one, t_many = [], [], [], []
    for _ in range(repeats):
        t_ics.append(_timed(lambda: zeldovich_ics(cfg, params, rng)))
        t_nbody.append(_timed(lambda: evolve(*zeldovich_ics(cfg, params, rng), cfg, params)))
        t_one.append(_timed(lambda: simulate_pm(1, spec, cfg, rng)))
        t_many.append(_timed(lambda: simulate_pm(maps_per_run, spec, many, rng)))
    fastest = {"ics": min(t_ics), "nbody": min(t_nbody), "one": min(t_one), "many": min(t_many)}
    one, many_rate = summarise([1 / t for t in t_one]), summarise([maps_per_run / t for t in t_many])
    return {
        "n_particles_side": n_p, "mesh_side": cfg.mesh, "plane_mesh_side": cfg.plane_mesh,
        "box_mpc": cfg.box_mpc, "n_steps": cfg.n_steps, "n_planes": int(lens_planes(spec, cfg).a.size),
        "pixels": spec.pixels, "repeats": repeats,
        "maps_per_s_1_per_run": one, "maps_per_run": maps_per_run, "maps_per_s_many_per_run": many_rate,
        "s_ics": fastest["ics"], "s_nbody": fastest["nbody"] - fastest["ics"],
        "s_lensing_one_map": fastest["one"] - fastest["nbody"],
        "s_lensing_per_map_many": (fastest["many"] - fastest["nbody"]) / maps_per_run,
        "s_realisation_one_map": fastest["one"], "s_ics_plus_nbody_median": float(np.median(t_nbody)),
        "s_ics_plus_nbody_max": max(t_nbody),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jax_anchor_nbody_s_2_cores": JAX_ANCHOR_S.get(n_p),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="particles per side")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--maps-per-run", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cosmo_pm_throughput.json")
    args = ap.parse_args()

    import torch

    from hpcgen.sim.cosmo_pm import PMConfig
    from hpcgen.sim.cosmo_spec import CosmoMapSpec

    core = min(os.sched_getaffinity(0))
    spec, cfg = CosmoMapSpec(), PMConfig()
    config = {"sizes": args.sizes, "repeats": args.repeats, "maps_per_run": args.maps_per_run, "pinned_core": core,
              "threads": 1, "torch": torch.__version__, "spec": {"pixels": spec.pixels, "field_deg": spec.field_deg,
              "z_source": spec.z_source, "cosmology": spec.cosmology.to_dict()},
              "pm_defaults": {"mesh": "2·n_p", "plane_mesh": "2·mesh", "box_mpc": cfg.box_mpc,
                              "n_steps": cfg.n_steps, "a_start": cfg.a_start,
                              "plane_thickness_mpc": cfg.plane_thickness, "dtype": str(cfg.dtype)},
              "load_note": "2 shared cores with a long training job running in the background: timings are noisy"}
    print(f"config: PM {args.sizes} particles/side, mesh 2·n_p, box {cfg.box_mpc} Mpc, {cfg.n_steps} KDK steps from "
          f"a = {cfg.a_start}, {spec.pixels}² maps of {spec.field_deg}° at z_s = {spec.z_source}; 1 thread on core "
          f"#{core}; {args.repeats} repeats; maps_per_realisation 1 and {args.maps_per_run}; float32, torch "
          f"{torch.__version__}; background training job running (noisy)")
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for n_p in args.sizes:
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            r = pool.submit(measure, n_p, args.repeats, args.maps_per_run, core).result()
        rows.append(r)
        one, many = r["maps_per_s_1_per_run"], r["maps_per_s_many_per_run"]
        print(f"  {n_p:4d}³ (mesh {r['mesh_side']}³, {r['n_planes']} planes): "
              f"{one['median']:.4f} maps/s at 1 map/run (min {one['min']:.4f}, max {one['max']:.4f}); "
              f"{many['median']:.4f} maps/s at {args.maps_per_run} maps/run (min {many['min']:.4f}, "
              f"max {many['max']:.4f})")
        print(f"        split (fastest rounds): ICs {r['s_ics']:.2f} s, N-body {r['s_nbody']:.2f} s (ICs + N-body "
              f"median {r['s_ics_plus_nbody_median']:.2f}, max {r['s_ics_plus_nbody_max']:.2f}; JAX anchor "
              f"{r['jax_anchor_nbody_s_2_cores']} s on 2 cores), lensing {r['s_lensing_one_map']:.2f} s for one "
              f"map, {r['s_lensing_per_map_many']:.2f} s/map at {args.maps_per_run}/run; peak RSS "
              f"{r['peak_rss_mb']:.0f} MB")
    growth = []
    for a, b in itertools.pairwise(rows):
        g = {"from": a["n_particles_side"], "to": b["n_particles_side"],
             "particles_ratio": (b["n_particles_side"] / a["n_particles_side"]) ** 3,
             "nbody_time_ratio": b["s_nbody"] / a["s_nbody"],
             "realisation_time_ratio": b["s_realisation_one_map"] / a["s_realisation_one_map"]}
        growth.append(g)
        print(f"  cost {g['to']}³/{g['from']}³: N-body {g['nbody_time_ratio']:.1f}x, one-map realisation "
              f"{g['realisation_time_ratio']:.1f}x for {g['particles_ratio']:.0f}x the particles")
    write_result(args.out, "cosmo_pm_throughput", config, rows, cost_growth=growth)


if __name__ == "__main__":
    main()
