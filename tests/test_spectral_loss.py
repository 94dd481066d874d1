"""The CosmoGAN spectral loss does not change with the number of ranks: value and gradients of 2 ranks × B equal
those of 1 rank × 2B (the ranks are simulated in one process: each sees the other's partial sums through the
all-reduce it is given, exactly what the engines' allreduce_sum returns)."""

from __future__ import annotations

import math

import torch

from hpcgen.ops import radial_power_spectrum
from hpcgen.train.spectral_loss import spectral_edges, spectral_loss

N, PIXEL_RAD = 32, math.radians(3.5 / 32)


def _maps(seed: int, b: int, scale: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, N, N, generator=g, dtype=torch.float64) * scale).cumsum(-1) * 0.1


def _partial_sums(maps: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    ps = radial_power_spectrum(maps, PIXEL_RAD, bins=edges, log_bins=False)
    return torch.stack([ps.sum_cl, ps.sum_cl2, ps.count.expand_as(ps.sum_cl)]).detach().double()


def test_two_ranks_see_the_loss_and_gradients_of_one_rank_with_the_whole_batch():
    edges = spectral_edges(N, PIXEL_RAD)
    fake, real = _maps(1, 8, 1.0), _maps(2, 8, 1.3)
    whole = fake.clone().requires_grad_(True)
    ref = spectral_loss(whole, real, PIXEL_RAD, edges, lambda t: t)  # 1 rank: all-reduce is the identity
    ref.backward()
    halves = [fake[:4].clone().requires_grad_(True), fake[4:].clone().requires_grad_(True)]
    reals = [real[:4], real[4:]]
    for r in (0, 1):
        other = 1 - r
        # the engine's allreduce_sum on rank r: its own sums plus the other rank's
        def allreduce(t, other=other, calls=[0]):
            which = [halves[other].detach(), reals[other]][calls[0] % 2]
            calls[0] += 1
            return t + _partial_sums(which, edges)
        loss = spectral_loss(halves[r], reals[r], PIXEL_RAD, edges, allreduce)
        torch.testing.assert_close(loss, ref, rtol=1e-10, atol=0)
        loss.backward()
    # each rank's gradient is exactly its slice of the whole-batch gradient (the trainer's × world size then
    # compensates the engines' gradient averaging)
    torch.testing.assert_close(torch.cat([h.grad for h in halves]), whole.grad, rtol=1e-9, atol=1e-300)


def test_the_loss_is_lower_for_a_batch_whose_spectrum_matches():
    edges = spectral_edges(N, PIXEL_RAD)
    real = _maps(3, 8, 1.0)
    close = spectral_loss(_maps(4, 8, 1.0), real, PIXEL_RAD, edges, lambda t: t)
    far = spectral_loss(_maps(4, 8, 2.0), real, PIXEL_RAD, edges, lambda t: t)
    assert close < far
