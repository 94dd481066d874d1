"""Distances between two samples of one observable (CaloChallenge conventions)."""

from __future__ import annotations

import numpy as np
import pytest

from hpcgen.physics.distances import (binned, ks_2samp, reference_edges, separation_power, separation_power_hist,
                                      wasserstein1)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def test_separation_power_of_identical_samples_is_zero(rng):
    a = rng.normal(size=1000)
    assert separation_power(a, a.copy()) == 0.0


def test_separation_power_of_disjoint_samples_is_one(rng):
    a = rng.uniform(0, 1, 500)
    b = rng.uniform(2, 3, 300)
    assert separation_power(a, b) == pytest.approx(1.0)


def test_separation_power_bins_are_fixed_by_the_reference_alone(rng):
    ref = rng.normal(0, 1, 2000)
    edges = reference_edges(ref, 10)
    # equal-count bins of the reference: every inner bin holds a tenth of it, nothing under or over
    counts = binned(ref, edges)
    assert counts[0] == counts[-1] == 0 and np.all(np.abs(counts[1:-1] - 200) <= 1)
    # the test sample never moves the edges
    assert np.array_equal(reference_edges(ref, 10), edges)


@pytest.mark.parametrize("seed", range(5))
def test_an_outlier_in_the_test_sample_never_lowers_separation_power(seed):
    rng = np.random.default_rng(seed)
    ref, test = rng.normal(0, 1, 1000), rng.normal(0.2 * seed, 1, 500)
    base = separation_power(ref, test)
    for outlier in (1e6, -1e6, 50.0, ref.max() + 1e-9):
        assert separation_power(ref, np.append(test, outlier)) >= base - 1e-15
    # with the old union binning one outlier put every value in one bin and S fell to 0; here it goes to overflow
    assert separation_power(ref, np.append(ref[:500], 1e6)) < 0.1


def test_separation_power_does_not_depend_on_sample_size(rng):
    a, b = rng.normal(0, 1, 400), rng.normal(1, 1, 300)
    assert separation_power(a, np.tile(b, 3)) == pytest.approx(separation_power(a, b))


def test_separation_power_grows_with_the_shift_between_samples(rng):
    a = rng.normal(0, 1, 5000)
    values = [separation_power(a, rng.normal(mu, 1, 5000), bins=40) for mu in (0.0, 0.5, 1.5, 3.0)]
    assert values == sorted(values)
    assert values[0] < 0.01 and values[-1] > 0.7


def test_separation_power_hist_normalises_and_matches_the_formula():
    h1, h2 = np.array([2.0, 2.0, 0.0]), np.array([0.0, 5.0, 5.0])
    # p = (½, ½, 0), q = (0, ½, ½): S = ½ (¼/½ + 0 + ¼/½) = ½
    assert separation_power_hist(h1, h2) == pytest.approx(0.5)
    assert separation_power_hist(h1, 7 * h1) == 0.0


def test_separation_power_with_given_edges_bins_both_samples_on_them():
    edges = np.array([0.0, 1.0, 2.0])
    assert separation_power([0.5, 0.5], [1.5, 1.5, 1.5], bins=edges) == pytest.approx(1.0)
    assert separation_power([0.5, 1.5], [1.5, 0.5], bins=edges) == 0.0
    # values beyond the given edges are counted in the overflow bins, not dropped
    # p = (0, ½, ½, 0), q = (0, ¼, ¼, ½) over (under, bin 1, bin 2, over): S = ½ (2·(¼)²/¾ + ½) = ⅓
    assert separation_power([0.5, 1.5], [0.5, 1.5, 9.0, 9.0], bins=edges) == pytest.approx(1 / 3)


def test_constant_samples_get_a_finite_bin_around_their_value():
    assert separation_power([3.0, 3.0], [3.0]) == 0.0
    assert np.all(np.diff(reference_edges([3.0], 4)) > 0)
    assert separation_power([3.0, 3.0], [4.0]) == pytest.approx(1.0)


def test_histograms_of_different_shape_or_empty_samples_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        separation_power_hist([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        separation_power([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        wasserstein1([np.nan, 1.0], [1.0])


def test_wasserstein1_of_a_shifted_sample_equals_the_shift(rng):
    a = rng.normal(0, 1, 1000)
    assert wasserstein1(a, a + 2.5) == pytest.approx(2.5)
    assert wasserstein1(a, a) == 0.0


def test_wasserstein1_with_weights_compares_binned_distributions():
    centres = np.array([0.0, 1.0, 2.0])
    # All mass at 0 vs all mass at 2: W1 = 2.
    assert wasserstein1(centres, centres, [1, 0, 0], [0, 0, 1]) == pytest.approx(2.0)


def test_ks_p_value_is_small_for_different_distributions_and_not_for_equal_ones(rng):
    d, p = ks_2samp(rng.normal(0, 1, 2000), rng.normal(0.3, 1, 1500))
    assert p < 1e-6 and d > 0.05
    d_same, p_same = ks_2samp(rng.normal(0, 1, 2000), rng.normal(0, 1, 1500))
    assert p_same > 0.01
    assert ks_2samp([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])[0] == 0.0
