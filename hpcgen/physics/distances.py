"""Distances between a reference and a generated distribution of one observable (docs/fidelity.md).

Conventions follow CaloGAN (Paganini, de Oliveira, Nachman 2018) and the CaloChallenge evaluation
(Krause et al. 2024, arXiv:2410.21611): the separation power

    S = ½ Σ_i (h1_i − h2_i)² / (h1_i + h2_i)

on histograms normalised to unit sum (0 = identical, 1 = disjoint supports), and the 1-D Wasserstein-1 distance
between the empirical distributions, in the units of the feature. The two-sample Kolmogorov–Smirnov test is the
CosmoGAN-style companion; its p-value assumes i.i.d. samples.

Binning is fixed by the *reference* alone (its quantiles, or edges the caller fixes), never by the union of both
samples: a union range lets one outlier in the test sample widen every bin and push S toward 0. Values of the
test sample outside the reference's edges land in an underflow and an overflow bin, where the reference has
(next to) nothing, so an outlier can only raise S.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

DEFAULT_BINS = 30


def _sample(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"sample {name} is empty; a distance needs at least one value")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"sample {name} contains NaN or inf; remove or fix them before computing a distance")
    return a


def reference_edges(ref, bins: int | np.ndarray = DEFAULT_BINS) -> np.ndarray:
    """Bin edges fixed by the reference sample: ``bins`` equal-count bins (the reference's quantiles), or ``bins``
    itself if it is an array of edges.

    Tied quantiles (a discrete feature such as a hit count) are merged, so there may be fewer bins than asked; a
    constant reference gets the single bin value ± 0.5.
    """
    if np.ndim(bins) == 1:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.size < 2 or not np.all(np.diff(edges) > 0):
            raise ValueError("bins given as edges must be at least two strictly increasing values")
        return edges
    if int(bins) < 1:
        raise ValueError(f"bins must be >= 1 or an array of edges, got {bins}")
    r = _sample(ref, "ref")
    edges = np.unique(np.quantile(r, np.linspace(0.0, 1.0, int(bins) + 1)))
    if edges.size < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def binned(x, edges: np.ndarray) -> np.ndarray:
    """Counts of ``x`` in [underflow, the bins of ``edges`` (last one closed), overflow]: ``edges.size + 1`` bins."""
    a = _sample(x, "x")
    inner, _ = np.histogram(a, bins=edges)
    return np.concatenate([[np.count_nonzero(a < edges[0])], inner, [np.count_nonzero(a > edges[-1])]])


def separation_power_hist(h1, h2) -> float:
    """Separation power of two histograms (or profiles) of the same shape, each first normalised to unit sum.

    Bins empty in both are skipped. Use it for pre-binned quantities such as the mean longitudinal profile,
    whose "histogram" is the fraction of the energy in each layer.
    """
    h1 = np.asarray(h1, dtype=np.float64)
    h2 = np.asarray(h2, dtype=np.float64)
    if h1.shape != h2.shape:
        raise ValueError(f"histograms must have the same shape, got {h1.shape} and {h2.shape}")
    for name, h in (("h1", h1), ("h2", h2)):
        if not (np.all(np.isfinite(h)) and np.all(h >= 0) and h.sum() > 0):
            raise ValueError(f"histogram {name} must be finite, non-negative and have a positive sum")
    p, q = h1 / h1.sum(), h2 / h2.sum()
    den = p + q
    keep = den > 0
    return float(0.5 * np.sum((p[keep] - q[keep]) ** 2 / den[keep]))


def separation_power(ref, test, bins: int | np.ndarray = DEFAULT_BINS) -> float:
    """Separation power of ``test`` against ``ref`` on :func:`reference_edges` of ``ref`` plus under- and overflow
    bins (0 identical … 1 disjoint).

    Independent of the sample sizes (each histogram is normalised to unit sum). Not symmetric: the reference fixes
    the bins. A test value outside the reference's range lands in an overflow bin and can only raise S.
    """
    r, t = _sample(ref, "ref"), _sample(test, "test")
    edges = reference_edges(r, bins)
    return separation_power_hist(binned(r, edges), binned(t, edges))


def wasserstein1(a, b, a_weights=None, b_weights=None) -> float:
    """1-D Wasserstein-1 (earth mover's) distance ∫|F_a − F_b| dx, in the units of the samples.

    Weights turn the samples into weighted point masses, e.g. bin centres weighted by counts for a binned
    distribution (then the answer is exact to within half a bin width).
    """
    a, b = _sample(a, "a"), _sample(b, "b")
    return float(stats.wasserstein_distance(a, b, u_weights=a_weights, v_weights=b_weights))


def ks_2samp(a, b) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov test (scipy, two-sided; exact p-value where scipy manages, else asymptotic):
    (statistic sup|F_a − F_b|, p-value)."""
    a, b = _sample(a, "a"), _sample(b, "b")
    # scipy tries the exact p-value for small samples and warns when that recursion fails (e.g. on tied values);
    # it then returns the asymptotic p-value, which is the documented result here, so the warning is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Exact calculation unsuccessful", category=RuntimeWarning)
        res = stats.ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)
