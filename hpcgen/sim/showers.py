"""The one container every calorimeter simulator returns (arrays only; no files, no MPI)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class CaloShowers:
    """A batch of N showers.

    ecal_gev: (N, nx, ny, n_layers) float32 visible (active-layer) energy per cell, GeV — the 3DGAN layout.
    energy_gev: (N,) float32 primary energy, GeV.
    tallies: per-shower extras of a generator, each (N,) or (N, ...) — e.g. the cascade's ``passive_gev`` and
    ``leakage_gev`` (energy-conservation bookkeeping) or GFlash's sampled ``T_x0`` and ``alpha``.
    """

    ecal_gev: np.ndarray
    energy_gev: np.ndarray
    tallies: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.ecal_gev.ndim == 4 and self.ecal_gev.dtype == np.float32, self.ecal_gev.shape
        assert self.energy_gev.shape == (self.ecal_gev.shape[0],), (self.energy_gev.shape, self.ecal_gev.shape)

    def __len__(self) -> int:
        return int(self.energy_gev.shape[0])
