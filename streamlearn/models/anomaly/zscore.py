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
    """The last ``maxlen`` values of one series (one value name, one phase), kept sorted too."""

    __slots__ = ("center", "fresh", "scale", "sorted", "values")

    def __init__(self, maxlen: int) -> None:
        self.values: deque[float] = deque(maxlen=maxlen)
        self.sorted: list[float] = []
        self.fresh = False  # center/scale match the values
        self.center = 0.0
        self.scale = 1.0

    def add(self, v: float) -> None:
        if len(self.values) == self.values.maxlen:
            del self.sorted[bisect_left(self.sorted, self.values[0])]
        self.values.append(v)
        insort(self.sorted, v)
        self.fresh = False

    def refresh(self, mad: bool) -> None:
        s, n = self.sorted, len(self.sorted)
        if mad:
            center = (s[(n - 1) // 2] + s[n // 2]) / 2
            dev = sorted([abs(v - center) for v in s])
            spread = MAD_TO_STD * (dev[(n - 1) // 2] + dev[n // 2]) / 2
        else:
            center = math.fsum(s) / n
            spread = math.sqrt(math.fsum([(v - center) ** 2 for v in s]) / (n - 1))
        self.center = center
        self.scale = max(spread, SCALE_FLOOR * (abs(center) + 1.0))
        self.fresh = True


class RobustZScore(Detector):
    """Largest ``|z|`` over the values of an event, each against its own trailing window.

    ``z = (x - center) / scale`` with center/scale the median and ``1.4826 * MAD``
    (``method="mad"``) or the mean and sample std (``method="std"``) of the last
    ``window`` values of that name. With ``season=P`` a value is compared with the last
    ``window`` values **at the same phase** (event count modulo ``P``): ``P`` buffers of
    ``window`` values per name. The phase counts learned events, so a missing value
    leaves a gap rather than shifting the phases.

    * Each value name has its own buffers: names appearing later start warming up then;
      a value missing from an event is skipped. A value is scored only once its buffer
      holds ``min_samples`` values (``P * min_samples`` events with a season), else it
      adds 0; non-finite values are ignored.
    * Constant series: the scale is floored at ``1e-9 * (|center| + 1)``, so a constant
      series scores 0 and any change from it scores very high; ``|z|`` is capped at
      ``1e12``. Never ``inf`` or NaN.

    Cost: ``learn_one`` is O(window) per value (sorted-list insert); center/scale are
    recomputed lazily, O(window log window), at the next ``score_one``.

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
                phases = buffers[name] = [_Buffer(self.window) for _ in range(self._period)]
            phases[phase].add(v)
        self._n += 1

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
