"""hpcgen.ops.radial_power_spectrum: the one C_ℓ estimator, checked against fields of known spectrum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from hpcgen import ops
from hpcgen.ops.power_spectrum import radial_power_spectrum_ref
from hpcgen.physics.cosmology import CosmologyParams, limber_convergence_cl
from hpcgen.physics.map_statistics import ell_grid, gaussian_field

PIXEL_RAD = math.radians(3.5) / 64  # CosmoGAN's 3.5° field on 64² pixels


def expected_binned_cl(cl_fn, pixels: int, pixel_rad: float, edges: np.ndarray) -> np.ndarray:
    """The estimator's expectation for a Gaussian field: C(ℓ) averaged over the full-plane modes of each bin."""
    ell = ell_grid(pixels, pixel_rad).ravel()
    ell = ell[ell > 0]
    e = edges.copy()
    e[0], e[-1] = e[0] * (1 - 1e-9), e[-1] * (1 + 1e-9)  # the first mode and the Nyquist mode sit on the edges
    idx = np.searchsorted(e, ell, side="right") - 1
    keep = (idx >= 0) & (idx < edges.size - 1)
    return np.bincount(idx[keep], cl_fn(ell[keep]), edges.size - 1) / np.bincount(idx[keep], None, edges.size - 1)


def assert_recovers(cl_fn, n_maps: int, pixels: int, seed: int):
    maps = gaussian_field(cl_fn, n_maps, pixels, PIXEL_RAD, np.random.default_rng(seed))
    ps = ops.cl_numpy(maps, PIXEL_RAD)
    truth = expected_binned_cl(cl_fn, pixels, PIXEL_RAD, ps.edges)
    sigma = np.sqrt(2.0 / ps.modes) / math.sqrt(n_maps)  # cosmic variance of the mean, relative
    pulls = (ps.cl.mean(axis=0) / truth - 1.0) / sigma
    assert np.all(np.abs(pulls) < 4.0), pulls
    # the pulls are ~N(0, 1): their χ² must be plausible for nb degrees of freedom
    assert stats.chi2.sf(np.sum(pulls**2), pulls.size) > 1e-3, pulls


def test_power_law_spectrum_is_recovered_within_cosmic_variance_per_bin():
    assert_recovers(lambda ell: 1e-9 * (ell / 1000.0) ** -1.2, n_maps=60, pixels=64, seed=1)


def test_pyccl_limber_convergence_spectrum_is_recovered_within_cosmic_variance_per_bin():
    ell_tab = np.geomspace(50, 1e4, 200)
    cl_tab = limber_convergence_cl(CosmologyParams(), ell_tab, z_source=1.0)
    cl_fn = lambda ell: np.exp(np.interp(np.log(ell), np.log(ell_tab), np.log(cl_tab)))
    assert_recovers(cl_fn, n_maps=60, pixels=64, seed=2)


@pytest.mark.parametrize("pixels", [16, 15])
def test_parseval_pixel_variance_equals_sum_of_modes_times_cl_over_area(pixels):
    # Bins covering every mode but ℓ = 0 (the corners reach √2 × Nyquist): Var(κ) = Σ_b modes_b C_b / L².
    maps = torch.randn(3, pixels, pixels, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    edges = np.linspace(0.5, 1.5 * pixels, 9) * 2 * math.pi / (pixels * PIXEL_RAD)
    ps = ops.radial_power_spectrum(maps, PIXEL_RAD, bins=edges)
    area = (pixels * PIXEL_RAD) ** 2
    torch.testing.assert_close((ps.cl * ps.modes).sum(dim=1) / area, maps.var(dim=(1, 2), unbiased=False))


@pytest.mark.parametrize("pixels", [16, 15])
def test_modes_per_bin_count_the_full_fft_plane_with_hermitian_pairs(pixels):
    edges = np.linspace(0.5, 1.5 * pixels, 7) * 2 * math.pi / (pixels * PIXEL_RAD)
    ps = ops.radial_power_spectrum(torch.zeros(1, pixels, pixels), PIXEL_RAD, bins=edges)
    ell = ell_grid(pixels, PIXEL_RAD)
    full_plane = np.histogram(ell[ell > 0], bins=edges)[0]
    assert ps.modes.tolist() == full_plane.tolist()
    assert int(ps.modes.sum()) == pixels * pixels - 1


def test_default_bins_run_log_spaced_from_the_fundamental_to_nyquist_and_every_bin_has_modes():
    ps = ops.radial_power_spectrum(torch.zeros(2, 64, 64), PIXEL_RAD)
    fund, nyquist = 2 * math.pi / (64 * PIXEL_RAD), math.pi / PIXEL_RAD
    assert float(ps.edges[0]) == pytest.approx(fund) and float(ps.edges[-1]) == pytest.approx(nyquist)
    assert len(ps.ell) <= 20 and bool((ps.modes > 0).all())
    assert bool((ps.ell >= ps.edges[:-1]).all() and (ps.ell <= ps.edges[1:]).all())
    # lowest bin: the four modes |n| = 1; linear bins keep exactly the number asked for
    assert int(ps.modes[0]) == 4 and float(ps.ell[0]) == pytest.approx(fund)
    lin = ops.radial_power_spectrum(torch.zeros(2, 64, 64), PIXEL_RAD, bins=8, log_bins=False)
    assert len(lin.ell) == 8
    np.testing.assert_allclose(np.diff(lin.edges.numpy()), (nyquist - fund) / 8)


def test_batch_partial_sums_equal_the_per_map_values_summed():
    maps = torch.randn(5, 32, 32, generator=torch.Generator().manual_seed(3))
    ps = ops.radial_power_spectrum(maps, PIXEL_RAD)
    torch.testing.assert_close(ps.sum_cl, ps.cl.sum(dim=0))
    torch.testing.assert_close(ps.sum_cl2, (ps.cl**2).sum(dim=0))
    assert float(ps.count) == 5.0
    # all-reducing the partial sums of two "ranks" gives the full batch's sums
    a, b = ops.radial_power_spectrum(maps[:2], PIXEL_RAD), ops.radial_power_spectrum(maps[2:], PIXEL_RAD)
    torch.testing.assert_close(a.sum_cl + b.sum_cl, ps.sum_cl)
    torch.testing.assert_close(a.sum_cl2 + b.sum_cl2, ps.sum_cl2)
    torch.testing.assert_close(a.count + b.count, ps.count)


def test_each_map_of_a_batch_is_binned_independently_of_the_others():
    maps = torch.randn(4, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    batch = ops.radial_power_spectrum(maps, PIXEL_RAD).cl
    single = torch.cat([ops.radial_power_spectrum(m[None], PIXEL_RAD).cl for m in maps])
    torch.testing.assert_close(batch, single)


def test_float32_agrees_with_float64_and_keeps_its_dtype():
    maps = torch.randn(2, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    c64 = ops.radial_power_spectrum(maps, PIXEL_RAD).cl
    c32 = ops.radial_power_spectrum(maps.float(), PIXEL_RAD).cl
    assert c32.dtype == torch.float32
    torch.testing.assert_close(c32.double(), c64, rtol=1e-4, atol=0)


def test_gradient_flows_to_every_pixel_and_passes_gradcheck():
    maps = torch.randn(2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(6), requires_grad=True)
    assert torch.autograd.gradcheck(lambda m: ops.radial_power_spectrum(m, PIXEL_RAD, bins=3).cl, (maps,))
    ops.radial_power_spectrum(maps, PIXEL_RAD, bins=3).cl.sum().backward()
    assert maps.grad is not None and bool(torch.isfinite(maps.grad).all()) and float(maps.grad.abs().sum()) > 0


def test_public_face_and_reference_twin_agree():
    maps = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(7))
    for face, ref in zip(ops.radial_power_spectrum(maps, PIXEL_RAD, impl="ref"), radial_power_spectrum_ref(maps, PIXEL_RAD)):
        torch.testing.assert_close(face, ref)


def test_bad_impl_is_a_value_error_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="'auto'.*'ref'.*'cpu'.*'cuda'"):
        ops.radial_power_spectrum(torch.zeros(1, 8, 8), PIXEL_RAD, impl="gpu")


@pytest.mark.parametrize(
    "maps, match",
    [(torch.zeros(1, 8, 6), "square"), (torch.zeros(8, 8), r"\(B, N, N\)"), (torch.zeros(1, 8, 8, dtype=torch.int64), "floating")],
)
def test_rejects_maps_that_are_not_a_batch_of_square_float_maps(maps, match):
    with pytest.raises(ValueError, match=match):
        ops.radial_power_spectrum(maps, PIXEL_RAD)


def test_rejects_bad_pixel_scale_and_edges():
    with pytest.raises(ValueError, match="pixel_rad"):
        ops.radial_power_spectrum(torch.zeros(1, 8, 8), 0.0)
    with pytest.raises(ValueError, match="increasing"):
        ops.radial_power_spectrum(torch.zeros(1, 8, 8), PIXEL_RAD, bins=[100.0, 50.0])
    with pytest.raises(ValueError, match="ell_range"):
        ops.radial_power_spectrum(torch.zeros(1, 8, 8), PIXEL_RAD, bins=[100.0, 500.0], ell_range=(1, 2))
