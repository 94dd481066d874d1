"""Azimuthally averaged angular power spectrum of flat-sky maps: the reference twin and the fused path.

The one C_ℓ estimator of hpcgen (ARCHITECTURE.md, "one estimator per observable"): CosmoGAN's spectral loss
(Mustafa et al. 2017, arXiv:1706.02390), ``hpcgen validate cosmo`` and the Monte Carlo tests all call it through
:func:`hpcgen.ops.radial_power_spectrum`, so they cannot disagree. Two implementations live side by side:
:func:`radial_power_spectrum_ref`, plain torch (rfft2, then an index_add binning) and the specification; and
:func:`radial_power_spectrum_fused`, the same FFT followed by the compiled one-pass binning op
``hpcgen::radial_power_bin`` (csrc/radial_power_*), tested against it. Both share :func:`spectrum_bins`.

Conventions (flat sky, N×N pixels of side Δ rad, L = NΔ):

    κ̃(ℓ) = Δ² Σ_x κ(x) e^{−iℓ·x},   Ĉ(ℓ) = |κ̃(ℓ)|² / L²,   ℓ = 2π|n|/L for the FFT frequency n,

so a Gaussian field made by the recipe κ = Re IFFT[FFT(w)·√C(ℓ)/Δ] (w white N(0, 1); shared/REFERENCE.md §2,
:func:`hpcgen.physics.map_statistics.gaussian_field`) has ⟨Ĉ(ℓ)⟩ = C(ℓ) exactly, and Parseval reads
Var_pixels(κ) = Σ_{ℓ≠0} Ĉ(ℓ)/L² over the full N×N plane of modes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

DEFAULT_BINS = 20
# Edges are compared in units of the fundamental |n|; this slack keeps a mode sitting exactly on the outer edges
# (the first mode, the Nyquist mode) inside, independent of rounding in 2π/L.
_EDGE_SLACK = 1e-9


class PowerSpectrum(NamedTuple):
    """Binned angular power spectrum of a batch of maps (torch tensors on the maps' device).

    ell: (nb,) float64, the mean |ℓ| of the Fourier modes in each bin (the edges' midpoint for an empty bin).
    edges: (nb+1,) float64 bin edges in ℓ; bin b holds edges[b] <= ℓ < edges[b+1] (the last bin also its upper edge).
    cl: (B, nb) per-map Ĉ_ℓ averaged over the modes of each bin (0 for an empty bin), dtype of the maps.
    modes: (nb,) int64 Fourier modes per bin counted over the full N×N plane (both members of a Hermitian pair).
    sum_cl, sum_cl2: (nb,) Σ_maps cl and Σ_maps cl², and count: () the number of maps B (dtype of cl) — the
        partial sums a data-parallel spectral loss all-reduces to get batch mean and variance on any rank count.
    """

    ell: torch.Tensor
    edges: torch.Tensor
    cl: torch.Tensor
    modes: torch.Tensor
    sum_cl: torch.Tensor
    sum_cl2: torch.Tensor
    count: torch.Tensor

    def numpy(self) -> PowerSpectrum:
        """The same tuple with every field detached and converted to a numpy array (for reports and tests)."""
        return PowerSpectrum(*(t.detach().cpu().numpy() for t in self))


@functools.lru_cache(maxsize=32)
def _rfft_geometry(n: int) -> tuple[np.ndarray, np.ndarray]:
    """|n| (in units of the fundamental) and Hermitian weight of every rfft2 cell of an n×n map, flattened.

    rfft2 keeps columns 0..n//2; every column except 0 (and n/2 for even n, the Nyquist column) stands for itself
    and its mirror image in the full plane, so it counts twice.
    """
    ky = np.fft.fftfreq(n, 1.0 / n)
    kx = np.arange(n // 2 + 1, dtype=np.float64)
    knorm = np.hypot(ky[:, None], kx[None, :])
    weight = np.full(kx.shape, 2, dtype=np.int64)
    weight[0] = 1
    if n % 2 == 0:
        weight[-1] = 1
    return knorm.ravel(), np.broadcast_to(weight, knorm.shape).ravel().copy()


def default_edges(pixels: int, pixel_rad: float, bins: int = DEFAULT_BINS, log_bins: bool = True,
                  ell_range: tuple[float, float] | None = None) -> np.ndarray:
    """``bins`` log- (or linearly) spaced ℓ edges over ``ell_range`` (default: 2π/L to the Nyquist ℓ = πN/L).

    With log spacing, a bin that would hold no Fourier mode (at low ℓ, where modes are sparse) is merged into the
    next one, so the result may have fewer than ``bins`` bins; every bin returned holds modes.
    """
    if int(bins) < 1:
        raise ValueError(f"bins must be >= 1 or a sequence of edges, got {bins}")
    fund = 2.0 * math.pi / (pixels * pixel_rad)
    lo, hi = (fund, math.pi / pixel_rad) if ell_range is None else map(float, ell_range)
    if not 0 <= lo < hi or (log_bins and lo <= 0):
        raise ValueError(f"ell_range must satisfy 0 {'<' if log_bins else '<='} lo < hi, got ({lo}, {hi})")
    edges = np.geomspace(lo, hi, int(bins) + 1) if log_bins else np.linspace(lo, hi, int(bins) + 1)
    if not log_bins:
        return edges
    knorm, _ = _rfft_geometry(pixels)
    occupied = np.unique(_bin_index(knorm[knorm > 0], edges / fund))
    occupied = occupied[(occupied >= 0) & (occupied < bins)]
    if occupied.size == 0:
        raise ValueError(f"no Fourier mode of a {pixels}² map lies in ell_range ({lo:g}, {hi:g})")
    # Keep each occupied bin's upper edge; an empty bin's lower edge goes, merging it into the next occupied one.
    return np.concatenate([edges[:1], edges[occupied + 1]])


def _bin_index(knorm: np.ndarray, n_edges: np.ndarray) -> np.ndarray:
    """Bin of each |n| for edges in units of the fundamental; -1 below, len(n_edges)-1 above the range."""
    e = n_edges.astype(np.float64).copy()
    e[0] *= 1.0 - _EDGE_SLACK
    e[-1] *= 1.0 + _EDGE_SLACK
    idx = np.searchsorted(e, knorm, side="right") - 1
    nb = e.size - 1
    idx[knorm >= e[-1]] = nb
    return idx


@functools.lru_cache(maxsize=64)
def _binning(n: int, n_edges: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(bin index per rfft cell with nb = "not binned", Hermitian weights, modes per bin, mean |n| per bin)."""
    knorm, weight = _rfft_geometry(n)
    e = np.asarray(n_edges)
    nb = e.size - 1
    idx = _bin_index(knorm, e)
    idx[(idx < 0) | (knorm == 0)] = nb  # below the range, and the ℓ = 0 mode, are never binned
    modes = np.bincount(idx, weights=weight, minlength=nb + 1)[:nb].astype(np.int64)
    ksum = np.bincount(idx, weights=weight * knorm, minlength=nb + 1)[:nb]
    mid = 0.5 * (e[1:] + e[:-1])
    kmean = np.divide(ksum, modes, out=mid.copy(), where=modes > 0)
    return idx, weight, modes, kmean


def _check_pixel_rad(pixel_rad) -> float:
    try:
        ok = math.isfinite(float(pixel_rad)) and float(pixel_rad) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"pixel_rad must be a positive number of radians, got {pixel_rad!r}")
    return float(pixel_rad)


def spectrum_bins(pixels: int, pixel_rad: float, bins: int | Sequence[float] | np.ndarray | torch.Tensor = DEFAULT_BINS,
                  log_bins: bool = True, ell_range: tuple[float, float] | None = None):
    """The binning shared by every implementation: (edges_ell, idx, weight, modes, ell_mean).

    ``idx`` (N·(N//2+1),) maps each rfft2 cell to its bin (nb for cells not binned: ℓ = 0 and outside the edges);
    ``weight`` is 1 or 2 (Hermitian pairs). ``bins`` is a count (see :func:`default_edges`) or explicit ℓ edges.
    """
    pixel_rad = _check_pixel_rad(pixel_rad)
    if isinstance(bins, (int, np.integer)):
        edges = default_edges(pixels, pixel_rad, int(bins), log_bins, ell_range)
    else:
        if ell_range is not None:
            raise ValueError("ell_range applies only when bins is a number of bins, not explicit edges")
        edges = np.asarray(bins.detach().cpu() if isinstance(bins, torch.Tensor) else bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0) or edges[0] < 0:
            raise ValueError("bins given as edges must be at least two strictly increasing values >= 0")
    fund = 2.0 * math.pi / (pixels * pixel_rad)
    idx, weight, modes, kmean = _binning(pixels, tuple((edges / fund).tolist()))
    return edges, idx, weight, modes, kmean * fund


def check_maps(maps: torch.Tensor) -> None:
    if not isinstance(maps, torch.Tensor):
        raise TypeError(f"maps must be a torch.Tensor of shape (B, N, N), got {type(maps).__name__}")
    if maps.ndim != 3 or maps.shape[1] != maps.shape[2] or maps.shape[1] < 2:
        raise ValueError(f"maps must have shape (B, N, N) with square N×N maps, got shape {tuple(maps.shape)}")
    if not maps.is_floating_point():
        raise ValueError(f"maps must be floating point (float32 or float64), got dtype {maps.dtype}")


class _Tables(NamedTuple):
    """Everything a spectrum call needs besides the maps, as tensors on the maps' device (cached per binning)."""

    ell: torch.Tensor  # (nb,) float64 mean ℓ per bin
    edges: torch.Tensor  # (nb+1,) float64
    modes: torch.Tensor  # (nb,) int64
    idx: torch.Tensor  # reference: bin per rfft cell (nb = not binned)
    weight: torch.Tensor  # reference: Hermitian weight per cell, in the maps' dtype
    factor: torch.Tensor  # fused: weight·Δ²/N²/modes[bin] per cell
    bin_index: torch.Tensor  # fused: = idx
    order: torch.Tensor  # fused: binned cells grouped by bin (CSR)
    offsets: torch.Tensor  # fused: (nb+1,) CSR offsets


@functools.lru_cache(maxsize=64)
def _device_tables(n: int, pixel_rad: float, bins: int | tuple[float, ...], log_bins: bool,
                   ell_range: tuple[float, float] | None, dtype: torch.dtype, device: torch.device) -> _Tables:
    """The tables of one binning on one device, built (and copied to the device) once, not on every call: the
    spectral loss calls the op twice per training step, and each host→device copy would be a sync on CUDA."""
    edges, idx, weight, modes, ell = spectrum_bins(n, pixel_rad, bins if isinstance(bins, int) else np.asarray(bins),
                                                   log_bins, ell_range)
    nb = modes.size
    binned = idx < nb
    factor = np.zeros(idx.size)
    factor[binned] = weight[binned] * (pixel_rad**2 / n**2) / np.maximum(modes[idx[binned]], 1)
    order = np.argsort(idx, kind="stable")[: int(binned.sum())]  # binned cells grouped by bin, in cell order
    offsets = np.concatenate([[0], np.cumsum(np.bincount(idx[binned], minlength=nb))])
    as_t = functools.partial(torch.as_tensor, device=device)
    idx_t = as_t(idx, dtype=torch.int64)
    return _Tables(ell=as_t(ell, dtype=torch.float64), edges=as_t(edges, dtype=torch.float64),
                   modes=as_t(modes, dtype=torch.int64), idx=idx_t, weight=as_t(weight, dtype=dtype),
                   factor=as_t(factor, dtype=dtype), bin_index=idx_t, order=as_t(order, dtype=torch.int64),
                   offsets=as_t(offsets, dtype=torch.int64))


def _prepare(maps, pixel_rad, bins, log_bins, ell_range) -> tuple[torch.Tensor, _Tables]:
    check_maps(maps)
    # Half-precision inputs are transformed in float32: the FFT has no bf16/fp16 path on every device.
    x = maps if maps.dtype in (torch.float32, torch.float64) else maps.float()
    if not isinstance(bins, (int, np.integer)):  # explicit edges: a hashable key (spectrum_bins checks them)
        arr = np.asarray(bins.detach().cpu() if isinstance(bins, torch.Tensor) else bins, dtype=np.float64)
        bins = tuple(arr.tolist()) if arr.ndim == 1 else ()
    else:
        bins = int(bins)
    ell_range = None if ell_range is None else tuple(float(v) for v in ell_range)
    return x, _device_tables(int(maps.shape[-1]), _check_pixel_rad(pixel_rad), bins, bool(log_bins), ell_range,
                             x.dtype, x.device)


def _result(x, t: _Tables, cl, sum_cl, sum_cl2) -> PowerSpectrum:
    # ell, edges and modes are copies (on the device, no sync): a caller may change them without touching the cache
    return PowerSpectrum(ell=t.ell.clone(), edges=t.edges.clone(), cl=cl, modes=t.modes.clone(), sum_cl=sum_cl,
                         sum_cl2=sum_cl2, count=torch.full((), float(x.shape[0]), dtype=x.dtype, device=x.device))


def radial_power_spectrum_ref(maps: torch.Tensor, pixel_rad: float, bins=DEFAULT_BINS, log_bins: bool = True,
                              ell_range: tuple[float, float] | None = None) -> PowerSpectrum:
    """Reference implementation of :func:`hpcgen.ops.radial_power_spectrum` (rfft2, then an index_add binning)."""
    x, t = _prepare(maps, pixel_rad, bins, log_bins, ell_range)
    cl = binned_cl_ref(torch.fft.rfft2(x), float(pixel_rad), t.idx, t.weight, t.modes)
    return _result(x, t, cl, cl.sum(dim=0), cl.square().sum(dim=0))


def binned_cl_ref(f: torch.Tensor, pixel_rad: float, idx: torch.Tensor, weight: torch.Tensor,
                  modes: torch.Tensor) -> torch.Tensor:
    """The reference's binning half: (B, N, N//2+1) complex rfft2 → (B, nb) C_ℓ.

    ``idx``, ``weight`` (the map's real dtype) and ``modes`` are the tables of :func:`spectrum_bins` as tensors on
    the maps' device — plain tensor code, so ``torch.compile`` can trace it (the benchmark's compiled baseline).
    """
    n, nb = f.shape[-2], modes.shape[0]
    # Ĉ = Δ²|FFT κ|²/N² (module docstring); the Hermitian weight turns the half plane into the full one.
    power = (f.real.square() + f.imag.square()).reshape(f.shape[0], -1) * (pixel_rad**2 / n**2)
    sums = torch.zeros(f.shape[0], nb + 1, dtype=weight.dtype, device=f.device).index_add(1, idx, power * weight)[:, :nb]
    return sums / modes.clamp(min=1).to(weight.dtype)


def _kernel_tables(n: int, pixel_rad: float, edges: tuple[float, ...], dtype: torch.dtype, device: torch.device):
    """The fused kernel's per-cell tables for explicit ℓ ``edges``: factor = weight·Δ²/N²/modes[bin], bin index,
    and the CSR order and offsets by bin (from the same cache as the op's own calls)."""
    t = _device_tables(n, float(pixel_rad), tuple(edges), True, None, dtype, device)
    return t.factor, t.bin_index, t.order, t.offsets


def radial_power_spectrum_fused(maps: torch.Tensor, pixel_rad: float, bins=DEFAULT_BINS, log_bins: bool = True,
                                ell_range: tuple[float, float] | None = None) -> PowerSpectrum:
    """The same estimator with the binning in one compiled pass (``hpcgen::radial_power_bin``); FFT by torch.fft.

    Needs the compiled library (:mod:`hpcgen.ops.library`) with a kernel for the maps' device.
    """
    x, t = _prepare(maps, pixel_rad, bins, log_bins, ell_range)
    spectrum = torch.view_as_real(torch.fft.rfft2(x)).reshape(x.shape[0], -1, 2)
    cl, sum_cl, sum_cl2 = torch.ops.hpcgen.radial_power_bin(spectrum, t.factor, t.bin_index, t.order, t.offsets)
    return _result(x, t, cl, sum_cl, sum_cl2)
