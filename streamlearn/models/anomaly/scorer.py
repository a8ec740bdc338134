"""From scores to alerts: per-key calibration, dynamic threshold, episodes, explanations.

The stream (:mod:`streamlearn.agents.anomaly`) and the batch path
(:mod:`streamlearn.models.anomaly.batch`) both run :meth:`Scorer.process` on a
:class:`KeyState` per key, so they produce the same scores and alerts for the same
events in the same order.

Per event of a key:

1. ``score``: the key's detector's raw score, calibrated against that key's own past
   scores (:class:`~streamlearn.models.anomaly.calibration.Calibrated`): ``1 - p`` with
   ``p`` the estimated probability of a score at least this high.
2. ``is_anomaly``: ``score >= threshold`` once the key has seen ``warmup`` events.
3. Episodes: the first anomalous event opens an episode and emits **one** alert; the
   episode stays open while scores stay at or above ``exit_threshold`` (hysteresis) and
   closes after ``cooldown`` events in a row below it. Anomalous events inside an open
   episode emit nothing.
4. Learning: anomalous events are not learned (the detector is protected from the
   anomaly it is reporting; ``skip_one`` keeps a seasonal detector's phase) unless
   ``learn_anomalies``; an episode that lasts more than
   ``relearn_after`` events is taken as the new normal and learned from then on, so a
   permanent level shift ends in one alert, not an endless episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from streamlearn.models.anomaly.base import AnomalyError, Detector
from streamlearn.models.anomaly.calibration import Calibrated
from streamlearn.models.anomaly.ensemble import Ensemble
from streamlearn.tables.marks import OffsetMarks

__all__ = ["AlertPolicy", "Explainer", "KeyScorer", "KeyState", "Scored", "Scorer", "alert_message"]

#: Severity names, from the threshold up: each next level is a tail 10x rarer.
SEVERITIES = ("warning", "major", "critical")

#: The alert envelope's severity (``streamlearn.alerts.envelope``: info, warning,
#: critical) of each level above; the level itself is the alert's ``grade``.
ENVELOPE_SEVERITY = {"warning": "warning", "major": "critical", "critical": "critical"}


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """When a calibrated score becomes an alert.

    Parameters
    ----------
    threshold
        Calibrated score at or above which an event is anomalous: ``0.9999`` flags
        scores this key produces about once in 10,000 events.
    exit_threshold
        An open episode continues while scores are at or above this.
    warmup
        Events of a key before any event of it can be anomalous.
    cooldown
        Events in a row below ``exit_threshold`` that close an episode.
    learn_anomalies
        Learn anomalous events too (default: they are not learned).
    relearn_after
        Events into an episode after which its events are learned anyway.
    explain_k
        A value is reported as anomalous when ``|z| >= explain_k`` against its running
        (exponentially weighted) mean and std; the expected range is ``mean +- k std``.
    explain_span
        Span in events of that running mean and std.

    Examples
    --------
    >>> AlertPolicy(threshold=0.999).severity(0.9995), AlertPolicy().severity(0.999999)
    ('warning', 'critical')
    >>> AlertPolicy(threshold=0.5, exit_threshold=0.9)
    Traceback (most recent call last):
    ...
    streamlearn.models.anomaly.base.AnomalyError: exit_threshold (0.9) must be <= threshold (0.5)
    """

    threshold: float = 0.9999
    exit_threshold: float = 0.99
    warmup: int = 500
    cooldown: int = 10
    learn_anomalies: bool = False
    relearn_after: int = 200
    explain_k: float = 3.0
    explain_span: int = 256

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise AnomalyError(f"threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.exit_threshold <= 1.0:
            raise AnomalyError(f"exit_threshold must be in [0, 1], got {self.exit_threshold}")
        if self.exit_threshold > self.threshold:
            raise AnomalyError(
                f"exit_threshold ({self.exit_threshold}) must be <= threshold ({self.threshold})"
            )
        for name in ("warmup", "cooldown", "relearn_after", "explain_span"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise AnomalyError(f"{name} must be an integer >= 0, got {value!r}")
        if not (math.isfinite(self.explain_k) and self.explain_k > 0):
            raise AnomalyError(f"explain_k must be > 0, got {self.explain_k}")

    def severity(self, score: float) -> str:
        """``warning`` at the threshold, ``major`` for a tail 10x rarer, then ``critical``."""
        allowed = (1.0 - self.threshold) * (1.0 + 1e-6)  # 1 - 0.999999 is not exactly 1e-6
        tail = 1.0 - score
        if allowed <= 0.0 or tail * 100.0 <= allowed:
            return SEVERITIES[2]
        if tail * 10.0 <= allowed:
            return SEVERITIES[1]
        return SEVERITIES[0]


class Explainer:
    """Exponentially weighted mean and variance of each value: the expected range.

    Examples
    --------
    >>> ex = Explainer(span=9)
    >>> for v in [10.0, 11.0, 9.0, 10.0, 10.5, 9.5]:
    ...     ex.learn_one({"temp": v})
    >>> (row,) = ex.explain({"temp": 30.0}, 3.0)
    >>> row["name"], row["expected_low"] < 10.0 < row["expected_high"], row["z"] > 3
    ('temp', True, True)
    """

    __slots__ = ("alpha", "stats")

    def __init__(self, span: int = 256) -> None:
        self.alpha = 2.0 / (span + 1.0)
        self.stats: dict[str, list[float]] = {}  # name -> [n, mean, var]

    def learn_one(self, x: dict[str, float]) -> None:
        alpha = self.alpha
        for name, v in x.items():
            if not math.isfinite(v):
                continue
            s = self.stats.get(name)
            if s is None:
                self.stats[name] = [1.0, v, 0.0]
                continue
            d = v - s[1]
            s[0] += 1.0
            s[1] += alpha * d
            s[2] = (1.0 - alpha) * (s[2] + alpha * d * d)

    def explain(self, x: dict[str, float], k: float) -> list[dict[str, Any]]:
        """Values with ``|z| >= k`` (largest first), else the single largest ``|z|``."""
        rows = []
        for name, v in x.items():
            s = self.stats.get(name)
            if s is None or s[0] < 2 or not math.isfinite(v):
                continue
            std = math.sqrt(s[2])
            spread = max(std, 1e-12 * (abs(s[1]) + 1.0))
            z = min(max((v - s[1]) / spread, -1e12), 1e12)
            rows.append(
                {
                    "name": name,
                    "value": v,
                    "expected_low": s[1] - k * std,
                    "expected_high": s[1] + k * std,
                    "z": z,
                }
            )
        rows.sort(key=lambda r: -abs(r["z"]))
        flagged = [r for r in rows if abs(r["z"]) >= k]
        return flagged or rows[:1]


@dataclass(slots=True)
class KeyState:
    """Everything a key's scoring remembers (pickled into the ``anomaly`` table)."""

    detector: Calibrated
    explainer: Explainer
    events: int = 0
    episodes: int = 0
    open: bool = False
    episode_events: int = 0
    below: int = 0
    anomalies: int = 0
    marks: OffsetMarks = field(default_factory=OffsetMarks)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of this state (for the query API)."""
        return {
            "events": self.events,
            "anomalies": self.anomalies,
            "episodes": self.episodes,
            "episode_open": self.open,
            "recorded_scores": self.detector.recorded,
            "detector": repr(self.detector.detector),
        }


@dataclass(frozen=True, slots=True)
class Scored:
    """The outcome of one event: calibrated score, verdict, and the alert if one opened."""

    score: float
    raw_score: float
    is_anomaly: bool
    alert: dict[str, Any] | None = None
    learned: bool = True


class Scorer:
    """Applies an :class:`AlertPolicy` to keys' :class:`KeyState`; builds new states.

    Parameters
    ----------
    factory
        Builds a fresh detector for a new key (raw, an ``Ensemble`` or ``Calibrated``).
    policy
        Thresholds, warm-up, episodes.
    name
        The detector's name, reported in alerts.
    calibration_window, calibration_tail
        ``Calibrated`` parameters for detectors not already calibrated.

    Examples
    --------
    >>> from streamlearn.models.anomaly.zscore import RobustZScore
    >>> scorer = Scorer(lambda: RobustZScore(window=64), AlertPolicy(warmup=100), "zscore")
    >>> state = scorer.new_state()
    >>> for i in range(600):
    ...     _ = scorer.process(state, "pump-1", {"temp": 20.0 + (i * 7 % 11) / 10}, i, f"e{i}")
    >>> out = scorer.process(state, "pump-1", {"temp": 35.0}, 600, "e600")
    >>> alert = out.alert
    >>> out.is_anomaly, alert["episode_id"], alert["severity"], alert["values"][0]["name"]
    (True, 'pump-1:1', 'critical', 'temp')
    >>> scorer.process(state, "pump-1", {"temp": 36.0}, 601, "e601").alert is None  # same episode
    True
    """

    def __init__(
        self,
        factory: Any,
        policy: AlertPolicy | None = None,
        name: str = "detector",
        calibration_window: int = 2000,
        calibration_tail: float = 0.05,
    ) -> None:
        self.factory = factory
        self.policy = policy or AlertPolicy()
        self.name = name
        self.calibration_window = calibration_window
        self.calibration_tail = calibration_tail

    def new_state(self) -> KeyState:
        detector = self.factory()
        if not isinstance(detector, Detector):
            raise AnomalyError(f"the detector factory returned {detector!r}, not a Detector")
        if not isinstance(detector, Calibrated):
            detector = Calibrated(detector, self.calibration_window, self.calibration_tail)
        return KeyState(detector, Explainer(self.policy.explain_span))

    def process(
        self,
        state: KeyState,
        key: str,
        values: dict[str, float],
        ts_ms: int,
        event_id: str,
    ) -> Scored:
        """Score one event of ``key``, update episodes, learn it unless it is protected."""
        policy = self.policy
        detector = state.detector
        raw = detector.raw_score(values)
        score = detector.calibrate(raw)
        anomalous = state.events >= policy.warmup and score >= policy.threshold
        alert = None
        if anomalous:
            state.anomalies += 1
            state.below = 0
            if not state.open:
                state.open = True
                state.episodes += 1
                state.episode_events = 0
                alert = self._alert(state, key, values, ts_ms, event_id, score, raw)
        elif state.open:
            if score < policy.exit_threshold:
                state.below += 1
                if state.below >= policy.cooldown:
                    state.open = False
            else:
                state.below = 0
        if state.open:
            state.episode_events += 1
        learn = (
            not anomalous or policy.learn_anomalies or state.episode_events > policy.relearn_after
        )
        if learn:
            detector.learn_one(values)
            state.explainer.learn_one(values)
        else:
            detector.skip_one(values)  # seasonal detectors keep their phase
        state.events += 1
        return Scored(score, raw, anomalous, alert, learn)

    def probe(self, state: KeyState, values: dict[str, float]) -> dict[str, Any]:
        """Scores of ``values`` against ``state`` without learning or changing it."""
        detector = state.detector
        raw = detector.detector.score_one(values)
        return {
            "score": detector.calibrate(raw),
            "raw_score": raw,
            "detectors": self._members(detector, values),
            "values": state.explainer.explain(values, self.policy.explain_k),
        }

    @staticmethod
    def _members(detector: Calibrated, values: dict[str, float]) -> dict[str, float]:
        inner = detector.detector
        if isinstance(inner, Ensemble):
            return inner.score_details(values)
        return {}

    def _alert(
        self,
        state: KeyState,
        key: str,
        values: dict[str, float],
        ts_ms: int,
        event_id: str,
        score: float,
        raw: float,
    ) -> dict[str, Any]:
        policy = self.policy
        members = self._members(state.detector, values) or {self.name: score}
        fired = sorted(n for n, s in members.items() if s >= policy.threshold) or sorted(
            n for n, s in members.items() if s >= policy.exit_threshold
        )
        episode_id = f"{key}:{state.episodes}"
        grade = policy.severity(score)
        explained = state.explainer.explain(values, policy.explain_k)
        flagged = [row for row in explained if abs(row["z"]) >= policy.explain_k]
        return {
            # The alert envelope (docs/alerting.md), then the anomaly's own fields.
            "type": "anomaly",
            "severity": ENVELOPE_SEVERITY[grade],
            "key": key,
            "subject": ", ".join(row["name"] for row in flagged) or "event",
            "message": alert_message(key, flagged, score),
            "evidence": {
                "score": score,
                "raw_score": raw,
                "threshold": policy.threshold,
                "detectors": members,
                "fired": fired,
                "values": explained,
            },
            "ts": ts_ms,
            "dedup_key": episode_id,
            "id": episode_id,
            "episode_id": episode_id,
            "event_id": event_id,
            "score": score,
            "raw_score": raw,
            "threshold": policy.threshold,
            "grade": grade,
            "detector": self.name,
            "detectors": members,
            "fired": fired,
            "values": explained,
            "key_events": state.events,
        }


def _number(value: float) -> str:
    return f"{value:.6g}"


def alert_message(key: str, flagged: list[dict[str, Any]], score: float) -> str:
    """One sentence for an alert: the most deviant value and its range, and the rarity.

    Examples
    --------
    >>> row = {"name": "temp", "value": 93.1, "expected_low": 61.2, "expected_high": 78.8}
    >>> alert_message("pump-7", [row], 0.99999987)
    'Anomaly on pump-7: temp is 93.1, expected 61.2 to 78.8 (about 1 in 7,700,000 for this key).'
    >>> alert_message("pump-7", [], 1.0)
    'Anomaly on pump-7: an unusual combination of values (rarer than any seen for this key).'
    """
    tail = 1.0 - score
    if tail > 0.0:
        rarity = f"about 1 in {float(f'{1.0 / tail:.2g}'):,.0f} for this key"
    else:
        rarity = "rarer than any seen for this key"
    if not flagged:
        return f"Anomaly on {key}: an unusual combination of values ({rarity})."
    top = flagged[0]
    more = len(flagged) - 1
    also = f" and {more} more value{'s' if more > 1 else ''}" if more else ""
    return (
        f"Anomaly on {key}: {top['name']} is {_number(top['value'])}, expected "
        f"{_number(top['expected_low'])} to {_number(top['expected_high'])}{also} ({rarity})."
    )


class KeyScorer:
    """One series' scorer: a :class:`Scorer` and its single :class:`KeyState`.

    Examples
    --------
    >>> from streamlearn.models.anomaly.zscore import RobustZScore
    >>> one = KeyScorer(RobustZScore(window=32), AlertPolicy(0.99, 0.9, warmup=50))
    >>> flags = [one.process({"v": 5.0 + i % 4}, i, str(i)).is_anomaly for i in range(150)]
    >>> any(flags), one.process({"v": 50.0}, 150, "150").is_anomaly
    (False, True)
    """

    def __init__(
        self, detector: Detector, policy: AlertPolicy | None = None, key: str = "", name: str = ""
    ) -> None:
        self.key = key
        self.scorer = Scorer(lambda: detector, policy, name or type(detector).__name__)
        self.state = self.scorer.new_state()

    def process(self, values: dict[str, float], ts_ms: int, event_id: str) -> Scored:
        return self.scorer.process(self.state, self.key, values, ts_ms, event_id)
