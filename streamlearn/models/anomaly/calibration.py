"""Raw anomaly scores to [0, 1] with a running empirical CDF of the detector's own scores."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque

from streamlearn.models.anomaly.base import Detector, check_int

__all__ = ["Calibrated"]


class Calibrated(Detector):
    """Wraps a detector; scores are the rank of the raw score among its recent raw scores.

    ``learn_one(x)`` records the raw score of ``x`` **before** learning it (the
    progressive score, as in ``score_one`` then ``learn_one``), then learns the wrapped
    detector; the last ``window`` recorded raw scores are kept (FIFO + sorted list).
    ``score_one(x)`` returns, among those, the fraction below the raw score of ``x``
    with ties counted half (mid-rank), so:

    * a raw score above every recorded one gives 1.0, below every one gives 0.0;
    * ties give 0.5, not 1.0: a detector that outputs one constant (HST on a constant
      series) would otherwise be at the maximum on every event;
    * a raw score of 0 (the floor: "no evidence", e.g. during warm-up) gives 0.0;
    * no recorded score yet gives 0.0.

    Scoring then learning the same event computes the raw score once: the last raw
    score is reused while the event compares equal and nothing was learned since.

    Parameters
    ----------
    detector
        The detector whose raw scores are calibrated (learned in place).
    window
        Raw scores kept.

    Examples
    --------
    >>> from streamlearn.models.anomaly.zscore import RobustZScore
    >>> det = Calibrated(RobustZScore(window=64, min_samples=8), window=100)
    >>> for i in range(60):
    ...     x = {"v": float(i % 5)}
    ...     _ = det.score_one(x)
    ...     det.learn_one(x)
    >>> det.score_one({"v": 2.0}), det.score_one({"v": 40.0})
    (0.0, 1.0)
    >>> 0.0 < det.score_one({"v": 3.5}) < 1.0
    True
    """

    def __init__(self, detector: Detector, window: int = 1000) -> None:
        check_int("window", window, 1)
        self.detector = detector
        self.window = window
        self._fifo: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []
        self._last_x: dict[str, float] | None = None
        self._last_raw = 0.0

    def raw_score(self, x: dict[str, float]) -> float:
        """The wrapped detector's score of ``x`` (cached for an equal ``x``)."""
        if self._last_x is not None and x == self._last_x:
            return self._last_raw
        raw = self.detector.score_one(x)
        self._last_x, self._last_raw = dict(x), raw
        return raw

    def learn_one(self, x: dict[str, float]) -> None:
        raw = self.raw_score(x)
        if math.isfinite(raw):
            if len(self._fifo) == self.window:
                del self._sorted[bisect_left(self._sorted, self._fifo[0])]
            self._fifo.append(raw)
            insort(self._sorted, raw)
        self.detector.learn_one(x)
        self._last_x = None  # the detector changed: the cached raw score is stale

    def score_one(self, x: dict[str, float]) -> float:
        raw = self.raw_score(x)
        n = len(self._sorted)
        if n == 0 or not raw > 0.0:  # also catches NaN
            return 0.0
        below = bisect_left(self._sorted, raw)
        ties = bisect_right(self._sorted, raw, lo=below) - below
        return (below + 0.5 * ties) / n
