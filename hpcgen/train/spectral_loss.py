"""CosmoGAN's spectral loss with batch statistics that do not depend on the number of ranks.

L = λ1·log mean_b (P̄_gen − P̄_ref)² + λ2·log mean_b (Var_gen − Var_ref)², over the first N/2 linear ℓ bins of the
batch power spectrum (the descendants of Mustafa et al. 2017, shared/REFERENCE.md §1), measured with the one
estimator ``hpcgen.ops.radial_power_spectrum``.

Under data parallelism the batch is the union of every rank's batch, so the per-bin partial sums (ΣP, ΣP², n) are
all-reduced before P̄ and Var are formed — otherwise the loss would change with the rank count. The all-reduced sums
enter as ``local + (global − local).detach()``: the value is the global one and the gradient flows through this
rank's own samples only. The trainer multiplies the term by the world size before backward, because both engines
*average* gradients over ranks while a global loss needs their *sum* (tests/test_spectral_loss.py checks value and
gradients against one process holding the whole batch).
"""

from __future__ import annotations

from typing import Callable

import torch

from hpcgen.ops import radial_power_spectrum

_EPS = 1e-30  # keeps log finite when two spectra agree exactly


def spectral_edges(pixels: int, pixel_rad: float) -> torch.Tensor:
    """Edges of N/2 linear ℓ bins of width ℓ_f = 2π/L, the first starting at ℓ_f/2 (so ℓ = 0 is excluded)."""
    ell_f = 2 * torch.pi / (pixels * pixel_rad)
    return (torch.arange(pixels // 2 + 1, dtype=torch.float64) + 0.5) * ell_f


def _global_moments(maps: torch.Tensor, pixel_rad: float, edges: torch.Tensor,
                    allreduce_sum: Callable[[torch.Tensor], torch.Tensor], impl: str) -> tuple[torch.Tensor, torch.Tensor]:
    ps = radial_power_spectrum(maps, pixel_rad, bins=edges, log_bins=False, impl=impl)
    local = torch.stack([ps.sum_cl, ps.sum_cl2, ps.count.expand_as(ps.sum_cl)])
    total = allreduce_sum(local.detach())
    glob = local + (total - local.detach())
    mean = glob[0] / glob[2]
    return mean, glob[1] / glob[2] - mean.square()


def spectral_loss(fake: torch.Tensor, real: torch.Tensor, pixel_rad: float, edges: torch.Tensor,
                  allreduce_sum: Callable[[torch.Tensor], torch.Tensor], weights=(1.0, 1.0),
                  impl: str = "auto") -> torch.Tensor:
    """The loss value over the global batch; gradients reach ``fake`` of this rank only (see module docstring).

    fake, real: (B, N, N) maps (this rank's part of the batch); allreduce_sum: the engine's sum over ranks;
    impl: the power-spectrum implementation (``hpcgen.ops`` ``impl=``).
    """
    # float64: Var = ⟨P²⟩ − ⟨P⟩² cancels badly in float32 (gradients off by 1e-3 relative)
    mean_f, var_f = _global_moments(fake.double(), pixel_rad, edges, allreduce_sum, impl)
    with torch.no_grad():
        mean_r, var_r = _global_moments(real.double(), pixel_rad, edges, allreduce_sum, impl)
    l1 = torch.log((mean_f - mean_r).square().mean() + _EPS)
    l2 = torch.log((var_f - var_r).square().mean() + _EPS)
    return (weights[0] * l1 + weights[1] * l2).to(fake.dtype)
