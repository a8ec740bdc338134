"""Robust z-score of each value against its own trailing window (optionally seasonal)."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque

from streamlearn.models.anomaly.base import AnomalyError, Detector, check_int

__all__ = ["RobustZScore"]

#: MAD * 1.4826 estimates the standard deviation of normal data.
MAD_TO_STD = 1.4826
#: Relative floor of the scale: ``1e-9 * (|center| + 1)``; keeps a constant series finite.
SCALE_FLOOR = 1e-9
#: Cap of ``|z|`` so a jump off a constant series cannot overflow to ``inf``.
Z_MAX = 1e12


class _Buffer:
    """The last ``maxlen`` values of one series (one value name, one phase).

    Without ``sums`` (``method="mad"``) the values are also kept sorted. With ``sums``
    (``method="std"``) the exact sum and sum of squares of the values are kept instead,
    as integers: each value ``v`` is held as ``v * 2**exp``, an integer for
    every float once ``exp`` is at least the power of two in ``v``'s denominator, so
    adding and removing a value never rounds. Mean and variance are then correctly
    rounded divisions of two integers, O(1) per update, with no drift over any number
    of updates (a float running sum would cancel catastrophically after a level shift).
    """

    __slots__ = ("center", "exp", "fresh", "s1", "s2", "scale", "sorted", "sums", "values")

    def __init__(self, maxlen: int, sums: bool = False) -> None:
        self.values: deque[float] = deque(maxlen=maxlen)
        self.sorted: list[float] = []
        self.fresh = False  # center/scale match the values
        self.center = 0.0
        self.scale = 1.0
        self.sums = sums
        self.exp = 0  # values are held as integers v * 2**exp
        self.s1 = 0  # sum of v * 2**exp
        self.s2 = 0  # sum of (v * 2**exp) ** 2

    def add(self, v: float) -> None:
        values = self.values
        if self.sums:
            if len(values) == values.maxlen:
                q = self._fixed(values[0])
                self.s1 -= q
                self.s2 -= q * q
            q = self._fixed(v)
            self.s1 += q
            self.s2 += q * q
        else:
            if len(values) == values.maxlen:
                del self.sorted[bisect_left(self.sorted, values[0])]
            insort(self.sorted, v)
        values.append(v)
        self.fresh = False

    def __setstate__(self, state: tuple[None, dict]) -> None:
        # A buffer pickled before the exact sums existed: sorted list only.
        slots = {"sums": False, "exp": 0, "s1": 0, "s2": 0, **state[1]}
        for name, value in slots.items():
            setattr(self, name, value)

    def _start_sums(self) -> None:
        """Switch to exact sums (a buffer restored from a sorted-list-only state)."""
        self.sums = True
        self.exp, self.s1, self.s2 = 0, 0, 0
        for v in self.values:
            q = self._fixed(v)
            self.s1 += q
            self.s2 += q * q

    def _fixed(self, v: float) -> int:
        """``v * 2**exp`` as an exact integer; raises ``exp`` (rescaling the sums) if needed."""
        num, den = v.as_integer_ratio()
        e = den.bit_length() - 1  # den == 2**e
        if e > self.exp:
            shift = e - self.exp
            self.s1 <<= shift
            self.s2 <<= 2 * shift
            self.exp = e
        return num << (self.exp - e)

    def refresh(self, mad: bool) -> None:
        n = len(self.values)
        if mad:
            s = self.sorted
            center = (s[(n - 1) // 2] + s[n // 2]) / 2
            low, high = _kth_deviations(s, center, (n - 1) // 2)
            spread = MAD_TO_STD * (low + (low if n % 2 else high)) / 2
        else:
            if not self.sums:
                self._start_sums()
            # mean = s1 / (n 2^exp); variance = (n s2 - s1^2) / (n (n - 1) 2^(2 exp))
            center = self.s1 / (n << self.exp)
            spread = math.sqrt(
                (n * self.s2 - self.s1 * self.s1) / ((n * (n - 1)) << (2 * self.exp))
            )
        self.center = center
        self.scale = max(spread, SCALE_FLOOR * (abs(center) + 1.0))
        self.fresh = True


def _kth_deviations(s: list[float], center: float, k: int) -> tuple[float, float]:
    """The ``k``-th and ``k + 1``-th smallest ``|v - center|`` of ascending ``s`` (0-based).

    The deviations of the values below ``center``, read from ``center`` outwards, are
    ascending, and so are those of the values from ``center`` up: the answer is the
    ``k``-th smallest of two sorted sequences, found by binary search on how many of the
    ``k + 1`` smallest come from the lower side: O(log n), no list built. The deviations
    are the same floats as ``abs(v - center)`` (rounding is symmetric). The second value
    is ``inf`` when ``k + 1`` is past the end.

    Examples
    --------
    >>> _kth_deviations([1.0, 2.0, 4.0, 8.0], 3.0, 1)  # deviations 2, 1, 1, 5
    (1.0, 2.0)
    >>> _kth_deviations([1.0, 2.0, 4.0, 8.0], 3.0, 3)
    (5.0, inf)
    """
    n = len(s)
    p = bisect_left(s, center)  # s[:p] < center <= s[p:]
    n_low, n_high = p, n - p
    lo, hi = max(0, k + 1 - n_high), min(k + 1, n_low)
    while lo < hi:
        i = (lo + hi) // 2  # take i deviations from below and k + 1 - i from above
        if center - s[p - 1 - i] < s[p + k - i] - center:
            lo = i + 1
        else:
            hi = i
    i, j = lo, k + 1 - lo
    kth = max(center - s[p - i] if i else -math.inf, s[p + j - 1] - center if j else -math.inf)
    after = min(
        center - s[p - 1 - i] if i < n_low else math.inf,
        s[p + j] - center if j < n_high else math.inf,
    )
    return kth, after


class RobustZScore(Detector):
    """Largest ``|z|`` over the values of an event, each against its own trailing window.

    ``z = (x - center) / scale`` with center/scale the median and ``1.4826 * MAD``
    (``method="mad"``) or the mean and sample std (``method="std"``) of the last
    ``window`` values of that name. With ``season=P`` a value is compared with the last
    ``window`` values **at the same phase** (event count modulo ``P``): ``P`` buffers of
    ``window`` values per name. The phase counts learned events, so a missing value
    leaves a gap rather than shifting the phases; an event not learned at all shifts
    them, unless :meth:`skip_one` is called with it.

    * Each value name has its own buffers: names appearing later start warming up then;
      a value missing from an event is skipped. A value is scored only once its buffer
      holds ``min_samples`` values (``P * min_samples`` events with a season), else it
      adds 0; non-finite values are ignored.
    * Constant series: the scale is floored at ``1e-9 * (|center| + 1)``, so a constant
      series scores 0 and any change from it scores very high; ``|z|`` is capped at
      ``1e12``. Never ``inf`` or NaN.

    Cost per value and event: O(log window) comparisons (plus a ``window``-sized
    memmove of the sorted list, negligible). ``"std"`` keeps exact integer sums
    (``_Buffer``), so its mean and std are those of the window to the last bit, never
    drifting; ``"mad"`` reads the median off the sorted list and finds the MAD as the
    middle of two sorted sequences of deviations (``_kth_deviations``). Center and
    scale are recomputed lazily at the next ``score_one`` after a learn.

    Parameters
    ----------
    window
        Values kept per name (and phase).
    method
        ``"mad"`` (median / MAD, robust) or ``"std"`` (mean / standard deviation).
    min_samples
        Values a buffer needs before it is scored (>= 2).
    season
        Period in events, or ``None`` for no seasonality.

    Examples
    --------
    >>> det = RobustZScore(window=32, min_samples=4)
    >>> for v in [10.0, 11.0, 9.0, 10.5, 9.5, 10.0]:
    ...     det.learn_one({"temp": v})
    >>> round(det.score_one({"temp": 10.2}), 3), round(det.score_one({"temp": 30.0}), 1)
    (0.27, 27.0)
    >>> det.score_one({"humidity": 50.0})  # not warmed up yet
    0.0

    Seasonal: every third event is high, so a high value at that phase is normal.

    >>> det = RobustZScore(window=8, min_samples=3, season=3)
    >>> for i in range(12):
    ...     det.learn_one({"load": 100.0 + i % 2 if i % 3 == 0 else 1.0 + i % 2})
    >>> det.score_one({"load": 100.0}) < 1.0 < det.score_one({"load": 1.0})  # phase 0
    True
    """

    def __init__(
        self,
        window: int = 256,
        method: str = "mad",
        min_samples: int = 16,
        season: int | None = None,
    ) -> None:
        check_int("window", window, 2)
        check_int("min_samples", min_samples, 2)
        if min_samples > window:
            raise AnomalyError(f"min_samples ({min_samples}) must be <= window ({window})")
        if method not in ("mad", "std"):
            raise AnomalyError(f"method must be 'mad' or 'std', got {method!r}")
        if season is not None:
            check_int("season", season, 1)
        self.window = window
        self.method = method
        self.min_samples = min_samples
        self.season = season
        self._period = season or 1
        self._mad = method == "mad"
        self._n = 0  # events learned: the phase of the next event is _n % _period
        self._buffers: dict[str, list[_Buffer]] = {}

    def learn_one(self, x: dict[str, float]) -> None:
        phase = self._n % self._period
        buffers = self._buffers
        for name, v in x.items():
            if not math.isfinite(v):
                continue
            phases = buffers.get(name)
            if phases is None:
                phases = buffers[name] = [
                    _Buffer(self.window, not self._mad) for _ in range(self._period)
                ]
            phases[phase].add(v)
        self._n += 1

    def skip_one(self, x: dict[str, float]) -> None:
        """Advance the phase by an event that is not learned (e.g. an anomaly).

        Without a season this does nothing. With one, call it for every event the
        caller decides not to learn, so the phases stay those of the events.
        """
        self._n += 1

    def center_scale(self, name: str) -> tuple[float, float] | None:
        """Center and scale the next event's ``name`` is scored against, if warmed up."""
        phases = self._buffers.get(name)
        if phases is None:
            return None
        buf = phases[self._n % self._period]
        if len(buf.values) < self.min_samples:
            return None
        if not buf.fresh:
            buf.refresh(self._mad)
        return buf.center, buf.scale

    def scores_by_value(self, x: dict[str, float]) -> dict[str, float]:
        """``|z|`` of each value of ``x`` that can be scored (warmed up, finite)."""
        phase = self._n % self._period
        out = {}
        for name, v in x.items():
            phases = self._buffers.get(name)
            if phases is None or not math.isfinite(v):
                continue
            buf = phases[phase]
            if len(buf.values) < self.min_samples:
                continue
            if not buf.fresh:
                buf.refresh(self._mad)
            out[name] = min(abs(v - buf.center) / buf.scale, Z_MAX)
        return out

    def score_one(self, x: dict[str, float]) -> float:
        return max(self.scores_by_value(x).values(), default=0.0)
