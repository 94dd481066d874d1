"""Time to fidelity, MLPerf-HPC style: wall time and samples seen until the calorimeter GAN reaches a quality target.

MLPerf HPC (Farrell et al., arXiv:2110.11466) times training "to a quality target", median over seeds. Here each
(ranks, seed) point launches the real trainer under ``mpirun -n R`` (one OpenMP thread per rank, so R ranks use R
cores) with linear learning-rate scaling (lr × R after a linear warm-up), a fixed per-rank batch, and the
in-training fidelity monitor (:mod:`hpcgen.train.monitor`) every ``eval_every`` steps; the time to the target is
the training wall time (monitor included, start-up not) of the first evaluation that meets every target
(:func:`hpcgen.fidelity.monitor.meets_targets`). A run that does not get there within ``minutes`` is reported as
"not reached", with its best evaluation, never as a time.

The default target is the shipped checkpoint's (:data:`hpcgen.fidelity.monitor.TARGETS`); ``--target`` relaxes or
tightens single metrics (e.g. ``AUC_high_level=0.99``) so that the method can be measured in a laptop budget.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from hpcgen.bench.harness import local_mpirun
from hpcgen.bench.results import display_path, host_info, make_result, summarise, write_result
from hpcgen.errors import UserError
from hpcgen.fidelity.monitor import TARGETS, meets_targets


@dataclasses.dataclass
class TimeToFidelityConfig:
    """``hpcgen bench time-to-fidelity``; every field is a CLI flag of the same name."""

    data: Path
    eval_data: Path
    out: Path
    ranks: tuple[int, ...] = (1, 2)
    seeds: tuple[int, ...] = (1, 2, 3)
    minutes: float = 10.0  # training wall time per run
    batch_per_rank: int = 32
    eval_every: int = 100
    warmup_steps: int = 100
    targets: dict = dataclasses.field(default_factory=lambda: dict(TARGETS))
    train_args: tuple[str, ...] = ()  # further `hpcgen train calo` flags, the same for every run
    runs: Path = Path(".cache/time_to_fidelity")

    def __post_init__(self) -> None:
        if not self.ranks or min(self.ranks) < 1 or not self.seeds or self.minutes <= 0:
            raise UserError("--ranks / --seeds / --minutes: expected rank counts >= 1, seeds and minutes > 0")
        if self.batch_per_rank < 1 or self.eval_every < 1:
            raise UserError("--batch-per-rank / --eval-every: expected >= 1")
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown:
            raise UserError(f"--target: unknown metric(s) {', '.join(unknown)}; allowed: {', '.join(TARGETS)}")
        for path, flag in ((self.data, "--data"), (self.eval_data, "--eval-data")):
            if not Path(path).exists():
                raise UserError(f"{flag}: {path}: no such file")


def parse_targets(items) -> dict:
    """``["AUC_high_level=0.99", ...]`` → the default targets with those values replaced."""
    out = dict(TARGETS)
    for item in items or ():
        name, sep, value = str(item).partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise UserError(f"--target: expected METRIC=VALUE, got {item!r}") from None
        if not sep:
            raise UserError(f"--target: expected METRIC=VALUE, got {item!r}")
    return out


def evaluations(run_dir: Path) -> list[dict]:
    """The monitor's lines of a run's metrics.jsonl, in order."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [e for e in (json.loads(x) for x in lines) if "eval" in e]


def first_meeting(evals: list[dict], targets: dict) -> dict | None:
    """The first evaluation that meets every target (step, wall_s, samples_seen), or None."""
    for e in evals:
        if meets_targets(e["eval"], targets):
            return {"step": e["step"], "wall_s": e["wall_s"], "samples_seen": e["samples_seen"]}
    return None


def _launch(cfg: TimeToFidelityConfig, ranks: int, seed: int, cores: list[int]) -> tuple[subprocess.Popen, Path]:
    """Start one (ranks, seed) training, its ranks pinned to ``cores`` (one each), stderr to a log beside its run."""
    run = cfg.runs / f"r{ranks}_s{seed}"
    if run.exists():
        for p in run.iterdir():
            p.unlink()
    cmd = local_mpirun(ranks, "-m", "hpcgen.cli", "train", "calo", "--data", str(cfg.data), "--out", str(run),
                  "--steps", "100000000", "--batch-size", str(cfg.batch_per_rank), "--seed", str(seed),
                  "--lr-scaling", "linear", "--warmup-steps", str(cfg.warmup_steps),
                  "--eval-data", str(cfg.eval_data), "--eval-every", str(cfg.eval_every),
                  "--checkpoint-every", "100000000", "--time-limit-s", str(cfg.minutes * 60), *cfg.train_args)
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", ",".join(map(str, cores)), *cmd]
    log = open(cfg.runs / f"r{ranks}_s{seed}.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    log.close()
    return proc, run


def _point(cfg: TimeToFidelityConfig, ranks: int, seed: int, run: Path, returncode: int) -> dict:
    if returncode not in (0, 75):  # 75: stopped at the time limit, as asked
        log = (cfg.runs / f"r{ranks}_s{seed}.log").read_text()
        raise RuntimeError(f"training with {ranks} rank(s), seed {seed} failed (exit {returncode}): "
                           f"{log.strip()[-1500:]}")
    evals = evaluations(run)
    hit = first_meeting(evals, cfg.targets)
    best = min(evals, key=lambda e: e["eval"]["AUC_high_level"])
    return {"ranks": ranks, "seed": seed, "reached": hit is not None, "at": hit,
            "best": {"step": best["step"], "wall_s": best["wall_s"], **{k: best["eval"][k] for k in cfg.targets}},
            "curve": [{"step": e["step"], "wall_s": e["wall_s"], "samples_seen": e["samples_seen"],
                       **{k: e["eval"][k] for k in cfg.targets}} for e in evals]}


def run_points(cfg: TimeToFidelityConfig, say=print) -> list[dict]:
    """Every (ranks, seed) point, as many at once as this process's cores allow with one core per rank: a point
    gets its own cores (``taskset``), so two 1-rank points on a 2-core host run side by side on one core each and
    a 2-rank point has both. Points come back in (ranks, seeds) order."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    if max(cfg.ranks) > len(cores):
        raise UserError(f"--ranks: {max(cfg.ranks)} ranks need as many cores, this process has {len(cores)}")
    todo = [(r, s) for r in cfg.ranks for s in cfg.seeds]
    running: dict = {}  # proc -> (ranks, seed, run, cores)
    done: dict = {}
    while todo or running:
        free = [c for c in cores if all(c not in v[3] for v in running.values())]
        while todo and todo[0][0] <= len(free):
            ranks, seed = todo.pop(0)
            mine, free = free[:ranks], free[ranks:]
            say(f"time-to-fidelity: {ranks} rank(s), seed {seed}, {cfg.minutes:g} min on core(s) {mine}")
            proc, run = _launch(cfg, ranks, seed, mine)
            running[proc] = (ranks, seed, run, mine)
        time.sleep(2)
        for proc in [p for p in running if p.poll() is not None]:
            ranks, seed, run, _ = running.pop(proc)
            p = done[(ranks, seed)] = _point(cfg, ranks, seed, run, proc.returncode)
            say(f"  {ranks} rank(s), seed {seed}: {'reached at %.0f s' % p['at']['wall_s'] if p['reached'] else 'not reached'}; "
                f"best AUC {p['best']['AUC_high_level']:.3f}")
    return [done[(r, s)] for r in cfg.ranks for s in cfg.seeds]


def summarise_points(points: list[dict]) -> list[dict]:
    """One row per rank count: median [min, max] of time and samples to the target over the seeds that reached it."""
    rows = []
    for r in sorted({p["ranks"] for p in points}):
        mine = [p for p in points if p["ranks"] == r]
        hits = [p["at"] for p in mine if p["reached"]]
        row = {"ranks": r, "cores": r, "seeds": len(mine), "reached": len(hits), "points": mine,
               "best_auc": summarise([p["best"]["AUC_high_level"] for p in mine])}
        if hits:
            row["time_to_target_s"] = summarise([h["wall_s"] for h in hits])
            row["samples_to_target"] = summarise([h["samples_seen"] for h in hits])
        rows.append(row)
    return rows


def plot(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row, color in zip(result["rows"], ("C0", "C1", "C2", "C3")):
        for p in row["points"]:
            ax.plot([c["wall_s"] / 60 for c in p["curve"]], [c["AUC_high_level"] for c in p["curve"]],
                    color=color, alpha=0.7, label=f"{row['ranks']} rank(s)" if p is row["points"][0] else None)
    ax.axhline(result["config"]["targets"]["AUC_high_level"], color="k", ls="--", lw=0.8, label="AUC target")
    ax.set_xlabel("training wall time [min]")
    ax.set_ylabel("high-level classifier AUC (monitor)")
    ax.set_title("time to fidelity (one line per seed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def run_time_to_fidelity(cfg: TimeToFidelityConfig, say=print) -> dict:
    cfg.runs.mkdir(parents=True, exist_ok=True)
    points = run_points(cfg, say)
    config = {k: (display_path(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}
    config.update(lr_scaling="linear", cores_per_rank=1, threads_per_rank=1,
                  concurrency="points run side by side on disjoint cores (taskset) when the host has enough")
    result = make_result("time_to_fidelity", config, summarise_points(points), host=host_info("ddp"))
    write_result(cfg.out, result)
    plot(result, cfg.out.with_suffix(".png"))
    return result


__all__ = ["TimeToFidelityConfig", "evaluations", "first_meeting", "parse_targets", "run_time_to_fidelity",
           "summarise_points"]

