"""Per-key data drift and per-model concept drift monitors, and their alert records.

Pure code (no Faust). A monitor holds the configuration; its ``new_state()`` is the
small picklable state the stream keeps in a table (one per key, or per model), and
``update`` applies one event to it and returns the alerts to publish. Rules
(``docs/drift.md`` has the reasons and the measured figures):

* **Reference**: a value's first ``reference_events`` values (after a start, a drift
  record or :meth:`DataDriftMonitor.reset_reference`), or a uniform sample of at most
  that many of the values whose ``ts`` is in the pinned range ``[from, to)``. A key with
  fewer than 30 values in the pinned range takes its next values instead.
* **Online detector** (``drift_detector``), fed every value after the reference as a
  z-score against the reference's mean and standard deviation.
* **Comparison** every ``compare_every`` values once the current window (the last
  ``window_events`` values after the reference) is full: drift when the
  Kolmogorov-Smirnov p-value < ``compare_alpha`` *and* PSI > ``psi_threshold``. Both, so
  that a large sample does not make a negligible shift significant and a noisy PSI on a
  small one is not enough either.
* **Episodes**: a record opens an episode; the same (key, value) does not emit again for
  ``cooldown_events`` of its values. An unpinned reference then restarts, so a
  persistent shift is reported once; a pinned one stays and the episode also stays open
  until a comparison finds no drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats

from streamlearn.drift.compare import compare, summary
from streamlearn.drift.detectors import build_concept_detector, build_data_detector

__all__ = [
    "ConceptDriftMonitor",
    "ConceptState",
    "DataDriftMonitor",
    "DataState",
    "DriftConfig",
    "DriftRecord",
]

Task = Literal["classification", "regression"]
MIN_REFERENCE = 30  # fewer values than this make no reference (nor evidence window)


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """The ``drift_*`` settings (see ``streamlearn.config.settings``)."""

    detector: str = "adwin"
    params: dict[str, Any] = field(default_factory=dict)
    concept_detector: str = "adwin"
    concept_params: dict[str, Any] = field(default_factory=dict)
    reference_events: int = 1_000
    reference_from_ms: int | None = None
    reference_to_ms: int | None = None
    window_events: int = 1_000
    compare_every: int = 1_000
    compare_alpha: float = 1e-6
    psi_threshold: float = 0.25
    cooldown_events: int = 1_000

    @classmethod
    def from_settings(cls, settings: Any) -> DriftConfig:
        return cls(
            detector=settings.drift_detector,
            params=dict(settings.drift_params),
            concept_detector=settings.drift_concept_detector,
            concept_params=dict(settings.drift_concept_params),
            reference_events=settings.drift_reference_events,
            reference_from_ms=settings.drift_reference_from_ms,
            reference_to_ms=settings.drift_reference_to_ms,
            window_events=settings.drift_window_events,
            compare_every=settings.drift_compare_every,
            compare_alpha=settings.drift_compare_alpha,
            psi_threshold=settings.drift_psi_threshold,
            cooldown_events=settings.drift_cooldown_events,
        )

    @property
    def pinned(self) -> bool:
        return self.reference_from_ms is not None and self.reference_to_ms is not None


@dataclass(slots=True)
class DriftRecord:
    """One drift alert: the shared alert envelope plus the drift fields."""

    kind: Literal["data", "concept"]
    severity: Literal["info", "warning", "critical"]
    key: str | None
    subject: str
    message: str
    detector: str
    statistic: float
    p_value: float | None
    threshold: float | None
    reference: dict[str, Any]
    current: dict[str, Any]
    evidence: dict[str, Any]
    ts: int
    episode: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "drift",
            "severity": self.severity,
            "key": self.key,
            "subject": self.subject,
            "message": self.message,
            "evidence": self.evidence,
            "ts": self.ts,
            "dedup_key": self.episode,
            "kind": self.kind,
            "detector": self.detector,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "reference": self.reference,
            "current": self.current,
            "episode": self.episode,
        }


class Ring:
    """The last ``capacity`` floats, stored as float32 offsets from the first one seen.

    >>> ring = Ring(3)
    >>> for x in (1e12, 1e12 + 1, 1e12 + 2, 1e12 + 3):
    ...     ring.push(x)
    >>> ring.values().tolist(), len(ring)
    ([1000000000001.0, 1000000000002.0, 1000000000003.0], 3)
    """

    __slots__ = ("anchor", "count", "data")

    def __init__(self, capacity: int) -> None:
        self.data = np.zeros(capacity, dtype=np.float32)
        self.count = 0  # pushed in total
        self.anchor: float | None = None  # keeps float32 precise for large offsets

    def push(self, x: float) -> None:
        if self.anchor is None:
            self.anchor = x
        self.data[self.count % self.data.size] = x - self.anchor
        self.count += 1

    def put(self, index: int, x: float) -> None:
        """Overwrite slot ``index`` (a reservoir sample's replacement)."""
        self.data[index] = x - (self.anchor or 0.0)

    def values(self) -> np.ndarray:
        """The stored values, oldest first, as float64."""
        size = self.data.size
        if self.count <= size:
            out = self.data[: self.count]
        else:
            start = self.count % size
            out = np.concatenate([self.data[start:], self.data[:start]])
        return out.astype(np.float64) + (self.anchor or 0.0)

    def clear(self) -> None:
        self.count = 0
        self.anchor = None

    def __len__(self) -> int:
        return min(self.count, self.data.size)


def _mix(n: int) -> int:
    """splitmix64 of ``n``: a reservoir sample's random slot without a stored RNG."""
    z = (n * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def after_change(values: np.ndarray, min_size: int = MIN_REFERENCE) -> int:
    """Index where the most likely single change of mean or spread in ``values`` starts.

    The CUSUM estimate on the values and on their absolute deviations from the median,
    whichever is stronger; 0 when ``values`` is too short to split.

    >>> after_change(np.r_[np.zeros(100), np.ones(50)])
    100
    """
    n = values.size
    if n < 2 * min_size:
        return 0
    best, split = -1.0, 0
    k = np.arange(1, n, dtype=np.float64)
    for series in (values, np.abs(values - np.median(values))):
        spread = series.std()
        if spread == 0:
            continue
        cusum = np.cumsum(series - series.mean())[:-1]
        score = np.abs(cusum) / np.sqrt(k * (n - k) / n) / spread
        score[: min_size - 1] = 0
        score[n - min_size :] = 0
        index = int(score.argmax())
        if score[index] > best:
            best, split = float(score[index]), index + 1
    return split


class ValueState:
    """Drift state of one value of one key (see :class:`DataDriftMonitor`)."""

    __slots__ = (
        "center",
        "cooldown_left",
        "detector",
        "episode_open",
        "episodes",
        "events",
        "fallback",
        "ref_done",
        "ref_seen",
        "reference",
        "scale",
        "since_compare",
        "window",
    )

    def __init__(self, reference_events: int, window_events: int) -> None:
        self.reference = Ring(reference_events)
        self.window = Ring(window_events)
        self.ref_seen = 0  # values offered to a pinned reservoir
        self.ref_done = False
        self.fallback = False  # pinned range missed: reference from the next values
        self.center = 0.0
        self.scale = 1.0
        self.detector: Any = None
        self.since_compare = 0
        self.cooldown_left = 0
        self.episode_open = False
        self.episodes = 0
        self.events = 0

    def restart(self) -> None:
        self.reference.clear()
        self.window.clear()
        self.ref_seen = 0
        self.ref_done = False
        self.detector = None
        self.since_compare = 0
        self.episode_open = False


@dataclass(slots=True)
class DataState:
    """A key's data drift state: one :class:`ValueState` per value name."""

    values: dict[str, ValueState] = field(default_factory=dict)


class DataDriftMonitor:
    """Data drift of every value of a key: online detector + windowed comparison.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> monitor = DataDriftMonitor(DriftConfig(reference_events=500, window_events=500))
    >>> state = monitor.new_state()
    >>> stream = np.r_[rng.normal(0, 1, 3000), rng.normal(2, 1, 1000)]
    >>> records = [r for i, x in enumerate(stream) for r in monitor.update(state, "k", {"v": x}, i)]
    >>> [(r.subject, r.kind, 3000 <= r.ts < 3100) for r in records]
    [('v', 'data', True)]
    >>> records[0].to_dict()["dedup_key"]
    'drift:data:k:v:1'
    """

    def __init__(self, config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()
        build_data_detector(self.config.detector, self.config.params)  # fail early

    def new_state(self) -> DataState:
        return DataState()

    def reset_reference(self, state: DataState) -> None:
        """Restart every value's reference (and detector), e.g. for a new model version."""
        for value in state.values.values():
            value.restart()

    def update(
        self, state: DataState, key: str, values: dict[str, float], ts_ms: int
    ) -> list[DriftRecord]:
        """Apply one event's ``values``; the records of the drift episodes it opens."""
        records: list[DriftRecord] = []
        config = self.config
        for name, raw in values.items():
            try:
                x = float(raw)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(x):
                continue
            vs = state.values.get(name)
            if vs is None:
                vs = state.values[name] = ValueState(config.reference_events, config.window_events)
            vs.events += 1
            if vs.cooldown_left:
                vs.cooldown_left -= 1
            if not vs.ref_done:
                self._add_reference(vs, x, ts_ms)
                continue
            vs.window.push(x)
            detector = vs.detector
            detector.update((x - vs.center) / vs.scale)
            vs.since_compare += 1
            fired = ""
            if detector.drift_detected:
                fired = "detector"
            elif (
                vs.since_compare >= config.compare_every and len(vs.window) >= config.window_events
            ):
                vs.since_compare = 0
                result = compare(vs.reference.values(), vs.window.values())
                if result.drifted(config.compare_alpha, config.psi_threshold):
                    fired = "comparison"
                else:
                    vs.episode_open = False
            if not fired or vs.cooldown_left or (fired == "comparison" and vs.episode_open):
                continue
            records.append(self._record(vs, key, name, fired, ts_ms))
            vs.episodes += 1
            vs.cooldown_left = config.cooldown_events
            if config.pinned and not vs.fallback:
                vs.episode_open = True
            else:
                vs.restart()
        return records

    def _add_reference(self, vs: ValueState, x: float, ts_ms: int) -> None:
        config = self.config
        ref = vs.reference
        if not config.pinned or vs.fallback:
            ref.push(x)
            if len(ref) >= config.reference_events:
                self._start(vs)
            return
        assert config.reference_from_ms is not None and config.reference_to_ms is not None
        if ts_ms >= config.reference_to_ms:
            if len(ref) >= MIN_REFERENCE:
                self._start(vs)
                vs.window.push(x)  # the first value after the range counts as current
                vs.detector.update((x - vs.center) / vs.scale)
                vs.since_compare = 1
            else:
                vs.fallback = True
                ref.clear()
                ref.push(x)
            return
        if ts_ms < config.reference_from_ms:
            return
        vs.ref_seen += 1
        if len(ref) < config.reference_events:
            ref.push(x)
        else:
            slot = _mix(vs.ref_seen) % vs.ref_seen
            if slot < config.reference_events:
                ref.put(slot, x)

    def _start(self, vs: ValueState) -> None:
        reference = vs.reference.values()
        vs.center = float(reference.mean())
        std = float(reference.std())
        vs.scale = std if std > 0 else 1.0
        vs.detector = build_data_detector(self.config.detector, self.config.params)
        vs.ref_done = True
        vs.since_compare = 0

    def _record(self, vs: ValueState, key: str, name: str, fired: str, ts_ms: int) -> DriftRecord:
        config = self.config
        reference = vs.reference.values()
        current = vs.window.values()
        if fired == "detector":
            current = current[after_change(current) :]
        result = compare(reference, current)
        confirmed = result.drifted(config.compare_alpha, config.psi_threshold)
        if not confirmed:
            severity = "info"
        elif result.psi >= 4 * config.psi_threshold:
            severity = "critical"
        else:
            severity = "warning"
        ref_summary, cur_summary = summary(reference), summary(current)
        by = config.detector if fired == "detector" else "KS + PSI comparison"
        message = (
            f"Value {name!r} of key {key!r} drifted ({by}): mean {_num(ref_summary['mean'])} "
            f"-> {_num(cur_summary['mean'])}, std {_num(ref_summary['std'])} -> "
            f"{_num(cur_summary['std'])}, PSI {result.psi:.2f}, KS p={result.p_value:.1e}."
        )
        episode = f"drift:data:{key}:{name}:{vs.episodes + 1}"
        return DriftRecord(
            kind="data",
            severity=severity,
            key=key,
            subject=name,
            message=message,
            detector=config.detector if fired == "detector" else "ks+psi",
            statistic=result.psi,
            p_value=result.p_value,
            threshold=config.psi_threshold,
            reference=ref_summary,
            current=cur_summary,
            evidence={
                **result.to_dict(),
                "fired_by": fired,
                "confirmed": confirmed,
                "alpha": config.compare_alpha,
                "value_events": vs.events,
                "detector_params": config.params or "defaults",
            },
            ts=ts_ms,
            episode=episode,
        )


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


class ConceptState:
    """One model's concept drift state: its detector and recent errors."""

    __slots__ = (
        "cooldown_left",
        "detector",
        "episodes",
        "errors",
        "events",
        "scale",
        "warmup",
    )

    def __init__(self, reference_events: int, window_events: int) -> None:
        self.errors = Ring(reference_events + window_events)
        self.warmup = 0  # errors seen since the (re)start; the detector waits for the reference
        self.scale = 1.0
        self.detector: Any = None
        self.cooldown_left = 0
        self.episodes = 0
        self.events = 0


class ConceptDriftMonitor:
    """Concept drift: a detector on a model's error stream, one record per episode.

    The first ``reference_events`` errors (the model's learning curve, after a start or
    :meth:`reset_reference`) only make the reference; then every error is fed to the
    detector: 0/1 for classification, ``|error| / reference mean |error|`` for
    regression. A detection is recorded when the errors after the change (CUSUM split of
    the recent errors) are higher than before it: a model that got better is not drift.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> monitor = ConceptDriftMonitor(DriftConfig(), "classification")
    >>> state = monitor.new_state()
    >>> errors = np.r_[rng.random(8000) < 0.05, rng.random(2000) < 0.3]
    >>> found = [monitor.update(state, "m", None, bool(e), i) for i, e in enumerate(errors)]
    >>> [(r.subject, r.severity, 8000 <= r.ts < 8300) for r in found if r]
    [('m', 'critical', True)]
    """

    def __init__(self, config: DriftConfig | None, task: Task) -> None:
        self.config = config or DriftConfig()
        self.task = task
        build_concept_detector(self.config.concept_detector, self.config.concept_params, task)

    def new_state(self) -> ConceptState:
        return ConceptState(self.config.reference_events, self.config.window_events)

    def reset_reference(self, state: ConceptState) -> None:
        """Restart the reference (a new model version learns from scratch)."""
        state.errors.clear()
        state.warmup = 0
        state.detector = None

    def update(
        self, state: ConceptState, model: str, key: str | None, error: float | bool, ts_ms: int
    ) -> DriftRecord | None:
        """Apply one labelled prediction's error; the record of an episode it opens."""
        value = float(error) if self.task == "classification" else abs(float(error))
        if not math.isfinite(value):
            return None
        config = self.config
        state.events += 1
        state.errors.push(value)
        if state.cooldown_left:
            state.cooldown_left -= 1
        if state.detector is None:
            state.warmup += 1
            if state.warmup < config.reference_events:
                return None
            if self.task == "regression":
                mean = float(state.errors.values().mean())
                state.scale = mean if mean > 0 else 1.0
            state.detector = build_concept_detector(
                config.concept_detector, config.concept_params, self.task
            )
            return None
        detector = state.detector
        if self.task == "classification":
            detector.update(bool(value))
        else:
            detector.update(value / state.scale)
        if not detector.drift_detected or state.cooldown_left:
            return None
        errors = state.errors.values()
        split = after_change(errors) or max(errors.size - config.window_events, 0)
        before, after = errors[:split][-config.reference_events :], errors[split:]
        if after.size == 0 or before.size == 0 or after.mean() <= before.mean():
            return None
        record = self._record(state, model, key, before, after, ts_ms)
        state.episodes += 1
        state.cooldown_left = config.cooldown_events
        return record

    def _record(
        self,
        state: ConceptState,
        model: str,
        key: str | None,
        before: np.ndarray,
        after: np.ndarray,
        ts_ms: int,
    ) -> DriftRecord:
        config = self.config
        ref_mean, cur_mean = float(before.mean()), float(after.mean())
        if self.task == "classification":
            p_value = _two_proportions(before, after)
            critical = cur_mean - ref_mean >= 0.10
            what = f"error rate rose from {ref_mean:.1%} to {cur_mean:.1%}"
        else:
            p_value = float(stats.ks_2samp(before, after).pvalue)
            critical = cur_mean >= 2 * ref_mean
            what = f"mean absolute error rose from {ref_mean:.4g} to {cur_mean:.4g}"
        severity = "info" if p_value >= 1e-3 else "critical" if critical else "warning"
        where = f" on key {key!r}" if key is not None else ""
        episode = f"drift:concept:{key}:{model}:{state.episodes + 1}"
        return DriftRecord(
            kind="concept",
            severity=severity,
            key=key,
            subject=model,
            message=f"Model {model!r}{where}: {what} ({config.concept_detector}).",
            detector=config.concept_detector,
            statistic=cur_mean - ref_mean,
            p_value=p_value,
            threshold=None,
            reference=summary(before),
            current=summary(after),
            evidence={
                "task": self.task,
                "error_before": ref_mean,
                "error_after": cur_mean,
                "events_after_change": int(after.size),
                "model_events": state.events,
                "detector_params": config.concept_params or "defaults",
            },
            ts=ts_ms,
            episode=episode,
        )


def _two_proportions(before: np.ndarray, after: np.ndarray) -> float:
    """Two-sided p-value of a two-proportion z-test (pooled)."""
    n1, n2 = before.size, after.size
    pooled = (before.sum() + after.sum()) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0
    z = (after.mean() - before.mean()) / spread
    return float(2 * stats.norm.sf(abs(z)))
