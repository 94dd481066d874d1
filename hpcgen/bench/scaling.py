"""Training scaling of 3DGAN / CosmoGAN, DDP vs Horovod side by side, with a calibrated extrapolation.

Each measured point launches the real trainer under ``mpirun -n R`` (one OpenMP thread per rank), takes the
rank-averaged step seconds from ``metrics.jsonl`` and drops the warm-up steps — throughput (samples/s), not
time-to-quality: MLPerf HPC (Farrell et al. 2021, arXiv:2110.11466) reports the two separately, and this harness
measures only the first. Beside each point the same ranks run a communication-only probe: all-reduces of the model's
per-step gradient bytes and of smaller buffers through the engine's own collective, as the Horovod paper (Sergeev &
Del Balso 2018, arXiv:1802.05799) and the PyTorch DDP paper (Li et al., VLDB 2020) separate all-reduce cost from
compute. The 1- and 2-rank points calibrate :mod:`hpcgen.bench.scaling_model` (compute per sample, overlap), the
probe fits this host's alpha-beta network, and the model predicts to ``predict_ranks`` on preset networks —
predictions, labelled as such, next to measured rows.

Probe entry (run under mpirun by :func:`run_scaling`):
``python -m hpcgen.bench.scaling --allreduce-probe ENGINE BYTES...``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hpcgen.bench import scaling_model as sm
from hpcgen.bench.harness import local_mpirun
from hpcgen.bench.results import host_info, make_result, summarise, write_result
from hpcgen.config import TrainConfig, check_choice
from hpcgen.data import cosmo_file
from hpcgen.data.calo_file import calo_attrs, open_calo, write_calo_file
from hpcgen.dist.engine import make_engine
from hpcgen.errors import UserError
from hpcgen.models import build_gan, count_parameters
from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY
from hpcgen.seeding import stream
from hpcgen.sim.calo_gflash import simulate_gflash

MODELS, ENGINES, MODES = ("calo", "cosmo"), ("ddp", "horovod"), ("weak", "strong")
DEFAULT_NETWORKS = ("slingshot-11", "hdr-infiniband", "ethernet-25g")
PROBE_WARMUP, PROBE_REPEATS = 3, 10


def _ints(flag: str, values, minimum: int = 1) -> tuple[int, ...]:
    values = (values,) if isinstance(values, int) else tuple(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values):
        raise UserError(f"{flag}: expected integers >= {minimum}, got {', '.join(map(repr, values)) or 'none'}")
    return tuple(sorted(set(values)))


@dataclass
class ScalingConfig:
    model: str
    out: Path
    engines: tuple = ENGINES
    ranks: tuple = (1, 2)
    mode: str = "weak"
    batch_per_rank: int = 4  # weak scaling
    global_batch: int = 8  # strong scaling: split evenly over the ranks
    steps: int = 6
    warmup_steps: int = 2  # not timed
    data: Path | None = None  # None: a synthetic data set in a temporary directory
    networks: tuple = DEFAULT_NETWORKS
    predict_ranks: tuple = tuple(2**k for k in range(11))

    def __post_init__(self) -> None:
        check_choice(self.model, MODELS, "--model")
        check_choice(self.mode, MODES, "--mode")
        self.engines = (self.engines,) if isinstance(self.engines, str) else tuple(self.engines)
        if not self.engines or len(set(self.engines)) != len(self.engines) or set(self.engines) - set(ENGINES):
            raise UserError(f"--engine: expected distinct values of {', '.join(ENGINES)}, got {list(self.engines)}")
        self.ranks = _ints("--ranks", self.ranks)
        if 1 not in self.ranks:
            raise UserError(f"--ranks: must include 1 (efficiency and calibration are relative to one rank), "
                            f"got {list(self.ranks)}")
        if self.mode == "weak":
            _ints("--batch-per-rank", self.batch_per_rank)
        else:
            _ints("--global-batch", self.global_batch)
            bad_r = [r for r in self.ranks if self.global_batch % r]
            if bad_r:
                raise UserError(f"--global-batch: {self.global_batch} is not divisible by --ranks {bad_r[0]} "
                                f"(strong scaling splits it evenly over the ranks)")
        _ints("--warmup-steps", self.warmup_steps, minimum=0)
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps <= self.warmup_steps:
            raise UserError(f"--steps: expected more than --warmup-steps ({self.warmup_steps}), got {self.steps!r}")
        self.data = None if self.data is None else Path(self.data)
        if self.data is not None and not self.data.is_file():
            raise UserError(f"--data: {self.data} is not a file")
        self.networks = (self.networks,) if isinstance(self.networks, str) else tuple(self.networks)
        for spec in self.networks:
            try:
                sm.network(spec)
            except ValueError as exc:
                raise UserError(f"--network: {exc}") from None
        self.predict_ranks = _ints("--predict-ranks", self.predict_ranks)
        self.out = Path(self.out)

    def batch_at(self, ranks: int) -> int:
        """Samples per rank and step at ``ranks`` ranks."""
        return self.batch_per_rank if self.mode == "weak" else self.global_batch // ranks


def _launch(cmd: list[str]) -> str:
    res = subprocess.run(cmd, check=False, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1", HPCGEN_NO_PROGRESS="1"))
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {res.returncode}):\n{res.stderr[-2000:]}")
    return res.stdout


def make_data(tmp: Path, model: str, n: int) -> Path:
    """``n`` 25³ GFlash showers or ``n`` Gaussian 256² κ maps (content does not change the cost)."""
    rng = stream(5, 0)
    if model == "calo":
        e = rng.uniform(10, 500, n)
        return write_calo_file(tmp / "calo.h5", simulate_gflash(e, DEFAULT_GEOMETRY, rng).ecal_gev,
                               e.astype(np.float32), calo_attrs("gflash", DEFAULT_GEOMETRY, 5))
    kappa = np.clip(rng.normal(0, 0.017, (n, 256, 256)), -0.059, None).astype(np.float32)
    attrs = cosmo_file.cosmo_attrs("gaussian-bench", cosmo_file.COSMOGAN_COSMOLOGY, 1.0, 3.5, 256, 5)
    return cosmo_file.write_cosmo_file(tmp / "cosmo.h5", kappa, attrs)


def gradient_bytes(model: str, data: Path) -> dict:
    """Float32 parameter bytes of G+D for the data's shape, and the bytes all-reduced per training step: the trainer
    runs one D step and ``g_steps`` G steps per step (3DGAN: TrainConfig's default 2; CosmoGAN: 1)."""
    if model == "calo":
        with open_calo(data, check_cells=False) as f:
            opts, g_steps = {"image_shape": tuple(f.geometry.shape)}, TrainConfig.g_steps
    else:
        with cosmo_file.open_cosmo(data, check_pixels=False) as f:
            opts, g_steps = {"image_size": f.image_shape[0]}, 1
    g, d = build_gan(model, **opts)
    ng, nd = count_parameters(g), count_parameters(d)
    return {"param_bytes": 4 * (ng + nd), "grad_bytes": 4 * (nd + g_steps * ng), "g_steps": g_steps}


def probe_sizes(grad_bytes: int) -> list[int]:
    """The per-step gradient bytes and three smaller buffers (for the alpha-beta fit), multiples of 4 bytes."""
    return sorted({max(4, grad_bytes // k // 4 * 4) for k in (1, 8, 64)} | {4096})[::-1]


def allreduce_probe(engine_name: str, sizes_bytes: list[int], warmup: int = PROBE_WARMUP,
                    repeats: int = PROBE_REPEATS) -> dict:
    """Rank-mean seconds of ``repeats`` timed ``allreduce_mean`` calls per float32 buffer size, after ``warmup``."""
    eng = make_engine(engine_name, device="cpu")
    try:
        sizes = []
        for nbytes in sizes_bytes:
            buf, times = torch.ones(max(1, nbytes // 4), dtype=torch.float32), []
            for i in range(warmup + repeats):
                eng.barrier()
                t0 = time.perf_counter()
                eng.allreduce_mean(buf)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
            times = eng.allreduce_mean(torch.tensor(times, dtype=torch.float64)).tolist()
            sizes.append({"bytes": int(nbytes), **summarise(times)})
        return {"probe": "allreduce", "engine": eng.name, "ranks": eng.world_size, "warmup": warmup,
                "repeats": repeats, "sizes": sizes, "rank": eng.rank}
    finally:
        eng.close()


def parse_probe(stdout: str) -> dict:
    """The probe's JSON line from rank 0's output (other lines ignored)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"probe"' in line:
            return json.loads(line)
    raise RuntimeError(f"no all-reduce probe result in the output:\n{stdout[-2000:]}")


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if x.strip()]


def reduce_point(metrics: list[dict], ranks: int, batch_per_rank: int, warmup_steps: int) -> dict:
    """Step seconds and samples/s (summaries over the timed steps) from rank-averaged metrics.jsonl lines."""
    steps = [m["step_time_s"] for m in sorted(metrics, key=lambda m: m["step"]) if m["step"] > warmup_steps]
    if not steps:
        raise RuntimeError(f"no timed steps after {warmup_steps} warm-up steps in {len(metrics)} metrics lines")
    return {"step_s": summarise(steps), "samples_per_s_total": summarise([ranks * batch_per_rank / s for s in steps]),
            "samples_per_s_per_rank": summarise([batch_per_rank / s for s in steps])}


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fmt(s: dict, unit: str = "") -> str:  # median [min, max]
    return f"{s['median']:.4g}{unit} [{s['min']:.4g}, {s['max']:.4g}]"


def measure_point(cfg: ScalingConfig, data: Path, engine: str, ranks: int, sizes: list[int], work: Path) -> dict:
    b = cfg.batch_at(ranks)
    run = work / f"{cfg.model}-{engine}-{ranks}"
    _launch(local_mpirun(ranks, "-m", "hpcgen.cli", "train", cfg.model, "--data", str(data), "--engine", engine,
                    "--batch-size", str(b), "--steps", str(cfg.steps), "--out", str(run),
                    "--checkpoint-every", str(10**6), "--no-progress"))
    summary = json.loads((run / "summary.json").read_text())
    train_cfg = json.loads((run / "config.json").read_text())
    # what stands beside a training rate: the data-parallel invariant (every rank ends with the same weights), and
    # which network was trained (synthetic data for a few steps: no sample fidelity to speak of)
    row = {"model": cfg.model, "engine": engine, "ranks": ranks, "mode": cfg.mode, "batch_per_rank": b,
           "calo_arch": train_cfg.get("calo_arch") if cfg.model == "calo" else None,
           "params_identical_across_ranks": summary["params_identical_across_ranks"],
           **reduce_point(read_metrics(run), ranks, b, cfg.warmup_steps)}
    if ranks == 1:
        probe = [{"bytes": n, **summarise([0.0]), "skipped": "1 rank: nothing to all-reduce"} for n in sizes]
    else:
        probe = parse_probe(_launch(local_mpirun(ranks, "-m", "hpcgen.bench.scaling", "--allreduce-probe", engine,
                                            *map(str, sizes))))["sizes"]
    row["allreduce_s"] = {k: v for k, v in probe[0].items() if k != "bytes"}  # the largest: the gradient
    row["allreduce_probe"] = probe
    return row


def calibrate_engine(rows: list[dict], grad_bytes: int) -> tuple[sm.Calibration, dict]:
    """Calibration from the 1-rank and the smallest multi-rank point of one engine; (calibration, config record)."""
    one = next(r for r in rows if r["ranks"] == 1)
    multi = min((r for r in rows if r["ranks"] > 1), key=lambda r: r["ranks"], default=None)
    t1, b1 = one["step_s"]["median"], one["batch_per_rank"]
    if multi is None:
        cal, host = sm.Calibration(t1 / b1, grad_bytes, 0.0, "no multi-rank point: overlap assumed 0"), None
    else:
        p, b = multi["ranks"], multi["batch_per_rank"]
        # calibrate's phi = 1 - (t_p - t_1)/allreduce_p holds at any p (named 2 there). The model is linear in the
        # batch: t_1 is rescaled to this point's per-rank batch (no change in weak scaling).
        cal = sm.calibrate(t1 * b / b1, multi["step_s"]["median"], multi["allreduce_s"]["median"], b, grad_bytes,
                           notes=f"calibrated from measured 1- and {p}-rank points")
        host = sm.fit_network([s["bytes"] for s in multi["allreduce_probe"]],
                              [s["median"] for s in multi["allreduce_probe"]], p, name="this host (fitted)")
    measured = [{"ranks": r["ranks"], "step_s": r["step_s"]["median"], "batch_per_rank": r["batch_per_rank"]}
                for r in rows]
    err = sm.reproduction_error(cal, host or sm.network(DEFAULT_NETWORKS[0]), measured)
    return cal, {**asdict(cal), "calibration_ranks": [1, multi["ranks"]] if multi else [1],
                 "host_network": host and asdict(host), "reproduction_error": err}


def run_scaling(cfg: ScalingConfig) -> dict:
    """Measure every (ranks, engine) point, calibrate per engine, predict; write ``cfg.out`` and return the result."""
    nets = [sm.network(s) for s in cfg.networks]
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items() if k not in ("data", "out")}
    config[{"weak": "global_batch", "strong": "batch_per_rank"}[cfg.mode]] = None  # the other mode's setting
    config.update(probe_warmup=PROBE_WARMUP, probe_repeats=PROBE_REPEATS, threads_per_rank=1,
                  launcher="mpirun --oversubscribe")
    _say(f"scaling config: {json.dumps(config)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpcgen-scaling-") as tmp:
        work = Path(tmp)
        data = cfg.data or make_data(work, cfg.model, max(64, 2 * max(r * cfg.batch_at(r) for r in cfg.ranks)))
        config["data"] = str(cfg.data) if cfg.data else f"synthetic ({cfg.model}, temporary)"
        grad = gradient_bytes(cfg.model, data)
        config.update(grad)
        sizes = probe_sizes(grad["grad_bytes"])
        _say(f"gradient bytes per step {grad['grad_bytes']}; probe sizes {sizes}")
        for r in cfg.ranks:
            for engine in cfg.engines:  # interleaved per point: the same machine state for both engines
                row = measure_point(cfg, data, engine, r, sizes, work)
                rows.append(row)
                _say(f"  {cfg.model} {engine:7s} ranks {r:3d} b {row['batch_per_rank']}: "
                     f"step {_fmt(row['step_s'], ' s')}, {_fmt(row['samples_per_s_total'])} samples/s total, "
                     f"all-reduce {_fmt(row['allreduce_s'], ' s')}")
    predictions, config["calibration"] = [], {}
    for engine in cfg.engines:
        mine = [r for r in rows if r["engine"] == engine]
        t1 = next(r for r in mine if r["ranks"] == 1)["step_s"]["median"]
        for r in mine:
            tr = r["step_s"]["median"]
            r["efficiency"] = t1 / tr if cfg.mode == "weak" else t1 / (r["ranks"] * tr)
        cal, record = calibrate_engine(mine, grad["grad_bytes"])
        config["calibration"][engine] = record
        _say(f"  {engine}: compute {cal.compute_s_per_sample:.4g} s/sample, overlap {cal.overlap:.3f}, "
             f"reproduction error {record['reproduction_error']:.1%}")
        for net in nets:
            for p in sm.predict(cal, net, list(cfg.predict_ranks), cfg.mode, batch_per_rank=cfg.batch_per_rank,
                                global_batch=cfg.global_batch):
                predictions.append({"model": cfg.model, "engine": engine, **p})
    config["assumptions"] = {
        "model": "t_step = compute_s_per_sample*b + (1-overlap)*ring_allreduce(grad_bytes, p); ring all-reduce "
                 "t = 2(p-1)alpha + 2(p-1)/p*n*beta (hpcgen.bench.scaling_model)",
        "networks": {n.name: asdict(n) for n in nets}}
    result = make_result("scaling", config, rows, host=host_info(engine=",".join(cfg.engines)),
                         predictions=predictions)
    write_result(cfg.out, result)
    _say(f"wrote {cfg.out}")
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="all-reduce probe of hpcgen.bench.scaling (run under mpirun)")
    ap.add_argument("--allreduce-probe", required=True, metavar="ENGINE")
    ap.add_argument("bytes", nargs="+", type=int, help="float32 buffer sizes in bytes")
    args = ap.parse_args()
    out = allreduce_probe(args.allreduce_probe, args.bytes)
    if out.pop("rank") == 0:
        print(json.dumps(out), flush=True)
