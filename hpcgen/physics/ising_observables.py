"""Observables of the 2D Ising model (J = 1, no field, k_B = 1): the one estimator of each (docs/ising.md).

Spins are int8 arrays (N, L, L) of ±1 on a periodic L×L lattice (a torus); every quantity is per site, and
temperatures are in units of J/k_B. With H = −Σ_⟨ij⟩ s_i s_j over the 2L² nearest-neighbour bonds:

- energy per site           e = H/L² = −(1/L²) Σ_x s_x (s_{x+ê1} + s_{x+ê2})
- magnetisation per site    m = (1/L²) Σ_x s_x, and |m|
- specific heat per site    C_v = L²·var(e)/T²                 (fluctuation-dissipation; var = ⟨e²⟩ − ⟨e⟩²)
- susceptibility per site   χ = L²·var(|m|)/T = L²(⟨m²⟩ − ⟨|m|⟩²)/T   — the finite-lattice |m| definition
  (Binder & Heermann, "Monte Carlo Simulation in Statistical Physics", Springer). On a finite torus ⟨m⟩ = 0 by
  symmetry, so var(m) = ⟨m²⟩ has no peak near T_c; with |m| it has one. Far above T_c, where m is Gaussian, this χ
  is (1 − 2/π) × L²⟨m²⟩/T, the latter being the L → ∞ susceptibility there.
- Binder cumulant           U4 = 1 − ⟨m⁴⟩/(3⟨m²⟩²)             (Binder 1981, Z. Phys. B 43, 119)
- spin–spin correlation     G(r) = ⟨s_x s_{x+r ê}⟩ along both axes, r = 0..L/2 (not connected: → ⟨m²⟩ at large r
  below T_c).

Variances are the population ones (ddof = 0) of the given samples; their errors for correlated samples come from
``hpcgen.physics.autocorrelation.blocked_jackknife``. The lattice sums are numba kernels that the simulators
(``hpcgen.sim.ising``) call after every sweep, so the time series of a chain and the estimators here are the same
code.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def lattice_bond_sum(s) -> int:
    """Σ over the 2L² bonds of s_x s_y for one periodic (L, L) lattice: −H for J = 1."""
    rows, cols = s.shape
    total = 0
    for i in range(rows):
        down = i + 1 if i + 1 < rows else 0
        for j in range(cols):
            right = j + 1 if j + 1 < cols else 0
            total += s[i, j] * (s[down, j] + s[i, right])
    return total


@njit(cache=True)
def lattice_spin_sum(s) -> int:
    """Σ_x s_x of one (L, L) lattice: L² × the magnetisation per site."""
    total = 0
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            total += s[i, j]
    return total


@njit(cache=True)
def _bond_sums(spins, out) -> None:
    for k in range(spins.shape[0]):
        out[k] = lattice_bond_sum(spins[k])


def _as_spins(spins: np.ndarray) -> np.ndarray:
    spins = np.asarray(spins)
    if spins.ndim != 3 or spins.shape[1] != spins.shape[2]:
        raise ValueError(f"spins must be an (N, L, L) array, got shape {spins.shape}")
    return spins


def energy_per_site(spins: np.ndarray) -> np.ndarray:
    """e = H/L² of each configuration (N,), float64."""
    spins = _as_spins(spins)
    bonds = np.empty(spins.shape[0], dtype=np.int64)
    _bond_sums(np.ascontiguousarray(spins), bonds)
    return -bonds / float(spins.shape[1] * spins.shape[2])


def magnetisation_per_site(spins: np.ndarray) -> np.ndarray:
    """m = Σ s / L² of each configuration (N,), float64 (signed)."""
    spins = _as_spins(spins)
    return spins.sum(axis=(1, 2), dtype=np.int64) / float(spins.shape[1] * spins.shape[2])


def abs_magnetisation_per_site(spins: np.ndarray) -> np.ndarray:
    """|m| of each configuration (N,), float64."""
    return np.abs(magnetisation_per_site(spins))


def specific_heat_per_site(e: np.ndarray, temperature: float, L: int) -> float:
    """C_v = L²·var(e)/T² from samples of the energy per site at one temperature."""
    e = np.asarray(e, dtype=np.float64)
    return float(L * L * e.var() / temperature**2)


def susceptibility_per_site(abs_m: np.ndarray, temperature: float, L: int) -> float:
    """χ = L²·var(|m|)/T from samples of |m| at one temperature (the finite-lattice |m| definition)."""
    abs_m = np.abs(np.asarray(abs_m, dtype=np.float64))
    return float(L * L * abs_m.var() / temperature)


def binder_cumulant(m: np.ndarray) -> float:
    """U4 = 1 − ⟨m⁴⟩/(3⟨m²⟩²) from samples of m (or |m|: only even powers enter)."""
    m2 = np.asarray(m, dtype=np.float64) ** 2
    return float(1.0 - (m2 * m2).mean() / (3.0 * m2.mean() ** 2))


def spin_correlation(spins: np.ndarray) -> np.ndarray:
    """G(r) = ⟨s_x s_{x+r ê}⟩, r = 0..L//2, averaged over sites, both axes and the N configurations (float64)."""
    spins = _as_spins(spins)
    L = spins.shape[1]
    g = np.empty(L // 2 + 1)
    for r in range(L // 2 + 1):  # products of ±1 stay int8; means accumulate in float64
        g[r] = 0.5 * ((spins * np.roll(spins, -r, axis=1)).mean(dtype=np.float64)
                      + (spins * np.roll(spins, -r, axis=2)).mean(dtype=np.float64))
    return g
