"""Shifted-lognormal weak-lensing convergence maps: the fast Monte Carlo baseline for κ (CosmoGAN's maps).

A lognormal field (Coles & Jones 1991) with a shift λ reproduces the one-point PDF of the convergence much better
than a Gaussian (Hilbert, Hartlap & Schneider 2011); Xavier, Abdalla & Joachimi (2016) give the two-point recipe
used here. For a map of N×N pixels of side L rad (Δ = L/N), everything on the discrete periodic grid the FFT
synthesis realises, so the moments below are those of the *pixelised* field, not of the continuum:

1. C_ℓ^κ from ``limber_convergence_cl`` (Halofit), tabulated on a log grid and interpolated in log-log to the FFT
   modes ℓ = 2π|n|/L; C(0) = 0. Target pixel variance σ_κ² = Σ_n C(ℓ_n)/L², correlation
   ξ_κ(r) = IFFT[C]/Δ² (numpy's 1/N² normalisation in the inverse).
2. The Gaussian field g has ξ_g = ln(1 + ξ_κ/λ²) and power C_g = Δ²·FFT[ξ_g]. C_g can come out negative (a
   lognormal field with arbitrary ξ_κ need not exist); negative modes are clipped to 0. At the defaults only the
   ℓ = 0 mode is negative — Σ_x ξ_κ = 0 and ln(1+u) ≤ u force Σ_x ξ_g ≤ 0 — and the clipped power is 1.4·10⁻⁵
   of σ_g² (``LognormalModel.clipped_power_fraction``). C_g(0) = 0 also makes every map's mean of g exactly 0.
3. g = IRFFT[RFFT(w)·√C_g/Δ], w white N(0,1) per pixel (the recipe of shared/REFERENCE.md §2); its variance is
   σ_g² = Σ C_g/L², which is ln(1 + σ_κ²/λ²) plus the clipped power. We use this realised σ_g² in
   κ = λ[exp(g − σ_g²/2) − 1], so ⟨κ⟩ = 0 exactly in expectation and κ > −λ always; the map variance is then
   λ²(e^{σ_g²} − 1) (``LognormalModel.variance``, equal to σ_κ² up to the clipping) and the third moment
   ⟨κ³⟩ = 3σ_κ⁴/λ + σ_κ⁶/λ³ (``LognormalModel.third_moment``).

The shift λ defaults to the empty-beam convergence |κ_empty| = (3/2)Ω_m(H0/c)² ∫₀^χs dχ χ(χs−χ)/(χs a(χ)),
computed for the spec's cosmology and z_s (``empty_beam_shift``): 0.0588 for CosmoGAN's cosmology at z_s = 1
(REFERENCE: ≈ 0.059), 0.016 at z_s = 0.5, 0.117 at z_s = 1.5. It depends on Ω_m and h, not on σ8.

The per-map work (white noise, two FFTs, exp) runs in float32 — the model is built in float64 — with scipy.fft on
one worker, in chunks of about 2²⁰ pixels, numbers drawn from the given Generator in map order.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.fft

from hpcgen.physics.cosmology import (
    CosmologyParams,
    comoving_distance_mpc,
    limber_convergence_cl,
    scale_factor_at_distance,
)
from hpcgen.physics.map_statistics import ell_grid
from hpcgen.sim.cosmo_spec import CosmoMapSpec

_CL_TABLE_POINTS = 256
_CHUNK_PIXELS = 1 << 20  # maps per chunk = this / N²: keeps the FFT working set in cache-friendly tens of MB


def empty_beam_shift(params: CosmologyParams, z_source: float) -> float:
    """λ = |κ_empty(z_s)|, the convergence of a beam through an empty universe (the minimum κ), > 0."""
    chi_s = float(comoving_distance_mpc(params, z_source))
    chi = np.linspace(0.0, chi_s, 2049)
    integrand = chi * (chi_s - chi) / (chi_s * scale_factor_at_distance(params, chi))
    return float(1.5 * params.Omega_m * params.H0_over_c_per_mpc**2 * np.trapezoid(integrand, chi))


@dataclass(frozen=True, eq=False)
class LognormalModel:
    """The discrete two-point model of one ``CosmoMapSpec`` and shift; arrays are read-only, (N, N) in fft2 order.

    cl_kappa: C_ℓ^κ at the modes (C(0) = 0). xi_kappa: ξ_κ of the pixelised field, lag (i, j) pixels at [i, j].
    cl_gauss: C_ℓ of the Gaussian field g after clipping. variance_target: σ_κ² = ξ_κ(0) from the discrete C_ℓ.
    variance_gauss: σ_g² realised by the synthesis (after clipping). clipped_power_fraction: the negative power
    removed from C_g, as a fraction of σ_g².
    """

    spec: CosmoMapSpec
    shift: float
    cl_kappa: np.ndarray
    xi_kappa: np.ndarray
    cl_gauss: np.ndarray
    variance_target: float
    variance_gauss: float
    clipped_power_fraction: float

    @property
    def variance(self) -> float:
        """⟨κ²⟩ of the generated maps: λ²(e^{σ_g²} − 1)."""
        return self.shift**2 * math.expm1(self.variance_gauss)

    @property
    def third_moment(self) -> float:
        """⟨κ³⟩ = 3σ⁴/λ + σ⁶/λ³ with σ² = ``variance`` (shared/REFERENCE.md §2)."""
        s2, lam = self.variance, self.shift
        return 3.0 * s2**2 / lam + s2**3 / lam**3

    @property
    def skewness(self) -> float:
        return self.third_moment / self.variance**1.5

    def gaussian_amplitude(self) -> np.ndarray:
        """(N, N//2+1) float32 filter √C_g/Δ on the rfft2 modes."""
        n = self.spec.pixels
        return (np.sqrt(self.cl_gauss[:, : n // 2 + 1]) / self.spec.pixel_rad).astype(np.float32)


@functools.lru_cache(maxsize=8)
def lognormal_model(spec: CosmoMapSpec, shift: float | None = None) -> LognormalModel:
    """Build (once per spec and shift; pyccl takes ≈ 0.3 s) the discrete model of ``simulate_lognormal``."""
    lam = empty_beam_shift(spec.cosmology, spec.z_source) if shift is None else float(shift)
    if not (math.isfinite(lam) and lam > 0):
        raise ValueError(f"shift: expected a finite λ > 0, got {shift}")
    n, area = spec.pixels, spec.field_rad**2
    ell = ell_grid(n, spec.pixel_rad)
    ell_fund = 2.0 * math.pi / spec.field_rad
    table = np.geomspace(0.5 * ell_fund, 1.01 * ell.max(), _CL_TABLE_POINTS)
    log_cl = np.log(limber_convergence_cl(spec.cosmology, table, spec.z_source))
    cl = np.zeros_like(ell)
    nz = ell > 0
    cl[nz] = np.exp(np.interp(np.log(ell[nz]), np.log(table), log_cl))

    xi = scipy.fft.ifft2(cl).real * (n * n / area)
    if xi.min() <= -lam**2:
        raise ValueError(f"shift: λ = {lam:.4g} is too small for this field (min ξ_κ = {xi.min():.3g} ≤ −λ²); "
                         f"use λ > {math.sqrt(-xi.min()):.3g}")
    cl_g = scipy.fft.fft2(np.log1p(xi / lam**2)).real * (area / (n * n))
    negative = -cl_g[cl_g < 0].sum()
    cl_g = np.clip(cl_g, 0.0, None)
    var_g = float(cl_g.sum() / area)
    for a in (cl, xi, cl_g):
        a.setflags(write=False)
    return LognormalModel(spec=spec, shift=lam, cl_kappa=cl, xi_kappa=xi, cl_gauss=cl_g,
                          variance_target=float(xi[0, 0]), variance_gauss=var_g,
                          clipped_power_fraction=float(negative / area / var_g))


def simulate_lognormal(
    n_maps: int,
    spec: CosmoMapSpec,
    rng: np.random.Generator,
    shift: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``n_maps`` independent shifted-lognormal convergence maps, (n_maps, N, N) float32, N = ``spec.pixels``.

    shift: λ (κ > −λ); None = the empty-beam value for the spec's cosmology and z_s. The maps are periodic, have
    ⟨κ⟩ = 0, ⟨κ²⟩ = ``lognormal_model(spec, shift).variance`` and the pixelised ξ_κ of that model.
    ``progress(n_done)`` is called after each chunk. The result depends only on the inputs and the rng state, and
    the first k maps do not depend on ``n_maps`` ≥ k.
    """
    if int(n_maps) != n_maps or n_maps < 0:
        raise ValueError(f"n_maps: expected an integer >= 0, got {n_maps}")
    model = lognormal_model(spec, shift)
    n = spec.pixels
    amp = model.gaussian_amplitude()
    lam, half_var = np.float32(model.shift), np.float32(0.5 * model.variance_gauss)
    out = np.empty((int(n_maps), n, n), dtype=np.float32)
    chunk = max(1, _CHUNK_PIXELS // (n * n))
    for start in range(0, out.shape[0], chunk):
        stop = min(start + chunk, out.shape[0])
        w = rng.standard_normal((stop - start, n, n), dtype=np.float32)
        f = scipy.fft.rfft2(w, workers=1, overwrite_x=True)
        f *= amp
        g = scipy.fft.irfft2(f, s=(n, n), workers=1, overwrite_x=True)
        g -= half_var
        np.expm1(g, out=g)
        np.multiply(g, lam, out=out[start:stop])
        if progress is not None:
            progress(stop)
    return out
