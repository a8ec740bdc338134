"""Raw anomaly scores to [0, 1]: running empirical CDF with a Pareto tail beyond it.

An empirical CDF of the last ``window`` raw scores cannot tell "the largest score in
1,000" from "a score that happens once in a million events": both are above every
recorded score. Alert thresholds of 1 in 10,000 need that difference, so the upper
``tail`` fraction of the recorded scores is modelled by a Generalized Pareto
distribution (peaks over threshold, Pickands-Balkema-de Haan; the SPOT method of
Siffer et al., KDD 2017), fitted by probability-weighted moments. The calibrated score is
then ``1 - P(raw score >= s)``: a score of ``0.9999`` means "seen about once in 10,000
events of this key".
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque

from streamlearn.models.anomaly.base import AnomalyError, Detector, check_int

__all__ = ["Calibrated", "fit_tail", "gpd_survival"]

#: Fewer peaks than this and the tail stays empirical (a fit on a handful is noise).
MIN_PEAKS = 20


def fit_tail(excess: list[float]) -> tuple[float, float]:
    """``(shape, scale)`` of a Generalized Pareto fitted to ascending ``excess`` values.

    Probability-weighted moments (Hosking & Wallis, 1987), which are steadier than plain
    moments on a few dozen peaks. The shape is clamped at 0 (an exponential tail): a
    negative estimate means a finite upper end point, and on few peaks that end point
    often falls below scores the data can still produce, which would turn ordinary
    extremes into "impossible" ones (false alerts). Scale 0: all peaks equal.

    >>> shape, scale = fit_tail([0.1 * i for i in range(40)])  # uniform: bounded tail
    >>> shape, round(scale, 3)
    (0.0, 1.95)
    """
    n = len(excess)
    a0 = math.fsum(excess) / n
    if not a0 > 0.0:
        return 0.0, 0.0
    a1 = math.fsum([(n - 1 - i) / (n - 1) * y for i, y in enumerate(excess)]) / n
    d = a0 - 2.0 * a1
    shape = 2.0 - a0 / d if d > 0.0 else 0.0
    if not 0.0 < shape < 1.0:  # heavier than shape 1 has no mean: also not trusted
        return 0.0, a0
    return shape, 2.0 * a0 * a1 / d


def gpd_survival(excess: float, shape: float, scale: float) -> float:
    """``P(Y > excess)`` for a Generalized Pareto ``Y`` (location 0).

    Examples
    --------
    >>> round(gpd_survival(1.0, 0.0, 1.0), 6)  # shape 0: exponential
    0.367879
    >>> gpd_survival(3.0, -0.5, 1.0)  # beyond the upper end point scale / -shape
    0.0
    """
    if excess <= 0.0:
        return 1.0
    if abs(shape) < 1e-9:
        return math.exp(-excess / scale)
    base = 1.0 + shape * excess / scale
    if base <= 0.0:
        return 0.0
    return base ** (-1.0 / shape)


class Calibrated(Detector):
    """Wraps a detector; its scores become ``1 - P(raw >= s)`` among its recent raw scores.

    ``learn_one(x)`` records the raw score of ``x`` **before** learning it (the
    progressive score, as in ``score_one`` then ``learn_one``), then learns the wrapped
    detector; the last ``window`` recorded raw scores are kept (FIFO + sorted list).
    ``score_one(x)``:

    * below the tail: the fraction of recorded scores below the raw score of ``x``,
      ties counted half (mid-rank), so a detector that outputs one constant (HST on a
      constant series) scores 0.5, not 1.0; above every one of ``n`` recorded scores
      (no tail fitted yet), ``n / (n + 1)``: a key that has seen 50 events cannot call
      anything a 1-in-10,000 event;
    * in the tail (above the ``1 - tail`` quantile, once at least ``MIN_PEAKS`` = 20
      scores are there): ``1 - tail * S(raw - u)`` with ``u`` the tail threshold and
      ``S`` the survival function of a Generalized Pareto distribution fitted to the
      excesses of the recorded tail scores over ``u`` (:func:`fit_tail`); continuous
      with the empirical part at ``u``. Scores above every recorded one are thereby
      still ordered;
    * a raw score of 0 (the floor: "no evidence", e.g. during warm-up), a non-finite
      raw score or no recorded score yet gives 0.0.

    Scoring then learning the same event computes the raw score once: the last raw
    score is reused while the event compares equal and nothing was learned since.

    Parameters
    ----------
    detector
        The detector whose raw scores are calibrated (learned in place).
    window
        Raw scores kept.
    tail
        Fraction of the kept scores modelled by the Pareto tail (0 for a purely
        empirical CDF).

    Examples
    --------
    >>> from streamlearn.models.anomaly.zscore import RobustZScore
    >>> import random
    >>> rng = random.Random(1)
    >>> det = Calibrated(RobustZScore(window=64, min_samples=8), window=500)
    >>> for _ in range(400):
    ...     x = {"v": rng.gauss(10.0, 1.0)}
    ...     _ = det.score_one(x)
    ...     det.learn_one(x)
    >>> [round(det.score_one({"v": v}), 6) for v in (10.0, 11.5, 13.0, 16.0)]
    [0.165, 0.9325, 0.997321, 0.999996]

    A 1.5 sigma value is at the 93rd percentile of this key's scores; a 6 sigma value
    is beyond every recorded score, and the tail puts it at about 4 in a million.
    """

    def __init__(self, detector: Detector, window: int = 2000, tail: float = 0.05) -> None:
        check_int("window", window, 1)
        if not (isinstance(tail, float | int) and 0.0 <= tail < 0.5):
            raise AnomalyError(f"tail must be a fraction in [0, 0.5), got {tail!r}")
        self.detector = detector
        self.window = window
        self.tail = tail
        self._fifo: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []
        self._last_x: dict[str, float] | None = None
        self._last_raw = 0.0
        self._fit: tuple[int, float, float, float] | None = None  # (peaks, u, shape, scale)
        self._fit_stale = True

    @property
    def recorded(self) -> int:
        """Raw scores currently recorded (at most ``window``)."""
        return len(self._sorted)

    def raw_score(self, x: dict[str, float]) -> float:
        """The wrapped detector's score of ``x`` (cached for an equal ``x``)."""
        if self._last_x is not None and x == self._last_x:
            return self._last_raw
        raw = self.detector.score_one(x)
        self._last_x, self._last_raw = dict(x), raw
        return raw

    def learn_one(self, x: dict[str, float]) -> None:
        self.record(self.raw_score(x))
        self.detector.learn_one(x)
        self._last_x = None  # the detector changed: the cached raw score is stale

    def skip_one(self, x: dict[str, float]) -> None:
        self.detector.skip_one(x)
        self._last_x = None

    def record(self, raw: float) -> None:
        """Add ``raw`` to the recorded scores (``learn_one`` does this)."""
        if math.isfinite(raw):
            if len(self._fifo) == self.window:
                del self._sorted[bisect_left(self._sorted, self._fifo[0])]
            self._fifo.append(raw)
            insort(self._sorted, raw)
            self._fit_stale = True

    def _tail_fit(self) -> tuple[int, float, float, float] | None:
        if not self._fit_stale:
            return self._fit
        self._fit_stale = False
        self._fit = None
        s = self._sorted
        n = len(s)
        peaks = int(n * self.tail)
        if peaks < MIN_PEAKS:
            return None
        u = s[n - peaks - 1]
        excess = [v - u for v in s[n - peaks :]]  # ascending
        shape, scale = fit_tail(excess)
        if scale == 0.0:
            # Every peak equals u (discrete raw scores, or a constant history): no tail
            # to fit. Fall back to an exponential tail with the mean excess of the upper
            # half over the median; 0 (a constant history) leaves "rarer than 1 in n + 1".
            median = s[n // 2]
            upper = [v - median for v in s[n // 2 :]]
            shape, scale = 0.0, math.fsum(upper) / len(upper)
        self._fit = (peaks, u, shape, scale)
        return self._fit

    def calibrate(self, raw: float) -> float:
        """The calibrated score of a raw score (the recorded scores unchanged)."""
        n = len(self._sorted)
        if n == 0 or not raw > 0.0 or not math.isfinite(raw):  # NaN fails raw > 0.0
            return 0.0
        peaks = int(n * self.tail)
        # The fit is only needed above the tail threshold (a ``tail`` share of events).
        if peaks >= MIN_PEAKS and raw > self._sorted[n - peaks - 1]:
            fit = self._tail_fit()
            assert fit is not None
            peaks, u, shape, scale = fit
            if scale == 0.0:
                # Every peak equals u: nothing above u was ever recorded, so as in the
                # empirical part, "rarer than 1 in n + 1" is all that can be said.
                return n / (n + 1)
            return 1.0 - (peaks / n) * gpd_survival(raw - u, shape, scale)
        below = bisect_left(self._sorted, raw)
        if below == n:
            # Above every recorded score, without a tail: n scores can only tell that it
            # is rarer than 1 in n + 1, not that it is impossible.
            return n / (n + 1)
        ties = bisect_right(self._sorted, raw, lo=below) - below
        return (below + 0.5 * ties) / n

    def score_one(self, x: dict[str, float]) -> float:
        return self.calibrate(self.raw_score(x))
