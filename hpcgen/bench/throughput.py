"""Samples per second of the calorimeter Monte Carlos and of the GAN generator, each with its fidelity, on equal cores.

The question hpcgen exists for: how much faster is a GAN than the Monte Carlo it replaces, *at what fidelity*?
Every throughput row therefore carries the fidelity of its generator against the reference Monte Carlo (the
detailed cascade) at the same energy, from :func:`hpcgen.fidelity.calo.evaluate` (docs/fidelity.md): the
high-level classifier AUC, S(E_vis/E_p) and the median per-layer S, each beside the reference-vs-reference floor
(a reference of 2·fidelity_n cascade showers; every generator, the cascade itself included, gives fidelity_n).
The Monte Carlo cost grows with energy (the cascade tracks every particle); the GAN's does not.

Equal hardware: under ``mpirun -n N`` every rank runs one thread (torch and numba alike) and times the same
generator at the same time, so every generator — Monte Carlo or GAN — uses the same N cores, and a row's samples/s
is the sum over ranks; ``cores`` and ``samples_per_s_per_core`` say so in every row. The GAN is timed at each
precision the host runs natively (fp32; bf16 autocast where the CPU has AVX512-BF16 or AMX, or on a GPU), each
with the fidelity of showers generated *at that precision*. int8 is not offered: PyTorch's CPU int8 paths
(dynamic quantisation) cover Linear and recurrent layers, not the 3D (transposed) convolutions that carry the cost.

Timing: an untimed warm-up (numba JIT, first torch calls), then timed batches of at least ``seconds`` each (and at
least ``min_showers`` showers for a Monte Carlo), repeated until the relative standard error of the mean rate is at
most ``target_rel_error`` (or ``max_seconds`` have been timed); the row reports median [min, max] and that error.
The thread-count scan (``--threads``) is a separate set of rows with ``scan: threads`` and their own core count.
Anchors from the literature (CaloGAN, 3DGAN, Geant4 cost; docs/throughput.md) go to the result's separate
``literature`` list, never into the measured rows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from hpcgen.bench.harness import (
    device_sync,
    rates,
    relative_error,
    sized_batch,
    time_calls,
    time_until_precise,
)
from hpcgen.bench.results import (
    display_path,
    host_info,
    isa_flags,
    make_result,
    summarise,
    write_result,
)
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
PRECISIONS = ("fp32", "bf16")


def native_precisions(device: torch.device, wanted) -> tuple[list[str], dict[str, str]]:
    """(the precisions of ``wanted`` this host runs natively, {skipped: why})."""
    ok, skipped = [], {}
    for p in wanted:
        if p == "bf16":
            if device.type == "cuda":
                native = torch.cuda.is_bf16_supported()
            else:
                native = bool({"avx512_bf16", "amx_bf16"} & set(isa_flags()))
            if not native:
                skipped[p] = "no native bf16 (AVX512-BF16 or AMX) on this CPU" if device.type == "cpu" else "GPU lacks bf16"
                continue
        ok.append(p)
    return ok, skipped


@dataclasses.dataclass
class CaloThroughputConfig:
    """``hpcgen bench throughput --domain calo``; every field is a CLI flag of the same name."""

    out: Path
    checkpoint: Path
    energies_gev: tuple[float, ...] = (10.0, 50.0, 100.0, 200.0, 500.0)
    gan_batches: tuple[int, ...] = (1, 16, 64, 256)
    seconds: float = 1.0  # target length of one timed batch
    repeats: int = 3  # at least this many timed batches
    target_rel_error: float = 0.02  # ... and more until the mean rate's relative standard error is this small
    max_seconds: float = 30.0  # ... or this many seconds of timed batches per generator and energy
    min_showers: int = 10  # a Monte Carlo batch holds at least this many showers
    precisions: tuple[str, ...] = ("fp32", "bf16")  # the GAN's; those the host cannot run natively are skipped
    fidelity_n: int = 100  # showers per generator and energy for the fidelity
    seed: int = 0
    device: str = "auto"  # the GAN's device: auto (a GPU if torch sees one) | cpu | cuda; the Monte Carlos run on CPU
    threads: tuple[int, ...] = ()  # CPU thread counts to scan the GAN over (at its largest batch); () = no scan

    def __post_init__(self) -> None:
        if not self.energies_gev or not all(1.0 <= e <= 1000.0 for e in self.energies_gev):
            raise UserError(f"--energies-gev: expected energies within 1-1000 GeV, got {list(self.energies_gev)}")
        if self.fidelity_n < 10:
            raise UserError(f"--fidelity-n: expected >= 10 showers per energy, got {self.fidelity_n}")
        if not 0 < self.target_rel_error < 1 or not self.max_seconds > 0 or self.min_showers < 1:
            raise UserError("--target-rel-error / --max-seconds / --min-showers: expected (0, 1), > 0 and >= 1")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise UserError(f"--precisions: expected some of {', '.join(PRECISIONS)}, got {list(self.precisions)}")
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
                rows.append(make_row(batch, rates(batch, time_gan(sample, batch, cfg, device)), t)
                            | {"scan": "threads", "threads": t})
        finally:
            torch.set_num_threads(before)
    return rows


def _generators(cfg: CaloThroughputConfig, device: torch.device, precisions: list[str]) -> tuple[list[dict], object]:
    """[{name, kind, precision, simulate(energies_gev) -> ecal GeV, flops per sample or None}], geometry."""
    from hpcgen.jobs.generate import load_generator
    from hpcgen.models import calo_sampler, flops_per_sample
    from hpcgen.physics.calo_geometry import SamplingCalorimeter
    from hpcgen.sim import calo_simulator

    g, ckpt = load_generator(Path(cfg.checkpoint), device)
    if ckpt["config"]["domain"] != "calo":
        raise UserError(f"--checkpoint: {cfg.checkpoint} is a {ckpt['config']['domain']} run; "
                        "throughput --domain calo needs a calorimeter GAN run")
    geometry = SamplingCalorimeter.from_json(ckpt["data_meta"]["geometry"])
    rng = stream(cfg.seed, 1)
    gens = []
    for name in (REFERENCE_MC, "gflash"):
        f = calo_simulator(name, **({"gflash_tune": "cascade"} if name == "gflash" else {}))
        gens.append({"name": name, "kind": "mc", "precision": "fp64", "flops": None,
                     "simulate": lambda e, f=f: f(np.asarray(e, dtype=np.float64), geometry, rng).ecal_gev})
    flops = flops_per_sample(g, "calo")
    for precision in precisions:
        sampler = calo_sampler(g, ckpt["config"], device, torch.Generator().manual_seed(cfg.seed), precision=precision)
        gens.append({"name": f"gan:{ckpt['checkpoint_id']}", "kind": "gan", "precision": precision, "flops": flops,
                     "simulate": sampler})
    return gens, geometry


def _agree(world):
    """Collective "go on timing?": any rank that wants more repeats keeps every rank going."""
    return lambda more: world.allreduce_sum([float(more)])[0] > 0


def _time_mc(simulate, energy_gev: float, cfg: CaloThroughputConfig, world) -> tuple[int, list[float]]:
    n = max(cfg.min_showers, sized_batch(lambda k: simulate(np.full(k, energy_gev)), cfg.seconds))
    n = int(world.bcast(n))  # every rank times the same batch
    secs = time_until_precise(lambda: simulate(np.full(n, energy_gev)), n, cfg.repeats, cfg.target_rel_error,
                              cfg.max_seconds, agree=_agree(world))
    return n, secs


def _time_gan(simulate, energy_gev: float, batch: int, cfg: CaloThroughputConfig, world,
              device: torch.device) -> list[float]:
    simulate(np.full(batch, energy_gev))  # warm-up
    return time_until_precise(lambda: simulate(np.full(batch, energy_gev)), batch, cfg.repeats, cfg.target_rel_error,
                              cfg.max_seconds, agree=_agree(world), sync=device_sync(device))


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
    """Measure every generator's samples/s with fidelity on the same cores; rank 0 writes ``cfg.out``."""
    device = resolve_device(cfg.device)
    precisions, skipped = native_precisions(device, cfg.precisions)
    gens, geometry = _generators(cfg, device, precisions)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)  # one core per rank for every generator (numba's Monte Carlos are single-threaded)
    try:
        rows, fidelity = _measure(cfg, world, device, gens, geometry, log)
        gan = next(g for g in gens if g["kind"] == "gan")
        scan_energy = min(cfg.energies_gev, key=lambda e: abs(e - 100.0))  # scans at the energy nearest 100 GeV
        rows += gan_scans(gan["name"], lambda b: gan["simulate"](np.full(b, scan_energy)), gan["flops"], cfg, device,
                          world, lambda b, r, t=1: _row(gan["name"], "gan", scan_energy, b, r, world, gan["flops"],
                                                        device.type, precision=gan["precision"], threads_per_rank=t))
    finally:
        torch.set_num_threads(threads_before)

    def config(peak: float) -> dict:
        return {"domain": "calo", "reference": REFERENCE_MC, "energies_gev": list(cfg.energies_gev),
                "gan_batches": list(cfg.gan_batches), "seconds": cfg.seconds, "repeats": cfg.repeats,
                "target_rel_error": cfg.target_rel_error, "max_seconds": cfg.max_seconds,
                "min_showers": cfg.min_showers, "precisions": precisions, "precisions_skipped": skipped,
                "fidelity_n": cfg.fidelity_n, "seed": cfg.seed, "checkpoint": display_path(cfg.checkpoint),
                "ranks": world.size, "threads_per_rank": 1, "cores_per_generator": world.size,
                "matmul_peak_flops_per_s": peak, "gan_device": str(device), "threads_scan": list(cfg.threads),
                "gflash_tune": "cascade", "fidelity_metrics": list(FIDELITY_METRICS),
                "fidelity_reference_n": 2 * cfg.fidelity_n, "fidelity": dataclasses.asdict(FIDELITY_CONFIG)}

    return finish_throughput(cfg, world, device, rows,
                             fidelity=lambda row: fidelity[(row["energy_gev"], row["generator"], row["precision"])],
                             config=config, literature=LITERATURE, headline=headline, log=log)


def _measure(cfg: CaloThroughputConfig, world, device: torch.device, gens: list[dict], geometry, log):
    """The energy-scan rows (every generator and precision at every energy, one thread per rank) and their
    fidelity {(energy, generator, precision): metrics} (rank 0 only; others get an empty dict)."""
    log(f"# throughput at fidelity | calo | {world.size} rank(s) × 1 thread = {world.size} core(s) for every generator "
        f"| energies {list(cfg.energies_gev)} GeV | ≥ {cfg.repeats} timed batches of ≥ {cfg.seconds:g} s, until the "
        f"rate's standard error ≤ {cfg.target_rel_error:.0%} | reference {REFERENCE_MC}")
    rows, fidelity = [], {}
    for energy in cfg.energies_gev:
        if world.rank == 0:
            # The reference holds 2n showers (floor halves of n); every generator, the reference Monte Carlo
            # itself included (an independent sample: what a perfect generator scores), gives n.
            reference = gens[0]["simulate"](np.full(2 * cfg.fidelity_n, energy))
            samples = {(g["name"], g["precision"]): g["simulate"](np.full(cfg.fidelity_n, energy)) for g in gens}
            scored = _fidelity({f"{n}@{p}": x for (n, p), x in samples.items()}, reference, energy, geometry,
                               warn=lambda w: log(f"# warning: {w}"))
            fidelity.update({(energy, n, p): scored[f"{n}@{p}"] for n, p in samples})
        for g in gens:
            world.barrier()  # every rank times the same generator at the same time
            if g["kind"] == "mc":
                n, secs = _time_mc(g["simulate"], energy, cfg, world)
            else:
                n = max(cfg.gan_batches)
                secs = _time_gan(g["simulate"], energy, n, cfg, world, device)
            rows.append(_row(g["name"], g["kind"], energy, n, rates(n, secs), world, g["flops"],
                             device.type if g["kind"] == "gan" else "cpu", precision=g["precision"]))
    return rows, fidelity


def _row(name, kind, energy, batch, per_rank_rates, world, flops, device_type="cpu", precision="fp32",
         threads_per_rank: int = 1) -> dict:
    """One measured row; ``energy`` None where a sample has no primary energy (κ maps)."""
    # aggregate throughput of the job: each timed repetition summed over ranks (they ran at the same time)
    total = [sum(world.allreduce_sum([r])) for r in per_rank_rates] if world.size > 1 else per_rank_rates
    cores = world.size * threads_per_rank
    row = {"generator": name, "kind_of_generator": kind, "precision": precision,
           "energy_gev": None if energy is None else float(energy), "batch": int(batch), "device": device_type,
           "cores": cores if device_type == "cpu" else None, "samples_per_s": summarise(total),
           "rate_rel_error": relative_error(total), "timed_batches": len(total)}
    if device_type == "cpu":
        row["samples_per_s_per_core"] = summarise([t / cores for t in total])
    if flops:
        row["flops_per_sample"] = int(flops)
    return row


def headline(result: dict) -> list[str]:
    """'Speed-up at fidelity' lines: every generator against the reference at each energy (energy-scan rows), each
    fidelity metric as value [floor p95]; the reference Monte Carlo's own row is an independent sample of it."""
    rows = [r for r in result["rows"] if not r.get("scan")]
    ref = {r["energy_gev"]: r["samples_per_s"]["median"] for r in rows if r["generator"] == result["config"]["reference"]}
    cores = result["config"].get("cores_per_generator")
    lines = [f"every generator on the same {cores} core(s)" if cores else "cores not recorded",
             f"{'generator':<22} {'prec':>5} {'E GeV':>6} {'samples/s':>11} {'± %':>5} {'× ' + result['config']['reference']:>11} "
             f"{'AUC [floor p95]':>22} {'S(Evis/Ep) [p95]':>18} {'S(layers) [p95]':>18}"]

    def cell(f: dict, key: str, width: int) -> str:
        m = f.get(key)
        if not m:
            return f"{'–':>{width}}"
        spread = f"±{m['spread']:.2f}" if key.startswith("AUC") and m.get("spread") is not None else ""
        return f"{m['value']:.3f}{spread} [{m['floor_p95']:.3f}]".rjust(width)

    for r in rows:
        f, e = r["fidelity"], r["energy_gev"]
        err = r.get("rate_rel_error")
        err = f"{100 * err:>5.1f}" if err is not None and err != float("inf") else f"{'–':>5}"
        lines.append(f"{r['generator']:<22} {r.get('precision', ''):>5} {e:>6g} {r['samples_per_s']['median']:>11.4g} "
                     f"{err} {r['samples_per_s']['median'] / ref[e]:>11.4g} {cell(f, 'AUC_high_level', 22)} "
                     f"{cell(f, 'S_e_vis_over_e_p', 18)} {cell(f, 'S_layer_energy_median', 18)}")
    return lines
