"""Champion/challenger and model monitoring for online models (pure code, no Faust).

The champion serves predictions. A challenger is a second learner that runs in shadow
on the same labelled events: started fresh when concept drift fires on the champion's
errors, or loaded from a registered candidate. Each label is a paired trial: the
champion's served prediction and the challenger's prediction (made before either learns
the label) are both scored, and the last ``window`` pairs are compared.

A challenger is promoted when, over a full window,

* classification: its accuracy beats the champion's by at least ``margin`` (points) and
  McNemar's exact test on the discordant pairs (champion wrong and challenger right vs
  the reverse) rejects "equally good" at ``alpha``;
* regression: its mean absolute error is lower by at least ``margin`` (relative) and a
  one-sided Wilcoxon signed-rank test on the paired absolute errors rejects at ``alpha``.

The margin keeps a challenger that is merely as good from churning the champion; the
test keeps a lucky window from promoting. Both are checked every ``check_every`` labels.

Monitoring: the champion's rolling metric is compared with its value at promotion (or,
for the first champion, when its rolling window first fills). Worse by more than
``degradation_margin`` for ``degradation_events`` consecutive labels is a degradation
alert, one per episode.

Everything that happens (drift, challenger started or retired, promotion, degradation)
is appended to ``state.outbox`` as an alert-envelope dict; the stream publishes and
clears it before checkpointing the state, so the records and the state move together.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from streamlearn.errors import StreamlearnError

__all__ = ["Challenger", "ChampionConfig", "Lifecycle", "VersionInfo", "higher_is_better"]

#: The rolling metrics each task keeps (River's ROCAUC cannot roll).
ROLLING = {"classification": ("accuracy", "f1", "log_loss"), "regression": ("mae", "rmse", "r2")}
#: Metrics where larger is better; every other metric is an error (smaller is better).
HIGHER_IS_BETTER = frozenset({"accuracy", "f1", "roc_auc", "r2"})


def higher_is_better(metric: str) -> bool:
    """``True`` for scores (accuracy, f1, roc_auc, r2), ``False`` for errors.

    >>> higher_is_better("accuracy_last"), higher_is_better("mae")
    (True, False)
    """
    return metric.removesuffix("_last") in HIGHER_IS_BETTER


@dataclass(frozen=True, slots=True)
class ChampionConfig:
    """Champion/challenger and monitoring settings (from Settings.model_*)."""

    challengers: bool = True
    window: int = 500
    margin: float = 0.02
    alpha: float = 0.01
    max_labels: int = 20_000
    check_every: int = 25
    #: the rolling metric watched for degradation (None: accuracy or mae by task)
    monitor_metric: str | None = None
    degradation_margin: float = 0.05
    degradation_events: int = 500
    #: labels between two snapshots of the metrics in the model's history
    history_every: int = 100
    history_max: int = 500
    #: lifecycle records kept in the state for reports
    events_max: int = 200


@dataclass(slots=True)
class VersionInfo:
    """Which learner is the champion, since when, and how good it was then."""

    version: int
    origin: str  # "initial", "drift", "candidate:<registry version>"
    since_ts: int | None
    since_learned: int
    baseline: float | None = None  # the monitored rolling metric at promotion


class Challenger:
    """A shadow learner and its paired trials against the champion."""

    def __init__(self, learner: Any, origin: str, started_ts: int, window: int) -> None:
        self.learner = learner
        self.origin = origin
        self.started_ts = started_ts
        self.learned = 0
        # (champion error, challenger error): 0/1 for classification, |error| otherwise
        self.pairs: deque[tuple[float, float]] = deque(maxlen=window)
        self.sum_champion = 0.0
        self.sum_challenger = 0.0
        self.champion_only_wrong = 0  # McNemar's discordant counts (classification)
        self.challenger_only_wrong = 0

    def add(self, champion_error: float, challenger_error: float) -> None:
        pairs = self.pairs
        if len(pairs) == pairs.maxlen:
            old_c, old_h = pairs[0]
            self.sum_champion -= old_c
            self.sum_challenger -= old_h
            self.champion_only_wrong -= old_c > old_h
            self.challenger_only_wrong -= old_h > old_c
        pairs.append((champion_error, challenger_error))
        self.sum_champion += champion_error
        self.sum_challenger += challenger_error
        self.champion_only_wrong += champion_error > challenger_error
        self.challenger_only_wrong += challenger_error > champion_error

    def summary(self, classification: bool) -> dict[str, Any]:
        n = len(self.pairs)
        out: dict[str, Any] = {"origin": self.origin, "learned": self.learned, "window": n}
        if not n:
            return out
        if classification:
            out["champion_accuracy"] = round(1 - self.sum_champion / n, 4)
            out["challenger_accuracy"] = round(1 - self.sum_challenger / n, 4)
        else:
            out["champion_mae"] = self.sum_champion / n
            out["challenger_mae"] = self.sum_challenger / n
        return out


class Lifecycle:
    """Applies a :class:`ChampionConfig` to a model state's champion and challengers.

    ``state`` is any object with the attributes a
    :class:`~streamlearn.models.online.ModelState` has: ``learner``, ``learned``,
    ``champion`` (:class:`VersionInfo`), ``challengers``, ``concept`` (drift detector
    state), ``degraded_streak``, ``degraded``, ``history``, ``lifecycle``, ``outbox``.
    """

    def __init__(
        self,
        config: ChampionConfig,
        task: str,
        model_name: str,
        concept: Any = None,
    ) -> None:
        self.config = config
        self.classification = task == "classification"
        self.model_name = model_name
        self.concept = concept  # a ConceptDriftMonitor, or None
        self.metric = config.monitor_metric or ("accuracy" if self.classification else "mae")
        allowed = ROLLING[task]
        if self.metric.removesuffix("_last") not in allowed:
            raise StreamlearnError(
                f"model_monitor_metric {self.metric!r} is not a rolling metric of {task}: "
                f"use one of {', '.join(allowed)}"
            )
        self.rolling_metric = f"{self.metric.removesuffix('_last')}_last"
        self.higher = higher_is_better(self.metric)

    # --- per label ---------------------------------------------------------------
    def on_label(
        self,
        state: Any,
        x: dict[str, float],
        y: Any,
        champion_error: float,
        rolling: Any,
        ts_ms: int | None,
        key: str | None,
        predict: Any,
        learn: Any,
        new_learner: Any,
    ) -> None:
        """After the champion scored and learned a label: challengers, drift, health.

        ``rolling(name)`` gives one of the champion's rolling metrics, ``rolling()`` all;
        ``predict(learner, learned, x)`` a learner's prediction in the target's terms;
        ``learn(learner, x, y)`` trains one and ``new_learner()`` builds a fresh one.
        """
        ts = ts_ms if ts_ms is not None else (state.champion.since_ts or 0)
        config = self.config
        for challenger in list(state.challengers):
            y_hat = predict(challenger.learner, challenger.learned, x)
            challenger.add(champion_error, self._error(y, y_hat))
            learn(challenger.learner, x, y)
            challenger.learned += 1
            full = len(challenger.pairs) == challenger.pairs.maxlen
            if full and challenger.learned % config.check_every == 0:
                verdict = self.compare(challenger)
                if verdict is not None:
                    self._promote(state, challenger, verdict, ts, key)
                    break
            if challenger.learned >= config.max_labels:
                state.challengers.remove(challenger)
                self._emit(
                    state,
                    "challenger_retired",
                    "info",
                    key,
                    f"challenger ({challenger.origin}) retired after {challenger.learned} "
                    "labels without beating the champion",
                    challenger.summary(self.classification),
                    ts,
                )
        if self.concept is not None:
            record = self.concept.update(state.concept, self.model_name, key, champion_error, ts)
            if record is not None:
                drift = record.to_dict()
                self._remember(state, drift)
                state.outbox.append(drift)
                if config.challengers:
                    # A challenger from an earlier drift has learned the old concept too:
                    # it is replaced by a fresh one.
                    state.challengers = [c for c in state.challengers if c.origin != "drift"]
                    state.challengers.append(Challenger(new_learner(), "drift", ts, config.window))
                    self._emit(
                        state,
                        "challenger_started",
                        "info",
                        key,
                        f"concept drift on {self.model_name}'s errors: a fresh challenger "
                        "runs in shadow",
                        {"drift": drift.get("dedup_key")},
                        ts,
                    )
        self._monitor(state, rolling(self.rolling_metric), ts, key)
        if state.learned % config.history_every == 0:
            metrics = rolling()
            point = {"ts": ts, "learned": state.learned, "version": state.champion.version}
            point.update(
                {k: v for k, v in metrics.items() if v is not None and k.endswith("_last")}
            )
            state.history.append(point)

    def _error(self, y: Any, y_hat: Any) -> float:
        if self.classification:
            return 0.0 if y_hat == y else 1.0
        return abs(float(y) - float(y_hat))

    # --- from the registry -----------------------------------------------------------
    def challenge(self, state: Any, learner: Any, origin: str, ts: int) -> None:
        """Run ``learner`` (a registered candidate) in shadow against the champion."""
        state.challengers.append(Challenger(learner, origin, ts, self.config.window))
        self._emit(
            state,
            "challenger_started",
            "info",
            None,
            f"{self.model_name}: {origin} runs in shadow against champion "
            f"v{state.champion.version}",
            {"origin": origin},
            ts,
            dedup=f"challenger:{self.model_name}:{origin}:v{state.champion.version}",
        )

    def adopt(self, state: Any, learner: Any, origin: str, ts: int, key: str | None) -> None:
        """Make ``learner`` the champion now (a production version chosen by a person)."""
        old = state.champion
        state.learner = learner
        state.champion = VersionInfo(
            version=old.version + 1, origin=origin, since_ts=ts, since_learned=state.learned
        )
        state.degraded_streak = 0
        state.degraded = False
        if self.concept is not None:
            state.concept = self.concept.new_state()
        self._emit(
            state,
            "adopted",
            "info",
            key,
            f"{self.model_name}: {origin} (set in the registry) is champion "
            f"v{state.champion.version}",
            {"origin": origin, "from_version": old.version, "to_version": state.champion.version},
            ts,
            dedup=f"adopted:{self.model_name}:{origin}:v{state.champion.version}",
        )

    # --- the comparison ------------------------------------------------------------
    def compare(self, challenger: Challenger) -> dict[str, Any] | None:
        """The promotion verdict (evidence) when ``challenger`` beats the champion, else None."""
        n = len(challenger.pairs)
        if n == 0:
            return None
        champion = challenger.sum_champion / n
        contender = challenger.sum_challenger / n
        if self.classification:
            gain = champion - contender  # error-rate drop = accuracy gain, in points
            if gain < self.config.margin:
                return None
            b, c = challenger.champion_only_wrong, challenger.challenger_only_wrong
            p = float(stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue)
            test = "mcnemar-exact"
            evidence = {
                "champion_accuracy": 1 - champion,
                "challenger_accuracy": 1 - contender,
                "discordant": {"champion_only_wrong": b, "challenger_only_wrong": c},
            }
        else:
            if champion <= 0 or (champion - contender) / champion < self.config.margin:
                return None
            pairs = np.asarray(challenger.pairs, dtype=float)
            diff = pairs[:, 0] - pairs[:, 1]
            if not np.any(diff):
                return None
            p = float(stats.wilcoxon(diff, alternative="greater").pvalue)
            test = "wilcoxon-signed-rank"
            gain = (champion - contender) / champion
            evidence = {"champion_mae": champion, "challenger_mae": contender}
        if not math.isfinite(p) or p >= self.config.alpha:
            return None
        evidence.update(
            {"test": test, "p_value": p, "alpha": self.config.alpha, "window": n, "gain": gain}
        )
        return evidence

    def _promote(
        self, state: Any, challenger: Challenger, evidence: dict[str, Any], ts: int, key: str | None
    ) -> None:
        old = state.champion
        state.challengers.remove(challenger)
        state.learner = challenger.learner
        baseline = (
            evidence["challenger_accuracy"] if self.classification else evidence["challenger_mae"]
        )
        if self.metric.removesuffix("_last") not in ("accuracy", "mae"):
            baseline = None  # set when the rolling metric is next read
        state.champion = VersionInfo(
            version=old.version + 1,
            origin=challenger.origin,
            since_ts=ts,
            since_learned=state.learned,
            baseline=baseline,
        )
        state.degraded_streak = 0
        state.degraded = False
        if self.concept is not None:
            state.concept = self.concept.new_state()  # a new model: a new error stream
        self._emit(
            state,
            "promotion",
            "warning",
            key,
            f"{self.model_name}: challenger ({challenger.origin}) promoted to champion "
            f"v{state.champion.version} ({evidence['test']} p={evidence['p_value']:.2g})",
            {
                **evidence,
                "from_version": old.version,
                "to_version": state.champion.version,
                "challenger_learned": challenger.learned,
            },
            ts,
            dedup=f"promotion:{self.model_name}:{key or ''}:v{state.champion.version}",
        )

    # --- monitoring ----------------------------------------------------------------
    def _monitor(self, state: Any, value: float | None, ts: int, key: str | None) -> None:
        champion = state.champion
        if value is None:
            return
        if champion.baseline is None:
            if state.learned - champion.since_learned >= self.config.window:
                champion.baseline = value
            return
        drop = (champion.baseline - value) if self.higher else (value - champion.baseline)
        if not self.higher and champion.baseline > 0:
            drop /= champion.baseline  # errors degrade relatively (target units vary)
        if drop <= self.config.degradation_margin:
            state.degraded_streak = 0
            state.degraded = False
            return
        state.degraded_streak += 1
        if state.degraded or state.degraded_streak < self.config.degradation_events:
            return
        state.degraded = True
        self._emit(
            state,
            "degradation",
            "critical" if drop > 2 * self.config.degradation_margin else "warning",
            key,
            f"{self.model_name} v{champion.version}: rolling {self.metric} {value:.4g} is "
            f"worse than {champion.baseline:.4g} at promotion for "
            f"{state.degraded_streak} labels",
            {
                "metric": self.rolling_metric,
                "value": value,
                "baseline": champion.baseline,
                "drop": drop,
                "margin": self.config.degradation_margin,
                "labels": state.degraded_streak,
                "version": champion.version,
            },
            ts,
            dedup=f"degradation:{self.model_name}:{key or ''}:v{champion.version}:{state.learned}",
        )

    # --- records -------------------------------------------------------------------
    def _emit(
        self,
        state: Any,
        kind: str,
        severity: str,
        key: str | None,
        message: str,
        evidence: dict[str, Any],
        ts: int,
        dedup: str | None = None,
    ) -> None:
        record = {
            "type": kind if kind in ("degradation", "promotion") else "model",
            "event": kind,
            "severity": severity,
            "key": key,
            "subject": self.model_name,
            "message": message,
            "evidence": evidence,
            "ts": ts,
            "dedup_key": dedup or f"{kind}:{self.model_name}:{key or ''}:{state.learned}",
            "model": self.model_name,
            "version": state.champion.version,
        }
        self._remember(state, record)
        state.outbox.append(record)

    def _remember(self, state: Any, record: dict[str, Any]) -> None:
        state.lifecycle.append(record)
        excess = len(state.lifecycle) - self.config.events_max
        if excess > 0:
            del state.lifecycle[:excess]
