"""Shifted-lognormal κ maps (Hilbert, Hartlap & Schneider 2011; Xavier, Abdalla & Joachimi 2016) against their model.

Sampling errors: pixels of one map are correlated, so every moment is estimated per map and its standard error is
the map-to-map scatter / √n_maps. With 300 maps of 256² the errors are 0.17 % on ⟨κ²⟩ and 0.48 % on ⟨κ³⟩.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import maximum_filter

from hpcgen.physics.cosmology import CosmologyParams
from hpcgen.seeding import stream
from hpcgen.sim.cosmo_lognormal import empty_beam_shift, lognormal_model, simulate_lognormal
from hpcgen.sim.cosmo_spec import CosmoMapSpec

SPEC = CosmoMapSpec()  # CosmoGAN: 256², 3.5°, z_s = 1
N_MAPS = 300
PULL = 4.0  # |estimate − expectation| < 4 standard errors


@pytest.fixture(scope="module")
def maps():
    return simulate_lognormal(N_MAPS, SPEC, stream(2024, 7)).astype(np.float64)


@pytest.fixture(scope="module")
def model():
    return lognormal_model(SPEC)


def per_map_mean_and_error(per_map: np.ndarray) -> tuple[float, float]:
    return float(per_map.mean()), float(per_map.std(ddof=1) / np.sqrt(per_map.size))


def assert_matches(per_map: np.ndarray, expected: float) -> None:
    mean, err = per_map_mean_and_error(per_map)
    assert abs(mean - expected) < PULL * err, f"{mean:.4g} ± {err:.2g}, expected {expected:.4g}"


def count_peaks(kappa: np.ndarray, threshold: float) -> int:
    """8-neighbour local maxima above ``threshold`` in (B, N, N) periodic maps."""
    local_max = kappa == maximum_filter(kappa, size=(1, 3, 3), mode="wrap")
    return int(np.count_nonzero(local_max & (kappa > threshold)))


def test_output_is_float32_maps_of_the_spec_shape():
    spec = CosmoMapSpec(pixels=32)
    k = simulate_lognormal(3, spec, stream(0))
    assert k.shape == (3, 32, 32) and k.dtype == np.float32
    assert simulate_lognormal(0, spec, stream(0)).shape == (0, 32, 32)


def test_same_rng_state_gives_same_maps_and_a_new_state_new_maps():
    spec = CosmoMapSpec(pixels=64)
    a = simulate_lognormal(5, spec, stream(1))
    assert np.array_equal(a, simulate_lognormal(5, spec, stream(1)))
    assert np.array_equal(a, simulate_lognormal(40, spec, stream(1))[:5])  # crosses a chunk boundary
    assert not np.allclose(a, simulate_lognormal(5, spec, stream(2)))


def test_progress_reports_every_map_done():
    done = []
    simulate_lognormal(600, CosmoMapSpec(pixels=64), stream(3), progress=done.append)
    assert done == sorted(done) and done[-1] == 600 and len(done) > 1


def test_empty_beam_shift_is_the_reference_0059_at_z1():
    # shared/REFERENCE.md §2: λ = |κ_empty| ≈ 0.059 at z_s = 1; the empty beam grows with source distance.
    assert empty_beam_shift(SPEC.cosmology, 1.0) == pytest.approx(0.059, rel=0.01)
    assert empty_beam_shift(SPEC.cosmology, 0.5) < 0.059 < empty_beam_shift(SPEC.cosmology, 1.5)


def test_pixel_sigma_kappa_is_the_reference_0017(model):
    # shared/REFERENCE.md §2: pixel σ_κ ≈ 0.017 for 256² over 3.5° at z_s = 1 (we get 0.0182).
    assert np.sqrt(model.variance_target) == pytest.approx(0.017, rel=0.2)


def test_clipping_the_gaussian_power_barely_changes_the_variance(model):
    assert model.clipped_power_fraction < 1e-4
    assert model.variance == pytest.approx(model.variance_target, rel=1e-4)


def test_kappa_never_goes_below_minus_shift(maps, model):
    assert maps.min() > -model.shift
    assert maps.min() < -0.5 * model.shift  # the bound is approached, not trivially far away


def test_mean_is_zero(maps):
    assert_matches(maps.mean(axis=(1, 2)), 0.0)


def test_variance_is_the_pixelised_sigma_kappa_squared(maps, model):
    assert_matches((maps**2).mean(axis=(1, 2)), model.variance_target)


def test_third_moment_follows_the_shifted_lognormal_law(maps, model):
    # ⟨κ³⟩ = 3σ⁴/λ + σ⁶/λ³ (REFERENCE §2). A Gaussian field (0) is 210 standard errors away, a 10 % wrong λ ≥ 20.
    s2, lam = model.variance_target, model.shift
    expected = 3 * s2**2 / lam + s2**3 / lam**3
    assert_matches((maps**3).mean(axis=(1, 2)), expected)


@pytest.mark.parametrize("lag", [1, 4, 16])
def test_pixel_correlation_is_xi_kappa_of_the_discrete_spectrum(maps, model, lag):
    # ξ_g = ln(1 + ξ_κ/λ²) must give back ξ_κ after the transform, at every lag, along both axes.
    for axis in (1, 2):
        assert_matches((maps * np.roll(maps, lag, axis=axis)).mean(axis=(1, 2)), model.xi_kappa[0, lag])


def test_peak_counts_above_fixed_kappa_grow_with_sigma8():
    counts = []
    for sigma8 in (0.7, 0.8, 0.9):
        spec = CosmoMapSpec(cosmology=dataclasses.replace(CosmologyParams(), sigma8=sigma8))
        counts.append(count_peaks(simulate_lognormal(8, spec, stream(11)), threshold=0.03))
    assert counts[0] > 50 and counts[0] < counts[1] < counts[2], counts


def test_a_shift_too_small_for_the_field_is_refused():
    with pytest.raises(ValueError, match="shift"):
        lognormal_model(SPEC, shift=0.0015)  # needs λ² > −min ξ_κ = 3.0e-6
    with pytest.raises(ValueError, match="shift"):
        lognormal_model(SPEC, shift=-0.05)
