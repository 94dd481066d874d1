"""Distances between a reference and a generated distribution of one observable (shared/REFERENCE.md §3).

Conventions follow CaloGAN (Paganini, de Oliveira, Nachman 2018) and the CaloChallenge evaluation
(Krause et al. 2024, arXiv:2410.21611): the separation power

    S = ½ Σ_i (h1_i − h2_i)² / (h1_i + h2_i)

on histograms normalised to unit sum, with both samples binned on the same edges (0 = identical, 1 = disjoint
supports), and the 1-D Wasserstein-1 distance between the empirical distributions, in the units of the feature.
The two-sample Kolmogorov–Smirnov test is the CosmoGAN-style companion; its p-value assumes i.i.d. samples.
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


def common_edges(a, b, bins: int | np.ndarray = DEFAULT_BINS) -> np.ndarray:
    """Bin edges shared by both samples: ``bins`` equal-width bins over the union range, or ``bins`` itself if it
    is an array of edges. A zero-width union range is widened to ±0.5 around the value, as numpy does."""
    if np.ndim(bins) == 1:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.size < 2 or not np.all(np.diff(edges) > 0):
            raise ValueError("bins given as edges must be at least two strictly increasing values")
        return edges
    if int(bins) < 1:
        raise ValueError(f"bins must be >= 1 or an array of edges, got {bins}")
    a, b = _sample(a, "a"), _sample(b, "b")
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, int(bins) + 1)


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


def separation_power(a, b, bins: int | np.ndarray = DEFAULT_BINS) -> float:
    """Separation power of samples ``a`` and ``b`` binned on :func:`common_edges` (0 identical … 1 disjoint).

    Symmetric in (a, b); independent of the sample sizes because each histogram is normalised to unit sum. With
    edges given, values outside them are dropped (as ``np.histogram`` does); if that empties a sample it raises.
    """
    a, b = _sample(a, "a"), _sample(b, "b")
    edges = common_edges(a, b, bins)
    h1, _ = np.histogram(a, bins=edges)
    h2, _ = np.histogram(b, bins=edges)
    if h1.sum() == 0 or h2.sum() == 0:
        raise ValueError("a sample has no values inside the given bin edges")
    return separation_power_hist(h1, h2)


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
