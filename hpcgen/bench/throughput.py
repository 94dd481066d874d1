"""Samples per second of the calorimeter Monte Carlos and of the 3DGAN generator, each with its fidelity.

The question hpcgen exists for: how much faster is a GAN than the Monte Carlo it replaces, *at what fidelity*?
Every throughput row therefore carries the fidelity of its generator against the reference Monte Carlo (the
detailed cascade) at the same energy, from :func:`hpcgen.fidelity.calo.evaluate` (docs/fidelity.md): the
high-level classifier AUC, S(E_vis/E_p) and the median per-layer S, each beside the reference-vs-reference floor
(a reference of 2·fidelity_n cascade showers; every generator, the cascade itself included, gives fidelity_n).
The Monte Carlo cost grows with energy (the cascade tracks every particle); the GAN's does not.

Timing follows Horovod's synthetic benchmark: untimed warm-up (numba JIT, first torch calls), then repeated timed
batches, median with min/max. Under ``mpirun -n N`` every rank measures the same thing at the same time and the
row's samples/s is the sum over ranks (aggregate throughput of the job); fidelity is measured once, on rank 0.
The GAN's achieved FLOP/s is compared with the peak of a float32 matmul measured in the same run.
Anchors from the literature (CaloGAN, 3DGAN, Geant4 cost; shared/REFERENCE.md §4) go to the result's separate
``literature`` list, never into the measured rows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from hpcgen.bench.harness import device_sync, rates, sized_batch, time_calls
from hpcgen.bench.results import display_path, host_info, make_result, summarise, write_result
from hpcgen.config import DEVICES, check_choice
from hpcgen.dist.launch import process_ranks, select_device
from hpcgen.errors import UserError
from hpcgen.fidelity.calo import FidelityConfig
from hpcgen.seeding import stream

REFERENCE_MC = "cascade"
LITERATURE = [
    {"quantity": "Geant4 CPU time per 100 GeV EM shower", "value": "O(1-10) s",
     "source": "shared/REFERENCE.md §4 [lit, unverified]"},
    {"quantity": "CaloGAN speed-up vs Geant4", "value": "1e2-1e3 (CPU), ~1e5 (GPU)", "source": "Paganini et al. 2018 [lit]"},
    {"quantity": "3DGAN speed-up vs Geant4", "value": "~6.7e4 (int8)", "source": "Khattak et al. [lit]"},
]
# The fidelity a throughput row carries (hpcgen.fidelity.calo metrics against the reference Monte Carlo at the row's
# energy), each as value, spread and the reference-vs-reference floor p50 / p95.
FIDELITY_METRICS = ("AUC_high_level", "S_e_vis_over_e_p", "S_layer_energy_median")
# The evaluation's settings: the defaults, without the gradient-boosted cross-check (the rows use the DNN's AUC).
FIDELITY_CONFIG = FidelityConfig(cross_check=False)


@dataclasses.dataclass
class CaloThroughputConfig:
    """``hpcgen bench throughput --domain calo``; every field is a CLI flag of the same name."""

    out: Path
    checkpoint: Path
    energies_gev: tuple[float, ...] = (10.0, 50.0, 100.0, 200.0, 500.0)
    gan_batches: tuple[int, ...] = (1, 16, 64, 256)
    seconds: float = 1.0  # target length of one timed batch
    repeats: int = 3
    fidelity_n: int = 100  # showers per generator and energy for the fidelity
    seed: int = 0
    device: str = "auto"  # the GAN's device: auto (a GPU if torch sees one) | cpu | cuda; the Monte Carlos run on CPU
    threads: tuple[int, ...] = ()  # CPU thread counts to scan the GAN over (at its largest batch); () = no scan

    def __post_init__(self) -> None:
        if not self.energies_gev or not all(1.0 <= e <= 1000.0 for e in self.energies_gev):
            raise UserError(f"--energies-gev: expected energies within 1-1000 GeV, got {list(self.energies_gev)}")
        if self.fidelity_n < 10:
            raise UserError(f"--fidelity-n: expected >= 10 showers per energy, got {self.fidelity_n}")
        check_throughput_config(self, "calo")


def check_throughput_config(cfg, domain: str) -> None:
    """The flags both throughput configs share (--gan-batches, --seconds, --repeats, --device, --threads and, last,
    --checkpoint, a run directory of ``hpcgen train <domain>``)."""
    if not cfg.gan_batches or min(cfg.gan_batches) < 1:
        raise UserError(f"--gan-batches: expected batch sizes >= 1, got {list(cfg.gan_batches)}")
    if not cfg.seconds > 0 or cfg.repeats < 1:
        raise UserError(f"--seconds / --repeats: expected > 0 and >= 1, got {cfg.seconds}, {cfg.repeats}")
    check_choice(cfg.device, DEVICES, "--device")
    if any(t < 1 for t in cfg.threads):
        raise UserError(f"--threads: expected thread counts >= 1, got {list(cfg.threads)}")
    if not (Path(cfg.checkpoint) / "checkpoint.pt").exists():
        raise UserError(f"--checkpoint: {cfg.checkpoint} holds no checkpoint.pt "
                        f"(expected a run directory of `hpcgen train {domain}`)")


def resolve_device(name: str) -> torch.device:
    """The GAN's device for ``--device auto|cpu|cuda``: :func:`hpcgen.dist.launch.select_device` at this process'
    local rank (auto: this rank's GPU when torch sees one), with a one-line error for cuda without a GPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device: cuda requested but torch sees no GPU here")
    return select_device(process_ranks().local_rank, name)


def time_gan(sample, batch: int, cfg, device: torch.device) -> list[float]:
    """Seconds of ``cfg.repeats`` calls of ``sample(batch)`` after one warm-up call, synchronised on the GAN's device."""
    return time_calls(lambda: sample(batch), warmup=1, repeats=cfg.repeats, sync=device_sync(device))


def gan_scans(name: str, sample, flops, cfg, device: torch.device, world, make_row) -> list[dict]:
    """The GAN's batch-size scan and, on CPU, its thread-count scan (at the largest batch), as rows with "scan"."""
    rows = []
    for batch in cfg.gan_batches:
        world.barrier()
        rows.append(make_row(batch, rates(batch, time_gan(sample, batch, cfg, device))) | {"scan": "batch"})
    if device.type == "cpu" and cfg.threads:
        before, batch = torch.get_num_threads(), max(cfg.gan_batches)
        try:
            for t in cfg.threads:
                torch.set_num_threads(t)
                world.barrier()
                rows.append(make_row(batch, rates(batch, time_gan(sample, batch, cfg, device)))
                            | {"scan": "threads", "threads": t})
        finally:
            torch.set_num_threads(before)
    return rows


def _generators(cfg: CaloThroughputConfig, device: torch.device) -> dict:
    """name → (kind, simulate(energies_gev) -> ecal GeV, flops per sample or None)."""
    from hpcgen.jobs.generate import calo_sampler, load_generator
    from hpcgen.models import flops_per_sample
    from hpcgen.physics.calo_geometry import SamplingCalorimeter
    from hpcgen.sim import calo_simulator

    g, ckpt = load_generator(Path(cfg.checkpoint), device)
    if ckpt["config"]["domain"] != "calo":
        raise UserError(f"--checkpoint: {cfg.checkpoint} is a {ckpt['config']['domain']} run; "
                        "throughput --domain calo needs a 3DGAN run")
    geometry = SamplingCalorimeter.from_json(ckpt["data_meta"]["geometry"])
    rng = stream(cfg.seed, 1)
    mc = {name: calo_simulator(name, **({"gflash_tune": "cascade"} if name == "gflash" else {}))
          for name in (REFERENCE_MC, "gflash")}
    gens = {name: ("mc", lambda e, f=f: f(np.asarray(e, dtype=np.float64), geometry, rng).ecal_gev, None)
            for name, f in mc.items()}
    gan = calo_sampler(g, ckpt["config"], device, torch.Generator().manual_seed(cfg.seed))
    gens[f"gan:{ckpt['checkpoint_id']}"] = ("gan", gan, flops_per_sample(g, "calo"))
    return gens, geometry


def _time_mc(simulate, energy_gev: float, cfg: CaloThroughputConfig) -> tuple[int, list[float]]:
    n = sized_batch(lambda k: simulate(np.full(k, energy_gev)), cfg.seconds)
    return n, time_calls(lambda: simulate(np.full(n, energy_gev)), warmup=0, repeats=cfg.repeats)


def _fidelity(samples: dict, reference: np.ndarray, energy_gev: float, geometry, warn) -> dict[str, dict]:
    """Fidelity of every generator's sample against the reference Monte Carlo at one energy (hpcgen.fidelity.calo:
    every generator scored against the same reference halves, floors computed once; no files)."""
    from hpcgen.fidelity.calo import evaluate, summarise
    from hpcgen.physics.shower_features import hit_threshold_gev

    thr = hit_threshold_gev(geometry)

    def sample(ecal, which):
        return summarise(ecal, np.full(len(ecal), energy_gev), geometry, thr, 1000, which)

    result = evaluate(sample(reference, f"{REFERENCE_MC} reference"),
                      {name: sample(ecal, name) for name, ecal in samples.items()},
                      FIDELITY_CONFIG, warn=warn)
    out = {}
    for name, res in result.items():
        metrics = res["groups"][-1]["metrics"] if res["groups"] else {}
        out[name] = {k: {f: metrics[k][f] for f in ("value", "spread", "floor_p50", "floor_p95", "within_floor_p95")}
                     for k in FIDELITY_METRICS if k in metrics}
        out[name]["half_size"] = res["groups"][-1]["half_size"] if res["groups"] else None
    return out


def matmul_peak_flops(n: int = 1024, repeats: int = 5, device: torch.device = torch.device("cpu")) -> float:
    """Peak float32 FLOP/s of an n×n matmul on ``device`` (median of repeats; this process' torch threads on CPU)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    secs = time_calls(lambda: a @ b, warmup=2, repeats=repeats, sync=device_sync(device))
    return 2.0 * n**3 / summarise(secs)["median"]


def finish_throughput(cfg, world, device: torch.device, rows: list[dict], *, fidelity, config, literature: list,
                      headline, log) -> dict | None:
    """The tail both throughput benchmarks share. Every rank measures the matmul peak on the GAN's device; rank 0
    then gives each row its ``fidelity(row)`` and, for the GAN, its FLOP/s per rank and fraction of that peak, makes
    the result with ``config(peak)``, writes ``cfg.out``, logs ``headline(result)`` and returns it (others: None)."""
    peak = matmul_peak_flops(device=device)  # the GAN's device
    if world.rank != 0:
        return None
    for row in rows:
        row["fidelity"] = fidelity(row)
        if row.get("flops_per_sample"):
            achieved = row["flops_per_sample"] * row["samples_per_s"]["median"] / world.size
            row["flops_per_s_per_rank"] = achieved
            row["fraction_of_matmul_peak"] = achieved / peak
    result = make_result("throughput", config(peak), rows, host=host_info(), literature=literature)
    write_result(cfg.out, result)
    for line in headline(result):
        log(line)
    return result


def run_calo_throughput(cfg: CaloThroughputConfig, world, log=print) -> dict | None:
    """Measure every generator's samples/s with fidelity; rank 0 writes ``cfg.out`` and returns the result."""
    device = resolve_device(cfg.device)
    gens, geometry = _generators(cfg, device)
    log(f"# throughput at fidelity | calo | {world.size} rank(s) × {torch.get_num_threads()} thread(s) | "
        f"energies {list(cfg.energies_gev)} GeV | {cfg.repeats} timed batches of ~{cfg.seconds:g} s after warm-up | "
        f"reference {REFERENCE_MC}")
    rows = []
    fidelity_by_energy = {}
    for energy in cfg.energies_gev:
        if world.rank == 0:
            # The reference holds 2n showers (floor halves of n); every generator, the reference Monte Carlo
            # itself included (an independent sample: what a perfect generator scores), gives n.
            reference = gens[REFERENCE_MC][1](np.full(2 * cfg.fidelity_n, energy))
            samples = {name: sim(np.full(cfg.fidelity_n, energy)) for name, (_, sim, _) in gens.items()}
            fidelity_by_energy[energy] = _fidelity(samples, reference, energy, geometry,
                                                   warn=lambda w: log(f"# warning: {w}"))
        for name, (kind, sim, flops) in gens.items():
            world.barrier()  # every rank times the same generator at the same time
            if kind == "mc":
                n, secs = _time_mc(sim, energy, cfg)
            else:
                n = max(cfg.gan_batches)
                secs = time_gan(lambda b, sim=sim, energy=energy: sim(np.full(b, energy)), n, cfg, device)
            rows.append(_row(name, kind, energy, n, rates(n, secs), world, flops,
                             device.type if kind == "gan" else "cpu"))
    scan_energy = min(cfg.energies_gev, key=lambda e: abs(e - 100.0))  # scans at the energy nearest 100 GeV
    name, (_, sim, flops) = next((k, v) for k, v in gens.items() if v[0] == "gan")
    rows += gan_scans(name, lambda b: sim(np.full(b, scan_energy)), flops, cfg, device, world,
                      lambda b, r: _row(name, "gan", scan_energy, b, r, world, flops, device.type))

    def config(peak: float) -> dict:
        return {"domain": "calo", "reference": REFERENCE_MC, "energies_gev": list(cfg.energies_gev),
                "gan_batches": list(cfg.gan_batches), "seconds": cfg.seconds, "repeats": cfg.repeats,
                "fidelity_n": cfg.fidelity_n, "seed": cfg.seed, "checkpoint": display_path(cfg.checkpoint), "ranks": world.size,
                "threads_per_rank": torch.get_num_threads(), "matmul_peak_flops_per_s": peak,
                "gan_device": str(device), "threads_scan": list(cfg.threads),
                "gflash_tune": "cascade", "fidelity_metrics": list(FIDELITY_METRICS),
                "fidelity_reference_n": 2 * cfg.fidelity_n, "fidelity": dataclasses.asdict(FIDELITY_CONFIG)}

    return finish_throughput(cfg, world, device, rows,
                             fidelity=lambda row: fidelity_by_energy[row["energy_gev"]][row["generator"]],
                             config=config, literature=LITERATURE, headline=headline, log=log)


def _row(name, kind, energy, batch, per_rank_rates, world, flops, device_type="cpu") -> dict:
    """One measured row; ``energy`` None where a sample has no primary energy (κ maps)."""
    # aggregate throughput of the job: each timed repetition summed over ranks (they ran at the same time)
    total = [sum(world.allreduce_sum([r])) for r in per_rank_rates] if world.size > 1 else per_rank_rates
    row = {"generator": name, "kind_of_generator": kind, "energy_gev": None if energy is None else float(energy),
           "batch": int(batch), "device": device_type, "samples_per_s": summarise(total)}
    if flops:
        row["flops_per_sample"] = int(flops)
    return row


def headline(result: dict) -> list[str]:
    """'Speed-up at fidelity' lines: every generator against the reference at each energy (energy-scan rows), each
    fidelity metric as value [floor p95]; the reference Monte Carlo's own row is an independent sample of it."""
    rows = [r for r in result["rows"] if not r.get("scan")]
    ref = {r["energy_gev"]: r["samples_per_s"]["median"] for r in rows if r["generator"] == result["config"]["reference"]}
    lines = [f"{'generator':<22} {'E GeV':>6} {'samples/s':>11} {'× ' + result['config']['reference']:>11} "
             f"{'AUC [floor p95]':>22} {'S(Evis/Ep) [p95]':>18} {'S(layers) [p95]':>18}"]

    def cell(f: dict, key: str, width: int) -> str:
        m = f.get(key)
        if not m:
            return f"{'–':>{width}}"
        spread = f"±{m['spread']:.2f}" if key.startswith("AUC") and m.get("spread") is not None else ""
        return f"{m['value']:.3f}{spread} [{m['floor_p95']:.3f}]".rjust(width)

    for r in rows:
        f, e = r["fidelity"], r["energy_gev"]
        lines.append(f"{r['generator']:<22} {e:>6g} {r['samples_per_s']['median']:>11.4g} "
                     f"{r['samples_per_s']['median'] / ref[e]:>11.4g} {cell(f, 'AUC_high_level', 22)} "
                     f"{cell(f, 'S_e_vis_over_e_p', 18)} {cell(f, 'S_layer_energy_median', 18)}")
    return lines
