"""Maps per second of the weak-lensing Monte Carlos and of the CosmoGAN generator, each with its fidelity.

The weak-lensing counterpart of :mod:`hpcgen.bench.throughput`: how much faster is CosmoGAN than the N-body it
replaces, *at what fidelity*? The reference Monte Carlo is the particle-mesh N-body with Born lensing ("pm",
:func:`hpcgen.sim.cosmo_pm.simulate_pm`, the generator of ``hpcgen simulate cosmo --generator pm``); the fast
baseline is the shifted-lognormal field ("lognormal", :func:`hpcgen.sim.cosmo_lognormal.simulate_lognormal`); the GAN
comes from a ``hpcgen train cosmo`` run directory. All three make maps of the same :class:`CosmoMapSpec` — pixels,
field, source redshift and cosmology of the GAN's training data (the checkpoint's ``data_meta``) — and the GAN draws
at the training data's σ8, as ``hpcgen generate`` does.

Every row carries its generator's fidelity against ``fidelity_n`` PM maps, computed on rank 0 by ``hpcgen
validate`` (:func:`hpcgen.jobs.validate_cosmo.validate_cosmo`, no plots): max |relative error| of the mean power
spectrum and χ² per degree of freedom of the mean spectra over the ℓ range the PM reference resolves
(``config["fidelity_ell_valid_range"]``: its box and particle resolution, and its particle shot noise below 10 % of
the signal, measured by :func:`hpcgen.sim.cosmo_pm.shot_noise`; docs/cosmo_validation.md), the max |relative error|
over all ℓ bins (labelled ``_full``), the largest two-sample KS statistic over the pixel-histogram bins and over the
peak-count thresholds (per-map values, across maps), and the separation power of the pooled pixel histograms. With
few maps these are noisy, so the result also holds a *fidelity floor* (``config["fidelity_floor"]``): a second,
independent PM sample of the same size against the first — what a perfect generator would score with this many
maps.

Timing as in the calorimeter benchmark: untimed warm-up, an untimed sizing batch (doubling until it takes a tenth of
``seconds``; one PM map at 64³ already does), then ``repeats`` timed batches (at least one map each), median with
min/max; the GAN at each batch size of ``gan_batches`` after one warm-up call. Under ``mpirun -n N`` every rank
measures at the same time and a row's samples/s is summed over ranks; fidelity is measured once, on rank 0.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hpcgen.bench.harness import rates, sized_batch, time_calls
from hpcgen.bench.throughput import (
    _row,
    check_throughput_config,
    finish_throughput,
    gan_scans,
    resolve_device,
    time_gan,
)
from hpcgen.bench.results import display_path
from hpcgen.errors import UserError
from hpcgen.seeding import stream

REFERENCE_MC = "pm"
MC_GENERATORS = (REFERENCE_MC, "lognormal")
LITERATURE = [
    {"quantity": "N-body + ray-tracing cost per independent 256² κ tile (512³ Gadget-2 runs, ~1e3-5e3 CPU-hours each)",
     "value": "O(1e3-1e4) CPU-s", "source": "docs/cosmo_validation.md [lit, estimate, unverified]"},
]
FIDELITY_KEYS = {
    "max_abs_rel_err_power_spectrum": "max over the valid ℓ bins (those the PM reference resolves) of "
                                      "|C̄_test/C̄_ref − 1| (mean spectra); None when no bin is valid",
    "chi2_per_dof_power_spectrum": "χ² of the mean spectra over the valid ℓ bins / their number",
    "max_abs_rel_err_power_spectrum_full": "max over all ℓ bins of |C̄_test/C̄_ref − 1|, also where the PM reference "
                                           "is noise- or resolution-limited",
    "ks_pixel_histogram": "largest two-sample KS statistic D over the pixel-histogram bins (per-map fractions)",
    "ks_peaks": "largest two-sample KS statistic D over the peak-count thresholds (per-map counts)",
    "S_pixel_histogram": "separation power of the pooled pixel histograms (0 identical, 1 disjoint)",
}
_MAX_BATCH_BYTES = 1 << 28  # cap of one timed MC batch's output (256 MB): a fast MC makes many maps per second


@dataclasses.dataclass
class CosmoThroughputConfig:
    """``hpcgen bench throughput --domain cosmo``; every field is a CLI flag of the same name."""

    out: Path
    checkpoint: Path
    pixels: int | None = None  # None = the checkpoint's image size (the only size its GAN makes)
    pm_particles_side: int = 64  # PMConfig.n_particles_side
    pm_steps: int = 20  # PMConfig.n_steps
    pm_plane_mesh: int | None = None  # PMConfig.plane_mesh_side (None = its default, 2·mesh)
    gan_batches: tuple[int, ...] = (1, 4, 16, 64)
    device: str = "auto"  # the GAN's device: auto (a GPU if torch sees one) | cpu | cuda; the Monte Carlos run on CPU
    threads: tuple[int, ...] = ()  # CPU thread counts to scan the GAN over (at its largest batch); () = no scan
    seconds: float = 1.0  # target length of one timed batch
    repeats: int = 3
    fidelity_n: int = 16  # maps per generator for the fidelity (PM: ~2 s per map at 64³ on one CPU core)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pixels is not None and (self.pixels < 16 or self.pixels % 16):
            raise UserError(f"--pixels: expected a multiple of 16 (CosmoGAN's map sides), got {self.pixels}")
        if self.pm_particles_side < 4:
            raise UserError(f"--pm-particles-side: expected >= 4 particles per side, got {self.pm_particles_side}")
        if self.pm_steps < 1:
            raise UserError(f"--pm-steps: expected >= 1 kick-drift-kick steps, got {self.pm_steps}")
        if self.fidelity_n < 2:
            raise UserError(f"--fidelity-n: expected >= 2 maps per generator (validation needs a map-to-map spread), "
                            f"got {self.fidelity_n}")
        if self.seed < 0:
            raise UserError(f"--seed: expected >= 0, got {self.seed}")
        check_throughput_config(self, "cosmo")


def _map_spec(meta: dict, pixels: int):
    """The CosmoMapSpec of the GAN's training data at ``pixels`` (what simulate_cosmo would be given)."""
    from hpcgen.physics.cosmology import CosmologyParams
    from hpcgen.sim.cosmo_spec import CosmoMapSpec

    names = {f.name for f in dataclasses.fields(CosmologyParams)}
    cosmology = CosmologyParams(**{k: v for k, v in json.loads(meta["cosmology"]).items() if k in names})
    return CosmoMapSpec(pixels=pixels, field_deg=float(meta["field_deg"]), z_source=float(meta["z_source"]),
                        cosmology=cosmology)


def _pm_config(cfg: CosmoThroughputConfig, spec):
    """PMConfig of the reference; the box grows beyond its 256 Mpc default only if the map would not fit in it."""
    from hpcgen.physics.cosmology import comoving_distance_mpc
    from hpcgen.sim.cosmo_pm import PMConfig, check_pm_config

    extent = float(comoving_distance_mpc(spec.cosmology, spec.z_source)) * spec.field_rad
    pm = PMConfig(n_particles_side=cfg.pm_particles_side, n_steps=cfg.pm_steps, plane_mesh_side=cfg.pm_plane_mesh)
    if extent > pm.box_mpc:
        pm = dataclasses.replace(pm, box_mpc=float(math.ceil(extent)))
    check_pm_config(spec, pm)
    return pm


def _generators(cfg: CosmoThroughputConfig, device: torch.device, rank: int):
    """(name → (kind, make(n, rng) -> (n, N, N) κ, flops per sample or None), map spec, PMConfig)."""
    from hpcgen.jobs.generate import load_generator
    from hpcgen.models import cosmo_sampler, flops_per_sample
    from hpcgen.sim.cosmo_lognormal import simulate_lognormal
    from hpcgen.sim.cosmo_pm import simulate_pm

    g, ckpt = load_generator(Path(cfg.checkpoint), device)  # one-line errors for an unusable checkpoint
    if ckpt["config"]["domain"] != "cosmo":
        raise UserError(f"--checkpoint: {cfg.checkpoint} is a {ckpt['config']['domain']} run; "
                        "throughput --domain cosmo needs a CosmoGAN run (`hpcgen train cosmo`)")
    size = int(ckpt["model_options"]["image_size"])
    if cfg.pixels is not None and cfg.pixels != size:
        raise UserError(f"--pixels: the GAN of {cfg.checkpoint} makes {size}×{size} maps, got {cfg.pixels}; "
                        f"leave --pixels out or give {size}")
    meta = ckpt["data_meta"]
    spec = _map_spec(meta, size)
    pm = _pm_config(cfg, spec)
    sigma8 = spec.cosmology.sigma8
    noise_gen = torch.Generator().manual_seed(int(stream(cfg.seed, 4, rank).integers(0, 2**62)))
    gan = cosmo_sampler(g, ckpt["model_options"], device, noise_gen, sigma8)
    gens = {
        REFERENCE_MC: ("mc", lambda n, rng: simulate_pm(n, spec, pm, rng), None),
        "lognormal": ("mc", lambda n, rng: simulate_lognormal(n, spec, rng), None),
        f"gan:{ckpt['checkpoint_id']}": ("gan", lambda n, rng: gan(n), flops_per_sample(g, "cosmo")),
    }
    return gens, spec, pm, meta


def _time_mc(make, rng, cfg: CosmoThroughputConfig, pixels: int) -> tuple[int, list[float]]:
    # warm-up inside sized_batch covers pyccl tables, the cached lognormal model and the first torch calls
    n = sized_batch(lambda k: make(k, rng), cfg.seconds, max_n=max(1, _MAX_BATCH_BYTES // (4 * pixels * pixels)))
    return n, time_calls(lambda: make(n, rng), warmup=0, repeats=cfg.repeats)


def _fidelity_metrics(ref: np.ndarray, test: np.ndarray, pixel_rad: float, work: Path, test_label: str,
                      ref_limits, test_limits=None) -> tuple[dict, list | None]:
    """(the FIDELITY_KEYS of ``test`` against ``ref`` via hpcgen validate (metrics.json in ``work``, no plots), the
    valid ℓ range)."""
    from hpcgen.jobs.validate_cosmo import validate_cosmo

    m = validate_cosmo(ref, test, pixel_rad, work, ref_label=REFERENCE_MC, test_label=test_label, plots=False,
                       ref_limits=ref_limits, test_limits=test_limits)
    rel = [abs(x) for x in m["power_spectrum_rel_err"] if x is not None]  # None: a non-finite ratio (json_safe)
    valid = m["power_spectrum_valid"]
    chi2 = valid["chi2"]
    return {
        "max_abs_rel_err_power_spectrum": valid["max_abs_rel_err"],
        "chi2_per_dof_power_spectrum": chi2["chi2"] / chi2["dof"] if chi2 and chi2["dof"] else None,
        "max_abs_rel_err_power_spectrum_full": float(max(rel)) if rel else None,
        "ks_pixel_histogram": float(max(r["statistic"] for r in m["ks"]["pixel_histogram"])),
        "ks_peaks": float(max(r["statistic"] for r in m["ks"]["peaks"])),
        "S_pixel_histogram": m["separation_power"]["pixel_histogram"],
    }, m["ell_valid_range"]


def _fidelity(gens: dict, cfg: CosmoThroughputConfig, spec, pm, work: Path, log) -> tuple[dict, dict, list | None]:
    """(name → fidelity vs PM, fidelity floor = an independent PM sample vs the first, the valid ℓ range); rank 0."""
    from hpcgen.fidelity.cosmo import GeneratorLimits

    n = cfg.fidelity_n
    t0 = time.perf_counter()
    limits = GeneratorLimits.from_pm(spec, pm, stream(cfg.seed, 5))
    log(f"# PM shot noise and resolution: {limits.noise_n_maps} noise maps in {time.perf_counter() - t0:.3g} s, "
        f"resolved ℓ {limits.ell_min:.0f}–{limits.ell_max:.0f}")
    samples = {}
    for i, (name, (kind, make, _)) in enumerate(gens.items()):
        t0 = time.perf_counter()
        samples[name] = make(n, stream(cfg.seed, 1, i))
        log(f"# fidelity sample: {n} {name} maps in {time.perf_counter() - t0:.3g} s")
    ref = samples[REFERENCE_MC]
    out = {REFERENCE_MC: {k: 0.0 for k in FIDELITY_KEYS}}  # the reference against itself
    ell_valid = None
    for name, test in samples.items():
        if name != REFERENCE_MC:
            out[name], ell_valid = _fidelity_metrics(ref, test, spec.pixel_rad, work / name.replace(":", "_"), name,
                                                     limits)
    floor_maps = gens[REFERENCE_MC][1](n, stream(cfg.seed, 2))  # a second, independent reference sample
    floor, _ = _fidelity_metrics(ref, floor_maps, spec.pixel_rad, work / "floor", f"{REFERENCE_MC} (independent)",
                                 limits, limits)
    return out, floor, ell_valid


def run_cosmo_throughput(cfg: CosmoThroughputConfig, world, log=print) -> dict | None:
    """Measure every generator's maps/s with fidelity; rank 0 writes ``cfg.out`` and returns the result."""
    device = resolve_device(cfg.device)
    gens, spec, pm, meta = _generators(cfg, device, world.rank)
    log(f"# throughput at fidelity | cosmo | {world.size} rank(s) × 1 thread = {world.size} core(s) per generator | "
        f"{spec.pixels}² maps over {spec.field_deg:g}°, z_s {spec.z_source:g} | PM {pm.n_particles_side}³ × "
        f"{pm.n_steps} steps | {cfg.repeats} timed batches of ~{cfg.seconds:g} s after warm-up | "
        f"reference {REFERENCE_MC}")
    fidelity, floor, ell_valid = None, None, None
    if world.rank == 0:
        with tempfile.TemporaryDirectory() as tmp:
            fidelity, floor, ell_valid = _fidelity(gens, cfg, spec, pm, Path(tmp), log)
    rows = []
    rng = stream(cfg.seed, 3, world.rank)
    gan_name = next(k for k, v in gens.items() if v[0] == "gan")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)  # equal hardware: one core per rank for the Monte Carlos and the GAN alike
    try:
        for name, (kind, make, flops) in gens.items():
            world.barrier()  # every rank times the same generator at the same time
            if kind == "mc":
                n, secs = _time_mc(make, rng, cfg, spec.pixels)
            else:
                n = max(cfg.gan_batches)
                secs = time_gan(lambda b, make=make: make(b, rng), n, cfg, device)
            # maps have no primary energy: energy_gev None
            rows.append(_row(name, kind, None, n, rates(n, secs), world, flops,
                             device.type if kind == "gan" else "cpu"))
        _, make_gan, gan_flops = gens[gan_name]
        rows += gan_scans(gan_name, lambda b: make_gan(b, rng), gan_flops, cfg, device, world,
                          lambda b, r, t=1: _row(gan_name, "gan", None, b, r, world, gan_flops, device.type,
                                                 threads_per_rank=t))
    finally:
        torch.set_num_threads(threads_before)

    def config(peak: float) -> dict:
        return {"domain": "cosmo", "reference": REFERENCE_MC, "fidelity_n": cfg.fidelity_n,
                "map_spec": {"pixels": spec.pixels, "field_deg": spec.field_deg, "z_source": spec.z_source,
                             "pixel_arcmin": spec.pixel_arcmin, "cosmology": spec.cosmology.to_dict()},
                "sigma8": spec.cosmology.sigma8, "trained_on": meta.get("data_generator", ""),
                "pm": {"n_particles_side": pm.n_particles_side, "mesh_side": pm.mesh, "plane_mesh_side": pm.plane_mesh,
                       "box_mpc": pm.box_mpc,
                       "n_steps": pm.n_steps, "a_start": pm.a_start, "maps_per_realisation": pm.maps_per_realisation},
                "gan_batches": list(cfg.gan_batches), "seconds": cfg.seconds, "repeats": cfg.repeats,
                "seed": cfg.seed, "checkpoint": display_path(cfg.checkpoint), "ranks": world.size,
                "threads_per_rank": 1, "cores_per_generator": world.size, "matmul_peak_flops_per_s": peak,
                "fidelity_keys": FIDELITY_KEYS, "fidelity_floor": floor, "fidelity_ell_valid_range": ell_valid,
                "gan_device": str(device),
                "threads_scan": list(cfg.threads)}

    return finish_throughput(cfg, world, device, rows, fidelity=lambda row: fidelity[row["generator"]],
                             config=config, literature=LITERATURE, headline=headline, log=log)


def _fmt(x, spec: str) -> str:
    if x is None:  # keep the column: only the alignment and width of ``spec`` apply to the text
        return format("n/a", spec[: len(spec) - len(spec.lstrip("<>^0123456789"))])
    return format(x, spec)


def headline(result: dict) -> list[str]:
    """'Speed-up at fidelity' lines: every generator against the reference (main rows), then the fidelity floor."""
    rows = [r for r in result["rows"] if not r.get("scan")]
    ref_name = result["config"]["reference"]
    ref = next(r["samples_per_s"]["median"] for r in rows if r["generator"] == ref_name)
    lines = [(f"{'generator':<22} {'batch':>6} {'maps/s':>11} {'× ' + ref_name:>11} {'max|ΔC/C|':>10} "
              f"{'χ²/dof':>9} {'KS pix':>7} {'KS peaks':>8}")]

    def cols(f: dict) -> str:
        return (f"{_fmt(f['max_abs_rel_err_power_spectrum'], '>10.3g')} {_fmt(f['chi2_per_dof_power_spectrum'], '>9.3g')} "
                f"{_fmt(f['ks_pixel_histogram'], '>7.3f')} {_fmt(f['ks_peaks'], '>8.3f')}")

    for r in rows:
        rate = r["samples_per_s"]["median"]
        lines.append(f"{r['generator']:<22} {r['batch']:>6} {rate:>11.4g} {rate / ref:>11.4g} {cols(r['fidelity'])}")
    floor = result["config"].get("fidelity_floor")
    if floor:
        n = result["config"]["fidelity_n"]
        lines.append(f"{'(floor: ' + ref_name + ' vs ' + ref_name + ')':<22} {n:>6} {'':>11} {'':>11} {cols(floor)}")
    if "fidelity_ell_valid_range" in result["config"]:
        rng = result["config"]["fidelity_ell_valid_range"]
        lines.append(f"max|ΔC/C| and χ²/dof over the ℓ range the {ref_name} reference resolves: "
                     + (f"{rng[0]:.0f}–{rng[1]:.0f}" if rng else "none (n/a)"))
    return lines
