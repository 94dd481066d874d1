"""hpcgen.physics.map_statistics: Gaussian fields, peaks, Minkowski functionals and the two-sample comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from hpcgen import ops
from hpcgen.physics import map_statistics as ms

NU = np.linspace(-3.0, 3.0, 25)


def smooth_cl(ell):
    """A Gaussian-beam spectrum in pixel units (pixel_rad = 1): correlation length of a few pixels, so the finite
    differences of the Minkowski estimator resolve the field."""
    return np.exp(-((3.0 * ell) ** 2))


@pytest.fixture(scope="module")
def smooth_maps():
    return ms.gaussian_field(smooth_cl, 100, 64, 1.0, np.random.default_rng(0))


def within_sampling_error(per_map: np.ndarray, expected: np.ndarray, rel_floor: float = 0.0) -> None:
    """Mean over maps equals ``expected`` within 4 standard errors (plus a floor relative to the curve's peak)."""
    mean = per_map.mean(axis=0)
    se = per_map.std(axis=0, ddof=1) / np.sqrt(per_map.shape[0])
    tol = 4 * se + rel_floor * np.abs(expected).max()
    assert np.all(np.abs(mean - expected) <= tol), (mean - expected) / np.maximum(se, 1e-300)


def test_gaussian_field_has_zero_mean_and_the_pixel_variance_of_its_spectrum(smooth_maps):
    # Var(κ) = Σ_{ℓ≠0} C(ℓ)/L² over the FFT plane (Parseval), with pixel_rad = 1 so L = N
    ell = ms.ell_grid(64, 1.0)
    expected_var = smooth_cl(ell[ell > 0]).sum() / 64**2
    assert np.abs(smooth_maps.mean(axis=(1, 2))).max() < 1e-12
    assert smooth_maps.var(axis=(1, 2)).mean() == pytest.approx(expected_var, rel=0.05)


def test_gaussian_field_accepts_the_spectrum_as_an_array_on_the_fft_grid():
    ell = ms.ell_grid(16, 0.01)
    table = np.where(ell > 0, 1e-6 / np.maximum(ell, 1e-30), 0.0)
    a = ms.gaussian_field(lambda l: 1e-6 / l, 3, 16, 0.01, np.random.default_rng(1))
    b = ms.gaussian_field(table, 3, 16, 0.01, np.random.default_rng(1))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match=">= 0"):
        ms.gaussian_field(lambda l: -np.ones_like(l), 1, 16, 0.01, np.random.default_rng(1))


def test_v0_of_gaussian_maps_is_half_erfc_of_nu_over_sqrt2(smooth_maps):
    v0, _, _ = ms.minkowski_functionals(smooth_maps, NU)
    within_sampling_error(v0, ms.gaussian_minkowski(NU, 1.0)[0])


def test_v1_and_v2_of_gaussian_maps_follow_the_gaussian_kinematic_formulae(smooth_maps):
    # V1 ∝ (σ1/σ0) e^{-ν²/2}, V2 ∝ (σ1/σ0)² ν e^{-ν²/2}, with σ1 from the estimator's own finite differences;
    # a 5 % floor covers the O(Δν²) top-hat window and the finite-difference curvature.
    _, v1, v2 = ms.minkowski_functionals(smooth_maps, NU)
    ratio = ms.rms_gradient(smooth_maps) / smooth_maps.std(axis=(1, 2))
    expected = np.mean([ms.gaussian_minkowski(NU, r) for r in ratio], axis=0)
    within_sampling_error(v1, expected[1], rel_floor=0.05)
    within_sampling_error(v2, expected[2], rel_floor=0.05)
    # V2 (Euler characteristic) changes sign at ν = 0: holes dominate below, isolated hot spots above
    mean_v2 = v2.mean(axis=0)
    assert np.all(mean_v2[NU < -0.5] < 0) and np.all(mean_v2[NU > 0.5] > 0)


def test_minkowski_lengths_scale_with_the_pixel_size(smooth_maps):
    _, v1, v2 = ms.minkowski_functionals(smooth_maps[:4], NU)
    _, v1_deg, v2_deg = ms.minkowski_functionals(smooth_maps[:4], NU, pixel_size=0.5)
    np.testing.assert_allclose(v1_deg, 2 * v1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(v2_deg, 4 * v2, rtol=1e-12, atol=1e-15)


def test_a_single_disc_has_one_component_and_the_perimeter_of_a_circle():
    # A cone u = R - r thresholded at 0: a disc of radius R, so V2·A = χ = 1 and V1·A = 2πR/4. The wide window
    # (an annulus R ± 3 pixels) averages out the pixelisation of the δ function.
    n, radius = 129, 30.0
    y, x = np.mgrid[:n, :n] - n // 2
    cone = radius - np.hypot(x, y)
    _, v1, v2 = ms.minkowski_functionals(cone[None], [0.0], sigma=1.0, dnu=6.0)
    area = (n - 2) ** 2
    assert v2[0, 0] * area == pytest.approx(1.0, rel=0.02)
    assert v1[0, 0] * area == pytest.approx(2 * np.pi * radius / 4, rel=0.02)


def test_peak_finder_finds_exactly_the_planted_peaks():
    kappa = np.zeros((20, 24))
    planted = {(3, 4): 1.0, (10, 10): 2.5, (15, 20): 0.7, (5, 17): 4.0}
    for (r, c), h in planted.items():
        kappa[r, c] = h
        kappa[r - 1 : r + 2, c - 1 : c + 2] += 0.1 * h  # shoulders lower than the summit are not peaks
        kappa[r, c] = 1.1 * h
    kappa[0, 12] = 9.0  # a border pixel has no full neighbourhood: never a peak
    kappa[17, 5] = kappa[17, 6] = 3.0  # a plateau is not a strict maximum
    rows, cols, heights = ms.find_peaks(kappa)
    assert sorted(zip(rows.tolist(), cols.tolist())) == sorted(planted)
    assert sorted(heights.tolist()) == pytest.approx(sorted(1.1 * h for h in planted.values()))
    counts = ms.peak_counts(kappa[None], nu=[0.5, 1.0, 3.0], sigma=1.0)
    assert counts.tolist() == [[4, 3, 1]]


def test_peak_counts_above_fixed_absolute_thresholds_increase_with_the_map_amplitude():
    # The sigma8 law for peaks: more amplitude, more high peaks at the same κ level.
    base = ms.gaussian_field(smooth_cl, 20, 64, 1.0, np.random.default_rng(2))
    sigma = base.std()
    nu = np.array([1.0, 2.0, 3.0])
    counts = [ms.peak_counts(a * base, nu, sigma=sigma).sum(axis=0) for a in (0.8, 1.0, 1.3)]
    assert np.all(counts[0] < counts[1]) and np.all(counts[1] < counts[2]), counts
    # in units of each map's own σ the counts do not depend on the amplitude at all
    np.testing.assert_array_equal(ms.peak_counts(1.3 * base, nu), ms.peak_counts(base, nu))


def test_peak_counts_of_gaussian_maps_decrease_with_threshold(smooth_maps):
    counts = ms.peak_counts(smooth_maps, NU)
    assert np.all(np.diff(counts, axis=1) <= 0)
    assert counts[:, 0].min() > 0


def test_pixel_histograms_are_fractions_of_each_maps_pixels():
    maps = np.random.default_rng(3).normal(size=(4, 16, 16))
    h = ms.pixel_histograms(maps, np.linspace(-10, 10, 21))
    np.testing.assert_allclose(h.sum(axis=1), 1.0)
    assert h.shape == (4, 20)


def test_chi2_of_mean_spectra_is_small_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(4)
    cl = lambda ell: 1e-9 * (ell / 1000.0) ** -1.2
    pix = np.radians(3.5) / 32

    def spectra(n, amplitude=1.0):
        return ops.cl_numpy(amplitude * ms.gaussian_field(cl, n, 32, pix, rng), pix).cl

    ref = spectra(40)
    same = ms.chi2_mean_spectra(ref, spectra(30))
    other = ms.chi2_mean_spectra(ref, spectra(30, amplitude=1.15))
    assert same["dof"] == ref.shape[1] and same["pvalue"] > 1e-3
    assert other["chi2"] > 5 * same["chi2"] and other["pvalue"] < 1e-6


def test_ks_per_column_sees_a_shift_only_in_the_shifted_column():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(200, 2)), rng.normal(size=(150, 2))
    b[:, 1] += 1.0
    res = ms.ks_per_column(a, b)
    assert res[0]["pvalue"] > 1e-3 and res[1]["pvalue"] < 1e-6


def test_thresholds_and_windows_are_checked():
    maps = np.zeros((1, 8, 8))
    with pytest.raises(ValueError, match="constant"):
        ms.peak_counts(maps, [1.0])
    with pytest.raises(ValueError, match="increasing"):
        ms.minkowski_functionals(maps + np.eye(8), [1.0, 0.0])
    with pytest.raises(ValueError, match="spacing"):
        ms.minkowski_functionals(maps + np.eye(8), [0.0, 0.5], dnu=1.0)
    with pytest.raises(ValueError, match="at least 2 maps"):
        ms.chi2_mean_spectra(np.ones((1, 3)), np.ones((5, 3)))
