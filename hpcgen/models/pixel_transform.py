"""κ ↔ pixel transform for CosmoGAN: maps weak-lensing convergence into the generator's tanh range (−1, 1).

Convergence maps at z_s = 1 span roughly κ ∈ [−0.06, 0.5] with most pixels near 0 (σ_κ ≈ 0.017) and a long
positive tail from halos. The transform is REFERENCE's s(x) = 2x/(x + 4) − 1 applied to the shifted, scaled
convergence x = 4(κ + λ)/a:

    s(κ) = 2(κ + λ)/(κ + λ + a) − 1,      κ(s) = a(1 + s)/(1 − s) − λ,

with the empty-beam shift λ = 0.059 (|κ_min| at z_s = 1, REFERENCE §2: κ ≥ −λ, the value of a ray through
empty space) and a = λ, which simplifies both directions to

    s(κ) = κ / (κ + 2λ),                  κ(s) = 2λ s / (1 − s).

So κ = −λ ↦ −1, κ = 0 ↦ 0 (the bulk sits in the middle of the tanh range with slope 1/(2λ) ≈ 8.5, so σ_κ
becomes σ_s ≈ 0.14), κ = 0.5 ↦ 0.81, κ → ∞ ↦ 1: the tail is compressed but never clipped. The map is strictly
increasing for κ > −λ; κ below the empty-beam bound (discretisation noise in a particle-mesh map) is clipped to
−λ first, so ``kappa_to_pixel`` always lands in [−1, 1). The inverse clips s to [−1 + ε, 1 − ε] with ε = 1e-6, so
a saturated tanh still gives a finite κ (at most 2λ/ε ≈ 1.2e5).

Both functions take numpy arrays, Python floats or torch tensors and return the same kind (torch: differentiable).
"""

from __future__ import annotations

import numpy as np
import torch

KAPPA_SHIFT = 0.059  # λ, the empty-beam shift: κ ≥ −λ
KAPPA_SCALE = 0.059  # a; a = λ puts κ = 0 at pixel 0
PIXEL_EPS = 1e-6


def _clip(x, lo: float, hi: float):
    if isinstance(x, torch.Tensor):
        return x.clamp(lo, hi)
    return np.clip(np.asarray(x), lo, hi)


def kappa_to_pixel(kappa, shift: float = KAPPA_SHIFT, scale: float = KAPPA_SCALE):
    """Convergence κ → pixel s = 2(κ + λ)/(κ + λ + a) − 1 ∈ [−1, 1); κ < −λ is clipped to −λ first."""
    y = _clip(kappa, -shift, np.inf) + shift
    return 2.0 * y / (y + scale) - 1.0


def pixel_to_kappa(pixel, shift: float = KAPPA_SHIFT, scale: float = KAPPA_SCALE):
    """Pixel s → convergence κ = a(1 + s)/(1 − s) − λ, the exact inverse of :func:`kappa_to_pixel` on κ ≥ −λ.

    s is clipped to [−1 + 1e-6, 1 − 1e-6] first, so tanh outputs that saturate at ±1 map to finite κ.
    """
    s = _clip(pixel, -1.0 + PIXEL_EPS, 1.0 - PIXEL_EPS)
    return scale * (1.0 + s) / (1.0 - s) - shift
