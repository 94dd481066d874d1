"""Fidelity while training: rank 0 scores the generator on a held-out Monte Carlo file every K steps.

Calorimeter runs (:class:`FidelityMonitor`): :func:`hpcgen.fidelity.monitor.quick_score` of showers generated at
every other energy of the held-out file (so each energy gets half as many showers as the reference has, the size
its floors use). Convergence-map runs (:class:`CosmoFidelityMonitor`): :func:`hpcgen.fidelity.monitor.
quick_score_cosmo` of half as many generated maps as the held-out file holds (at most ``COSMO_MAX_MAPS``). Ising
runs (:class:`IsingFidelityMonitor`): :func:`hpcgen.fidelity.monitor.quick_score_ising` of as many generated
configurations at each temperature of the held-out file as it holds there (at most ``ISING_MAX_PER_T``): the targets
are absolute relative errors, so the generated sample should be no noisier than the reference.
Generation runs in eval mode under a forked torch RNG with a fixed seed: the same noise at every evaluation, and the
training RNG streams untouched, so a run with the monitor resumes as exactly as one without.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hpcgen.errors import UserError
from hpcgen.fidelity.calo import summarise
from hpcgen.fidelity.monitor import ISING_CLASSIFIER_CONFIGS, quick_score, quick_score_cosmo, quick_score_ising
from hpcgen.models import calo_sampler, cosmo_sampler, ising_sampler
from hpcgen.physics.shower_features import hit_threshold_gev

_CHUNK = 128
COSMO_MAX_MAPS = 512  # reference maps read from --eval-data (the monitor's cost grows with them)
ISING_MAX_PER_T = 1000  # reference configurations per temperature read from --eval-data
ISING_MIN_PER_T = 4  # two disjoint reference halves of >= 2 for the floors


def _fixed_noise_samples(generator: torch.nn.Module, seed: int, make_sampler, draw) -> np.ndarray:
    """``draw(sampler)`` with G in eval mode under a forked torch RNG seeded with ``seed`` (the same noise at every
    evaluation, the training streams untouched); ``make_sampler(noise_gen)`` builds the domain's sampler. G's mode
    is restored."""
    was_training = generator.training
    generator.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return draw(make_sampler(torch.Generator().manual_seed(seed)))
    finally:
        generator.train(was_training)


class FidelityMonitor:
    def __init__(self, path: Path, image_shape, image_scale: float, seed: int = 0) -> None:
        from hpcgen.data.calo_file import open_calo

        with open_calo(path, check_cells=False) as f:
            if tuple(f.geometry.shape) != tuple(image_shape):
                raise UserError(f"--eval-data: {path} has cells {tuple(f.geometry.shape)}, the training data "
                                f"{tuple(image_shape)}; give a held-out file of the same calorimeter")
            self.geometry = f.geometry
            self.threshold_gev = hit_threshold_gev(f.geometry)
            self.ref = summarise(f.ecal, f.energy_gev, f.geometry, self.threshold_gev, 256, f"--eval-data {path}")
        self.energies = np.asarray(self.ref.energy_gev[::2], dtype=np.float32)
        self.image_scale = float(image_scale)
        self.seed = int(seed)

    def generate(self, generator: torch.nn.Module, device: torch.device) -> np.ndarray:
        """(N, X, Y, Z) showers in GeV at the monitor's energies, from fixed noise; G's mode is restored."""
        e = self.energies
        return _fixed_noise_samples(
            generator, self.seed, lambda gen: calo_sampler(generator, {"image_scale": self.image_scale}, device, gen),
            lambda sample: np.concatenate([sample(e[s:s + _CHUNK]) for s in range(0, len(e), _CHUNK)]))

    def score(self, generator: torch.nn.Module, device: torch.device) -> dict:
        showers = self.generate(generator, device)
        test = summarise(showers, self.energies.astype(np.float64), self.geometry, self.threshold_gev, 256,
                         "generated (monitor)")
        return quick_score(self.ref, test, seed=self.seed)


class CosmoFidelityMonitor:
    def __init__(self, path: Path, model_options: dict, pixel_rad: float, seed: int = 0) -> None:
        from hpcgen.data.cosmo_file import open_cosmo

        image_size = int(model_options["image_size"])
        with open_cosmo(path) as f:
            if f.image_shape != (image_size, image_size):
                raise UserError(f"--eval-data: {path} has {f.image_shape[0]}×{f.image_shape[1]} maps, the training "
                                f"data {image_size}×{image_size}; give held-out maps of the same size")
            pix = np.radians(float(f.h5.attrs["pixel_arcmin"]) / 60.0)
            if not np.isclose(pix, pixel_rad, rtol=1e-6):
                raise UserError(f"--eval-data: {path} has {np.degrees(pix) * 60:.4g}′ pixels, the training data "
                                f"{np.degrees(pixel_rad) * 60:.4g}′; give held-out maps of the same field")
            n = min(len(f), COSMO_MAX_MAPS)
            if n < 4:
                raise UserError(f"--eval-data: {path} holds {len(f)} maps; the monitor needs at least 4")
            sigma8 = np.unique(f.sigma8[:n])
            if sigma8.size != 1:
                raise UserError(f"--eval-data: {path} holds maps at {sigma8.size} values of σ8; the monitor "
                                "compares one cosmology")
            self.ref = np.asarray(f.kappa[:n], dtype=np.float32)
        self.sigma8, self.pixel_rad, self.seed = float(sigma8[0]), float(pixel_rad), int(seed)
        self.model_options = dict(model_options)

    def generate(self, generator: torch.nn.Module, device: torch.device) -> np.ndarray:
        """(N/2, n, n) κ maps from fixed noise; G's mode is restored."""
        n = len(self.ref) // 2
        return _fixed_noise_samples(
            generator, self.seed, lambda gen: cosmo_sampler(generator, self.model_options, device, gen, self.sigma8),
            lambda sample: np.concatenate([sample(min(_CHUNK, n - s)) for s in range(0, n, _CHUNK)]))

    def score(self, generator: torch.nn.Module, device: torch.device) -> dict:
        return quick_score_cosmo(self.ref, self.generate(generator, device), self.pixel_rad, seed=self.seed)


class IsingFidelityMonitor:
    """Scores an Ising generator against the held-out Monte Carlo configurations at every temperature they hold,
    which must lie within the training data's temperature range (the monitor measures fidelity where the GAN was
    trained, not extrapolation)."""

    def __init__(self, path: Path, model_options: dict, train_temperatures, seed: int = 0) -> None:
        from hpcgen.data.ising_file import open_ising
        from hpcgen.fidelity.ising import summarise

        L = int(model_options["L"])
        lo, hi = float(np.min(train_temperatures)), float(np.max(train_temperatures))
        with open_ising(path) as f:
            if f.L != L:
                raise UserError(f"--eval-data: {path} holds {f.L}×{f.L} configurations, the training data {L}×{L}; "
                                "give held-out configurations of the same L")
            outside = [t for t in f.temperatures if not lo <= t <= hi]
            if outside:
                raise UserError(f"--eval-data: {path} has temperature {outside[0]:.6g} outside the training range "
                                f"[{lo:.6g}, {hi:.6g}] J/k_B; the monitor scores the GAN where it was trained")
            keep = []
            for t in f.temperatures:
                idx = np.flatnonzero(f.temperature == t)[:ISING_MAX_PER_T]
                if idx.size < ISING_MIN_PER_T:
                    raise UserError(f"--eval-data: {path} holds {idx.size} configurations at T = {t:.6g}; the "
                                    f"monitor needs at least {ISING_MIN_PER_T} per temperature")
                keep.append(idx)
            keep = np.sort(np.concatenate(keep))
            self.temperature = f.temperature[keep]
            spins = f.spins[keep] if keep.size < len(f) else f.spins[...]
        self.ref = summarise(spins, self.temperature, f"--eval-data {path}", ISING_CLASSIFIER_CONFIGS, seed)
        self.model_options, self.seed = dict(model_options), int(seed)

    def generate(self, generator: torch.nn.Module, device: torch.device) -> np.ndarray:
        """(N, L, L) int8 spins at the reference's temperatures (as many at each), from fixed noise; G's mode is
        restored."""
        t = self.temperature
        return _fixed_noise_samples(
            generator, self.seed, lambda gen: ising_sampler(generator, self.model_options, device, gen),
            lambda sample: np.concatenate([sample(t[s:s + _CHUNK]) for s in range(0, len(t), _CHUNK)]))

    def score(self, generator: torch.nn.Module, device: torch.device) -> dict:
        from hpcgen.fidelity.ising import summarise

        test = summarise(self.generate(generator, device), self.temperature, "generated (monitor)",
                         ISING_CLASSIFIER_CONFIGS, self.seed)
        return quick_score_ising(self.ref, test, seed=self.seed)
