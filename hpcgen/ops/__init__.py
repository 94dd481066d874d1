"""The fused-kernel face of hpcgen: the one place models, losses and validation call for the ops they share.

Each op is one public function with an ``impl=`` switch, after StyleGAN2-ADA's ``torch_utils/ops``:

- ``"ref"``: the pure-torch reference twin beside the op (:mod:`hpcgen.ops.ecal_moments`,
  :mod:`hpcgen.ops.power_spectrum`) — the specification the kernels are tested against;
- ``"cpu"`` / ``"cuda"``: the compiled kernel (csrc/, built by CMakeLists.txt with ``make ops``) — an error if the
  library or that device's kernel is missing, or the tensor is on another device;
- ``"auto"`` (default): the compiled kernel for the tensor's device when the library holds one, else the reference.
  A missing or unloadable library warns once (:mod:`hpcgen.ops.library`); ``hpcgen info`` says what is live.

Models call only this face, never the reference or the library directly.
"""

from __future__ import annotations

import numpy as np
import torch

from hpcgen.ops import library
from hpcgen.ops.ecal_moments import EcalMoments, check_cells, check_power, ecal_moments_ref
from hpcgen.ops.power_spectrum import (
    DEFAULT_BINS,
    PowerSpectrum,
    radial_power_spectrum_fused,
    radial_power_spectrum_ref,
)

IMPLS = ("auto", "ref", "cpu", "cuda")
# The CUDA ECAL kernel keeps one x-slab (Y·Z cells) in 48 KiB of shared memory (csrc/hpcgen_cuda.h).
_CUDA_SLAB_BYTES = 48 * 1024


def _use_kernel(impl: str, device: torch.device, fits_kernel: bool = True) -> bool:
    """True to run the compiled kernel, False for the reference; raises for an impl that cannot run here."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(repr(i) for i in IMPLS)}; got {impl!r}")
    if impl == "ref":
        return False
    if impl == "auto":
        return library.has_kernels(device.type) and fits_kernel
    if device.type != impl:
        raise ValueError(f"impl={impl!r} runs on {impl} tensors, got a tensor on {device}")
    if not library.has_kernels(impl):
        raise RuntimeError(f"impl={impl!r} needs the compiled {impl} kernels: {library.status()}")
    if not fits_kernel:
        raise ValueError(f"impl={impl!r}: this input is too large for the {impl} kernel; use impl='auto' or 'ref'")
    return True


def ecal_moments(x: torch.Tensor, power: float = 1.0, impl: str = "auto") -> EcalMoments:
    """Total energy, marginal profiles and energy-weighted first/second moments of each shower, in one pass.

    Args:
        x: (B, X, Y, Z) cell energies — (B, 25, 25, 25) GeV in the 3DGAN layout, but any grid works (on CUDA, one
            Y·Z slab must fit 48 KiB: Y·Z ≤ 12288 in float32). float32, bfloat16, float16 or float64; any strides
            (non-contiguous and channels-last inputs are made contiguous first, one copy); any device.
        power: p > 0. For p = 1 the cells are summed as they are; otherwise v = x^p for x > 0 and 0 elsewhere.
            The compiled CPU kernel evaluates float x^p as a vectorised exp(p·ln x): relative error ≲ 1e-6·|p ln x|
            (≤ 3e-6 for p = 0.85 over 1e-8…1e5 GeV, tested); float64 uses libm's pow.
        impl: ``"auto"``, ``"ref"``, ``"cpu"`` or ``"cuda"`` (module docstring).

    Returns:
        :class:`~hpcgen.ops.ecal_moments.EcalMoments` (total, profile_x/y/z, mean_cells, var_cells2), accumulated
        and returned in float32 (float64 for float64 x). Differentiable with respect to x (first order): the
        compiled backward reads x once and writes dx once, in x's dtype. Deterministic: bitwise-identical results
        on repeated calls, on any thread count.
    """
    p = check_power(power)
    if _ecal_kernel(x, impl):
        return EcalMoments(*torch.ops.hpcgen.ecal_moments(x, p))
    return ecal_moments_ref(x, p)


def _ecal_kernel(x: torch.Tensor, impl: str) -> bool:
    """Check x; True when the compiled ECAL kernel runs it (on CUDA one Y·Z slab must fit in shared memory)."""
    check_cells(x)
    acc_bytes = 8 if x.dtype == torch.float64 else 4
    fits = x.device.type != "cuda" or x.shape[2] * x.shape[3] * acc_bytes <= _CUDA_SLAB_BYTES
    return _use_kernel(impl, x.device, fits)


def ecal_sum(x: torch.Tensor, impl: str = "auto") -> torch.Tensor:
    """Total visible energy per shower (the 3DGAN discriminator's analytic ECAL-sum head): ``ecal_moments(x).total``.

    Args:
        x: (B, X, Y, Z) floating-point cell energies, e.g. (B, 25, 25, 25) in GeV.
        impl: ``"auto"``, ``"ref"``, ``"cpu"`` or ``"cuda"``.

    Returns:
        (B,) totals accumulated in float32 (float64 when ``x`` is float64). Differentiable: d out_b / d x_bijk = 1.
    """
    if _ecal_kernel(x, impl):
        return torch.ops.hpcgen.ecal_moments(x, 1.0)[0]
    # the reference's total in the same summation order, without the profiles and moments nobody asked for
    return x.to(torch.float64 if x.dtype == torch.float64 else torch.float32).sum((2, 3)).sum(1)


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
            float32), any strides, any device. Differentiable with respect to ``maps`` (first order): the FFT by
            torch.fft, the binning and its backward by the compiled kernel (or plain torch for the reference).
        pixel_rad: pixel side Δ in radians.
        bins: number of bins (default 20) or explicit ℓ edges (nb+1,) increasing. With a number, the edges run
            from the fundamental 2π/L to the Nyquist ℓ = πN/L (or over ``ell_range``), log-spaced with
            ``log_bins`` (empty low-ℓ bins then merged into their neighbour, so nb may be smaller) or linear.
            Modes outside the edges — e.g. the corners beyond the Nyquist ℓ — are not binned. Linear and explicit
            edges are used as given; an empty bin then has cl = 0 and modes = 0.
        ell_range: (ℓ_min, ℓ_max) for counted bins only.
        impl: ``"auto"``, ``"ref"``, ``"cpu"`` or ``"cuda"`` (module docstring).

    Returns:
        :class:`~hpcgen.ops.power_spectrum.PowerSpectrum`: ``ell`` (nb,) mean |ℓ| of the modes per bin, ``edges``
        (nb+1,), ``cl`` (B, nb), ``modes`` (nb,) Fourier modes per bin, and the batch partial sums ``sum_cl`` (nb,),
        ``sum_cl2`` (nb,), ``count`` () = B for an all-reduced batch mean/variance. The cosmic-variance error of a
        bin's cl for a Gaussian field is σ(Ĉ)/C = √(2/modes).
    """
    device = maps.device if isinstance(maps, torch.Tensor) else torch.device("cpu")
    if _use_kernel(impl, device):
        return radial_power_spectrum_fused(maps, pixel_rad, bins, log_bins, ell_range)
    return radial_power_spectrum_ref(maps, pixel_rad, bins, log_bins, ell_range)


def cl_numpy(maps: np.ndarray, pixel_rad: float, **kwargs) -> PowerSpectrum:
    """:func:`radial_power_spectrum` for numpy maps (B, N, N), computed in float64; every field a numpy array."""
    x = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float64))
    with torch.no_grad():
        return radial_power_spectrum(x, pixel_rad, **kwargs).numpy()


def status() -> str:
    """One line for ``hpcgen info``: which implementation ``impl="auto"`` runs."""
    return library.status()


__all__ = ["IMPLS", "EcalMoments", "PowerSpectrum", "cl_numpy", "ecal_moments", "ecal_moments_ref", "ecal_sum",
           "radial_power_spectrum", "radial_power_spectrum_ref", "status"]
