"""Fréchet and kernel physics distances (FPD, KPD) between two samples of high-level features, as defined by JetNet
(Kansal et al. 2023, arXiv:2211.10295) and used by the CaloChallenge (Krause et al. 2024, arXiv:2410.21611).

- Features are first divided, column by column, by the reference's largest absolute value (JetNet's
  normalisation; columns that are identically 0 are left alone).
- **FPD**: the Fréchet distance between Gaussians fitted to the two samples,
  ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½), is biased upward by ∝ 1/N at finite N. It is measured at ``n_points``
  batch sizes evenly spaced in 1/N between ``min_samples`` and ``max_samples`` (averaged over ``n_batches`` draws
  with replacement at each size), and a straight line in 1/N is extrapolated to 1/N = 0; the intercept (clipped at
  0, as JetNet's bounded fit does) is the FPD and the fit's standard error its uncertainty.
- **KPD**: the unbiased quadratic MMD² estimate with the polynomial kernel k(x, y) = (x·y/d + 1)⁴, over
  ``n_batches`` batches of ``batch_size``; the median and half the 16–84 % spread. JetNet draws the batches with
  replacement from 5·10⁴ samples; from 10³ samples that would repeat a third of them and bias the "unbiased"
  estimate upward, so batches here are drawn without replacement (default size: half the smaller sample).

JetNet recommends 5·10⁴ samples; with fewer, the extrapolation in 1/N carries the finite-sample bias instead, and
hpcgen reports every value beside its reference-vs-reference floor. Conventions: docs/fidelity.md.
"""

from __future__ import annotations

import numpy as np


def normalise(x_ref: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Divide every sample's columns by the reference's max |value| per column (0 columns left as they are)."""
    scale = np.max(np.abs(x_ref), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return [x / scale for x in (x_ref, *others)]


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(cov)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½) between two Gaussians (d,), (d, d).

    Tr (Σ₁Σ₂)^½ is computed as Σ √λ of the symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½ (same eigenvalues as Σ₁Σ₂), which
    stays exact for singular covariances (a constant feature, such as log E_p at one energy).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    cov1, cov2 = np.atleast_2d(cov1), np.atleast_2d(cov2)
    s1 = _sqrt_psd(cov1)
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh(s1 @ cov2 @ s1), 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_covmean)


def _checked(x_ref, x_test) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x_ref, dtype=np.float64), np.asarray(x_test, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be (N, d) with the same d, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("FPD/KPD need at least 2 samples on each side")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("features contain NaN or inf")
    return a, b


def fpd(x_ref, x_test, *, min_samples: int | None = None, max_samples: int | None = None, n_points: int = 10,
        n_batches: int = 20, seed: int = 0) -> tuple[float, float]:
    """(FPD, its standard error). Batch sizes default to [N/5, N] of the smaller sample (JetNet: 2·10⁴–5·10⁴)."""
    a, b = normalise(*_checked(x_ref, x_test))
    n = min(len(a), len(b))
    hi = int(max_samples or n)
    lo = int(min_samples or max(2, hi // 5))
    if not 2 <= lo <= hi:
        raise ValueError(f"FPD batch sizes must satisfy 2 <= min <= max, got {lo} and {hi}")
    sizes = np.unique((1.0 / np.linspace(1.0 / lo, 1.0 / hi, n_points)).astype(np.int64))
    rng = np.random.default_rng(seed)
    vals = []
    for m in sizes:
        fd = []
        for _ in range(n_batches):
            s1, s2 = a[rng.integers(0, len(a), m)], b[rng.integers(0, len(b), m)]
            fd.append(frechet_distance(s1.mean(0), np.cov(s1, rowvar=False), s2.mean(0), np.cov(s2, rowvar=False)))
        vals.append(np.mean(fd))
    x = 1.0 / sizes
    if x.size < 2:
        return float(max(vals[0], 0.0)), float("nan")
    design = np.stack([np.ones_like(x), x], axis=1)
    coef, res, *_ = np.linalg.lstsq(design, np.asarray(vals), rcond=None)
    dof = max(x.size - 2, 1)
    resid = np.asarray(vals) - design @ coef
    cov = np.linalg.inv(design.T @ design) * float(resid @ resid) / dof
    return float(max(coef[0], 0.0)), float(np.sqrt(cov[0, 0]))


def mmd2_poly_unbiased(x, y, degree: int = 4) -> float:
    """Unbiased MMD² of samples x (m, d), y (n, d) with the kernel (x·y/d + 1)^degree."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** degree
    kyy = (y @ y.T / d + 1.0) ** degree
    kxy = (x @ y.T / d + 1.0) ** degree
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kpd(x_ref, x_test, *, batch_size: int | None = None, n_batches: int = 10, seed: int = 0) -> tuple[float, float]:
    """(KPD median, half its 16–84 % spread) over ``n_batches`` batches drawn without replacement (default size:
    half the smaller sample, at most 5000)."""
    a, b = normalise(*_checked(x_ref, x_test))
    m = int(batch_size or min(len(a) // 2, len(b) // 2, 5000))
    if not 2 <= m <= min(len(a), len(b)):
        raise ValueError(f"KPD batch size must be within 2..{min(len(a), len(b))} (the smaller sample), got {m}")
    rng = np.random.default_rng(seed)
    vals = [mmd2_poly_unbiased(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
            for _ in range(n_batches)]
    lo, hi = np.percentile(vals, [16.0, 84.0])
    return float(np.median(vals)), float(0.5 * (hi - lo))
