"""Fidelity while training: rank 0 scores the generator on a held-out Monte Carlo file every K steps.

Calorimeter runs (:class:`FidelityMonitor`): :func:`hpcgen.fidelity.monitor.quick_score` of showers generated at
every other energy of the held-out file (so each energy gets half as many showers as the reference has, the size
its floors use). Convergence-map runs (:class:`CosmoFidelityMonitor`): :func:`hpcgen.fidelity.monitor.
quick_score_cosmo` of half as many generated maps as the held-out file holds (at most ``COSMO_MAX_MAPS``).
Generation runs in eval mode under a forked torch RNG with a fixed seed: the same noise at every evaluation, and the
training RNG streams untouched, so a run with the monitor resumes as exactly as one without.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hpcgen.errors import UserError
from hpcgen.fidelity.calo import summarise
from hpcgen.fidelity.monitor import quick_score, quick_score_cosmo
from hpcgen.models import calo_sampler, cosmo_sampler
from hpcgen.physics.shower_features import hit_threshold_gev

_CHUNK = 128
COSMO_MAX_MAPS = 512  # reference maps read from --eval-data (the monitor's cost grows with them)


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
        was_training = generator.training
        generator.eval()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                sample = calo_sampler(generator, {"image_scale": self.image_scale}, device,
                                      torch.Generator().manual_seed(self.seed))
                return np.concatenate([sample(self.energies[s:s + _CHUNK])
                                       for s in range(0, len(self.energies), _CHUNK)])
        finally:
            generator.train(was_training)

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
        was_training = generator.training
        generator.eval()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                sample = cosmo_sampler(generator, self.model_options, device,
                                       torch.Generator().manual_seed(self.seed), self.sigma8)
                n = len(self.ref) // 2
                return np.concatenate([sample(min(_CHUNK, n - s)) for s in range(0, n, _CHUNK)])
        finally:
            generator.train(was_training)

    def score(self, generator: torch.nn.Module, device: torch.device) -> dict:
        return quick_score_cosmo(self.ref, self.generate(generator, device), self.pixel_rad, seed=self.seed)
