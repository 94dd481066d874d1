"""Ablation of a GAN recipe at equal wall time and equal hardware: which choice makes it learn.

Every arm is one ``hpcgen train calo|cosmo|ising`` run on the same training data, with the same batch size and seed, for
the same wall time (``--time-limit-s``) on one core of its own (``taskset``, OMP_NUM_THREADS=1; arms run
``--parallel`` at a time, one per core, so they share nothing but the memory bus). Each run scores itself on the
held-out file every ``--eval-every`` steps (:mod:`hpcgen.train.monitor`; calorimeter: per-energy response,
S(E_vis/E_p) and median per-layer S against their same-size floors, high-level classifier AUC; κ maps: C_ℓ error,
pixel and peak S over their floors, Minkowski excess; Ising: E, |M|, χ, C_v errors per temperature, configuration AUC), so the result holds every arm's fidelity curve against wall
time and samples seen, not a loss.

    python benchmarks/bench_gan_ablation.py --domain calo --data train.h5 --eval-data monitor.h5 [--minutes 10]
        [--arms factorised 3dgan ...] [--batch-size 32] [--eval-every 100] [--runs DIR] [--out PATH]

Writes benchmarks/results/<domain>_gan_ablation.json (schema hpcgen.bench/1) and a plot beside it;
docs/calo_gan.md, docs/cosmo_gan.md and docs/ising.md read them. Early-training figures only: an arm that is ahead after minutes
is not proven ahead after hours.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench_common import summarise, write_result

from hpcgen.bench.shipped_gan import MONITOR_PLOTS

# arm name -> flags on top of the default recipe (`hpcgen train calo` defaults: factorised, hinge, D reading the physics
# features only, straight-through read-out, feature matching 1, spectral norm, EMA 0.999, fp32)
CALO_ARMS: dict[str, list[str]] = {
    "factorised": [],
    "3dgan": ["--calo-arch", "3dgan"],
    "d_both": ["--d-view", "both"],
    "d_cells_only": ["--d-view", "cells"],
    "no_feature_matching": ["--feature-matching", "0"],
    "feature_matching_10": ["--feature-matching", "10"],
    "bce_loss": ["--calo-loss", "bce"],
    "no_spectral_norm": ["--no-spectral-norm"],
    "no_ema": ["--g-ema", "0"],
    "bf16": ["--bf16"],
    "lr_1e-4": ["--lr", "1e-4"],
    "soft_readout": ["--readout", "soft"],
}
# `hpcgen train cosmo` defaults: the paper's CosmoGAN (width 1), BCE, no spectral loss, fp32
COSMO_ARMS: dict[str, list[str]] = {
    "paper": [],
    "paper_spectral": ["--spectral-loss"],
    "half_width": ["--cosmo-width", "0.5"],
    "half_width_spectral": ["--cosmo-width", "0.5", "--spectral-loss"],
}
# `hpcgen train ising` defaults: Bernoulli read-out, feature matching of e and |m| per T (weight 1), EMA 0.999
ISING_ARMS: dict[str, list[str]] = {
    "default": [],
    "sign_readout": ["--spin-readout", "sign"],
    "no_feature_matching": ["--feature-matching", "0"],
    "feature_matching_10": ["--feature-matching", "10"],
    "no_ema": ["--g-ema", "0"],
}
DOMAINS = {  # domain -> (arms, monitor keys kept per evaluation, the key that ranks evaluations: smaller is better)
    "calo": (CALO_ARMS, ("AUC_high_level", "S_e_vis_over_e_p_over_floor", "S_layer_energy_median_over_floor",
                         "response_mean_rel_error_max", "response_width_rel_error_max"), "AUC_high_level"),
    "cosmo": (COSMO_ARMS, ("cl_max_abs_rel_err_valid", "S_pixel_histogram_over_floor_p95",
                           "S_peak_heights_over_floor_p95", "minkowski_excess_sigma_max"), "cl_max_abs_rel_err_valid"),
    "ising": (ISING_ARMS, ("E_max_abs_rel_err", "absM_max_abs_rel_err", "chi_max_abs_rel_err", "Cv_max_abs_rel_err",
                           "AUC_pooled"), "chi_max_abs_rel_err"),
}


def _arm_command(args, name: str, run: Path) -> list[str]:
    return [sys.executable, "-m", "hpcgen.cli", "train", args.domain, "--data", str(args.data), "--out", str(run),
            "--steps", "1000000", "--batch-size", str(args.batch_size), "--seed", str(args.seed),
            "--eval-data", str(args.eval_data), "--eval-every", str(args.eval_every), "--checkpoint-every", "1000000",
            "--time-limit-s", str(args.minutes * 60), "--no-progress", *DOMAINS[args.domain][0][name]]


def _read(run: Path) -> tuple[list[dict], list[dict]]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if "eval" in x], [x for x in lines if "loss_D" in x]


def _row(domain: str, name: str, run: Path, wall_limit_s: float) -> dict:
    arms, keys, rank_key = DOMAINS[domain]
    evals, steps = _read(run)
    last = evals[-1]
    best = min(evals, key=lambda e: e["eval"][rank_key])
    return {
        "arm": name, "flags": arms[name],
        "steps": steps[-1]["step"] if steps else 0,
        "samples_seen": last["samples_seen"],
        "train_samples_per_s": summarise([s["samples_per_s_total"] for s in steps[len(steps) // 10:]]),
        "final": {k: last["eval"][k] for k in keys},
        "best": {"step": best["step"], "wall_s": best["wall_s"], rank_key: best["eval"][rank_key]},
        "curve": [{"step": e["step"], "wall_s": e["wall_s"], "samples_seen": e["samples_seen"],
                   **{k: e["eval"][k] for k in keys}} for e in evals],
        "wall_limit_s": wall_limit_s,
    }


def _plot(domain: str, rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = MONITOR_PLOTS[domain][0]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2))
    for r in rows:
        t = [c["wall_s"] / 60 for c in r["curve"]]
        for i, (ax, (key, _, _, _)) in enumerate(zip(axes, panels)):
            if key in r["curve"][0]:
                ax.plot(t, [c[key] for c in r["curve"]], marker=".", label=r["arm"] if i == 0 else None)
    for ax, (_, title, target, log) in zip(axes, panels):
        ax.axhline(target, color="k", ls="--", lw=0.8)
        ax.set_xlabel("training wall time on one core [min]")
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--domain", default="calo", choices=list(DOMAINS))
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--eval-data", type=Path, required=True)
    ap.add_argument("--arms", nargs="+", default=None, help="arms of --domain (default: all of them)")
    ap.add_argument("--minutes", type=float, default=10.0, help="training wall time per arm")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=len(os.sched_getaffinity(0)), help="arms at a time, one core each")
    ap.add_argument("--runs", type=Path, default=None, help="default .cache/<domain>_gan_ablation")
    ap.add_argument("--out", type=Path, default=None, help="default benchmarks/results/<domain>_gan_ablation.json")
    args = ap.parse_args()
    arms = DOMAINS[args.domain][0]
    args.arms = args.arms or list(arms)
    unknown = [a for a in args.arms if a not in arms]
    if unknown:
        ap.error(f"--arms: unknown {args.domain} arm(s) {', '.join(unknown)}; allowed: {', '.join(arms)}")
    args.runs = args.runs or Path(f".cache/{args.domain}_gan_ablation")
    args.out = args.out or Path(f"benchmarks/results/{args.domain}_gan_ablation.json")
    cores = sorted(os.sched_getaffinity(0))[: args.parallel]
    args.runs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", HPCGEN_NO_PROGRESS="1")
    todo, running, rows = list(args.arms), {}, []
    t0 = time.time()
    while todo or running:
        while todo and len(running) < len(cores):
            name = todo.pop(0)
            core = next(c for c in cores if c not in {c for c, _ in running.values()})
            run = args.runs / name
            if (run / "metrics.jsonl").exists():
                for p in run.iterdir():
                    p.unlink()
            cmd = ["taskset", "-c", str(core), *_arm_command(args, name, run)]
            log = open(args.runs / f"{name}.log", "w")
            running[subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)] = (core, name)
            print(f"[{time.time() - t0:6.0f} s] {name} on core {core}", flush=True)
        time.sleep(5)
        for proc in [p for p in running if p.poll() is not None]:
            _, name = running.pop(proc)
            if proc.returncode not in (0, 75):  # 75: stopped at the time limit, as intended
                print(f"{name} failed (exit {proc.returncode}); see {args.runs / (name + '.log')}", file=sys.stderr)
                return 1
            rows.append(_row(args.domain, name, args.runs / name, args.minutes * 60))
            print(f"[{time.time() - t0:6.0f} s] {name}: {rows[-1]['final']}", flush=True)
    rows.sort(key=lambda r: args.arms.index(r["arm"]))
    config = {"domain": args.domain, "data": os.path.basename(args.data), "eval_data": os.path.basename(args.eval_data),
              "minutes_per_arm": args.minutes, "batch_size": args.batch_size, "eval_every": args.eval_every,
              "seed": args.seed, "cores_per_arm": 1, "threads_per_arm": 1, "parallel_arms": len(cores)}
    write_result(args.out, f"{args.domain}_gan_ablation", config, rows)
    _plot(args.domain, rows, args.out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
