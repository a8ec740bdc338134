"""The accumulator of one window: running moments, sum, extremes, first/last, quantiles.

:class:`WindowStats` composes :class:`~streamlearn.analytics.running.RunningStats`
(count, Welford mean/variance, min, max; Chan et al. merge; sample variance with
``ddof=1``, 0.0 below two values) with a plain float ``sum``, the first and last values
by event time, and a :class:`~streamlearn.analytics.windows.sketch.QuantileSketch`.
Pure Python, ``__slots__``, no numpy: one update is a handful of float operations plus
one ``log`` (see ``benchmarks/windows_micro.py``).

``sum`` is accumulated left to right in floating point, so it differs from the exactly
rounded ``math.fsum`` by at most about ``(n - 1) * 2**-53 * sum(|x|)``, and a merged sum
can differ from the one-pass sum in its last bits.

**first / last.** ``first`` is the value of the event with the smallest event time,
``last`` the value of the event with the largest. Ties (equal ``ts_ms``): the event
applied first keeps ``first``, the event applied last wins ``last``. ``a.merge(b)``
treats ``a``'s events as applied before ``b``'s, so it matches one pass over ``a``'s
stream followed by ``b``'s, ties included; every other field is independent of order
(up to float rounding).

**Serialised form** (``to_list()``, JSON-able: no inf or NaN)::

    [count, mean, m2, min, max, sum, first_ts, first, last_ts, last, sketch]

The first five are ``RunningStats.to_list()`` (``m2`` is the sum of squared
deviations), ``sketch`` is ``QuantileSketch.to_list()``. An empty accumulator writes
``None`` (JSON ``null``) for ``min``, ``max``, ``first_ts``, ``first``, ``last_ts`` and
``last``; ``from_list`` also accepts the raw ``inf`` bounds ``RunningStats.to_list()``
produces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from streamlearn.analytics.running import RunningStats
from streamlearn.analytics.windows.sketch import QuantileSketch

__all__ = ["QUANTILES", "WindowStats"]

#: The quantiles :meth:`WindowStats.result` reports, by result key.
QUANTILES: dict[str, float] = {"p50": 0.5, "p95": 0.95, "p99": 0.99}

_INF = math.inf


class WindowStats:
    """Statistics of the values in one window (count, moments, extremes, quantiles).

    Parameters
    ----------
    relative_accuracy : float
        Of the quantile sketch (default 0.01: p50/p95/p99 within 1 % of the exact
        value, see :mod:`~streamlearn.analytics.windows.sketch`).
    max_buckets : int
        Of the quantile sketch (default 2048 per sign).

    Examples
    --------
    >>> w = WindowStats()
    >>> for ts, x in [(1_000, 3.0), (500, 1.0), (2_000, 2.0), (2_000, 5.0)]:
    ...     w.update(x, ts)
    >>> r = w.result()
    >>> r["count"], r["sum"], r["mean"], r["min"], r["max"], r["first"], r["last"]
    (4, 11.0, 2.75, 1.0, 5.0, 1.0, 5.0)
    >>> round(r["variance"], 6), round(r["std"], 6), round(r["p50"], 3), round(r["p99"], 3)
    (2.916667, 1.707825, 1.994, 2.974)
    >>> WindowStats.from_list(w.to_list()).to_list() == w.to_list()
    True
    """

    __slots__ = ("first", "first_ts", "last", "last_ts", "running", "sketch", "sum")

    def __init__(self, relative_accuracy: float = 0.01, max_buckets: int = 2048) -> None:
        self.running = RunningStats()
        self.sketch = QuantileSketch(relative_accuracy, max_buckets)
        self.sum = 0.0
        self.first: float | None = None
        self.first_ts: float = _INF  # an int once a value has arrived
        self.last: float | None = None
        self.last_ts: float = -_INF

    @property
    def count(self) -> int:
        """Number of values applied."""
        return self.running.count

    def update(self, x: float, ts_ms: int) -> None:
        """Apply one finite value ``x`` of an event at ``ts_ms``.

        A NaN or infinite ``x`` raises (``ValueError``/``OverflowError``) and changes
        nothing; ingest validation already rejects them.

        Examples
        --------
        >>> w = WindowStats(); w.update(2.0, 10); w.update(4.0, 5)
        >>> w.count, w.first, w.last
        (2, 4.0, 2.0)
        """
        self.sketch.add(x)  # first: it rejects NaN and infinities before anything changes
        self.running.update(x)
        self.sum += x
        if ts_ms < self.first_ts:
            self.first_ts = ts_ms
            self.first = x
        if ts_ms >= self.last_ts:
            self.last_ts = ts_ms
            self.last = x

    def merge(self, other: WindowStats) -> WindowStats:
        """A **new** accumulator equal to applying ``self``'s events, then ``other``'s.

        Both inputs are left unchanged. Order matters only for ``first``/``last`` ties.

        Examples
        --------
        >>> a, b = WindowStats(), WindowStats()
        >>> a.update(1.0, 100); a.update(2.0, 300)
        >>> b.update(7.0, 100); b.update(9.0, 200)
        >>> m = a.merge(b)
        >>> m.count, m.sum, m.first, m.last, round(m.running.variance, 4)
        (4, 19.0, 1.0, 2.0, 14.9167)
        >>> b.merge(a).first   # tie at ts 100: the side applied first keeps it
        7.0
        """
        out = WindowStats.__new__(WindowStats)
        out.running = self.running.merge(other.running)
        out.sketch = self.sketch.merge(other.sketch)
        out.sum = self.sum + other.sum
        if other.first_ts < self.first_ts:
            out.first_ts, out.first = other.first_ts, other.first
        else:
            out.first_ts, out.first = self.first_ts, self.first
        if other.last_ts >= self.last_ts:
            out.last_ts, out.last = other.last_ts, other.last
        else:
            out.last_ts, out.last = self.last_ts, self.last
        return out

    def result(self) -> dict[str, Any]:
        """The window's statistics as a JSON-able dict.

        Keys: ``count, sum, mean, std, variance, min, max, first, last, p50, p95, p99``.
        ``variance``/``std`` are sample statistics (``ddof=1``), 0.0 for one value.
        The quantiles are sketch estimates clipped to ``[min, max]`` (which only brings
        them closer to the exact value). When empty: ``count`` 0, ``sum`` 0.0 and every
        other statistic ``None``.

        Examples
        --------
        >>> WindowStats().result()["p50"] is None
        True
        """
        rs = self.running
        n = rs.count
        if n == 0:
            out: dict[str, Any] = dict.fromkeys(
                ("mean", "std", "variance", "min", "max", "first", "last", *QUANTILES)
            )
            return {"count": 0, "sum": 0.0, **out}
        lo, hi = rs.min, rs.max
        variance = rs.variance
        out = {
            "count": n,
            "sum": self.sum,
            "mean": rs.mean,
            "std": math.sqrt(variance),
            "variance": variance,
            "min": lo,
            "max": hi,
            "first": self.first,
            "last": self.last,
        }
        for name, v in zip(
            QUANTILES, self.sketch.quantiles(tuple(QUANTILES.values())), strict=True
        ):
            out[name] = lo if v < lo else hi if v > hi else v  # type: ignore[operator]
        return out

    def to_list(self) -> list[Any]:
        """``[count, mean, m2, min, max, sum, first_ts, first, last_ts, last, sketch]``.

        Examples
        --------
        >>> w = WindowStats(); w.update(2.0, 10)
        >>> w.to_list()
        [1, 2.0, 0.0, 2.0, 2.0, 2.0, 10, 2.0, 10, 2.0, [0.01, 2048, 0, [35, 1], []]]
        >>> WindowStats().to_list()
        [0, 0.0, 0.0, None, None, 0.0, None, None, None, None, [0.01, 2048, 0, [], []]]
        """
        out = self.running.to_list()
        if out[0] == 0:
            out[3] = out[4] = None
            out += [self.sum, None, None, None, None]
        else:
            out += [self.sum, self.first_ts, self.first, self.last_ts, self.last]
        out.append(self.sketch.to_list())
        return out

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> WindowStats:
        """Rebuild the accumulator :meth:`to_list` wrote (after a JSON round trip too).

        Examples
        --------
        >>> w = WindowStats.from_list(
        ...     [1, 2.0, 0.0, 2.0, 2.0, 2.0, 10, 2.0, 10, 2.0, [0.01, 2048, 0, [35, 1], []]])
        >>> w.count, w.result()["p50"]
        (1, 2.0)
        """
        out = cls.__new__(cls)
        out.running = RunningStats.from_list(data[0:5])
        out.sum = float(data[5])
        if out.running.count:
            out.first_ts, out.first = int(data[6]), data[7]
            out.last_ts, out.last = int(data[8]), data[9]
        else:
            out.first_ts, out.first = _INF, None
            out.last_ts, out.last = -_INF, None
        out.sketch = QuantileSketch.from_list(data[10])
        return out

    def __repr__(self) -> str:
        return f"WindowStats({self.result()})"
