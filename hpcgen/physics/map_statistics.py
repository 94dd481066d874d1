"""Statistics of weak-lensing convergence maps and their two-sample comparisons (docs/cosmo_validation.md).

The CosmoGAN validation set (Mustafa et al. 2017, arXiv:1706.02390): pixel-intensity histogram, power spectrum
(:func:`hpcgen.ops.radial_power_spectrum`, the house's one estimator), peak counts and the Minkowski functionals
V0, V1, V2 at thresholds ν (as used for lensing maps by Kratochvil, Lim, Wang et al. 2012, PRD 85, 103513), each
compared per bin/threshold across maps with a two-sample KS test, plus a χ² of the mean spectra. Numpy only, maps
(n, H, W) float; a statistic is computed per map so that callers can stream maps in chunks.

Thresholds: ν is in units of σ — each map's own pixel standard deviation, or a given σ (e.g. the reference
sample's, so that an amplitude change shows up). The level is κ_t = ν·σ: κ has zero mean by construction and the
map mean is not subtracted, as in CosmoGAN and Kratochvil et al.

Minkowski functionals: the gradient (Koenderink) estimator of Schmalzing & Gorski 1998 (MNRAS 297, 355), eqs. for
2-D maps, with central finite differences on the (H−2)×(W−2) interior pixels and δ(u − κ_t) replaced by a top
hat of width Δν·σ in κ:

    V0(ν) = ⟨Θ(u − κ_t)⟩                                       area fraction above the level,
    V1(ν) = ¼ ⟨δ(u − κ_t) |∇u|⟩                                 ¼ × contour length per unit area,
    V2(ν) = (1/2π) ⟨δ(u − κ_t) (2u_x u_y u_xy − u_x² u_yy − u_y² u_xx)/|∇u|²⟩   Euler characteristic per unit area

(⟨·⟩ = mean over pixels). Lengths are in units of ``pixel_size`` (1 = pixels): V1 per length, V2 per area.
For a Gaussian field with pixel σ0 and σ1² = ⟨|∇u|²⟩ (Schmalzing & Gorski 1998; Matsubara 2003):
V0 = ½ erfc(ν/√2), V1 = (σ1/σ0) e^{−ν²/2}/(8√2), V2 = (σ1/σ0)² ν e^{−ν²/2}/(2(2π)^{3/2}).

Smoothing (:func:`gaussian_smooth`): peaks and Minkowski functionals of lensing maps are measured on maps smoothed
with a Gaussian, W(θ) = exp(−θ²/2σ²)/(2πσ²), FWHM = 2√(2 ln 2)·σ ≈ 2.355σ (docs/cosmo_validation.md for the scales
of the literature and the convention each paper uses).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special, stats

from hpcgen.physics import distances

DEFAULT_NU = np.linspace(-3.0, 5.0, 33)  # thresholds in σ; spacing 0.25 = the default δ-window width


# --- Gaussian random fields ---------------------------------------------------------------------------------------
def ell_grid(pixels: int, pixel_rad: float) -> np.ndarray:
    """|ℓ| = 2π|n|/L of every mode of an N×N FFT plane (numpy fftfreq order), shape (N, N)."""
    n = np.fft.fftfreq(pixels, 1.0 / pixels)
    return 2.0 * math.pi / (pixels * pixel_rad) * np.hypot(n[:, None], n[None, :])


def gaussian_field(cl_of_ell: Callable[[np.ndarray], np.ndarray] | np.ndarray, n_maps: int, pixels: int,
                   pixel_rad: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random maps with angular power spectrum C_ℓ (the recipe of docs/cosmo_validation.md).

    κ = Re IFFT[FFT(w)·√C(ℓ)/Δ] with w white N(0, 1) per pixel, Δ = ``pixel_rad``, ℓ = 2π|n|/L and C(0) = 0 (so
    every map has exactly zero mean). With the normalisation of :func:`hpcgen.ops.radial_power_spectrum` the maps
    have ⟨Ĉ(ℓ)⟩ = C(ℓ); the field is periodic on the N×N torus.

    Args:
        cl_of_ell: C(ℓ) (dimensionless, ≥ 0) as a vectorised callable of |ℓ| > 0 (never called at ℓ = 0; for a
            table use ``lambda l: np.interp(l, ell_tab, cl_tab)``), or an (N, N) array of C at :func:`ell_grid`.
        n_maps, pixels: output shape (n_maps, pixels, pixels).
        pixel_rad: pixel side Δ in radians.
        rng: numpy Generator; the maps are a deterministic function of its state.

    Returns:
        (n_maps, pixels, pixels) float64.
    """
    if int(n_maps) < 0 or int(pixels) < 2 or not pixel_rad > 0:
        raise ValueError(f"need n_maps >= 0, pixels >= 2 and pixel_rad > 0, got {n_maps}, {pixels}, {pixel_rad}")
    ell = ell_grid(pixels, pixel_rad)
    if callable(cl_of_ell):
        cl = np.zeros_like(ell)
        cl[ell > 0] = np.asarray(cl_of_ell(ell[ell > 0]), dtype=np.float64)
    else:
        cl = np.array(cl_of_ell, dtype=np.float64)
        if cl.shape != ell.shape:
            raise ValueError(f"a C_ell array must have the FFT plane's shape {ell.shape}, got {cl.shape}")
        cl[0, 0] = 0.0
    if not (np.all(np.isfinite(cl)) and np.all(cl >= 0)):
        raise ValueError("C_ell must be finite and >= 0 at every |ell| > 0 of the grid")
    # rfft/irfft: the product FFT(w)·√C is Hermitian (w real, C(ℓ) even in n), so irfft2 equals Re IFFT exactly.
    amp = (np.sqrt(cl) / pixel_rad)[:, : pixels // 2 + 1]
    out = np.empty((int(n_maps), pixels, pixels))
    for s in range(0, int(n_maps), 64):  # bounded memory for many maps
        w = rng.standard_normal((min(64, int(n_maps) - s), pixels, pixels))
        out[s : s + w.shape[0]] = np.fft.irfft2(np.fft.rfft2(w) * amp, s=(pixels, pixels))
    return out


def gaussian_smooth(maps, pixel_rad: float, sigma_rad: float) -> np.ndarray:
    """Maps (n, N, N) convolved with a Gaussian of standard deviation ``sigma_rad``, as a multiplication by
    exp(−ℓ²σ²/2) of every mode ℓ = 2π|n|/L of the N×N FFT plane (``ell_grid``): periodic, so the pixels within ~3σ
    of the edge of a non-periodic map see the opposite edge (callers crop them, see :func:`smoothing_border`).
    ``sigma_rad`` = 0 returns the maps unchanged (as float64). For white noise of pixel variance s² the smoothed
    variance is s²·(1/N²)Σ_n exp(−ℓ_n²σ²) exactly, → s²/(4π σ_pix²) for σ_pix = σ/Δ ≫ 1 (docs/cosmo_validation.md)."""
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3 or m.shape[1] != m.shape[2]:
        raise ValueError(f"maps must have shape (n, N, N), got {m.shape}")
    if not sigma_rad >= 0 or not pixel_rad > 0:
        raise ValueError(f"need sigma_rad >= 0 and pixel_rad > 0, got {sigma_rad}, {pixel_rad}")
    if sigma_rad == 0:
        return m.copy()
    n = m.shape[1]
    ell = ell_grid(n, pixel_rad)[:, : n // 2 + 1]
    window = np.exp(-0.5 * (ell * sigma_rad) ** 2)
    return np.fft.irfft2(np.fft.rfft2(m) * window, s=(n, n))


def smoothing_border(pixel_rad: float, sigma_rad: float) -> int:
    """Pixels to drop on each side after :func:`gaussian_smooth` of a non-periodic map: ceil(3σ/Δ) (0 for σ = 0),
    where the Gaussian's weight across the edge falls below 0.3 %."""
    return int(math.ceil(3.0 * sigma_rad / pixel_rad - 1e-9)) if sigma_rad > 0 else 0


# --- per-map statistics --------------------------------------------------------------------------------------------
def _maps(maps, name: str = "maps") -> np.ndarray:
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3 or min(m.shape[1:]) < 3:
        raise ValueError(f"{name} must have shape (n, H, W) with H, W >= 3, got {m.shape}")
    return m


def _sigmas(maps: np.ndarray, nu, sigma: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(σ per map (n,), ν (nt,)): σ is each map's pixel std or the given one; ν must increase strictly."""
    nu = np.atleast_1d(np.asarray(nu, dtype=np.float64))
    if nu.ndim != 1 or nu.size == 0 or not np.all(np.diff(nu) > 0):
        raise ValueError("thresholds nu must be a non-empty, strictly increasing 1-D sequence")
    if sigma is None:
        s = maps.std(axis=(1, 2))
        if np.any(s == 0):
            raise ValueError(f"map {int(np.argmin(s))} is constant; thresholds in units of its σ are undefined")
        return s, nu
    if not float(sigma) > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    return np.full(maps.shape[0], float(sigma)), nu


def _count_above(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Number of ``values`` strictly above each of the increasing ``levels``."""
    # a value lies above level j exactly when j < (number of levels below it): no sort of the values needed
    below = np.bincount(np.searchsorted(levels, values, side="left"), minlength=levels.size + 1)
    return np.cumsum(below[::-1])[::-1][1:]


def pixel_histograms(maps, edges) -> np.ndarray:
    """(n, nbins) fraction of each map's pixels per bin of ``edges``; values outside the edges are dropped."""
    m = np.asarray(maps, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    flat = m.reshape(m.shape[0], -1)
    return np.stack([np.histogram(row, bins=edges)[0] for row in flat]) / flat.shape[1]


def find_peaks(kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local maxima of one map (H, W): pixels strictly higher than all 8 neighbours; border pixels (without a full
    neighbourhood) are never peaks. Returns (rows, cols, heights)."""
    k = np.asarray(kappa, dtype=np.float64)
    if k.ndim != 2 or min(k.shape) < 3:
        raise ValueError(f"a map must have shape (H, W) with H, W >= 3, got {k.shape}")
    c = k[1:-1, 1:-1]
    h, w = k.shape
    is_peak = np.ones(c.shape, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                is_peak &= c > k[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx]
    rows, cols = np.nonzero(is_peak)
    return rows + 1, cols + 1, c[rows, cols]


def peak_counts(maps, nu=DEFAULT_NU, sigma: float | None = None) -> np.ndarray:
    """(n, nt) number of peaks (:func:`find_peaks`) higher than ν·σ in each map (cumulative N(>ν))."""
    m = _maps(maps)
    sig, nu = _sigmas(m, nu, sigma)
    return np.stack([_count_above(find_peaks(k)[2], s * nu) for k, s in zip(m, sig)])


def _derivatives(m: np.ndarray, pixel_size: float):
    """Interior values and central-difference derivatives (x = last axis, y = rows) in units of ``pixel_size``."""
    u = m[:, 1:-1, 1:-1]
    left, right, down, up = m[:, 1:-1, :-2], m[:, 1:-1, 2:], m[:, :-2, 1:-1], m[:, 2:, 1:-1]
    ux = (right - left) / (2 * pixel_size)
    uy = (up - down) / (2 * pixel_size)
    uxx = (right - 2 * u + left) / pixel_size**2
    uyy = (up - 2 * u + down) / pixel_size**2
    uxy = (m[:, 2:, 2:] - m[:, 2:, :-2] - m[:, :-2, 2:] + m[:, :-2, :-2]) / (4 * pixel_size**2)
    return u, ux, uy, uxx, uyy, uxy


def rms_gradient(maps, pixel_size: float = 1.0) -> np.ndarray:
    """(n,) σ1 = √⟨|∇u|²⟩ per map, with the central differences the Minkowski estimator uses."""
    _, ux, uy, *_ = _derivatives(_maps(maps), float(pixel_size))
    return np.sqrt((ux**2 + uy**2).mean(axis=(1, 2)))


def minkowski_functionals(maps, nu=DEFAULT_NU, sigma: float | None = None, pixel_size: float = 1.0,
                          dnu: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(V0, V1, V2), each (n, nt), of every map at thresholds ν·σ (estimator and units: module docstring).

    ``dnu`` is the width of the δ-function window in ν units (default: the smallest threshold spacing; it may not
    exceed it, so every pixel falls into at most one window). ``pixel_size`` sets the length unit of V1 and V2.
    """
    m = _maps(maps)
    sig, nu = _sigmas(m, nu, sigma)
    nt = nu.size
    max_dnu = float(np.diff(nu).min()) if nt > 1 else math.inf
    if dnu is None:
        if nt < 2:
            raise ValueError("with a single threshold give the δ-window width dnu explicitly")
        dnu = max_dnu
    if not 0 < dnu <= max_dnu * (1 + 1e-12):
        raise ValueError(f"dnu must be > 0 and not exceed the smallest threshold spacing {max_dnu:g}, got {dnu}")
    u, ux, uy, uxx, uyy, uxy = _derivatives(m, float(pixel_size))
    grad = np.sqrt(ux**2 + uy**2)
    curv = np.divide(2 * ux * uy * uxy - ux**2 * uyy - uy**2 * uxx, grad**2, out=np.zeros_like(grad), where=grad > 0)
    npix = u.shape[1] * u.shape[2]
    v0, v1, v2 = (np.zeros((m.shape[0], nt)) for _ in range(3))
    for i in range(m.shape[0]):
        flat, levels, width = u[i].ravel(), sig[i] * nu, dnu * sig[i]
        v0[i] = _count_above(flat, levels) / npix
        # Windows [κ_t − w/2, κ_t + w/2) do not overlap, so one searchsorted puts each pixel in at most one.
        j = np.searchsorted(levels - 0.5 * width, flat, side="right") - 1
        inside = (j >= 0) & (flat < levels[np.clip(j, 0, nt - 1)] + 0.5 * width)
        j = j[inside]
        v1[i] = 0.25 * np.bincount(j, grad[i].ravel()[inside], nt) / (width * npix)
        v2[i] = np.bincount(j, curv[i].ravel()[inside], nt) / (2 * math.pi * width * npix)
    return v0, v1, v2


def gaussian_minkowski(nu, sigma1_over_sigma0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected (V0, V1, V2) of a Gaussian field at ν (module docstring); σ1/σ0 in units of 1/pixel_size."""
    nu = np.asarray(nu, dtype=np.float64)
    r = float(sigma1_over_sigma0)
    g = np.exp(-0.5 * nu**2)
    return 0.5 * special.erfc(nu / math.sqrt(2)), r * g / (8 * math.sqrt(2)), r**2 * nu * g / (2 * (2 * math.pi) ** 1.5)


# --- two-sample comparisons ----------------------------------------------------------------------------------------
def ks_per_column(a, b) -> list[dict]:
    """Two-sample KS test of each column of ``a`` (n_a, k) against the same column of ``b`` (n_b, k): one
    ``{"statistic", "pvalue"}`` per bin/threshold, the distribution being taken across maps."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need (n_a, k) and (n_b, k) arrays with the same k, got {a.shape} and {b.shape}")
    out = []
    for j in range(a.shape[1]):
        d, p = distances.ks_2samp(a[:, j], b[:, j])
        out.append({"statistic": d, "pvalue": p})
    return out


def chi2_mean_spectra(cl_ref, cl_test) -> dict:
    """χ² of the mean spectra: Σ_b (C̄_test − C̄_ref)² / (σ²_ref/N_ref + σ²_test/N_test), σ² the map-to-map
    variance (ddof 1) per bin. Bins are treated as independent (diagonal; true for Gaussian fields, approximate for
    lensing maps whose bins correlate). dof = number of bins with a non-zero error; p = χ²_dof survival function.
    Returns ``{"chi2", "dof", "pvalue"}``."""
    r, t = np.asarray(cl_ref, dtype=np.float64), np.asarray(cl_test, dtype=np.float64)
    if r.ndim != 2 or t.ndim != 2 or r.shape[1] != t.shape[1]:
        raise ValueError(f"need (n_ref, nb) and (n_test, nb) spectra with the same nb, got {r.shape} and {t.shape}")
    if min(r.shape[0], t.shape[0]) < 2:
        raise ValueError("a χ² of mean spectra needs at least 2 maps in each sample (for the map-to-map variance)")
    err2 = r.var(axis=0, ddof=1) / r.shape[0] + t.var(axis=0, ddof=1) / t.shape[0]
    keep = err2 > 0
    chi2 = float(np.sum((t.mean(axis=0) - r.mean(axis=0))[keep] ** 2 / err2[keep]))
    dof = int(keep.sum())
    return {"chi2": chi2, "dof": dof, "pvalue": float(stats.chi2.sf(chi2, dof)) if dof else None}
