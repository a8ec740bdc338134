"""Reference-vs-current window comparisons (two samples of one value) with scipy.

Every function takes two 1-D samples (any sequence of floats; non-finite values are
dropped) and never returns NaN: an empty sample compares as "no evidence" (statistic 0,
p-value 1), a constant one as what it is.

* :func:`ks_test` — two-sample Kolmogorov-Smirnov (``scipy.stats.ks_2samp``): the
  largest gap between the two empirical CDFs, and its p-value.
* :func:`psi` — population stability index over bins cut at the reference's deciles
  (ties merged, open outer bins), proportions smoothed by ``epsilon``. Rule of thumb:
  < 0.1 stable, 0.1-0.25 moderate, > 0.25 a large shift.
* :func:`wasserstein` — earth mover's distance (``scipy.stats.wasserstein_distance``),
  in the value's own unit.
* :func:`jensen_shannon` — Jensen-Shannon distance (base 2, in [0, 1]) of the two
  histograms over bins cut at the pooled sample's deciles.
* :func:`summary` — n, mean, std, min, p05, p50, p95, max of one sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import distance

__all__ = [
    "Comparison",
    "compare",
    "jensen_shannon",
    "ks_test",
    "psi",
    "summary",
    "wasserstein",
]

Sample = Sequence[float] | np.ndarray
PSI_BINS = 10
PSI_EPSILON = 1e-4


def _clean(sample: Sample) -> np.ndarray:
    array = np.asarray(sample, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def ks_test(reference: Sample, current: Sample) -> tuple[float, float]:
    """Kolmogorov-Smirnov statistic and p-value of two samples.

    >>> ks_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    (0.0, 1.0)
    >>> ks_test([], [1.0])
    (0.0, 1.0)
    """
    ref, cur = _clean(reference), _clean(current)
    if ref.size == 0 or cur.size == 0:
        return 0.0, 1.0
    result = stats.ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def _edges(sample: np.ndarray, bins: int) -> np.ndarray:
    quantiles = np.quantile(sample, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(quantiles)


def _proportions(sample: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Right-closed bins (-inf, e0], (e0, e1], ..., (e_k, inf): a discrete value equal to an
    # edge falls in its own bin, and a level above the reference's top one in a new bin.
    counts = np.bincount(np.searchsorted(edges, sample, side="left"), minlength=edges.size + 1)
    return counts / max(sample.size, 1)


def psi(
    reference: Sample, current: Sample, bins: int = PSI_BINS, epsilon: float = PSI_EPSILON
) -> float:
    """Population stability index of ``current`` against ``reference``.

    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=5000)
    >>> round(psi(ref, rng.normal(size=5000)), 3), round(psi(ref, rng.normal(1, 1, 5000)), 2)
    (0.005, 0.95)
    >>> psi([0, 1, 2] * 100, [0, 1, 2, 3] * 75) > 1
    True
    """
    ref, cur = _clean(reference), _clean(current)
    if ref.size == 0 or cur.size == 0:
        return 0.0
    edges = _edges(ref, bins)
    expected = np.clip(_proportions(ref, edges), epsilon, None)
    actual = np.clip(_proportions(cur, edges), epsilon, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def wasserstein(reference: Sample, current: Sample) -> float:
    """Wasserstein (earth mover's) distance of two samples, in their unit.

    >>> wasserstein([0.0, 1.0], [2.0, 3.0])
    2.0
    """
    ref, cur = _clean(reference), _clean(current)
    if ref.size == 0 or cur.size == 0:
        return 0.0
    return float(stats.wasserstein_distance(ref, cur))


def jensen_shannon(reference: Sample, current: Sample, bins: int = PSI_BINS) -> float:
    """Jensen-Shannon distance (base 2) of the two samples' histograms on shared bins.

    >>> jensen_shannon([1.0] * 10, [1.0] * 10), jensen_shannon([0.0] * 10, [5.0] * 10)
    (0.0, 1.0)
    """
    ref, cur = _clean(reference), _clean(current)
    if ref.size == 0 or cur.size == 0:
        return 0.0
    edges = _edges(np.concatenate([ref, cur]), bins)
    value = distance.jensenshannon(_proportions(ref, edges), _proportions(cur, edges), base=2)
    return float(np.nan_to_num(value, nan=0.0))


def summary(sample: Sample) -> dict[str, float | int | None]:
    """n, mean, std, min, p05, p50, p95, max (``None`` but n for an empty sample).

    >>> summary([1.0, 2.0, 3.0, 4.0])["p50"], summary([])["mean"]
    (2.5, None)
    """
    array = _clean(sample)
    if array.size == 0:
        keys = ("mean", "std", "min", "p05", "p50", "p95", "max")
        return {"n": 0, **dict.fromkeys(keys)}
    p05, p50, p95 = np.quantile(array, [0.05, 0.5, 0.95])
    return {
        "n": int(array.size),
        "mean": float(array.mean()),
        "std": float(array.std()),
        "min": float(array.min()),
        "p05": float(p05),
        "p50": float(p50),
        "p95": float(p95),
        "max": float(array.max()),
    }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every statistic of one reference-vs-current comparison."""

    ks: float
    p_value: float
    psi: float
    wasserstein: float
    jensen_shannon: float

    def drifted(self, alpha: float, psi_threshold: float) -> bool:
        """The drift rule: significant (p < alpha) *and* large (PSI > threshold)."""
        return self.p_value < alpha and self.psi > psi_threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "ks": self.ks,
            "p_value": self.p_value,
            "psi": self.psi,
            "wasserstein": self.wasserstein,
            "jensen_shannon": self.jensen_shannon,
        }


def compare(reference: Sample, current: Sample) -> Comparison:
    """All four statistics of ``current`` against ``reference``.

    >>> c = compare(list(range(100)), list(range(50, 150)))
    >>> round(c.ks, 2), c.p_value < 1e-6, c.drifted(1e-6, 0.25), c.wasserstein
    (0.5, True, True, 50.0)
    """
    ref, cur = _clean(reference), _clean(current)
    ks, p_value = ks_test(ref, cur)
    return Comparison(ks, p_value, psi(ref, cur), wasserstein(ref, cur), jensen_shannon(ref, cur))
