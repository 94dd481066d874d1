"""Pure-torch reference twins of the fused ops: the specification every compiled kernel is tested against.

Each function here is plain differentiable torch, written for clarity rather than speed; the compiled CPU/CUDA
kernels (arriving with the fused-kernel issue) must agree with it to rounding.
"""

from __future__ import annotations

import torch


def ecal_sum_ref(x: torch.Tensor) -> torch.Tensor:
    """Total visible energy per shower: ``x.sum`` over the three cell axes.

    Args:
        x: (B, X, Y, Z) floating-point cell energies (GeV in the 3DGAN layout).

    Returns:
        (B,) per-sample totals, accumulated and returned in float32 — or in float64 when ``x`` is float64, so a
        float64 gradcheck stays exact. The gradient with respect to every cell is 1.
    """
    if x.ndim != 4:
        raise ValueError(f"ecal_sum expects x of shape (B, X, Y, Z), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"ecal_sum expects a floating-point x, got dtype {x.dtype}")
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    return x.sum(dim=(1, 2, 3), dtype=acc)
