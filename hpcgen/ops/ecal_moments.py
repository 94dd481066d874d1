"""Energy moments of calorimeter showers: the pure-torch reference twin of the fused ``hpcgen::ecal_moments`` op.

Total energy, the three marginal profiles and the energy-weighted first and second moments along each axis of a
(B, X, Y, Z) cell grid — the 3DGAN discriminator's analytic ECAL-sum head (Khattak et al., "Fast simulation of a
high granularity calorimeter by generative adversarial networks", Eur. Phys. J. C 82 (2022) 386) and the shower-shape
observables of the 3DGAN and CaloChallenge validations (Krause et al. 2024, arXiv:2410.21611). The compiled CPU and
CUDA kernels (csrc/ecal_moments_*, mathematics in csrc/hpcgen_cuda.h) are tested against :func:`ecal_moments_ref`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

# The smallest positive float32; x^p is evaluated at max(x, this) so that its unused branch has a finite gradient.
_TINY = torch.finfo(torch.float32).tiny


class EcalMoments(NamedTuple):
    """Per-shower energy moments (float32; float64 for float64 input). Coordinates are cell indices 0..n−1.

    total: (B,) Σ v over all cells, v = x^power (see :func:`ecal_moments_ref`).
    profile_x, profile_y, profile_z: (B, X), (B, Y), (B, Z) marginal sums of v.
    mean_cells: (B, 3) energy-weighted centroid along x, y, z in cells.
    var_cells2: (B, 3) energy-weighted variance about the centroid along x, y, z in cells².
    Showers with total <= 0 have mean and variance 0.
    """

    total: torch.Tensor
    profile_x: torch.Tensor
    profile_y: torch.Tensor
    profile_z: torch.Tensor
    mean_cells: torch.Tensor
    var_cells2: torch.Tensor


def check_cells(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (B, X, Y, Z), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must have shape (B, X, Y, Z), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got dtype {x.dtype}")


def check_power(power: float) -> float:
    try:
        p = float(power)
    except (TypeError, ValueError):
        p = float("nan")
    if not p > 0 or p == float("inf"):
        raise ValueError(f"power must be a finite number > 0, got {power!r}")
    return p


def _axis_moments(profile: torch.Tensor, total: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c = torch.arange(profile.shape[1], dtype=profile.dtype, device=profile.device)
    positive = total > 0
    t = torch.where(positive, total, torch.ones_like(total))
    mean = (profile * c).sum(1) / t
    # Centred second moment (two passes): no cancellation for a narrow shower far from cell 0.
    var = (profile * (c - mean[:, None]).square()).sum(1) / t
    zero = torch.zeros_like(mean)
    return torch.where(positive, mean, zero), torch.where(positive, var, zero)


def ecal_moments_ref(x: torch.Tensor, power: float = 1.0) -> EcalMoments:
    """Reference implementation of :func:`hpcgen.ops.ecal_moments` in plain differentiable torch.

    v = x for power = 1 (negative cells count with their sign); for power ≠ 1, v = x^power for x > 0 and 0 otherwise
    (the 3DGAN papers' x^p preprocessing of non-negative energies). Sums are accumulated in float32 (float64 for
    float64 x), whatever the input precision.
    """
    check_cells(x)
    p = check_power(power)
    v = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    if p != 1.0:
        v = torch.where(v > 0, v.clamp_min(_TINY).pow(p), torch.zeros_like(v))
    px, py, pz = v.sum((2, 3)), v.sum((1, 3)), v.sum((1, 2))
    total = px.sum(1)
    moments = [_axis_moments(prof, total) for prof in (px, py, pz)]
    return EcalMoments(total, px, py, pz, torch.stack([m for m, _ in moments], 1), torch.stack([s for _, s in moments], 1))
