"""Exact results of the 2D Ising model (J = 1, no field, k_B = 1; temperatures in J/k_B; per site): the references the
Monte Carlo is checked against (docs/ising.md).

- ``T_C`` = 2/ln(1 + √2) ≈ 2.269185 (Kramers & Wannier 1941; Onsager 1944, Phys. Rev. 65, 117).
- ``onsager_energy_per_site``: the L → ∞ energy per site (Onsager 1944),
  u = −coth 2K [1 + (2/π)(2 tanh² 2K − 1) K₁(κ)], K = 1/T, κ = 2 sinh 2K / cosh² 2K, K₁ the complete elliptic
  integral of the first kind (modulus κ); u(T_c) = −√2.
- ``yang_magnetisation``: the L → ∞ spontaneous magnetisation m = (1 − sinh(2K)⁻⁴)^{1/8} below T_c, 0 above
  (Yang 1952, Phys. Rev. 85, 808).
- ``enumeration_observables``: exact finite-lattice ⟨e⟩, ⟨|m|⟩, C_v, χ, U4 (the definitions of
  ``hpcgen.physics.ising_observables``) from the density of states g(E, M) of an m×n torus counted over all 2^{mn}
  configurations (m·n ≤ 20; L = 4 is 2^16 = 65 536 states).
- ``kaufman_partition``: the exact partition function of an m×n torus (Kaufman 1949, Phys. Rev. 76, 1232; in the
  notation of Ferdinand & Fisher 1969, Phys. Rev. 185, 832), with ln Z, the energy and the specific heat per
  site from its analytic first and second K-derivatives:

      Z = ½ (2 sinh 2K)^{mn/2} Σ_{i=1}^{4} Z_i,
      Z_1 = Π_{r=0}^{n−1} 2 cosh(½ m γ_{2r+1}),   Z_2 = Π_{r=0}^{n−1} 2 sinh(½ m γ_{2r+1}),
      Z_3 = Π_{r=0}^{n−1} 2 cosh(½ m γ_{2r}),     Z_4 = Π_{r=0}^{n−1} 2 sinh(½ m γ_{2r}),
      cosh γ_k = cosh 2K coth 2K − cos(πk/n) (γ_k > 0, k ≥ 1),   γ_0 = 2K + ln tanh K (< 0 above T_c).

  The sign of γ_0 matters: above T_c the factor 2 sinh(½ m γ_0) of Z_4 is negative (taking |γ_0| breaks the
  check against the enumeration above T_c). The products are carried in logarithms (each factor scaled by
  e^{−|x|}) so that they neither overflow for large lattices nor lose the vanishing factor at T_c. Checked
  against the enumeration to 1e-10 (tests/test_ising_mc.py) for 4×4 and for rectangles, which also fixes which
  side is m and which is n.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))
MAX_ENUMERATED_SITES = 20


def onsager_energy_per_site(temperature):
    """Onsager's L → ∞ energy per site u(T) (array-like T > 0; returns float or array)."""
    t = np.asarray(temperature, dtype=np.float64)
    if np.any(t <= 0):
        raise ValueError("temperature must be > 0")
    k2 = 2.0 / t
    kappa = 2.0 * np.sinh(k2) / np.cosh(k2) ** 2
    factor = 2.0 * np.tanh(k2) ** 2 - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        elliptic = factor * special.ellipk(np.minimum(kappa, 1.0) ** 2)  # scipy's ellipk takes the parameter κ²
    elliptic = np.where(np.isfinite(elliptic), elliptic, 0.0)  # κ = 1 only at T_c, where factor·K₁ → 0
    u = -(1.0 / np.tanh(k2)) * (1.0 + (2.0 / np.pi) * elliptic)
    return float(u) if u.ndim == 0 else u


def yang_magnetisation(temperature):
    """Yang's L → ∞ spontaneous magnetisation per site (0 at and above T_c)."""
    t = np.asarray(temperature, dtype=np.float64)
    if np.any(t <= 0):
        raise ValueError("temperature must be > 0")
    with np.errstate(over="ignore"):
        base = 1.0 - np.sinh(2.0 / t) ** -4.0
    m = np.where(t < T_C, np.clip(base, 0.0, None) ** 0.125, 0.0)
    return float(m) if m.ndim == 0 else m


@dataclass(frozen=True)
class ExactObservables:
    """Exact finite-lattice values per site at one temperature (definitions of ``ising_observables``)."""

    temperature: float
    energy_per_site: float
    abs_magnetisation_per_site: float
    specific_heat_per_site: float
    susceptibility_per_site: float
    binder_cumulant: float
    log_partition: float


@functools.lru_cache(maxsize=8)
def density_of_states(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E, M, count): the number of configurations of a periodic rows×cols lattice with energy E and
    magnetisation M (totals, integers), by enumerating all 2^(rows·cols) of them."""
    n = rows * cols
    if rows < 3 or cols < 3 or n > MAX_ENUMERATED_SITES:
        raise ValueError(f"enumeration needs sides >= 3 and at most {MAX_ENUMERATED_SITES} sites, got {rows}x{cols}")
    states = np.arange(2**n, dtype=np.int64)
    s = (((states[:, None] >> np.arange(n)) & 1) * 2 - 1).astype(np.int8).reshape(-1, rows, cols)
    bonds = (s * np.roll(s, -1, axis=1)).sum(axis=(1, 2), dtype=np.int64) + \
        (s * np.roll(s, -1, axis=2)).sum(axis=(1, 2), dtype=np.int64)
    spin = s.sum(axis=(1, 2), dtype=np.int64)
    pairs, counts = np.unique(np.stack([-bonds, spin], axis=1), axis=0, return_counts=True)
    return pairs[:, 0], pairs[:, 1], counts.astype(np.float64)


def enumeration_observables(temperature: float, rows: int = 4, cols: int | None = None) -> ExactObservables:
    """Exact ⟨e⟩, ⟨|m|⟩, C_v, χ, U4 and ln Z of a rows×cols torus at ``temperature`` by exact enumeration."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    cols = rows if cols is None else cols
    energy, spin, count = density_of_states(rows, cols)
    n = rows * cols
    beta = 1.0 / temperature
    shift = energy.min()
    w = count * np.exp(-beta * (energy - shift))
    z = w.sum()
    p = w / z
    e = energy.astype(np.float64)
    m = np.abs(spin.astype(np.float64))
    mean_e, mean_e2 = (p * e).sum(), (p * e * e).sum()
    mean_m, mean_m2, mean_m4 = (p * m).sum(), (p * m**2).sum(), (p * m**4).sum()
    return ExactObservables(
        temperature=float(temperature),
        energy_per_site=float(mean_e / n),
        abs_magnetisation_per_site=float(mean_m / n),
        specific_heat_per_site=float((mean_e2 - mean_e**2) / (n * temperature**2)),
        susceptibility_per_site=float((mean_m2 - mean_m**2) / (n * temperature)),
        binder_cumulant=float(1.0 - mean_m4 / (3.0 * mean_m2**2)),
        log_partition=float(math.log(z) - beta * shift),
    )


@dataclass(frozen=True)
class KaufmanResult:
    """ln Z, energy and specific heat per site of an m×n torus at one temperature (Kaufman 1949)."""

    temperature: float
    log_partition: float
    energy_per_site: float
    specific_heat_per_site: float


def _positive_factors(x, x1, x2, hyper: str):
    """Σ ln f, Σ f'/f, Σ (f''/f − (f'/f)²) of the factors f = 2 cosh x or 2 sinh x, x > 0 (x', x'' = K-derivatives)."""
    e = np.exp(-2.0 * x)
    if hyper == "cosh":
        log_f, ratio = x + np.log1p(e), np.tanh(x)
    else:
        log_f, ratio = x + np.log1p(-e), 1.0 / np.tanh(x)
    a = ratio * x1
    b_minus_a2 = x1**2 * (1.0 - ratio**2) + ratio * x2
    return float(log_f.sum()), float(a.sum()), float(b_minus_a2.sum())


def _scaled_factor(x: float, x1: float, x2: float, hyper: str) -> tuple[float, float, float]:
    """(g, g', g'') × e^{−|x|} for g = 2 cosh x or 2 sinh x, any sign of x (the k = 0 factor)."""
    e = math.exp(-2.0 * abs(x))
    ch, sh = 1.0 + e, math.copysign(-math.expm1(-2.0 * abs(x)), x)
    if hyper == "cosh":
        return ch, sh * x1, ch * x1**2 + sh * x2
    return sh, ch * x1, sh * x1**2 + ch * x2


def kaufman_partition(temperature: float, rows: int, cols: int | None = None) -> KaufmanResult:
    """Exact ln Z, ⟨e⟩ and C_v per site of a periodic rows×cols lattice (m = rows, n = cols in Kaufman's Z)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    m, n = int(rows), int(cols if cols is not None else rows)
    if m < 1 or n < 1:
        raise ValueError(f"lattice sides must be >= 1, got {m}x{n}")
    k = 1.0 / temperature
    s2, c2 = math.sinh(2 * k), math.cosh(2 * k)
    c = c2 * c2 / s2  # cosh 2K coth 2K and its K-derivatives
    c1 = 2.0 * c2 * (1.0 - 1.0 / s2**2)
    c2_ = 4.0 * s2 - 4.0 / s2 + 8.0 * c2**2 / s2**3
    half_m = 0.5 * m

    def gamma(ks: np.ndarray):  # γ_k, γ_k', γ_k'' for k >= 1 (γ_k > 0)
        ch = c - np.cos(np.pi * ks / n)
        g = np.arccosh(ch)
        sh = np.sinh(g)
        g1 = c1 / sh
        return g, g1, (c2_ - ch * g1**2) / sh

    x0 = half_m * (2 * k + math.log(math.tanh(k)))  # ½ m γ_0 and its K-derivatives
    x0_1 = half_m * (2.0 + 2.0 / s2)
    x0_2 = half_m * (-4.0 * c2 / s2**2)
    odd, even = gamma(2.0 * np.arange(n) + 1), gamma(2.0 * np.arange(1, n))
    terms = []  # (log scale λ_i, Z_i e^{−λ_i}, Z_i' e^{−λ_i}, Z_i'' e^{−λ_i})
    for hyper in ("cosh", "sinh"):
        lam, a, b = _positive_factors(*(half_m * g for g in odd), hyper)
        terms.append((lam, 1.0, a, a * a + b))
    for hyper in ("cosh", "sinh"):
        lam, a, b = _positive_factors(*(half_m * g for g in even), hyper)
        g0, g1, g2 = _scaled_factor(x0, x0_1, x0_2, hyper)
        terms.append((lam + abs(x0), g0, g1 + g0 * a, g2 + 2 * g1 * a + g0 * (a * a + b)))
    lam_max = max(t[0] for t in terms)
    s = s1 = s2nd = 0.0
    for lam, z, z1, z2 in terms:
        w = math.exp(lam - lam_max)
        s, s1, s2nd = s + w * z, s1 + w * z1, s2nd + w * z2
    sites = m * n
    log_z = -math.log(2.0) + 0.5 * sites * math.log(2.0 * s2) + lam_max + math.log(s)
    d1 = sites * c2 / s2 + s1 / s
    d2 = -2.0 * sites / s2**2 + s2nd / s - (s1 / s) ** 2
    return KaufmanResult(float(temperature), log_z, -d1 / sites, k * k * d2 / sites)
