"""Training throughput of 3DGAN and CosmoGAN, DDP vs Horovod side by side, on 1 and 2 ranks — in one run.

Each point launches the real trainer (`mpirun -n R hpcgen train ...`, one OpenMP thread per rank) for
``--steps`` steps on the same data, reads the rank-averaged step times from metrics.jsonl, drops the first
``--warmup`` steps, and reports samples/s per rank and in total as median and min/max over the remaining steps,
with the scaling efficiency total(R) / (R · total(1)) of the same engine. Data: 25³ GFlash showers for 3DGAN;
Gaussian κ maps (256²) for CosmoGAN — map content does not change the cost. Writes
benchmarks/results/train_throughput.json (schema hpcgen.bench/1).

    python benchmarks/bench_train_throughput.py [--steps 6] [--warmup 2] [--ranks 1,2] [--engines ddp,horovod]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_common import summarise, write_result

ROOT = Path(__file__).resolve().parent.parent


def make_data(tmp: Path, size: int) -> dict[str, Path]:
    from hpcgen.data.calo_file import calo_attrs, write_calo_file
    from hpcgen.data.cosmo_file import COSMOGAN_COSMOLOGY, cosmo_attrs, write_cosmo_file
    from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY
    from hpcgen.seeding import stream
    from hpcgen.sim.calo_gflash import simulate_gflash

    rng = stream(5, 0)
    e = rng.uniform(10, 500, 128)
    calo = write_calo_file(tmp / "calo.h5", simulate_gflash(e, DEFAULT_GEOMETRY, rng).ecal_gev, e.astype(np.float32),
                           calo_attrs("gflash", DEFAULT_GEOMETRY, 5))
    kappa = np.clip(rng.normal(0, 0.017, (128, size, size)), -0.059, None).astype(np.float32)
    cosmo = write_cosmo_file(tmp / "cosmo.h5", kappa, cosmo_attrs("gaussian-bench", COSMOGAN_COSMOLOGY, 1.0, 3.5, size, 5))
    return {"calo": calo, "cosmo": cosmo}


def run_point(domain, data, engine, ranks, batch, steps, out: Path) -> list[dict]:
    mpirun = str(Path(sys.executable).parent / "mpirun")
    cmd = [mpirun, "-n", str(ranks), "--oversubscribe", "-x", "OMP_NUM_THREADS=1", "-x", "HPCGEN_NO_PROGRESS=1",
           sys.executable, "-m", "hpcgen.cli", "train", domain, "--data", str(data), "--engine", engine,
           "--batch-size", str(batch), "--steps", str(steps), "--out", str(out), "--checkpoint-every", str(10**6)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--engines", default="ddp,horovod")
    ap.add_argument("--models", default="calo,cosmo")
    ap.add_argument("--batch-calo", type=int, default=4, help="per rank")
    ap.add_argument("--batch-cosmo", type=int, default=4, help="per rank")
    ap.add_argument("--cosmo-size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_throughput.json")
    args = ap.parse_args()
    ranks = [int(r) for r in args.ranks.split(",")]
    engines, models = args.engines.split(","), args.models.split(",")
    batch = {"calo": args.batch_calo, "cosmo": args.batch_cosmo}
    config = {"steps": args.steps, "warmup_steps_dropped": args.warmup, "ranks": ranks, "engines": engines,
              "models": models, "batch_per_rank": batch, "cosmo_image_size": args.cosmo_size,
              "threads_per_rank": 1, "launcher": "mpirun (PyPI Open MPI)", "mode": "weak (fixed batch per rank)"}
    print(f"config: {json.dumps(config)}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp), args.cosmo_size)
        for domain in models:
            for r in ranks:
                for engine in engines:  # engines interleaved per point: same machine state for the comparison
                    lines = run_point(domain, data[domain], engine, r, batch[domain], args.steps,
                                      Path(tmp) / f"{domain}-{engine}-{r}")[args.warmup:]
                    tot = summarise([m["samples_per_s_total"] for m in lines])
                    per = summarise([m["samples_per_s_per_rank"] for m in lines])
                    st = summarise([m["step_time_s"] for m in lines])
                    rows.append({"model": domain, "engine": engine, "ranks": r, "batch_per_rank": batch[domain],
                                 "samples_per_s_total": tot, "samples_per_s_per_rank": per, "step_time_s": st})
                    print(f"  {domain:5s} {engine:7s} ranks {r}: {tot['median']:7.2f} samples/s total "
                          f"(min {tot['min']:.2f}, max {tot['max']:.2f}), {per['median']:.2f}/rank, "
                          f"step {st['median']:.2f} s")
    for row in rows:
        one = next((x for x in rows if x["model"] == row["model"] and x["engine"] == row["engine"] and x["ranks"] == 1), None)
        if one:
            row["efficiency_vs_1_rank"] = row["samples_per_s_total"]["median"] / (
                row["ranks"] * one["samples_per_s_total"]["median"])
    write_result(args.out, "train_throughput", config, rows)


if __name__ == "__main__":
    main()
