"""The fused-kernel face of hpcgen: the one place models, losses and validation call for the ops they share.

Each op is one public function with an ``impl=`` switch, after StyleGAN2-ADA's ``torch_utils/ops``: ``"ref"`` is the
pure-torch twin in :mod:`hpcgen.ops.reference` and :mod:`hpcgen.ops.power_spectrum`; ``"auto"`` picks the best
available implementation. Today that is always the reference: the compiled library (C++ CPU and CUDA kernels
registered with ``TORCH_LIBRARY``, ``impl="cpu"`` / ``"cuda"``) is the fused-kernel issue's work and is not built. Models
call only this face, never the reference or the library directly, so swapping in the kernels changes no caller.
"""

from __future__ import annotations

import numpy as np
import torch

from hpcgen.ops.power_spectrum import DEFAULT_BINS, PowerSpectrum, radial_power_spectrum_ref
from hpcgen.ops.reference import ecal_sum_ref

IMPLS = ("auto", "ref")


def _resolve(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(repr(i) for i in IMPLS)}; got {impl!r}")
    if impl == "auto":
        return "ref"  # the only implementation in this build
    return impl


def ecal_sum(x: torch.Tensor, impl: str = "auto") -> torch.Tensor:
    """Total visible energy per shower (the 3DGAN discriminator's analytic ECAL-sum head).

    Args:
        x: (B, X, Y, Z) floating-point cell energies, e.g. (B, 25, 25, 25) in GeV.
        impl: ``"auto"`` (compiled kernel when built, else the reference) or ``"ref"`` (pure torch).

    Returns:
        (B,) totals accumulated in float32 (float64 when ``x`` is float64). Differentiable: d out_b / d x_bijk = 1.
    """
    _resolve(impl)
    return ecal_sum_ref(x)


def radial_power_spectrum(maps: torch.Tensor, pixel_rad: float, bins=DEFAULT_BINS, log_bins: bool = True,
                          ell_range: tuple[float, float] | None = None, impl: str = "auto") -> PowerSpectrum:
    """Azimuthally averaged angular power spectrum C_ℓ of each map in a batch — the one estimator of hpcgen.

    Normalisation: for a field κ with angular power C_ℓ on an N×N grid of pixel side Δ = ``pixel_rad`` and side
    L = NΔ rad, κ̃(ℓ) = Δ² Σ_x κ(x) e^{−iℓ·x} and Ĉ(ℓ) = |κ̃(ℓ)|²/L², with ℓ = 2π|n|/L for FFT frequency n. A
    Gaussian field made by the recipe κ = Re IFFT[FFT(w)·√C(ℓ)/Δ] (w white N(0,1);
    :func:`hpcgen.physics.map_statistics.gaussian_field`) therefore returns C_ℓ on average, and the map's pixel
    variance equals Σ_{ℓ≠0} Ĉ(ℓ)/L² over the full plane of modes (Parseval). Each bin's C_ℓ is the mean of Ĉ over
    the Fourier modes of the full N×N plane whose |ℓ| falls in it; the ℓ = 0 mode (map mean) is never binned.

    Args:
        maps: (B, N, N) real maps, square (H = W required), float32 or float64 (half precision is computed in
            float32), any device. Differentiable with respect to ``maps`` (first order; the reference is plain
            torch autograd through ``torch.fft.rfft2`` and an ``index_add``).
        pixel_rad: pixel side Δ in radians.
        bins: number of bins (default 20) or explicit ℓ edges (nb+1,) increasing. With a number, the edges run
            from the fundamental 2π/L to the Nyquist ℓ = πN/L (or over ``ell_range``), log-spaced with
            ``log_bins`` (empty low-ℓ bins then merged into their neighbour, so nb may be smaller) or linear.
            Modes outside the edges — e.g. the corners beyond the Nyquist ℓ — are not binned. Linear and explicit
            edges are used as given; an empty bin then has cl = 0 and modes = 0.
        ell_range: (ℓ_min, ℓ_max) for counted bins only.
        impl: ``"auto"`` (compiled kernel when built, else the reference) or ``"ref"`` (pure torch).

    Returns:
        :class:`~hpcgen.ops.power_spectrum.PowerSpectrum`: ``ell`` (nb,) mean |ℓ| of the modes per bin, ``edges``
        (nb+1,), ``cl`` (B, nb), ``modes`` (nb,) Fourier modes per bin, and the batch partial sums ``sum_cl`` (nb,),
        ``sum_cl2`` (nb,), ``count`` () = B for an all-reduced batch mean/variance. The cosmic-variance error of a
        bin's cl for a Gaussian field is σ(Ĉ)/C = √(2/modes).
    """
    _resolve(impl)
    return radial_power_spectrum_ref(maps, pixel_rad, bins, log_bins, ell_range)


def cl_numpy(maps: np.ndarray, pixel_rad: float, **kwargs) -> PowerSpectrum:
    """:func:`radial_power_spectrum` for numpy maps (B, N, N), computed in float64; every field a numpy array."""
    x = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float64))
    with torch.no_grad():
        return radial_power_spectrum(x, pixel_rad, **kwargs).numpy()


def status() -> str:
    """One line for ``hpcgen info``: which implementation ``impl="auto"`` runs."""
    return "reference (pure torch); compiled library not built"


__all__ = ["IMPLS", "PowerSpectrum", "cl_numpy", "ecal_sum", "ecal_sum_ref", "radial_power_spectrum", "status"]
