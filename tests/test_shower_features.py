"""Shower observables on hand-built showers whose answers are known in closed form."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY, SamplingCalorimeter
from hpcgen.physics.shower_features import (
    DEFAULT_HIT_THRESHOLD_GEV,
    SCALAR_FEATURES,
    cell_energy_spectrum,
    hit_count,
    hit_threshold_gev,
    longitudinal_profile,
    moments,
    radial_containment,
    sampling_fraction,
    shower_features,
    sparsity,
    transverse_profiles,
)

GEOM = SamplingCalorimeter(n_layers=6, n_cells_xy=5, cell_size_mm=4.0)  # x centres −8, −4, 0, 4, 8 mm


def empty(n: int = 1) -> np.ndarray:
    return np.zeros((n, *GEOM.shape), dtype=np.float32)


def test_single_cell_shower_is_centred_on_its_cell_with_zero_width():
    e = empty()
    e[0, 3, 1, 4] = 2.0
    m = moments(e, GEOM)
    assert m["x_mean_mm"][0] == pytest.approx(4.0)
    assert m["y_mean_mm"][0] == pytest.approx(-4.0)
    assert m["depth_mean_mm"][0] == pytest.approx(GEOM.layer_centres_mm()[4])
    for axis in ("x", "y", "depth"):
        assert m[f"{axis}_std_mm"][0] == pytest.approx(0.0, abs=1e-12)


def test_symmetric_pair_has_mean_on_axis_and_width_equal_to_half_separation():
    e = empty()
    e[0, 0, 2, 1] = 1.0  # x = −8 mm
    e[0, 4, 2, 1] = 1.0  # x = +8 mm
    m = moments(e, GEOM)
    assert m["x_mean_mm"][0] == pytest.approx(0.0, abs=1e-12)
    assert m["x_std_mm"][0] == pytest.approx(8.0)
    assert m["y_std_mm"][0] == pytest.approx(0.0, abs=1e-12)


def test_unequal_pair_moments_follow_energy_weighting():
    # Weights 3:1 at depths z0 and z1: mean = (3 z0 + z1)/4, std = |z1 − z0|·√(3/16).
    z = GEOM.layer_centres_mm()
    e = empty()
    e[0, 2, 2, 0] = 3.0
    e[0, 2, 2, 5] = 1.0
    m = moments(e, GEOM)
    assert m["depth_mean_mm"][0] == pytest.approx((3 * z[0] + z[5]) / 4)
    assert m["depth_std_mm"][0] == pytest.approx((z[5] - z[0]) * np.sqrt(3 / 16))


def test_moments_do_not_depend_on_the_energy_scale():
    rng = np.random.default_rng(1)
    e = rng.exponential(1.0, (3, *GEOM.shape)).astype(np.float32)
    m1, m2 = moments(e, GEOM), moments(1000.0 * e, GEOM)
    for k in m1:
        np.testing.assert_allclose(m1[k], m2[k], rtol=1e-5)


def test_sampling_fraction_is_visible_energy_over_primary_energy():
    e = empty(2)
    e[0, 2, 2, 2] = 0.5
    e[1, 1, 1, 1] = 0.25
    e[1, 3, 3, 3] = 0.25
    np.testing.assert_allclose(sampling_fraction(e, np.array([50.0, 10.0])), [0.01, 0.05])


def test_sampling_fraction_rejects_non_positive_primary_energy():
    with pytest.raises(ValueError, match="energy_gev"):
        sampling_fraction(empty(2), np.array([10.0, 0.0]))


def test_profiles_are_per_axis_sums_that_add_up_to_the_visible_energy():
    rng = np.random.default_rng(2)
    e = rng.exponential(1.0, (4, *GEOM.shape)).astype(np.float32)
    total = e.sum(axis=(1, 2, 3), dtype=np.float64)
    lp = longitudinal_profile(e)
    xp, yp = transverse_profiles(e)
    assert lp.shape == (4, GEOM.n_layers) and xp.shape == yp.shape == (4, GEOM.n_cells_xy)
    for p in (lp, xp, yp):
        np.testing.assert_allclose(p.sum(axis=1), total, rtol=1e-6)
    np.testing.assert_allclose(xp[:, 1], e[:, 1].sum(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(yp[:, 3], e[:, :, 3].sum(axis=(1, 2)), rtol=1e-6)


def test_hit_count_counts_cells_strictly_above_threshold_and_sparsity_is_their_fraction():
    e = empty(2)
    e[0, 0, 0, 0] = 1e-3
    e[0, 1, 0, 0] = 1e-4  # exactly at threshold: not a hit
    e[0, 2, 0, 0] = 1e-5
    e[1, :, :, 0] = 1.0
    np.testing.assert_array_equal(hit_count(e, 1e-4), [1, 25])
    np.testing.assert_allclose(sparsity(e, 1e-4), np.array([1, 25]) / GEOM.shape[0] / GEOM.shape[1] / GEOM.shape[2])


def test_cell_energy_spectrum_lists_every_cell_above_threshold_from_all_showers():
    e = empty(2)
    e[0, 0, 0, 0] = 0.3
    e[0, 4, 4, 5] = 1e-6
    e[1, 2, 2, 2] = 0.7
    np.testing.assert_allclose(np.sort(cell_energy_spectrum(e, 1e-4)), [0.3, 0.7], rtol=1e-6)


def test_radial_containment_of_a_uniform_3x3_box_counts_cells_by_centre_distance():
    e = empty()
    e[0, 1:4, 1:4, :] = 1.0  # 3×3 box of 4 mm cells around the axis, all layers
    c = GEOM.cell_size_mm
    assert radial_containment(e, GEOM, 0.5 * c)[0] == pytest.approx(1 / 9)  # central cell only
    assert radial_containment(e, GEOM, c)[0] == pytest.approx(5 / 9)  # plus the 4 edge neighbours
    assert radial_containment(e, GEOM, np.sqrt(2) * c)[0] == pytest.approx(1.0)  # plus the 4 corners
    assert radial_containment(e, GEOM, 100.0)[0] == pytest.approx(1.0)


def test_empty_shower_gives_finite_zero_features_without_warnings():
    e = empty(2)
    e[1, 2, 2, 2] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = shower_features(e, np.array([10.0, 10.0]), GEOM)
        c = radial_containment(e, GEOM, 5.0)
    for k, v in f.items():
        assert np.all(np.isfinite(v)), k
        assert v[0] == 0, k
    assert c[0] == 0 and c[1] == 1


def test_shower_features_returns_every_scalar_feature_per_shower():
    rng = np.random.default_rng(3)
    e = rng.exponential(1e-3, (7, *GEOM.shape)).astype(np.float32)
    f = shower_features(e, np.full(7, 20.0), GEOM)
    assert tuple(f) == SCALAR_FEATURES
    assert all(v.shape == (7,) for v in f.values())
    np.testing.assert_allclose(f["sampling_fraction"], e.sum(axis=(1, 2, 3), dtype=np.float64) / 20.0, rtol=1e-6)
    np.testing.assert_array_equal(f["hit_count"], hit_count(e, hit_threshold_gev(GEOM)))


def test_default_hit_threshold_is_a_tenth_of_the_silicon_mip_deposit():
    # 0.5 mm Si × 0.3876 MeV/mm ≈ 0.194 MeV per MIP; a tenth of it is ≈ 19.4 keV.
    assert DEFAULT_HIT_THRESHOLD_GEV == pytest.approx(0.1 * 0.5 * 0.3876e-3)
    assert hit_threshold_gev(DEFAULT_GEOMETRY) == DEFAULT_HIT_THRESHOLD_GEV


def test_geometry_that_does_not_match_the_cells_is_rejected():
    with pytest.raises(ValueError, match="geometry"):
        moments(np.zeros((1, 4, 4, 6)), GEOM)
    with pytest.raises(ValueError, match=r"\(N, nx, ny, nz\)"):
        hit_count(np.zeros((4, 4, 6)))
