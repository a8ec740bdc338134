"""Summaries of a window of values: count, mean, std, min, max, quantiles, z; never NaN/inf."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence

__all__ = [
    "FEATURE_MAX",
    "Z_MAX",
    "WindowState",
    "clip",
    "quantile_sorted",
    "summarize",
    "zscore",
]

#: Every computed feature is clipped to ``[-FEATURE_MAX, FEATURE_MAX]`` (float's largest).
FEATURE_MAX = 1.7976931348623157e308
#: Cap of ``|z|``: a jump off a constant window cannot overflow.
Z_MAX = 1e12
#: Relative floor of the scale: ``1e-9 * (|mean| + 1)``; a constant window stays finite.
SCALE_FLOOR = 1e-9
#: Values larger than this are summarised in scaled form, so squares cannot overflow.
_SCALE_AT = 1e150


def clip(v: float) -> float:
    """``v`` clipped to ``[-FEATURE_MAX, FEATURE_MAX]`` (``inf`` -> largest float).

    Examples
    --------
    >>> clip(2.5), clip(float("inf")) == FEATURE_MAX, clip(float("-inf")) == -FEATURE_MAX
    (2.5, True, True)
    """
    if -FEATURE_MAX <= v <= FEATURE_MAX:
        return v
    return FEATURE_MAX if v > 0 else -FEATURE_MAX


def quantile_sorted(s: Sequence[float], q: float) -> float:
    """Quantile ``q`` of sorted values by linear interpolation (numpy's default method).

    Examples
    --------
    >>> quantile_sorted([1.0, 2.0, 3.0, 4.0], 0.5), quantile_sorted([1.0, 2.0, 3.0, 4.0], 0.9)
    (2.5, 3.7)
    """
    pos = q * (len(s) - 1)
    i = int(pos)
    frac = pos - i
    if frac == 0.0:
        return s[i]
    return s[i] * (1.0 - frac) + s[i + 1] * frac


def summarize(values: Sequence[float], quantiles: Sequence[float] = ()) -> dict[str, float]:
    """Count, mean, sample std (ddof=1, 0 for one value), min, max and quantiles.

    Exact two-pass computation (``math.fsum``). Windows holding values beyond ``1e150``
    are summarised in scaled form, so nothing overflows on the way; a result that itself
    exceeds the float range is clipped by :func:`clip`.

    Parameters
    ----------
    values
        The window's values (at least one), finite.
    quantiles
        Probabilities in [0, 1]; each gives key ``q<index>``, in order.

    Returns
    -------
    dict
        ``count``, ``mean``, ``std``, ``min``, ``max``, then ``q0``, ``q1``, ...

    Examples
    --------
    >>> summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], [0.5])
    {'count': 8.0, 'mean': 5.0, 'std': 2.138089935299395, 'min': 2.0, 'max': 9.0, 'q0': 4.5}
    >>> summarize([1e308, -1e308])["std"]
    1.4142135623730951e+308
    """
    s = sorted(values)
    n = len(s)
    lo, hi = s[0], s[-1]
    scale = max(-lo, hi)
    if scale > _SCALE_AT:
        scaled = [v / scale for v in s]
        mean = math.fsum(scaled) / n
        var = math.fsum([(v - mean) * (v - mean) for v in scaled]) / (n - 1) if n > 1 else 0.0
        mean, std = mean * scale, clip(math.sqrt(var) * scale)
    else:
        mean = math.fsum(s) / n
        var = math.fsum([(v - mean) * (v - mean) for v in s]) / (n - 1) if n > 1 else 0.0
        std = math.sqrt(var)
    out = {"count": float(n), "mean": mean, "std": std, "min": lo, "max": hi}
    for i, q in enumerate(quantiles):
        out[f"q{i}"] = quantile_sorted(s, q)
    return out


def zscore(x: float, mean: float, std: float) -> float:
    """``(x - mean) / std`` with std floored at ``1e-9 * (|mean| + 1)``, ``|z| <= 1e12``.

    Examples
    --------
    >>> zscore(13.0, 10.0, 2.0), zscore(1e9, 0.0, 0.0)
    (1.5, 1000000000000.0)
    """
    spread = max(std, SCALE_FLOOR * (abs(mean) + 1.0))
    z = (x - mean) / spread
    if z > Z_MAX:
        return Z_MAX
    if z < -Z_MAX:
        return -Z_MAX
    return z


class WindowState:
    """The last ``n`` values of a series kept sorted, with their running mean and M2.

    The values themselves live in the caller's ring buffer (oldest first); this keeps
    what makes the window's statistics O(1) to read: a sorted copy (min, max,
    quantiles) and Welford's running mean and sum of squared deviations, re-computed
    exactly every ``refresh_every`` removals and whenever they stop being finite (values
    beyond ``1e150``). ``summary`` can leave out a few of the oldest values
    (``expired``) without changing the state: a time window read at a later time.

    Examples
    --------
    >>> w = WindowState()
    >>> for v in [4.0, 1.0, 3.0, 2.0]:
    ...     w.add(v)
    >>> w.remove(4.0)  # the oldest leaves
    >>> w.summary([0.5])
    {'count': 3.0, 'mean': 2.0, 'std': 1.0, 'min': 1.0, 'max': 3.0, 'q0': 2.0}
    >>> w.summary([0.5], expired=[1.0])  # as if 1.0 had left too
    {'count': 2.0, 'mean': 2.5, 'std': 0.7071067811865476, 'min': 2.0, 'max': 3.0, 'q0': 2.5}
    """

    __slots__ = ("m2", "mean", "n", "removals", "sorted")

    def __init__(self) -> None:
        self.sorted: list[float] = []
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.removals = 0

    def add(self, v: float) -> None:
        """A new value enters the window."""
        insort(self.sorted, v)
        n = self.n = self.n + 1
        d = v - self.mean
        self.mean += d / n
        self.m2 += d * (v - self.mean)

    def remove(self, v: float) -> None:
        """The value ``v`` (in the window) leaves it."""
        s = self.sorted
        del s[bisect_left(s, v)]
        n = self.n = self.n - 1
        self.removals += 1
        if n == 0:
            self.mean = self.m2 = 0.0
            return
        d = v - self.mean
        self.mean -= d / n
        self.m2 -= d * (v - self.mean)

    def needs_refresh(self, refresh_every: int) -> bool:
        """Whether the running mean/M2 should be re-computed from the values."""
        return self.removals >= refresh_every or not (
            math.isfinite(self.mean) and 0.0 <= self.m2 < math.inf
        )

    def refresh(self, values: Sequence[float]) -> None:
        """Re-compute mean and M2 exactly from the window's values."""
        self.removals = 0
        if self.huge():  # not kept: NaN until the huge values have left
            self.mean = self.m2 = math.nan
            return
        if not values:
            self.mean = self.m2 = 0.0
            return
        self.mean = math.fsum(values) / len(values)
        self.m2 = math.fsum([(v - self.mean) * (v - self.mean) for v in values])

    def huge(self) -> bool:
        """Whether the window holds values beyond ``1e150`` (summarise those exactly)."""
        s = self.sorted
        return bool(s) and max(-s[0], s[-1]) > _SCALE_AT

    def summary(
        self, quantiles: Sequence[float] = (), expired: Sequence[float] = ()
    ) -> dict[str, float]:
        """Like :func:`summarize` over the window's values, less ``expired`` (oldest).

        Not for a :meth:`huge` window (its running sums are not kept): use
        :func:`summarize` on the values.
        """
        s = self.sorted
        n, mean, m2 = self.n, self.mean, self.m2
        for v in expired:
            n -= 1
            d = v - mean
            mean -= d / n
            m2 -= d * (v - mean)
        std = math.sqrt(max(m2, 0.0) / (n - 1)) if n > 1 else 0.0
        if expired:
            gone = _positions(s, expired)

            def at(r: int) -> float:
                for p in gone:
                    if p <= r:
                        r += 1
                    else:
                        break
                return s[r]
        else:

            def at(r: int) -> float:
                return s[r]

        out = {"count": float(n), "mean": mean, "std": std, "min": at(0), "max": at(n - 1)}
        for i, q in enumerate(quantiles):
            pos = q * (n - 1)
            j = int(pos)
            frac = pos - j
            out[f"q{i}"] = at(j) if frac == 0.0 else at(j) * (1.0 - frac) + at(j + 1) * frac
        return out


def _positions(s: list[float], values: Sequence[float]) -> list[int]:
    """Distinct indices in sorted ``s`` of each of ``values`` (duplicates each get one)."""
    taken: set[int] = set()
    for v in values:
        i = bisect_left(s, v)
        while i in taken:
            i += 1
        taken.add(i)
    return sorted(taken)
