"""Maps per second of the shifted-lognormal κ generator on one core: 128², 256², 512² over CosmoGAN's 3.5° field.

Pinned to one core with OMP_NUM_THREADS=1. Per size: the model is built once (pyccl's Limber C_ℓ, timed
separately as ``model_build_s``; the first size also pays pyccl's one-time setup), one untimed warm-up batch runs,
one untimed batch sizes the timed batch to ``--seconds``, then ``--repeats`` timed batches give maps/s as median
and min/max. Peak Python-heap memory of one timed-size batch is measured afterwards under tracemalloc (numpy
reports its buffers there), outside the timing; the process's max RSS is reported once at the end. Writes benchmarks/results/cosmo_lognormal_throughput.json.

    python benchmarks/bench_cosmo_lognormal.py [--repeats 5] [--seconds 1.0]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads its thread pool

import argparse
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np

from bench_common import pin_to_one_core, summarise, write_result

PIXELS = (128, 256, 512)


def time_size(pixels: int, seed: int, seconds: float, repeats: int) -> dict:
    from hpcgen.seeding import stream
    from hpcgen.sim.cosmo_lognormal import lognormal_model, simulate_lognormal
    from hpcgen.sim.cosmo_spec import CosmoMapSpec

    spec, rng = CosmoMapSpec(pixels=pixels), stream(seed)
    t0 = time.perf_counter()
    model = lognormal_model(spec)
    build_s = time.perf_counter() - t0
    simulate_lognormal(2, spec, rng)  # warm-up
    t0 = time.perf_counter()
    simulate_lognormal(8, spec, rng)  # untimed, sizes the batch
    n = max(8, int(seconds * 8 / (time.perf_counter() - t0)))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        simulate_lognormal(n, spec, rng)
        rates.append(n / (time.perf_counter() - t0))
    tracemalloc.start()
    kappa = simulate_lognormal(n, spec, rng)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # fidelity of the timed maps: their pixel σ_κ and floor against the model's (σ and −shift, exact for the law)
    s = summarise(rates)
    return {"generator": "lognormal", "pixels": pixels, "field_deg": spec.field_deg, "batch": n,
            "maps_per_s": s, "ms_per_map_median": 1e3 / s["median"],
            "output_mb_per_batch": n * pixels * pixels * 4 / 2**20, "peak_traced_mb": peak / 2**20,
            "model_build_s": build_s, "sigma_kappa": model.variance ** 0.5, "shift": model.shift,
            "fidelity": {"sigma_kappa_measured_over_model": float(np.std(kappa) / model.variance ** 0.5),
                         "min_kappa_over_minus_shift": float(np.min(kappa) / -model.shift), "maps": n}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0, help="target wall time of one timed batch")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cosmo_lognormal_throughput.json")
    args = ap.parse_args()

    from hpcgen.sim.cosmo_spec import CosmoMapSpec

    core = pin_to_one_core()
    spec = CosmoMapSpec()
    config = {"generator": "lognormal", "pixels": list(PIXELS), "field_deg": spec.field_deg,
              "z_source": spec.z_source, "cosmology": spec.cosmology.to_dict(), "repeats": args.repeats,
              "target_batch_seconds": args.seconds, "pinned_core": core,
              "omp_num_threads": os.environ["OMP_NUM_THREADS"], "dtype": "float32"}
    print(f"config: shifted-lognormal κ, {PIXELS} pixels over {spec.field_deg}°, z_s = {spec.z_source}, "
          f"CosmoGAN cosmology; {args.repeats} repeats of ~{args.seconds} s on 1 core (#{core}), "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    rows = []
    for i, pixels in enumerate(PIXELS):
        row = time_size(pixels, 20240 + i, args.seconds, args.repeats)
        rows.append(row)
        s = row["maps_per_s"]
        print(f"  {pixels:4d}²  batch {row['batch']:5d}  {s['median']:9.1f} maps/s "
              f"(min {s['min']:.1f}, max {s['max']:.1f})  {row['ms_per_map_median']:.2f} ms/map  "
              f"peak {row['peak_traced_mb']:.0f} MB traced for {row['output_mb_per_batch']:.0f} MB of maps  "
              f"model {row['model_build_s']:.2f} s  σ_κ {row['sigma_kappa']:.4f}")
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  process max RSS {max_rss_mb:.0f} MB")
    write_result(args.out, "cosmo_mc_throughput", config, rows, max_rss_mb=max_rss_mb)


if __name__ == "__main__":
    main()
