"""Fidelity while training: rank 0 scores the generator on a held-out Monte Carlo file every K steps.

The score is :func:`hpcgen.fidelity.monitor.quick_score` of showers generated at every other energy of the
held-out file (so each energy gets half as many showers as the reference has, the size its floors use). Generation
runs in eval mode under a forked torch RNG with a fixed seed: the same noise at every evaluation, and the training
RNG streams untouched, so a run with the monitor resumes as exactly as one without.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hpcgen.errors import UserError
from hpcgen.fidelity.calo import summarise
from hpcgen.fidelity.monitor import quick_score
from hpcgen.models import calo_sampler
from hpcgen.physics.shower_features import hit_threshold_gev

_CHUNK = 128


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
