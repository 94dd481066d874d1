"""The data-parallel GAN training loop — engine-agnostic (DDP or Horovod) and model-agnostic (3DGAN, the factorised
calorimeter GAN, CosmoGAN or the Ising DCGAN).

Every rank reads only its shard of the data (``hpcgen.data.reader``), runs the task's D and G steps on it, and
joins one small all-reduce per step carrying its losses, its step time and two flags (a stop request from
SIGTERM/SIGUSR1, a non-finite loss), so that every rank takes the same decision at the same step boundary.
Rank 0 appends the rank-averaged metrics to ``RUNDIR/metrics.jsonl`` and writes checkpoints.

Sittings: ``--time-limit-s`` stops a run the same way once this sitting has trained that long, so a long training
is done in resumable pieces.

Preemption: SIGTERM or SIGUSR1 on any rank → all ranks checkpoint at the next step boundary and the process exits
with ``EXIT_PREEMPTED`` (75, EX_TEMPFAIL) so a job script can requeue; ``--resume`` then continues exactly.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hpcgen import __version__
from hpcgen.config import TrainConfig
from hpcgen.data.reader import ShardedReader
from hpcgen.errors import UserError
from hpcgen.seeding import stream
from hpcgen.train.checkpoint import checkpoint_path, load_checkpoint, rng_state, save_checkpoint, set_rng_state

EXIT_PREEMPTED = 75
_SF_SAMPLES = 256  # showers used to measure the data's sampling fraction (the same ones on every rank)
_FIT_SAMPLES = 1024  # showers the factorised GAN's template, response prior and feature scaling are fitted to


class Preempted(Exception):
    """A stop was requested by a signal; a checkpoint was written. The CLI exits with EXIT_PREEMPTED."""

    exit_code = EXIT_PREEMPTED


class _StopFlag:
    def __init__(self) -> None:
        self.requested = False
        self.signum = None
        self._old = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested, self.signum = True, signum

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _open_data(cfg: TrainConfig):
    """(file handle, images dataset, conditions (N,), task kwargs, data metadata) for the configured domain."""
    if cfg.domain == "calo":
        from hpcgen.data.calo_file import open_calo

        f = open_calo(cfg.data, check_cells=False)  # full scans belong to `hpcgen validate`; losses are checked
        k = min(len(f), _SF_SAMPLES)
        sf = float(np.sum(f.ecal[:k], axis=(1, 2, 3)).sum() / f.energy_gev[:k].sum()) * cfg.image_scale
        meta = {"geometry": f.geometry.to_json(), "data_generator": f.generator}
        kwargs = {"sampling_fraction": sf, "image_shape": f.geometry.shape}
        if cfg.calo_arch == "factorised":
            from hpcgen.physics.shower_features import hit_threshold_gev

            kwargs["threshold"] = hit_threshold_gev(f.geometry) * cfg.image_scale
        return f, f.ecal, f.energy_gev, kwargs, meta
    if cfg.domain == "ising":
        from hpcgen.data.ising_file import open_ising

        f = open_ising(cfg.data)  # validates every spin (±1): a cheap scan of int8 lattices
        if f.L % 4:
            f.close()
            raise UserError(f"--data: {cfg.data}: the Ising GAN needs a lattice side L that is a multiple of 4 "
                            f"(e.g. 16, 32, 64), got L = {f.L}")
        meta = {"data_generator": str(f.attrs["generator"]), "L": f.L,
                "temperatures": [float(t) for t in f.temperatures]}
        return f, f.spins, f.temperature, {"L": f.L}, meta
    from hpcgen.data.cosmo_file import open_cosmo

    f = open_cosmo(cfg.data, check_pixels=False)
    h, w = f.image_shape
    if h != w or h % 16:
        f.close()
        raise UserError(f"--data: {cfg.data}: CosmoGAN needs square maps with a side divisible by 16, got {h}×{w}")
    meta = {k: f.attrs[k] for k in ("cosmology", "z_source", "field_deg", "pixel_arcmin")}
    meta["data_generator"] = f.attrs["generator"]
    import math

    pixel_rad = math.radians(float(f.attrs["pixel_arcmin"]) / 60.0)
    return f, f.kappa, f.sigma8, {"image_size": h, "pixel_rad": pixel_rad}, meta


def open_training_data(cfg: TrainConfig):
    """Open and validate the training data (metadata only). The CLI calls this before the engine's rendezvous, so
    bad input fails fast on every rank alike, and hands the open data to :func:`train`."""
    return _open_data(cfg)


def _make_task(cfg: TrainConfig, engine, noise_gen, task_kwargs, images, cond):
    from hpcgen.train.tasks import CaloFactorisedTask, CaloGANTask, CosmoGANTask, IsingGANTask

    if cfg.domain == "cosmo":
        return CosmoGANTask(cfg, engine, noise_gen, **task_kwargs)
    if cfg.domain == "ising":
        return IsingGANTask(cfg, engine, noise_gen, **task_kwargs)
    if cfg.calo_arch == "3dgan":
        return CaloGANTask(cfg, engine, noise_gen, **task_kwargs)
    k = min(len(cond), _FIT_SAMPLES)  # the starting template, response prior and feature scaling: same showers on all ranks
    return CaloFactorisedTask(cfg, engine, noise_gen, **task_kwargs,
                              fit_sample=(np.asarray(images[:k]), np.asarray(cond[:k])))


def _rank_seed(seed: int, rank: int) -> int:
    return int(stream(seed, rank, 1).integers(0, 2**62))


def _prepare_run_dir(cfg: TrainConfig, engine) -> bool:
    """Check (rank 0) and create the run directory; returns whether to resume (``--resume auto`` decided here)."""
    problem, resume = None, cfg.resume
    if engine.rank == 0:
        ckpt = checkpoint_path(cfg.out)
        if resume == "auto":
            resume = ckpt.exists()
        if resume and not ckpt.exists():
            problem = f"--resume: {cfg.out} has no {ckpt.name} to resume from"
        elif not resume and ckpt.exists():
            problem = f"--out: {cfg.out} already holds a checkpoint; pass --resume to continue it or choose a new --out"
        else:
            try:
                cfg.out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                problem = f"--out: cannot create {cfg.out} ({exc.strerror})"
    problem, resume = engine.broadcast_object((problem, resume))
    if problem:
        raise UserError(problem)
    return bool(resume)


def lr_at(cfg: TrainConfig, base_lr: float, world_size: int, step: int) -> float:
    """The learning rate of ``step``: constant, or linear scaling by world size with a linear warm-up."""
    if cfg.lr_scaling == "none":
        return base_lr
    target = base_lr * world_size
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return base_lr + (target - base_lr) * step / cfg.warmup_steps
    return target


def train(cfg: TrainConfig, engine, data=None) -> dict:
    """Train until ``cfg.steps`` (or ``cfg.epochs``) is reached; returns the last rank-averaged metrics.

    ``data``: the result of :func:`open_training_data` (opened here when None); it is closed on return.
    """
    data_file, images, cond, task_kwargs, data_meta = data if data is not None else _open_data(cfg)
    try:
        return _train(cfg, engine, images, cond, task_kwargs, data_meta)
    finally:
        data_file.close()


def _train(cfg: TrainConfig, engine, images, cond, task_kwargs, data_meta) -> dict:
    rank, world = engine.rank, engine.world_size
    cfg = dataclasses.replace(cfg, resume=_prepare_run_dir(cfg, engine))
    reader = ShardedReader(images, cond, rank, world, cfg.batch_size, cfg.seed)
    spe = len(reader)
    if spe == 0:
        raise UserError(f"--batch-size: {len(cond)} samples in {cfg.data} give no full batch of {cfg.batch_size} "
                        f"on each of {world} ranks")
    total = cfg.steps or cfg.epochs * spe

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank (the engines broadcast rank 0's anyway)
    noise_gen = torch.Generator().manual_seed(_rank_seed(cfg.seed, rank))
    task = _make_task(cfg, engine, noise_gen, task_kwargs, images, cond)
    torch.manual_seed(_rank_seed(cfg.seed, rank) + 1)  # dropout etc.: one stream per rank
    monitor = None
    if cfg.eval_every and rank == 0:
        from hpcgen.train.monitor import CosmoFidelityMonitor, FidelityMonitor, IsingFidelityMonitor

        if cfg.domain == "cosmo":
            monitor = CosmoFidelityMonitor(cfg.eval_data, task.model_options, task_kwargs["pixel_rad"], seed=cfg.seed)
        elif cfg.domain == "ising":
            monitor = IsingFidelityMonitor(cfg.eval_data, task.model_options, data_meta["temperatures"],
                                           seed=cfg.seed)
        else:
            monitor = FidelityMonitor(cfg.eval_data, task_kwargs["image_shape"], cfg.image_scale, seed=cfg.seed)
    start, wall_before = 0, 0.0
    if cfg.resume:
        ckpt = load_checkpoint(cfg.out)
        if ckpt["world_size"] != world:
            raise UserError(f"--resume: {cfg.out} was written by {ckpt['world_size']} ranks; resume it with the same "
                            f"number (now {world}) so the data order and RNG streams continue exactly")
        if ckpt["config"]["domain"] != cfg.domain or ckpt["config"]["batch_size"] != cfg.batch_size:
            raise UserError(f"--resume: {cfg.out} was trained as {ckpt['config']['domain']} with --batch-size "
                            f"{ckpt['config']['batch_size']}; resume with the same settings")
        arch = ckpt["config"].get("calo_arch", "3dgan")  # checkpoints from before the choice are 3DGAN runs
        if cfg.domain == "calo" and arch != cfg.calo_arch:
            raise UserError(f"--resume: {cfg.out} holds a {arch} run; resume it with --calo-arch {arch}")
        width = float(ckpt.get("model_options", {}).get("width", 1.0))
        if cfg.domain == "cosmo" and width != cfg.cosmo_width:
            raise UserError(f"--resume: {cfg.out} holds a CosmoGAN of width {width:g}; resume it with "
                            f"--cosmo-width {width:g}")
        side = ckpt.get("model_options", {}).get("L")
        if cfg.domain == "ising" and side != task.model_options["L"]:
            raise UserError(f"--resume: {cfg.out} holds an Ising GAN for {side}×{side} lattices, but --data has "
                            f"L = {task.model_options['L']}; resume it with training data of the same L")
        readout = ckpt.get("model_options", {}).get("readout", "sign")  # Ising runs from before the choice: sign
        if cfg.domain == "ising" and readout != cfg.spin_readout:
            raise UserError(f"--resume: {cfg.out} holds an Ising GAN with the {readout} read-out; resume it with "
                            f"--spin-readout {readout}")
        task.load_state(ckpt["state"])
        set_rng_state(ckpt["rng"][rank], noise_gen)
        start = int(ckpt["step"])
        wall_before = float(ckpt.get("wall_s", 0.0))
    t_run = time.perf_counter()

    def out_of_time() -> bool:  # this sitting's time limit (a collective decision: any rank over → all stop)
        return bool(cfg.time_limit_s) and time.perf_counter() - t_run > cfg.time_limit_s

    def wall_s() -> float:  # training wall time over all sittings (monitor time included, start-up not)
        return wall_before + time.perf_counter() - t_run

    def checkpoint(step: int) -> None:
        rngs = engine.allgather_object(rng_state(noise_gen))
        if rank == 0:
            save_checkpoint(cfg.out, {
                "state": task.state(), "step": step, "epoch": step // spe, "batch_in_epoch": step % spe,
                "steps_per_epoch": spe, "world_size": world, "rng": rngs, "engine": engine.name, "wall_s": wall_s(),
                "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
                "task": {k: (list(v) if isinstance(v, tuple) else v) for k, v in task_kwargs.items()},
                "model_options": task.model_options, "data_meta": data_meta,
                "hpcgen_version": __version__, "checkpoint_id": f"{cfg.out.name}@{step}",
            })
        engine.barrier()

    if rank == 0:
        (cfg.out / "config.json").write_text(json.dumps(
            {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}, indent=2))
    metrics_file = open(cfg.out / "metrics.jsonl", "a") if rank == 0 else None
    bar = None
    if rank == 0 and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, unit="step", desc=f"train {cfg.domain} {engine.name} x{world}",
                   file=sys.stderr, mininterval=0.5, dynamic_ncols=True)
    def evaluate(step: int) -> None:
        if monitor is None:
            return
        t0 = time.perf_counter()
        score = monitor.score(task.sampling_generator(), task.device)
        metrics_file.write(json.dumps({"step": step, "wall_s": wall_s(), "samples_seen": step * world * cfg.batch_size,
                                       "eval_s": time.perf_counter() - t0, "eval": score}) + "\n")
        metrics_file.flush()

    if start == 0:
        evaluate(0)
    stop = _StopFlag()
    stop.install()
    last: dict = {"step": start}
    step = start
    try:
        while step < total:
            epoch, b0 = divmod(step, spe)
            for images_b, cond_b in reader.epoch(epoch, start_batch=b0):
                lr = lr_at(cfg, task.lr_base, world, step)
                task.set_lr(lr)
                t0 = time.perf_counter()
                losses = task.step(images_b, cond_b)
                dt = time.perf_counter() - t0
                keys = sorted(losses)
                vals = [losses[k] for k in keys]
                finite = all(np.isfinite(vals))
                red = engine.allreduce_mean(torch.tensor(
                    [v if finite else 0.0 for v in vals] + [dt, float(stop.requested or out_of_time()), float(not finite)],
                    dtype=torch.float64)).tolist()
                step += 1
                if red[-1] > 0:
                    raise RuntimeError(f"non-finite loss at step {step} on at least one rank ({dict(zip(keys, vals))})")
                last = {"step": step, "epoch": epoch, "lr": lr, "wall_s": wall_s(), **dict(zip(keys, red[:len(keys)])),
                        "step_time_s": red[len(keys)], "samples_per_s_per_rank": cfg.batch_size / red[len(keys)],
                        "samples_per_s_total": world * cfg.batch_size / red[len(keys)], "world_size": world,
                        "engine": engine.name}
                if metrics_file is not None and (step % cfg.log_every == 0 or step == total):
                    metrics_file.write(json.dumps(last) + "\n")
                    metrics_file.flush()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss_D=f"{last['loss_D']:.3f}", loss_G=f"{last['loss_G']:.3f}", refresh=False)
                if red[len(keys) + 1] > 0:  # some rank was asked to stop
                    checkpoint(step)
                    why = "by signal" if stop.requested or not out_of_time() else f"at --time-limit-s {cfg.time_limit_s:g}"
                    raise Preempted(f"stopped {why} at step {step}; checkpoint in {checkpoint_path(cfg.out)}")
                if cfg.eval_every and (step % cfg.eval_every == 0 or step == total):
                    evaluate(step)
                if step % cfg.checkpoint_every == 0 or step == total:
                    checkpoint(step)
                if step >= total:
                    break
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
        if metrics_file is not None:
            metrics_file.close()
    # Data parallelism's invariant, checked on every run: all ranks end with bit-identical parameters.
    from hpcgen.dist.engine import state_sha256

    digests = engine.allgather_object({"G": state_sha256(engine.unwrap(task.G), buffers=False),
                                       "D": state_sha256(engine.unwrap(task.D), buffers=False)})
    last["params_identical_across_ranks"] = all(d == digests[0] for d in digests)
    if rank == 0:
        (cfg.out / "summary.json").write_text(json.dumps({**last, "param_sha256_per_rank": digests}, indent=2))
    if not last["params_identical_across_ranks"]:
        raise RuntimeError(f"ranks ended with different parameters: {digests}")
    return last
