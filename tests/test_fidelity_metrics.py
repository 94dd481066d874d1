"""The fidelity metrics against values computed independently: the Fréchet distance of Gaussians in closed form,
FPD/KPD of one law ≈ 0 and growing with a shift, the classifier's AUC against the optimal Φ(d/√2), the floors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import linalg, stats

from hpcgen.fidelity.classifier import ClassifierConfig, auc_and_jsd, classifier_test
from hpcgen.fidelity.floors import Floor, disjoint_halves, verdict_row
from hpcgen.fidelity.frechet import fpd, frechet_distance, kpd, mmd2_poly_unbiased


def test_frechet_distance_matches_the_closed_form_for_1d_and_scipy_sqrtm_in_general():
    # 1-D: (μ1 − μ2)² + (σ1 − σ2)²
    assert frechet_distance([1.0], [[4.0]], [-0.5], [[1.0]]) == pytest.approx(1.5**2 + 1.0**2)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    c1, c2 = a @ a.T, b @ b.T
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(c1 + c2) - 2 * np.trace(np.real(linalg.sqrtm(c1 @ c2)))
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-9)
    # a singular covariance (a constant feature) stays finite and exact
    c1[0, :] = c1[:, 0] = 0.0
    c2[0, :] = c2[:, 0] = 0.0
    assert math.isfinite(frechet_distance(mu1, c1, mu1, c1)) and frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0, abs=1e-9)


def test_fpd_of_two_samples_of_one_gaussian_is_about_zero_and_grows_with_a_mean_shift():
    rng = np.random.default_rng(1)
    cov = np.diag([1.0, 2.0, 0.5, 1.0])
    ref = rng.multivariate_normal(np.zeros(4), cov, 4000)
    values = []
    for shift in (0.0, 0.2, 0.5, 1.0):
        test = rng.multivariate_normal(np.array([shift, 0, 0, 0]), cov, 4000)
        values.append(fpd(ref, test, seed=3)[0])
    assert values[0] < 2e-3
    assert values == sorted(values) and values[-1] > 50 * max(values[0], 1e-4)
    # normalised by the reference's max |x| per column: the 1-D part of FPD is (shift / max|x_0|)², within the fit error
    scale = np.abs(ref[:, 0]).max()
    assert values[-1] == pytest.approx((1.0 / scale) ** 2, rel=0.25)


def test_kpd_of_one_law_is_about_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(2000, 5))
    same = kpd(ref, rng.normal(size=(2000, 5)), seed=1)
    shifted = kpd(ref, rng.normal(size=(2000, 5)) + np.array([0.5, 0, 0, 0, 0]), seed=1)
    assert abs(same[0]) < 3 * same[1] + 1e-6
    assert shifted[0] > 10 * (abs(same[0]) + same[1])


def test_unbiased_mmd2_has_zero_mean_for_one_law():
    rng = np.random.default_rng(3)
    vals = [mmd2_poly_unbiased(rng.normal(size=(200, 3)), rng.normal(size=(200, 3))) for _ in range(200)]
    assert abs(np.mean(vals)) < 3 * np.std(vals) / math.sqrt(len(vals))


def test_auc_and_jsd_of_perfect_and_useless_predictions():
    y = np.array([0, 0, 1, 1])
    assert auc_and_jsd(y, [0.0, 0.0, 1.0, 1.0]) == (pytest.approx(1.0), pytest.approx(1.0, abs=1e-5))
    auc, jsd = auc_and_jsd(y, [0.5, 0.5, 0.5, 0.5])
    assert auc == 0.5 and jsd == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("family", ["dnn", "gbdt"])
def test_classifier_auc_of_shifted_gaussians_approaches_the_optimal_phi_d_over_root2(family):
    rng = np.random.default_rng(4)
    d = 1.0  # shift in units of σ along one of 3 dimensions: the optimal AUC is Φ(d/√2) = 0.760
    ref, test = rng.normal(size=(1000, 3)), rng.normal(size=(1000, 3)) + np.array([d, 0, 0])
    cfg = ClassifierConfig(family=family, hidden=32, seeds=1, epochs=60, patience=8)
    res = classifier_test(ref, test, cfg, seed=1)
    optimal = stats.norm.cdf(d / math.sqrt(2))
    # out-of-fold AUC cannot beat the Bayes-optimal one (beyond sampling noise, ~0.01 at 1000 per class); the
    # isotonic calibration's ties and a finite training set cost a few hundredths below it
    assert optimal - 0.06 < res.auc < optimal + 0.025
    same = classifier_test(ref, rng.normal(size=(1000, 3)), cfg, seed=1)
    assert same.auc == pytest.approx(0.5, abs=0.04) and same.jsd < 0.05


def test_classifier_subsamples_the_larger_side_and_rejects_bad_input():
    rng = np.random.default_rng(5)
    res = classifier_test(rng.normal(size=(300, 2)), rng.normal(size=(100, 2)),
                          ClassifierConfig(family="gbdt", seeds=1), seed=0)
    assert res.n_per_class == 100
    with pytest.raises(ValueError, match="same d"):
        classifier_test(np.zeros((50, 2)), np.zeros((50, 3)))
    with pytest.raises(ValueError, match="at least 10 samples"):
        classifier_test(np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="folds must be >= 3"):
        ClassifierConfig(folds=2)


def test_disjoint_halves_never_share_a_sample_and_the_floor_reports_p50_and_p95():
    rng = np.random.default_rng(6)
    a, b = disjoint_halves(100, 40, rng)
    assert len(a) == len(b) == 40 and not set(a) & set(b)
    with pytest.raises(ValueError, match="at least 100"):
        disjoint_halves(99, 50, rng)
    data = rng.normal(size=1000)
    floor = Floor(tuple(abs(data[i].mean() - data[j].mean()) for i, j in (disjoint_halves(1000, 500, rng)
                                                                           for _ in range(20))))
    assert len(floor.values) == 20 and floor.p50 <= floor.p95
    # the spread of a difference of two means of 500: p50 ≈ 0.6745 · √(2/500) = 0.043
    assert floor.p50 == pytest.approx(0.6745 * math.sqrt(2 / 500), rel=0.5)
    row = verdict_row("m", 0.2, Floor((0.1, 0.3, 0.2)))
    assert row["within_floor_p95"] is True and row["floor_p50"] == 0.2
    assert verdict_row("m", 0.5, Floor((0.1, 0.3, 0.2)))["within_floor_p95"] is False
