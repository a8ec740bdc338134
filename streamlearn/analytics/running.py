"""Incremental statistics that merge: Welford updates, Chan et al. merges.

Pure Python on purpose: one update is a handful of float operations (~0.3 us),
cheaper than a River object per value, and the state is a short list that
serialises straight to the changelog.
"""

from __future__ import annotations

import math


class RunningStats:
    """Count, mean, variance, min and max of a stream of floats.

    Examples
    --------
    >>> stats = RunningStats()
    >>> for x in (1.0, 2.0, 4.0):
    ...     stats.update(x)
    >>> stats.count, round(stats.mean, 6), round(stats.variance, 6), stats.min, stats.max
    (3, 2.333333, 2.333333, 1.0, 4.0)
    >>> left, right = RunningStats(), RunningStats()
    >>> left.update(1.0); right.update(2.0); right.update(4.0)
    >>> merged = left.merge(right)
    >>> merged.count, round(merged.variance, 6)
    (3, 2.333333)
    """

    __slots__ = ("count", "m2", "max", "mean", "min")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf

    def update(self, x: float) -> None:
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)
        if x < self.min:
            self.min = x
        if x > self.max:
            self.max = x

    def merge(self, other: RunningStats) -> RunningStats:
        """A new RunningStats equal to having seen both streams (order-free)."""
        out = RunningStats()
        n = self.count + other.count
        if n == 0:
            return out
        delta = other.mean - self.mean
        out.count = n
        out.mean = self.mean + delta * other.count / n
        out.m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        out.min = min(self.min, other.min)
        out.max = max(self.max, other.max)
        return out

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); 0.0 below two observations."""
        return self.m2 / (self.count - 1) if self.count > 1 else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    def to_list(self) -> list[float]:
        return [self.count, self.mean, self.m2, self.min, self.max]

    @classmethod
    def from_list(cls, data: list[float]) -> RunningStats:
        out = cls()
        out.count, out.mean, out.m2 = int(data[0]), data[1], data[2]
        # JSON has no infinity: an empty accumulator's bounds come back as null.
        out.min = math.inf if data[3] is None else data[3]
        out.max = -math.inf if data[4] is None else data[4]
        return out

    def __repr__(self) -> str:
        return (
            f"RunningStats(count={self.count}, mean={self.mean:.6g}, std={self.std:.6g}, "
            f"min={self.min:.6g}, max={self.max:.6g})"
        )


class DecayedMean:
    """Exponentially weighted mean over event time, with a half-life in milliseconds.

    Each value weighs ``2 ** ((ts - ref) / half_life)`` against the newest time seen,
    so the result does not depend on arrival order and two partial states merge.

    Examples
    --------
    >>> ewma = DecayedMean(half_life_ms=1000)
    >>> ewma.update(10.0, 0); ewma.update(20.0, 1000)   # the first now weighs 1/2
    >>> round(ewma.mean, 6)
    16.666667
    >>> a, b = DecayedMean(1000), DecayedMean(1000)
    >>> a.update(20.0, 1000); b.update(10.0, 0)       # same events, other order
    >>> round(a.merge(b).mean, 6)
    16.666667
    """

    __slots__ = ("half_life_ms", "ref_ts", "weight", "weighted_sum")

    def __init__(self, half_life_ms: float) -> None:
        if not half_life_ms > 0:
            raise ValueError("half_life_ms must be positive")
        self.half_life_ms = half_life_ms
        self.ref_ts: int | None = None
        self.weighted_sum = 0.0
        self.weight = 0.0

    def update(self, x: float, ts_ms: int) -> None:
        if self.ref_ts is None:
            self.ref_ts = ts_ms
        elif ts_ms > self.ref_ts:
            shrink = 2.0 ** ((self.ref_ts - ts_ms) / self.half_life_ms)
            self.weighted_sum *= shrink
            self.weight *= shrink
            self.ref_ts = ts_ms
        w = 2.0 ** ((ts_ms - self.ref_ts) / self.half_life_ms)
        self.weighted_sum += w * x
        self.weight += w

    @property
    def mean(self) -> float:
        return self.weighted_sum / self.weight if self.weight else math.nan

    def merge(self, other: DecayedMean) -> DecayedMean:
        out = DecayedMean(self.half_life_ms)
        refs = [s.ref_ts for s in (self, other) if s.ref_ts is not None]
        if not refs:
            return out
        out.ref_ts = max(refs)
        for part in (self, other):
            if part.ref_ts is not None:
                scale = 2.0 ** ((part.ref_ts - out.ref_ts) / self.half_life_ms)
                out.weighted_sum += part.weighted_sum * scale
                out.weight += part.weight * scale
        return out

    def to_list(self) -> list[float | None]:
        return [self.ref_ts, self.weighted_sum, self.weight]

    @classmethod
    def from_list(cls, half_life_ms: float, data: list[float | None]) -> DecayedMean:
        out = cls(half_life_ms)
        ref, out.weighted_sum, out.weight = data  # type: ignore[assignment]
        out.ref_ts = None if ref is None else int(ref)
        return out


class PairStats:
    """Streaming covariance and Pearson correlation of two values seen together.

    Examples
    --------
    >>> pair = PairStats()
    >>> for x, y in [(1, 2), (2, 4), (3, 7)]:
    ...     pair.update(x, y)
    >>> round(pair.correlation, 6), round(pair.covariance, 6)
    (0.993399, 2.5)
    """

    __slots__ = ("cxy", "m2x", "m2y", "mx", "my", "n")

    def __init__(self) -> None:
        self.n = 0
        self.mx = self.my = 0.0
        self.m2x = self.m2y = self.cxy = 0.0

    def update(self, x: float, y: float) -> None:
        self.n += 1
        dx = x - self.mx
        self.mx += dx / self.n
        dy = y - self.my
        self.my += dy / self.n
        self.m2x += dx * (x - self.mx)
        self.m2y += dy * (y - self.my)
        self.cxy += dx * (y - self.my)

    def merge(self, other: PairStats) -> PairStats:
        out = PairStats()
        n = self.n + other.n
        if n == 0:
            return out
        dx, dy = other.mx - self.mx, other.my - self.my
        f = self.n * other.n / n
        out.n = n
        out.mx = self.mx + dx * other.n / n
        out.my = self.my + dy * other.n / n
        out.m2x = self.m2x + other.m2x + dx * dx * f
        out.m2y = self.m2y + other.m2y + dy * dy * f
        out.cxy = self.cxy + other.cxy + dx * dy * f
        return out

    @property
    def covariance(self) -> float:
        """Sample covariance (ddof=1); NaN below two pairs."""
        return self.cxy / (self.n - 1) if self.n > 1 else math.nan

    @property
    def correlation(self) -> float:
        """Pearson r; NaN below two pairs or when either value is constant."""
        denom = math.sqrt(self.m2x * self.m2y)
        return self.cxy / denom if self.n > 1 and denom > 0 else math.nan

    def to_list(self) -> list[float]:
        return [self.n, self.mx, self.my, self.m2x, self.m2y, self.cxy]

    @classmethod
    def from_list(cls, data: list[float]) -> PairStats:
        out = cls()
        out.n = int(data[0])
        out.mx, out.my, out.m2x, out.m2y, out.cxy = data[1:6]
        return out
