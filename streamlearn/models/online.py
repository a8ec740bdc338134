"""Online supervised learning per event: predict, hold the prediction, learn when labelled.

Pure code (no Faust). A :class:`ModelState` is everything one model remembers: the
River learner, its prequential metrics, the predictions still waiting for a label, the
per-key feature state and the offset marks of the events and labels it has applied. The
stream keeps one per partition (``model_scope="global"``) or one per key (``"key"``) in a
table, so a model, its pending predictions and its marks are always checkpointed
together: after a crash every labelled event has been learned exactly once.

Labels arrive inline (an event's ``label``: predict, then learn, prequentially) or
later on the labels topic (``{id, key, label, ts}``), joined to the pending prediction of
that event id within ``label_ttl_ms`` of event time.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from river import metrics as rmetrics
from river import utils as rutils

from streamlearn.errors import StreamlearnError
from streamlearn.models.champion import ChampionConfig, Lifecycle, VersionInfo
from streamlearn.models.learners import build_learner
from streamlearn.tables.marks import OffsetMarks

__all__ = ["LabelError", "ModelConfig", "ModelState", "OnlineModel", "Prediction"]

Task = Literal["classification", "regression"]


class LabelError(StreamlearnError):
    """A label the model cannot use; ``code`` is its dead-letter error code.

    ``invalid_label`` (not a declared class, a string for regression), ``unknown_id``
    (no pending prediction for that event id) or ``expired`` (the prediction expired).
    """

    def __init__(self, message: str, code: str = "invalid_label") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """What model to run and how labels are handled (from Settings)."""

    task: Task = "classification"
    learner: str = "logreg-rbf"
    params: dict[str, Any] = field(default_factory=dict)
    classes: tuple[Any, ...] = (False, True)
    label_ttl_ms: int = 600_000
    pending_max: int = 2_000
    rolling_window: int = 1_000
    seed: int = 0
    #: keep the k features most correlated with the target (online); 0: all features
    select_k: int = 0
    #: champion/challenger and monitoring (None: off)
    champion: ChampionConfig | None = None
    #: concept drift detection on the champion's errors (a DriftConfig; None: off)
    drift: Any = None
    #: the model's name in records, metrics and the registry
    model_name: str | None = None


@dataclass(slots=True)
class Prediction:
    """One prediction, as published on the predictions topic."""

    key: str
    event_id: str
    ts: int
    prediction: Any
    probability: float | None
    model: str
    model_version: int
    latency_us: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "event_id": self.event_id,
            "ts": self.ts,
            "prediction": self.prediction,
            "probability": self.probability,
            "model": self.model,
            "model_version": self.model_version,
            "latency_us": self.latency_us,
        }


class ModelState:
    """One model with its metrics, pending predictions, feature states and marks."""

    def __init__(self, config: ModelConfig, learner: Any) -> None:
        self.learner = learner
        self.learned = 0
        self.predicted = 0
        self.labels_unknown = 0
        self.labels_expired = 0
        self.labels_invalid = 0
        self.pending: OrderedDict[str, tuple[int, dict[str, float], Any, float | None]] = (
            OrderedDict()
        )
        self.expired_ids: deque[str] = deque(maxlen=1_000)
        self.features: dict[str, Any] = {}  # per-key feature state
        self.event_marks = OffsetMarks()
        self.label_marks = OffsetMarks()
        self.metrics = _new_metrics(config)
        self._lifecycle_defaults()

    def _lifecycle_defaults(self) -> None:
        self.champion = VersionInfo(version=1, origin="initial", since_ts=None, since_learned=0)
        self.challengers: list[Any] = []
        self.concept: Any = None  # the concept drift detector's state
        self.degraded_streak = 0
        self.degraded = False
        self.history: deque[dict[str, Any]] = deque(maxlen=240)
        self.lifecycle: list[dict[str, Any]] = []  # drift, promotions, degradations
        self.outbox: list[dict[str, Any]] = []  # records to publish, drained every event
        self.registry_version: int | None = None  # the registry production version adopted
        self.candidates_seen: set[int] = set()  # registry candidates already challenging

    def __setstate__(self, values: dict[str, Any]) -> None:
        # Checkpoints written before champion/challenger existed lack its fields.
        self._lifecycle_defaults()
        self.__dict__.update(values)


def _new_metrics(config: ModelConfig) -> dict[str, Any]:
    if config.task == "classification":
        binary = len(config.classes) == 2
        base = {
            "accuracy": rmetrics.Accuracy(),
            "f1": rmetrics.F1() if binary else rmetrics.MacroF1(),
            "log_loss": rmetrics.LogLoss() if binary else rmetrics.CrossEntropy(),
        }
        if binary:
            base["roc_auc"] = rmetrics.ROCAUC()
    else:
        base = {"mae": rmetrics.MAE(), "rmse": rmetrics.RMSE(), "r2": rmetrics.R2()}
    rolling = {
        f"{name}_last": rutils.Rolling(type(metric), window_size=config.rolling_window)
        for name, metric in base.items()
        if name != "roc_auc"  # River's ROCAUC cannot revert (not rollable)
    }
    return {**base, **rolling}


class OnlineModel:
    """Applies a :class:`ModelConfig` to :class:`ModelState` objects.

    ``features(key, event, state)`` and ``advance(key, event, state)`` come from the
    feature pipeline: the first computes an event's features without changing the
    key's feature state, the second advances it.

    Examples
    --------
    >>> model = OnlineModel(ModelConfig(learner="logreg"))
    >>> state = model.new_state()
    >>> for i in range(200):
    ...     x = {"v": float(i % 10)}
    ...     p, error = model.predict_event(state, "k", f"e{i}", i, x, label=(i % 10) >= 5)
    >>> model.predict_one(state, {"v": 9.0})[0], model.predict_one(state, {"v": 0.0})[0]
    (True, False)
    >>> round(model.metrics(state)["accuracy"], 2) > 0.8
    True
    """

    def __init__(self, config: ModelConfig, name: str | None = None) -> None:
        self.config = config
        self.name = name or config.model_name or config.learner
        if config.task == "classification" and len(config.classes) < 2:
            raise StreamlearnError("a classifier needs at least two classes")
        if config.select_k and config.task == "classification" and len(config.classes) > 2:
            raise StreamlearnError(
                "online feature selection (select_k) needs a numeric or binary target; "
                "select features offline for more classes"
            )
        self._binary = config.task == "classification" and len(config.classes) == 2
        build_learner(config.learner, config.task, seed=config.seed, **self._learner_kwargs())
        self.lifecycle: Lifecycle | None = None
        if config.champion is not None:
            concept = None
            if config.drift is not None:
                from streamlearn.drift import ConceptDriftMonitor

                concept = ConceptDriftMonitor(config.drift, config.task)
            self.lifecycle = Lifecycle(config.champion, config.task, self.name, concept)

    def _learner_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"params": dict(self.config.params)}
        if self.config.task == "classification":
            kwargs["n_classes"] = len(self.config.classes)
        return kwargs

    def new_learner(self) -> Any:
        """A fresh, untrained learner of this configuration."""
        learner = build_learner(
            self.config.learner, self.config.task, seed=self.config.seed, **self._learner_kwargs()
        )
        if self.config.select_k:
            from streamlearn.models.features import OnlineSelectKBest

            # Every feature passes until 50 labels are learned, then the k best by |r|.
            learner = OnlineSelectKBest(k=self.config.select_k, warmup=50) | learner
        return learner

    def new_state(self) -> ModelState:
        state = ModelState(self.config, self.new_learner())
        lifecycle = self.lifecycle
        if lifecycle is not None:
            state.history = deque(maxlen=lifecycle.config.history_max)
            if lifecycle.concept is not None:
                state.concept = lifecycle.concept.new_state()
        return state

    # --- labels ---------------------------------------------------------------------
    def target(self, label: Any) -> Any:
        """The learner's target for an event's label; :class:`LabelError` if unusable.

        >>> m = OnlineModel(ModelConfig())
        >>> m.target(1), m.target(False)
        (True, False)
        >>> m.target("yes")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        streamlearn.models.online.LabelError: label 'yes' is not one of the classes ...
        """
        if self.config.task == "regression":
            if isinstance(label, bool) or not isinstance(label, int | float):
                raise LabelError(f"a regression label must be a number, got {label!r}")
            if not math.isfinite(label):
                raise LabelError("the label is not finite")
            return float(label)
        for index, cls in enumerate(self.config.classes):
            comparable = type(label) is type(cls) or (
                isinstance(label, int | float) and isinstance(cls, int | float)
            )
            if comparable and label == cls:
                return (index == 1) if self._binary else cls
        raise LabelError(
            f"label {label!r} is not one of the classes {list(self.config.classes)} "
            "(set model_classes)"
        )

    def _public(self, y: Any) -> Any:
        if self._binary:
            return self.config.classes[1] if y else self.config.classes[0]
        return y

    # --- predict / learn --------------------------------------------------------------
    def predict_one(self, state: ModelState, x: dict[str, float]) -> tuple[Any, float | None]:
        """Prediction (in the label's terms) and its probability (classification)."""
        learner = state.learner
        if self.config.task == "regression":
            y = learner.predict_one(x)
            return (float(y) if y is not None else 0.0), None
        proba = learner.predict_proba_one(x) if state.learned else {}
        return self._decide(proba)

    def _decide(self, proba: dict[Any, float]) -> tuple[Any, float | None]:
        if not proba:
            return self._public(False if self._binary else self.config.classes[0]), None
        best = max(proba, key=lambda c: (proba[c], str(c)))
        if self._binary:
            p_true = float(proba.get(True, 0.0))
            return self._public(p_true >= 0.5), p_true
        return best, float(proba[best])

    def predict_event(
        self,
        state: ModelState,
        key: str,
        event_id: str,
        ts_ms: int,
        x: dict[str, float],
        label: Any = None,
        hold: bool = True,
    ) -> tuple[Prediction, LabelError | None]:
        """Predict ``x``; learn it now if ``label`` is given, else hold it for its label.

        An unusable inline label is returned as the :class:`LabelError` next to the
        prediction (which stands); nothing is learned from it. With ``hold=False`` an
        unlabelled event's prediction is not kept for a delayed label.
        """
        started = time.perf_counter()
        y_pred, proba = self.predict_one(state, x)
        latency = (time.perf_counter() - started) * 1e6
        state.predicted += 1
        prediction = Prediction(
            key, event_id, ts_ms, y_pred, proba, self.name, state.learned, round(latency, 1)
        )
        self._expire(state, ts_ms)
        if label is None:
            if hold:
                state.pending[event_id] = (ts_ms, x, y_pred, proba)
                excess = len(state.pending) - self.config.pending_max
                if excess > 0:
                    self.drop_oldest_pending(state, excess)
            return prediction, None
        try:
            self._learn(state, x, label, y_pred, proba, ts_ms, key)
        except LabelError as exc:
            return prediction, exc
        return prediction, None

    def drop_oldest_pending(self, state: ModelState, n: int) -> int:
        """Expire the ``n`` oldest pending predictions; returns how many were dropped."""
        dropped = 0
        while dropped < n and state.pending:
            old_id, _ = state.pending.popitem(last=False)
            state.expired_ids.append(old_id)
            dropped += 1
        return dropped

    def apply_label(self, state: ModelState, event_id: str, label: Any, ts_ms: int | None) -> None:
        """Join a delayed label to its pending prediction and learn; :class:`LabelError`
        when there is no such prediction (unknown or expired) or the label is unusable.

        Only events move the expiry clock: a label (perhaps a wrong one, or one with a
        far-off ``ts``) never expires other predictions. A label with a ``ts`` more than
        ``label_ttl_ms`` after its event's is refused; one without ``ts`` is not aged.
        """
        entry = state.pending.get(event_id)
        if entry is None:
            if event_id in state.expired_ids:
                state.labels_expired += 1
                raise LabelError(
                    f"the prediction for event {event_id!r} expired (label_ttl_ms "
                    f"{self.config.label_ttl_ms}) before its label arrived",
                    "expired",
                )
            state.labels_unknown += 1
            raise LabelError(f"no pending prediction for event id {event_id!r}", "unknown_id")
        pred_ts, x, y_pred, proba = entry
        if ts_ms is not None and ts_ms - pred_ts > self.config.label_ttl_ms:
            del state.pending[event_id]
            state.expired_ids.append(event_id)
            state.labels_expired += 1
            raise LabelError(
                f"the prediction for event {event_id!r} expired: its label came "
                f"{ts_ms - pred_ts} ms after it, more than label_ttl_ms "
                f"{self.config.label_ttl_ms}",
                "expired",
            )
        self._learn(state, x, label, y_pred, proba)  # may raise: the entry stays pending
        del state.pending[event_id]

    def _learn(
        self,
        state: ModelState,
        x: dict[str, float],
        label: Any,
        y_pred: Any,
        proba: float | None,
        ts_ms: int | None = None,
        key: str | None = None,
    ) -> None:
        try:
            y = self.target(label)
        except LabelError:
            state.labels_invalid += 1
            raise
        self._score(state, y, y_pred, proba)
        state.learner.learn_one(x, y)
        state.learned += 1
        if self.lifecycle is not None:
            self.lifecycle.on_label(
                state,
                x,
                y,
                self._error(y, self.target(y_pred) if self.config.task != "regression" else y_pred),
                lambda name=None: self._rolling(state, name),
                ts_ms,
                key,
                self._predict_target,
                _learn_one,
                self.new_learner,
            )

    def _error(self, y: Any, y_hat: Any) -> float:
        if self.config.task == "regression":
            return abs(float(y) - float(y_hat))
        return 0.0 if y_hat == y else 1.0

    def _predict_target(self, learner: Any, learned: int, x: dict[str, float]) -> Any:
        """``learner``'s prediction in the target's terms (bool for a binary classifier)."""
        if self.config.task == "regression":
            y = learner.predict_one(x)
            return float(y) if y is not None else 0.0
        proba = learner.predict_proba_one(x) if learned else {}
        y_public = self._decide(proba)[0]
        return self.target(y_public)

    def _rolling(self, state: ModelState, name: str | None) -> Any:
        if name is not None:
            metric = state.metrics.get(name)
            value = metric.get() if metric is not None else None
            return float(value) if value is not None and math.isfinite(value) else None
        return self.metrics(state)

    def drain(self, state: ModelState) -> list[dict[str, Any]]:
        """The lifecycle records (drift, promotion, degradation) since the last drain."""
        out = state.outbox
        if out:
            state.outbox = []
        return out

    def _score(self, state: ModelState, y: Any, y_pred: Any, proba: float | None) -> None:
        m = state.metrics
        if self.config.task == "regression":
            for name in ("mae", "rmse", "r2", "mae_last", "rmse_last", "r2_last"):
                m[name].update(y, y_pred)
            return
        if self._binary:
            y_true = bool(y)
            pred = y_pred == self.config.classes[1]
            p = proba if proba is not None else (1.0 if pred else 0.0)
            for name in ("accuracy", "f1", "accuracy_last", "f1_last"):
                m[name].update(y_true, pred)
            m["roc_auc"].update(y_true, p)
            m["log_loss"].update(y_true, p)
            m["log_loss_last"].update(y_true, p)
            return
        for name in ("accuracy", "f1", "accuracy_last", "f1_last"):
            m[name].update(y, y_pred)
        dist = {y_pred: proba} if proba is not None else {}
        m["log_loss"].update(y, dist)
        m["log_loss_last"].update(y, dist)

    def _expire(self, state: ModelState, now_ts: int) -> None:
        horizon = now_ts - self.config.label_ttl_ms
        pending = state.pending
        while pending:
            event_id, entry = next(iter(pending.items()))
            if entry[0] >= horizon:
                break
            del pending[event_id]
            state.expired_ids.append(event_id)

    def metrics(self, state: ModelState) -> dict[str, float | None]:
        """Prequential metrics: overall, and over the last ``rolling_window`` labels."""
        out: dict[str, float | None] = {}
        for name, metric in state.metrics.items():
            value = metric.get()
            out[name] = float(value) if value is not None and math.isfinite(value) else None
        return out

    def describe(self, state: ModelState) -> dict[str, Any]:
        return {
            "model": self.name,
            "task": self.config.task,
            "learner": repr(state.learner),
            "version": state.learned,
            "predicted": state.predicted,
            "learned": state.learned,
            "pending": len(state.pending),
            "labels_unknown": state.labels_unknown,
            "labels_expired": state.labels_expired,
            "labels_invalid": state.labels_invalid,
            "metrics": self.metrics(state),
            "champion": {
                "version": state.champion.version,
                "origin": state.champion.origin,
                "since_ts": state.champion.since_ts,
                "baseline": state.champion.baseline,
                "degraded": state.degraded,
            },
            "challengers": [
                c.summary(self.config.task == "classification") for c in state.challengers
            ],
        }

    def report(
        self, state: ModelState, from_ts: int | None = None, to_ts: int | None = None
    ) -> dict[str, Any]:
        """Metrics over time and drift and lifecycle records within [from, to), and every
        promotion (the version history is small and always whole)."""

        def inside(ts: Any) -> bool:
            return ts is None or (
                (from_ts is None or ts >= from_ts) and (to_ts is None or ts < to_ts)
            )

        events = [r for r in state.lifecycle if inside(r.get("ts"))]
        return {
            **self.describe(state),
            "metrics_over_time": [p for p in state.history if inside(p.get("ts"))],
            "drift": [r for r in events if r.get("type") == "drift"],
            "events": [r for r in events if r.get("type") != "drift"],
            "versions": [
                {
                    "version": r["evidence"]["to_version"],
                    "since_ts": r["ts"],
                    "evidence": r["evidence"],
                }
                for r in state.lifecycle
                if r.get("event") in ("promotion", "adopted")
            ],
        }


def _learn_one(learner: Any, x: dict[str, float], y: Any) -> None:
    learner.learn_one(x, y)
