"""Independent samples per second of the 2D Ising Monte Carlos (Metropolis, Wolff) and of the Ising GAN, each with
its fidelity, on equal cores (docs/ising.md, "Throughput at fidelity").

The Ising counterpart of :mod:`hpcgen.bench.throughput`. A Markov chain's configurations are correlated, so raw
sweeps per second overstate what a Monte Carlo delivers; the common currency is the rate of *independent* samples:

    independent samples/s = sweeps/s ÷ (2·τ_int),   τ_int in sweeps, τ_int = max(τ_int(|M|), τ_int(E))

(2τ_int sweeps are worth one independent sample, :mod:`hpcgen.physics.autocorrelation`; the row's ``tau_used``
says which observable gave the larger τ). Both τ come from the Madras–Sokal estimator on the e and |m| series of
*the timed chain itself* (the timed sweeps, extended untimed to at least ``tau_min_sweeps``), and the τ error is
propagated into the rate: rel. error² = rel. error(sweeps/s)² + (σ_τ/τ)². Every GAN sample is independent (τ = 1/2),
so its independent samples/s is its configurations/s, at its best batch size of ``gan_batches``.

Timing, per (L, T) and generator: a cold chain thermalised for ``thermalise_sweeps`` sweeps (Wolff: calibrating its
sweep), an untimed sizing batch of sweeps (:func:`hpcgen.bench.harness.sized_batch`), then timed batches of about
``seconds`` until the rate's relative standard error is at most ``target_rel_error`` (or ``max_seconds`` have been
timed; :func:`hpcgen.bench.harness.time_until_precise`). The GAN: a batch-size scan (rows with ``scan: batch``),
then the best batch timed the same way, fp32 and bf16 where the host runs bf16 natively
(:func:`hpcgen.bench.throughput.native_precisions`). Under ``mpirun -n N`` every rank runs its own chain / GAN with
one thread at the same time, rates are summed over ranks and τ is the mean over the ranks' chains (errors added in
quadrature / N); ``cores`` says so in every row.

Fidelity (rank 0, :func:`hpcgen.fidelity.ising.evaluate`, no files): at each (L, T) a Wolff reference of
2·``fidelity_n`` and a Metropolis sample of 2·``fidelity_n`` configurations, each thinned to ⌈2τ_int⌉ sweeps of
its timed chain. The GAN (``fidelity_n`` configurations) is scored against the Wolff reference; each Monte Carlo
against the *other* one (an independent sample of the same physics: within its floor when both are right). Per
observable E, |M|, C_v, χ, U4: the relative difference test/ref − 1 and the verdict metric |rel. diff| beside the
reference-vs-reference floor p50 / p95; the configuration classifier's AUC when ``classifier`` is on.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from hpcgen.bench.harness import rates, sized_batch, time_until_precise
from hpcgen.bench.results import display_path, host_info, make_result, write_result
from hpcgen.bench.throughput import (
    PRECISIONS,
    _agree,
    _row,
    check_throughput_config,
    matmul_peak_flops,
    native_precisions,
    resolve_device,
    time_gan,
)
from hpcgen.config import DEVICES, check_choice
from hpcgen.errors import UserError
from hpcgen.physics.autocorrelation import (
    TauInt,
    independent_samples_per_s,
    thin_from_tau,
)
from hpcgen.physics.ising_exact import T_C
from hpcgen.seeding import stream
from hpcgen.sim.ising import MIN_L

REFERENCE_MC = "wolff"
MC_GENERATORS = ("metropolis", "wolff")
DEFAULT_TEMPERATURES = (1.5, 2.0, T_C, 2.5, 3.5)
FIDELITY_OBSERVABLES = ("E", "absM", "Cv", "chi", "U4")
THERMALISE_TAUS = 20  # fidelity chains discard max(thermalise_sweeps, 20 τ_int) sweeps (as `simulate ising` does)
LITERATURE = [
    {"quantity": "dynamic exponent z of τ_int ∝ L^z at T_c (2D Ising)", "value": "Metropolis ≈ 2.17, Wolff ≈ 0.25",
     "source": "Nightingale & Blöte 1996; Wolff 1989 [lit, unverified]"},
]


@dataclasses.dataclass
class IsingThroughputConfig:
    """``hpcgen bench throughput --domain ising``; every field is a CLI flag of the same name."""

    out: Path
    checkpoint: Path | None = None  # an `hpcgen train ising` run; None = Monte Carlo only (then L_list is required)
    L_list: tuple[int, ...] = ()  # further, Monte-Carlo-only lattice sides (the checkpoint's L is always measured)
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES  # J/k_B
    gan_batches: tuple[int, ...] = (1, 16, 64, 256)
    seconds: float = 0.5  # target length of one timed batch
    repeats: int = 3  # at least this many timed batches
    target_rel_error: float = 0.02  # ... and more until the mean rate's relative standard error is this small
    max_seconds: float = 10.0  # ... or this many seconds of timed batches per generator, L and T
    thermalise_sweeps: int = 1000  # discarded sweeps before timing (Wolff: its sweep is calibrated here)
    tau_min_sweeps: int = 4096  # the τ_int series of a timed chain holds at least this many sweeps
    precisions: tuple[str, ...] = ("fp32", "bf16")  # the GAN's; those the host cannot run natively are skipped
    fidelity_n: int = 200  # test configurations per generator and (L, T); references hold twice as many
    classifier: bool = True  # the classifier AUC beside the observables (seconds per (L, T) on one core)
    seed: int = 0
    device: str = "auto"  # the GAN's device; the Monte Carlos run on CPU
    threads: tuple[int, ...] = ()  # unused here (no thread scan); kept for the shared checks

    def __post_init__(self) -> None:
        if any(int(L) < MIN_L for L in self.L_list):
            raise UserError(f"--L-list: expected lattice sides >= {MIN_L}, got {list(self.L_list)}")
        if not self.temperatures or not all(math.isfinite(t) and t > 0 for t in self.temperatures):
            raise UserError(f"--temperatures: expected temperatures > 0 in units of J/k_B, got {list(self.temperatures)}")
        if self.fidelity_n < 4:
            raise UserError(f"--fidelity-n: expected >= 4 configurations per generator and temperature, "
                            f"got {self.fidelity_n}")
        if not 0 < self.target_rel_error < 1 or not self.max_seconds > 0:
            raise UserError("--target-rel-error / --max-seconds: expected (0, 1) and > 0")
        if self.thermalise_sweeps < 0 or self.tau_min_sweeps < 16:
            raise UserError(f"--thermalise-sweeps / --tau-min-sweeps: expected >= 0 and >= 16, got "
                            f"{self.thermalise_sweeps}, {self.tau_min_sweeps}")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise UserError(f"--precisions: expected some of {', '.join(PRECISIONS)}, got {list(self.precisions)}")
        if self.seed < 0:
            raise UserError(f"--seed: expected >= 0, got {self.seed}")
        if self.checkpoint is None:
            if not self.L_list:
                raise UserError("--checkpoint: throughput --domain ising needs an Ising GAN run directory "
                                "(`hpcgen train ising --out RUN`) or, for the Monte Carlos alone, --L-list")
            check_choice(self.device, DEVICES, "--device")
            if not self.gan_batches or min(self.gan_batches) < 1 or not self.seconds > 0 or self.repeats < 1:
                raise UserError("--gan-batches / --seconds / --repeats: expected batches >= 1, > 0 and >= 1")
        else:
            check_throughput_config(self, "ising")


def _load_gan(cfg: IsingThroughputConfig, device: torch.device):
    """(name, L, generator, model options) of the checkpoint, or None without one."""
    if cfg.checkpoint is None:
        return None
    from hpcgen.jobs.generate import load_generator

    g, ckpt = load_generator(Path(cfg.checkpoint), device)
    if ckpt["config"]["domain"] != "ising":
        raise UserError(f"--checkpoint: {cfg.checkpoint} is a {ckpt['config']['domain']} run; "
                        "throughput --domain ising needs an Ising GAN run (`hpcgen train ising`)")
    return f"gan:{ckpt['checkpoint_id']}", int(ckpt["model_options"]["L"]), g, ckpt["model_options"]


def _gan_sampler(g, options: dict, device: torch.device, precision: str, seed: int, rank: int):
    """``sample(n, T) -> (n, L, L)`` int8 spins from the GAN at ``precision`` (bf16: autocast)."""
    from hpcgen.models import ising_sampler

    noise_gen = torch.Generator().manual_seed(int(stream(seed, 4, rank).integers(0, 2**62)))
    sample = ising_sampler(g, options, device, noise_gen)

    def make(n: int, temperature: float) -> np.ndarray:
        t = np.full(n, temperature)
        if precision == "bf16":
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return sample(t)
        return sample(t)

    return make


def _tau_over_ranks(tau: TauInt, world) -> dict:
    """τ_int (sweeps) of one observable: the mean over the ranks' chains, errors in quadrature / N."""
    s = world.allreduce_sum([tau.tau, tau.error**2, float(tau.reliable), float(tau.n)])
    n = world.size
    return {"tau_sweeps": s[0] / n, "error": math.sqrt(s[1]) / n, "reliable": bool(s[2] == n),
            "series_sweeps_per_rank": round(s[3] / n)}


def _time_mc(algorithm: str, L: int, temperature: float, cfg: IsingThroughputConfig, world, rng):
    """(sweeps per timed batch, seconds of each timed batch, τ of E, τ of |m|, Wolff clusters per sweep)."""
    from hpcgen.physics.autocorrelation import integrated_autocorrelation_time
    from hpcgen.sim.ising import IsingChain

    chain = IsingChain(algorithm, L, temperature, rng)
    chain.thermalise(cfg.thermalise_sweeps)
    n = int(world.bcast(sized_batch(lambda k: chain.sweep(k), cfg.seconds, max_n=1 << 22)))  # untimed
    energy, magnetisation = [], []

    def batch() -> None:
        e, m = chain.sweep(n)
        energy.append(e)
        magnetisation.append(m)

    secs = time_until_precise(batch, n, cfg.repeats, cfg.target_rel_error, cfg.max_seconds, agree=_agree(world))
    have = n * len(secs)
    if have < cfg.tau_min_sweeps:  # extend the same chain, untimed, for a longer τ series
        e, m = chain.sweep(cfg.tau_min_sweeps - have)
        energy.append(e)
        magnetisation.append(m)
    e, m = np.concatenate(energy), np.concatenate(magnetisation)
    return (n, secs, integrated_autocorrelation_time(e), integrated_autocorrelation_time(np.abs(m)),
            chain.clusters_per_sweep)


def _mc_row(algorithm: str, L: int, temperature: float, cfg: IsingThroughputConfig, world, rng) -> dict:
    n, secs, tau_e, tau_m, r = _time_mc(algorithm, L, temperature, cfg, world, rng)
    row = _row(algorithm, "mc", None, n, rates(n, secs), world, None, "cpu", precision="fp64")
    taus = {"absM": _tau_over_ranks(tau_m, world), "E": _tau_over_ranks(tau_e, world)}
    used = max(taus, key=lambda k: taus[k]["tau_sweeps"])  # |M| on a tie
    tau = taus[used]
    rate = row["samples_per_s"]["median"]
    rel = math.hypot(row["rate_rel_error"], tau["error"] / tau["tau_sweeps"])
    row.pop("energy_gev")
    return row | {"L": int(L), "temperature": float(temperature), "batch_unit": "sweeps",
                  "sweeps_per_s": row["samples_per_s"], "tau_int": taus, "tau_used": used,
                  "tau_int_used_sweeps": tau["tau_sweeps"],
                  "independent_samples_per_s": independent_samples_per_s(rate, tau["tau_sweeps"]),
                  "independent_samples_per_s_rel_error": rel, "wolff_clusters_per_sweep": r}


def _gan_rows(name: str, make, L: int, temperature: float, precision: str, cfg: IsingThroughputConfig, world,
              device: torch.device, flops) -> list[dict]:
    """The batch-size scan (rows with ``scan``) and the main row at the fastest batch, timed to the target error."""
    from hpcgen.bench.harness import device_sync

    def row(batch, secs, scan=None):
        r = _row(name, "gan", None, batch, rates(batch, secs), world, flops, device.type, precision=precision)
        r.pop("energy_gev")
        rate = r["samples_per_s"]["median"]
        return r | {"L": int(L), "temperature": float(temperature), "batch_unit": "configurations",
                    "tau_used": "none (independent samples)", "tau_int_used_sweeps": 0.5,
                    "independent_samples_per_s": independent_samples_per_s(rate, 0.5),
                    "independent_samples_per_s_rel_error": r["rate_rel_error"]} | ({"scan": scan} if scan else {})

    scan = []
    for batch in cfg.gan_batches:
        world.barrier()
        scan.append(row(batch, time_gan(lambda b: make(b, temperature), batch, cfg, device), "batch"))
    best = int(world.bcast(max(scan, key=lambda r: r["samples_per_s"]["median"])["batch"]))
    world.barrier()
    make(best, temperature)  # warm-up
    secs = time_until_precise(lambda: make(best, temperature), best, cfg.repeats, cfg.target_rel_error,
                              cfg.max_seconds, agree=_agree(world), sync=device_sync(device))
    return [row(best, secs)] + scan


def _fidelity_entry(result: dict, reference: str) -> dict:
    """The row's fidelity from :func:`hpcgen.fidelity.ising.evaluate` at one temperature."""
    per_t = result["per_temperature"][0]
    out = {"reference": reference, "n_test": per_t["n_test"], "n_reference": per_t["n_ref"],
           "half_size": per_t["half_size"]}
    for k in FIDELITY_OBSERVABLES:
        o = per_t["observables"][k]
        floor = o["floor"] or {}
        value = o["value"]
        out[k] = {"rel_diff": o["rel_diff"], "rel_diff_err": o["rel_diff_err"], "value": value,
                  "spread": o["spread"], "floor_p50": floor.get("p50"), "floor_p95": floor.get("p95"),
                  "within_floor_p95": None if value is None or not floor else bool(value <= floor["p95"])}
    c = per_t["classifier"]
    if c:
        out["AUC"] = {"value": c["value"], "spread": c["spread"], "floor_p50": c["floor"]["p50"],
                      "floor_p95": c["floor"]["p95"], "within_floor_p95": bool(c["value"] <= c["floor"]["p95"])}
    verdicts = [out[k]["within_floor_p95"] for k in (*FIDELITY_OBSERVABLES, "AUC") if k in out]
    out["all_within_floor_p95"] = all(v is True for v in verdicts)
    return out


def fidelity_config(cfg: IsingThroughputConfig):
    from hpcgen.fidelity.classifier import ClassifierConfig
    from hpcgen.fidelity.ising import IsingFidelityConfig

    return IsingFidelityConfig(bootstrap=50, max_configs=0, classifier=ClassifierConfig(seeds=1),
                               classifier_resamples=3, classifier_enabled=cfg.classifier, seed=cfg.seed)


def _fidelity(L: int, temperature: float, mc_rows: dict, gans: dict, cfg: IsingThroughputConfig, log) -> dict:
    """{(generator, precision): fidelity} at one (L, T) (module docstring); rank 0 only."""
    from hpcgen.fidelity.ising import evaluate, summarise
    from hpcgen.sim.ising import run_chain

    n = cfg.fidelity_n
    fcfg = fidelity_config(cfg)
    samples, spins_of = {}, {}
    for i, alg in enumerate(MC_GENERATORS):
        tau = mc_rows[alg]["tau_int_used_sweeps"]
        spins = run_chain(alg, L, temperature, 2 * n, thin_from_tau(tau),
                          max(cfg.thermalise_sweeps, math.ceil(THERMALISE_TAUS * tau)),
                          stream(cfg.seed, 5, L, i, int(temperature * 1e6))).spins
        spins_of[alg] = spins
        samples[alg] = summarise(spins, np.full(2 * n, temperature), alg, max_configs=0, seed=cfg.seed)
    out = {}

    def score(ref_name, test, key) -> None:
        try:
            out[key] = _fidelity_entry(evaluate(samples[ref_name], test, fcfg, warn=lambda w: None), ref_name)
        except ValueError as exc:
            log(f"# fidelity of {key[0]} at L={L}, T={temperature:.4g}: {exc}")
            out[key] = None

    def first_n(alg):
        return summarise(spins_of[alg][:n], np.full(n, temperature), alg, max_configs=0, seed=cfg.seed)

    score("wolff", first_n("metropolis"), ("metropolis", "fp64"))
    score("metropolis", first_n("wolff"), ("wolff", "fp64"))
    for (name, precision), make in gans.items():
        spins = make(n, temperature)
        score(REFERENCE_MC, summarise(spins, np.full(n, temperature), name, max_configs=0, seed=cfg.seed),
              (name, precision))
    return out


def _speed_up(gan: dict, mc: dict) -> dict:
    value = gan["independent_samples_per_s"] / mc["independent_samples_per_s"]
    rel = math.hypot(gan["independent_samples_per_s_rel_error"], mc["independent_samples_per_s_rel_error"])
    return {"value": value, "rel_error": rel, "gan_wins": bool(value > 1.0)}


def speed_ups(rows: list[dict]) -> list[dict]:
    """Per (L, T, GAN precision): the GAN's independent samples/s over each Monte Carlo's, and who wins."""
    main = [r for r in rows if not r.get("scan")]
    out = []
    for g in (r for r in main if r["kind_of_generator"] == "gan"):
        entry = {"L": g["L"], "temperature": g["temperature"], "generator": g["generator"],
                 "precision": g["precision"]}
        for mc in (r for r in main if r["kind_of_generator"] == "mc" and r["L"] == g["L"]
                   and r["temperature"] == g["temperature"]):
            s = _speed_up(g, mc)
            entry[f"speed_up_vs_{mc['generator']}"] = s["value"]
            entry[f"speed_up_vs_{mc['generator']}_rel_error"] = s["rel_error"]
            entry[f"gan_wins_vs_{mc['generator']}"] = s["gan_wins"]
        out.append(entry)
    return out


def run_ising_throughput(cfg: IsingThroughputConfig, world, log=print) -> dict | None:
    """Measure every generator's independent samples/s with fidelity; rank 0 writes ``cfg.out`` (and a PNG beside
    it) and returns the result, the other ranks None."""
    device = resolve_device(cfg.device)
    precisions, skipped = native_precisions(device, cfg.precisions)
    gan = _load_gan(cfg, device)
    sizes = sorted({*(int(L) for L in cfg.L_list), *([gan[1]] if gan else [])})
    log(f"# throughput at fidelity | ising | {world.size} rank(s) × 1 thread = {world.size} core(s) for every "
        f"generator | L {sizes} | T {[round(t, 4) for t in cfg.temperatures]} | ≥ {cfg.repeats} timed batches of "
        f"~{cfg.seconds:g} s until the rate's standard error ≤ {cfg.target_rel_error:.0%} | independent samples/s = "
        f"sweeps/s / (2 τ_int), τ_int = max(τ(|M|), τ(E)) | GAN fidelity vs {REFERENCE_MC}")
    rows, fidelity = [], {}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)  # one core per rank for every generator (the numba chains are single-threaded)
    try:
        flops = None
        if gan:
            from hpcgen.models import flops_per_sample

            flops = flops_per_sample(gan[2], "ising")
        for L in sizes:
            gans = {(gan[0], p): _gan_sampler(gan[2], gan[3], device, p, cfg.seed, world.rank)
                    for p in precisions} if gan and gan[1] == L else {}
            for ti, temperature in enumerate(cfg.temperatures):
                mc_rows = {}
                for ai, alg in enumerate(MC_GENERATORS):
                    world.barrier()  # every rank times the same generator at the same time
                    mc_rows[alg] = _mc_row(alg, L, temperature, cfg, world, stream(cfg.seed, 3, L, ti, ai, world.rank))
                rows += mc_rows.values()
                for (name, precision), make in gans.items():
                    rows += _gan_rows(name, make, L, temperature, precision, cfg, world, device, flops)
                if world.rank == 0:
                    fid = _fidelity(L, temperature, mc_rows, gans, cfg, log)
                    fidelity.update({(L, temperature, *k): v for k, v in fid.items()})
                world.barrier()
    finally:
        torch.set_num_threads(threads_before)
    peak = matmul_peak_flops(device=device)
    if world.rank != 0:
        return None
    for row in rows:
        row["fidelity"] = fidelity.get((row["L"], row["temperature"], row["generator"], row["precision"]))
        if row.get("flops_per_sample"):
            achieved = row["flops_per_sample"] * row["samples_per_s"]["median"] / world.size
            row["flops_per_s_per_rank"] = achieved
            row["fraction_of_matmul_peak"] = achieved / peak
    for entry in speed_ups(rows):  # beside each GAN main row too
        row = next(r for r in rows if not r.get("scan") and r["generator"] == entry["generator"]
                   and r["precision"] == entry["precision"] and r["L"] == entry["L"]
                   and r["temperature"] == entry["temperature"])
        row["speed_up"] = {k: v for k, v in entry.items() if k.startswith(("speed_up_vs", "gan_wins_vs"))}
    config = {"domain": "ising", "reference": REFERENCE_MC, "mc_generators": list(MC_GENERATORS),
              "L_list": sizes, "gan_L": gan[1] if gan else None, "temperatures": list(cfg.temperatures),
              "critical_temperature": T_C, "gan_batches": list(cfg.gan_batches), "seconds": cfg.seconds,
              "repeats": cfg.repeats, "target_rel_error": cfg.target_rel_error, "max_seconds": cfg.max_seconds,
              "thermalise_sweeps": cfg.thermalise_sweeps, "tau_min_sweeps": cfg.tau_min_sweeps,
              "precisions": precisions, "precisions_skipped": skipped, "fidelity_n": cfg.fidelity_n,
              "fidelity_reference_n": 2 * cfg.fidelity_n, "fidelity_observables": list(FIDELITY_OBSERVABLES),
              "fidelity": dataclasses.asdict(fidelity_config(cfg)), "seed": cfg.seed,
              "checkpoint": display_path(cfg.checkpoint) if cfg.checkpoint else None, "ranks": world.size,
              "threads_per_rank": 1, "cores_per_generator": world.size, "matmul_peak_flops_per_s": peak,
              "gan_device": str(device),
              "independent_rate": "sweeps/s / (2 tau_int), tau_int = max(tau_int(|M|), tau_int(E)) in sweeps of the "
                                  "timed chain (Madras-Sokal); GAN: tau = 1/2, configurations/s",
              "rate_error": "rel. error = hypot(rel. standard error of the mean sweeps/s, sigma_tau / tau)"}
    result = make_result("throughput", config, rows, host=host_info(), literature=LITERATURE,
                         speed_up=speed_ups(rows))
    write_result(cfg.out, result)
    from hpcgen.bench.report import ising_rate_figure

    ising_rate_figure(result, Path(cfg.out).with_suffix(".png"))
    for line in headline(result):
        log(line)
    return result


def headline(result: dict) -> list[str]:
    """One line per (L, T, generator): independent samples/s ± %, τ used, speed-up of the GAN, fidelity verdict."""
    rows = [r for r in result["rows"] if not r.get("scan")]
    lines = [(f"every generator on the same {result['config']['cores_per_generator']} core(s); independent samples/s "
              "= sweeps/s / (2 τ_int), GAN τ = 1/2"),
             (f"{'L':>4} {'T':>7} {'generator':<22} {'prec':>5} {'rate/s':>10} {'τ used':>10} {'indep./s':>10} "
              f"{'± %':>6} {'fidelity within floor':>22}")]
    for r in rows:
        f = r.get("fidelity")
        verdict = "n/a" if not f else ("yes" if f["all_within_floor_p95"] else "no") + f" (vs {f['reference']})"
        tau = r["tau_int_used_sweeps"]
        lines.append(f"{r['L']:>4} {r['temperature']:>7.4g} {r['generator']:<22} {r['precision']:>5} "
                     f"{r['samples_per_s']['median']:>10.4g} {tau:>10.4g} {r['independent_samples_per_s']:>10.4g} "
                     f"{100 * r['independent_samples_per_s_rel_error']:>6.1f} {verdict:>22}")
    for s in result.get("speed_up", []):
        parts = [f"× {s[f'speed_up_vs_{m}']:.3g} vs {m} ({'wins' if s[f'gan_wins_vs_{m}'] else 'loses'})"
                 for m in MC_GENERATORS if f"speed_up_vs_{m}" in s]
        lines.append(f"GAN {s['precision']} at L={s['L']}, T={s['temperature']:.4g}: " + ", ".join(parts))
    return lines
