"""Reference-vs-reference bootstrap floors: what a perfect generator would score with the same number of samples.

Every fidelity metric has a finite-sample value even for two samples drawn from one distribution (a separation
power of two halves of one Monte Carlo sample is not 0; a classifier's AUC scatters around 0.5). A test value means
something only beside that floor. The floor here is the distribution of the metric over ``n_resamples`` random
splits of the reference into two *disjoint* halves of ``size`` samples each; we report its median (p50) and 95th
percentile (p95), and a test value is "within the floor" when it is at or below p95 (every metric is oriented so
that smaller is closer). Test values are computed against the same reference halves with the same ``size``, so
value and floor share their finite-sample bias (docs/fidelity.md).
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

MIN_RESAMPLES = 20
# Below this many samples per half a floor is too wide to mean much; callers warn with the floor's width.
MIN_HALF_SIZE = 500


def disjoint_halves(n_ref: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random index sets of ``size`` each from ``range(n_ref)``, each sorted ascending."""
    if size < 1 or 2 * size > n_ref:
        raise ValueError(f"two disjoint halves of {size} need at least {2 * max(size, 1)} reference samples, "
                         f"have {n_ref}")
    perm = rng.permutation(n_ref)
    return np.sort(perm[:size]), np.sort(perm[size:2 * size])


@dataclass(frozen=True)
class Floor:
    """The floor of one metric: its values over the resamples and their p50 / p95."""

    values: tuple[float, ...]

    @property
    def p50(self) -> float:
        return float(np.median(self.values))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.values, 95))

    @property
    def std(self) -> float:
        """The spread of the metric between two samples of one distribution (0 with one resample)."""
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    def to_dict(self) -> dict:
        return {"p50": self.p50, "p95": self.p95, "std": self.std, "n_resamples": len(self.values)}


def verdict_row(metric: str, value: float | None, floor: Floor | dict | None, *, spread: float | None = None,
                unit: str = "1") -> dict:
    """One line of a verdict table: metric, value (± spread), floor p50 / p95 and ``within_floor_p95``."""
    fl = floor.to_dict() if isinstance(floor, Floor) else floor
    within = None if value is None or fl is None else bool(value <= fl["p95"])
    return {"metric": metric, "value": value, "spread": spread, "unit": unit,
            "floor_p50": None if fl is None else fl["p50"], "floor_p95": None if fl is None else fl["p95"],
            "within_floor_p95": within}
