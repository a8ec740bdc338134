"""What a report shows, from the records of a range of event time. Pure: no Kafka.

A :class:`ReportBuilder` takes the records of the input and output topics one at a
time (:class:`RawRecord`, in any order) and keeps those whose **event time** is in
``[from, to)`` and whose key is selected; :meth:`ReportBuilder.build` returns the
:class:`Report`. Event time is the records' own field, never the Kafka timestamp:

==============  ==================================================================
topic           event time
==============  ==================================================================
events          ``ts`` (the Kafka timestamp when absent, as the worker does)
aggregates      window records: ``start``; running statistics: ``ts``
anomalies       ``ts``: the event that opened the episode
predictions     ``ts``: the event predicted
drift           ``ts``
model-events    ``ts``
deadletter      the refused record's ``ts`` when it has a valid one, else the time it
                was refused (the dead letter's Kafka timestamp)
labels          not filtered: a label is joined to its prediction, whose time counts
==============  ==================================================================

Outputs are at-least-once, so records are deduplicated as their consumers are told to:
windows by ``id``, alerts and lifecycle records by ``dedup_key``, predictions by
``(key, event_id)``, dead letters by the refused record's topic, partition, offset and
code. Model metrics are prequential, as the worker computes them: each prediction is
scored against its event's label (inline, else the first delayed label on the labels
topic), and labels the worker refused (dead letters ``invalid_label``, ``unknown_id``,
``expired``) score nothing.

>>> options = ReportOptions(from_ms=0, to_ms=60_000)
>>> builder = ReportBuilder(options)
>>> builder.add(RawRecord("anomalies", b'{"type": "anomaly", "key": "k", "ts": 5000, '
...                       b'"dedup_key": "k:1", "severity": "critical", "message": "m"}'))
>>> builder.add(RawRecord("anomalies", b'{"type": "anomaly", "key": "k", "ts": 5000, '
...                       b'"dedup_key": "k:1", "severity": "critical", "message": "m"}'))
>>> report = builder.build()
>>> report.counts["anomalies"], report.duplicates["anomalies"], report.keys
(1, 1, ['k'])
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streamlearn.records import DeadLetter
from streamlearn.validation import InvalidEvent, parse_event, parse_label

__all__ = [
    "TOPIC_KINDS",
    "DeadLetterRow",
    "KeySummary",
    "ModelMetrics",
    "RawRecord",
    "Report",
    "ReportBuilder",
    "ReportOptions",
    "WindowPoint",
    "default_output_name",
    "format_time",
    "label_target",
    "parse_time",
]

#: The topics a report reads, by logical name (``Settings.topic(name)``).
TOPIC_KINDS = (
    "events",
    "labels",
    "aggregates",
    "anomalies",
    "predictions",
    "drift",
    "model_events",
    "deadletter",
)

#: Dead-letter codes of labels the model refused (they score nothing).
REFUSED_LABEL_CODES = frozenset({"invalid_label", "unknown_id", "expired"})

#: Most points of one metric curve (a longer curve is thinned, its last point kept).
MAX_CURVE_POINTS = 2_000

_RELATIVE = re.compile(r"(?:now)?-(\d+(?:ms|s|m|h|d))")


# --- times ------------------------------------------------------------------------------


def parse_time(text: str, now_ms: int, name: str = "time") -> int:
    """A time argument as epoch milliseconds.

    ISO-8601 with a zone, epoch milliseconds, ``now``, or a time relative to now:
    ``-1h``, ``now-30m`` (units ``ms``, ``s``, ``m``, ``h``, ``d``). A :class:`ValueError`
    names ``name`` and what is wrong.

    >>> now = 1_700_000_000_000
    >>> parse_time("2023-11-14T22:13:20Z", now), parse_time("1699999999000", now)
    (1700000000000, 1699999999000)
    >>> parse_time("now", now) - now, parse_time("-1h", now) - now, parse_time("now-90s", now) - now
    (0, -3600000, -90000)
    >>> parse_time("yesterday", now, "--from")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --from='yesterday' is not epoch milliseconds or ISO-8601 (or now, ...)
    """
    from streamlearn.analytics.windows.spec import parse_duration_ms
    from streamlearn.web.params import BadRequest, parse_time_ms

    stripped = text.strip()
    lowered = stripped.lower()
    if lowered == "now":
        return now_ms
    relative = _RELATIVE.fullmatch(lowered.replace(" ", ""))
    if relative is not None:
        return now_ms - parse_duration_ms(relative.group(1))
    try:
        return parse_time_ms(name, stripped)
    except BadRequest as exc:
        message = exc.message
        if "time zone" not in message:
            message += " (or now, or a time relative to now such as -1h)"
        raise ValueError(message) from None


def format_time(ms: int | None) -> str:
    """Epoch milliseconds as ``YYYY-MM-DD HH:MM:SS[.mmm]`` in UTC.

    >>> format_time(1_700_000_000_000), format_time(1_700_000_000_250), format_time(None)
    ('2023-11-14 22:13:20', '2023-11-14 22:13:20.250', '-')
    """
    if ms is None:
        return "-"
    try:
        moment = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text + f".{ms % 1000:03d}" if ms % 1000 else text


def _stamp(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ms)


def default_output_name(from_ms: int, to_ms: int) -> str:
    """``streamlearn-report-<from>-<to>.html``, times in compact UTC.

    >>> default_output_name(1_700_000_000_000, 1_700_003_600_000)
    'streamlearn-report-20231114T221320Z-20231114T231320Z.html'
    """
    return f"streamlearn-report-{_stamp(from_ms)}-{_stamp(to_ms)}.html"


def _event_time(value: Any, fallback: int) -> int:
    """A record's ``ts`` (epoch ms, or ISO-8601 with a zone), else ``fallback``."""
    if isinstance(value, bool):
        return fallback
    if isinstance(value, int | float):
        return int(value) if math.isfinite(value) and value >= 0 else fallback
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return fallback
        return int(moment.timestamp() * 1000) if moment.tzinfo is not None else fallback
    return fallback


# --- labels -----------------------------------------------------------------------------


def label_target(label: Any, task: str, classes: tuple[Any, ...]) -> Any:
    """What the model learns for ``label`` (as ``OnlineModel.target``); ValueError if unusable.

    A binary classifier's target is ``label == classes[1]``; more classes: the class;
    regression: the number.

    >>> binary, named = (False, True), ("ok", "fault")
    >>> label_target(1, "classification", binary), label_target("ok", "classification", named)
    (True, False)
    >>> label_target(2.5, "regression", ())
    2.5
    >>> label_target("maybe", "classification", (False, True))
    Traceback (most recent call last):
    ...
    ValueError: label 'maybe' is not one of the classes [False, True]
    """
    if task == "regression":
        if isinstance(label, bool) or not isinstance(label, int | float):
            raise ValueError(f"a regression label must be a number, got {label!r}")
        if not math.isfinite(label):
            raise ValueError("the label is not finite")
        return float(label)
    binary = len(classes) == 2
    for index, cls in enumerate(classes):
        comparable = type(label) is type(cls) or (
            isinstance(label, int | float) and isinstance(cls, int | float)
        )
        if comparable and label == cls:
            return (index == 1) if binary else cls
    raise ValueError(f"label {label!r} is not one of the classes {list(classes)}")


# --- inputs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One Kafka record of topic ``kind`` (a :data:`TOPIC_KINDS` name)."""

    kind: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    #: the Kafka timestamp (epoch ms): event time of events without ``ts``, and of
    #: dead letters whose record has none
    timestamp_ms: int = 0
    topic: str = ""
    partition: int = 0
    offset: int = 0


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """The range, the keys, and the settings a report needs to read records like a worker.

    ``keys`` empty: every key. ``window``: the window spec to chart (default: the first
    tumbling spec of ``window_specs`` that has records, else the first spec found).
    """

    from_ms: int
    to_ms: int
    keys: frozenset[str] = frozenset()
    window: str | None = None
    window_specs: tuple[str, ...] = ()
    task: str = "classification"
    classes: tuple[Any, ...] = (False, True)
    rolling_window: int = 1_000
    events_topic: str = "events"
    labels_topic: str = "labels"
    max_event_bytes: int = 1_048_576

    def __post_init__(self) -> None:
        if self.from_ms >= self.to_ms:
            raise ValueError(
                f"the range is empty: from ({format_time(self.from_ms)}) must be before "
                f"to ({format_time(self.to_ms)})"
            )

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        from_ms: int,
        to_ms: int,
        keys: Iterable[str] = (),
        window: str | None = None,
    ) -> ReportOptions:
        return cls(
            from_ms=from_ms,
            to_ms=to_ms,
            keys=frozenset(keys),
            window=window,
            window_specs=tuple(spec.name for spec in settings.window_specs()),
            task=settings.model_task,
            classes=tuple(settings.model_classes),
            rolling_window=settings.model_rolling_window,
            events_topic=settings.topic("events"),
            labels_topic=settings.topic("labels"),
            max_event_bytes=settings.max_event_bytes,
        )

    def in_range(self, ts: Any) -> bool:
        return (
            isinstance(ts, int | float)
            and not isinstance(ts, bool)
            and self.from_ms <= ts < self.to_ms
        )

    def wants(self, key: Any) -> bool:
        if not self.keys:
            return True
        return isinstance(key, str) and key in self.keys


# --- outputs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowPoint:
    """One closed window of one value."""

    start: int
    end: int
    count: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


@dataclass(slots=True)
class KeySummary:
    key: str
    events: int = 0
    windows: int = 0
    anomalies: int = 0
    drift: int = 0
    predictions: int = 0
    labelled: int = 0
    dead_letters: int = 0
    first_ts: int | None = None
    last_ts: int | None = None

    def saw(self, ts: int) -> None:
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    ts: int
    key: str | None
    code: str
    reason: str
    source: str
    #: True when ``ts`` is the time the record was refused (it had no valid ``ts``)
    refused_at: bool = False


@dataclass(slots=True)
class ModelMetrics:
    """Prequential metrics of one model, from its predictions joined to their labels.

    ``metric`` is ``accuracy`` (classification) or ``mae`` (regression); ``points`` are
    ``(ts, cumulative, rolling)`` over the labelled predictions in event-time order,
    ``rolling`` over the last ``rolling_window`` of them.
    """

    model: str
    task: str
    metric: str
    predictions: int
    labelled: int
    rolling_window: int
    overall: dict[str, float] = field(default_factory=dict)
    points: list[tuple[int, float, float]] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    options: ReportOptions
    counts: dict[str, int]
    keys: list[str]
    key_rows: list[KeySummary]
    missing_keys: list[str]
    window_spec: str | None
    windows_by_spec: dict[str, int]
    series: dict[str, dict[str, list[WindowPoint]]]
    running_stats: dict[str, dict[str, Any]]
    anomalies: list[dict[str, Any]]
    drift: list[dict[str, Any]]
    model_events: list[dict[str, Any]]
    dead_letters: list[DeadLetterRow]
    dead_letter_reasons: dict[str, int]
    models: list[ModelMetrics]
    duplicates: dict[str, int]
    unreadable: dict[str, int]
    notes: list[str]
    #: where the records came from (filled by the caller: broker, topics, records read)
    source: dict[str, Any] = field(default_factory=dict)
    generated_ms: int | None = None

    @property
    def empty(self) -> bool:
        """Nothing at all in the range (for the selected keys)."""
        return not any(self.counts[name] for name in self.counts if name != "keys")


# --- the builder ------------------------------------------------------------------------


@dataclass(slots=True)
class _Prediction:
    ts: int
    key: str
    event_id: str
    prediction: Any
    model: str


class ReportBuilder:
    """Feed :class:`RawRecord` objects with :meth:`add`, then :meth:`build` the report."""

    def __init__(self, options: ReportOptions) -> None:
        self.options = options
        self.read: Counter[str] = Counter()
        self.unreadable: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()
        self._seen: dict[str, set[Any]] = defaultdict(set)
        self._keys: dict[str, KeySummary] = {}
        self.events = 0
        self._event_labels: dict[tuple[str, str], tuple[Any, int, int]] = {}
        self._labels: dict[tuple[str, str], list[tuple[Any, int, int]]] = defaultdict(list)
        self._windows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._stats: dict[str, dict[str, Any]] = {}
        self.stats_records = 0
        self._anomalies: list[dict[str, Any]] = []
        self._drift: list[dict[str, Any]] = []
        self._model_events: list[dict[str, Any]] = []
        self._predictions: list[_Prediction] = []
        self._dead: list[DeadLetterRow] = []
        self._refused_labels: set[tuple[str, int, int]] = set()
        self._handlers = {
            "events": self._event,
            "labels": self._label,
            "aggregates": self._aggregate,
            "anomalies": self._anomaly,
            "predictions": self._prediction,
            "drift": self._lifecycle,
            "model_events": self._lifecycle,
            "deadletter": self._dead_letter,
        }

    # --- intake ---------------------------------------------------------------------------
    def add(self, record: RawRecord) -> None:
        """Take one record; records out of range, of other keys or unreadable are dropped."""
        handler = self._handlers.get(record.kind)
        if handler is None:
            raise ValueError(f"unknown topic kind {record.kind!r}; one of {', '.join(TOPIC_KINDS)}")
        self.read[record.kind] += 1
        handler(record)

    def add_all(self, records: Iterable[RawRecord]) -> ReportBuilder:
        for record in records:
            self.add(record)
        return self

    def _key(self, key: str) -> KeySummary:
        summary = self._keys.get(key)
        if summary is None:
            summary = self._keys[key] = KeySummary(key)
        return summary

    def _first(self, kind: str, identity: Any) -> bool:
        """True the first time ``identity`` is seen for ``kind`` (else a duplicate)."""
        seen = self._seen[kind]
        if identity in seen:
            self.duplicates[kind] += 1
            return False
        seen.add(identity)
        return True

    def _json(self, record: RawRecord) -> dict[str, Any] | None:
        try:
            doc = orjson.loads(record.value) if record.value is not None else None
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            self.unreadable[record.kind] += 1
            return None
        return doc

    def _event(self, record: RawRecord) -> None:
        try:
            event = parse_event(
                record.value,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                timestamp_ms=record.timestamp_ms,
                max_bytes=self.options.max_event_bytes,
            )
        except InvalidEvent:
            return  # refused by the worker too: counted from its dead letter
        if not (self.options.in_range(event.ts_ms) and self.options.wants(event.key)):
            return
        self.events += 1
        summary = self._key(event.key)
        summary.events += 1
        summary.saw(event.ts_ms)
        if event.label is not None:
            self._event_labels.setdefault(
                (event.key, event.id), (event.label, record.partition, record.offset)
            )

    def _label(self, record: RawRecord) -> None:
        try:
            label = parse_label(
                record.value,
                partition=record.partition,
                offset=record.offset,
                timestamp_ms=record.timestamp_ms,
                max_bytes=self.options.max_event_bytes,
            )
        except InvalidEvent:
            return
        if self.options.wants(label.key):
            self._labels[(label.key, label.id)].append(
                (label.label, record.partition, record.offset)
            )

    def _aggregate(self, record: RawRecord) -> None:
        doc = self._json(record)
        if doc is None:
            return
        key = doc.get("key")
        if not self.options.wants(key) or not isinstance(key, str):
            return
        if doc.get("kind") == "window":
            if not self.options.in_range(doc.get("start")) or not isinstance(
                doc.get("stats"), dict
            ):
                return
            if not self._first("windows", doc.get("id")):
                return
            self._windows[str(doc.get("window"))].append(doc)
            summary = self._key(key)
            summary.windows += 1
            summary.saw(doc["start"])
        elif doc.get("kind") == "stats":
            if not self.options.in_range(doc.get("ts")) or not self._first("stats", doc.get("id")):
                return
            self.stats_records += 1
            best = self._stats.get(key)
            if best is None or (doc.get("events") or 0) >= (best.get("events") or 0):
                self._stats[key] = doc
        else:
            self.unreadable[record.kind] += 1

    def _anomaly(self, record: RawRecord) -> None:
        doc = self._json(record)
        if doc is None or not self.options.in_range(doc.get("ts")):
            return
        if not self.options.wants(doc.get("key")):
            return
        if not self._first("anomalies", doc.get("dedup_key") or doc.get("id")):
            return
        self._anomalies.append(doc)
        if isinstance(doc.get("key"), str):
            summary = self._key(doc["key"])
            summary.anomalies += 1
            summary.saw(doc["ts"])

    def _lifecycle(self, record: RawRecord) -> None:
        doc = self._json(record)
        if doc is None or not self.options.in_range(doc.get("ts")):
            return
        if not self.options.wants(doc.get("key")):
            return
        kind = "drift" if record.kind == "drift" else "model_events"
        if not self._first(kind, doc.get("dedup_key") or orjson.dumps(doc)):
            return
        (self._drift if kind == "drift" else self._model_events).append(doc)
        if isinstance(doc.get("key"), str):
            summary = self._key(doc["key"])
            if kind == "drift":
                summary.drift += 1
            summary.saw(doc["ts"])

    def _prediction(self, record: RawRecord) -> None:
        doc = self._json(record)
        if doc is None or not self.options.in_range(doc.get("ts")):
            return
        key, event_id = doc.get("key"), doc.get("event_id")
        if not isinstance(key, str) or not isinstance(event_id, str):
            self.unreadable[record.kind] += 1
            return
        if not self.options.wants(key) or not self._first("predictions", (key, event_id)):
            return
        self._predictions.append(
            _Prediction(doc["ts"], key, event_id, doc.get("prediction"), str(doc.get("model")))
        )
        summary = self._key(key)
        summary.predictions += 1
        summary.saw(doc["ts"])

    def _dead_letter(self, record: RawRecord) -> None:
        found = {k: bytes(v) for k, v in record.headers if isinstance(v, bytes | bytearray)}
        try:
            letter = DeadLetter.from_headers(record.headers)
            code, reason = letter.code.value, letter.reason
            source = (letter.source_topic, letter.source_partition, letter.source_offset)
        except (KeyError, ValueError):
            code = found.get("error.code", b"").decode(errors="replace")
            if not code:
                self.unreadable[record.kind] += 1
                return
            reason = found.get("error.reason", b"").decode(errors="replace")
            source = (
                found.get("source.topic", b"").decode(errors="replace"),
                _int(found.get("source.partition")),
                _int(found.get("source.offset")),
            )
        if code in REFUSED_LABEL_CODES:
            self._refused_labels.add(source)
        try:
            doc = orjson.loads(record.value) if record.value is not None else None
        except orjson.JSONDecodeError:
            doc = None
        doc = doc if isinstance(doc, dict) else {}
        ts = _event_time(doc.get("ts"), -1)
        refused_at = ts < 0
        if refused_at:
            ts = record.timestamp_ms
        key = doc.get("key")
        if not isinstance(key, str) or not key:
            key = record.key.decode(errors="replace") if record.key else None
        if not (self.options.in_range(ts) and self.options.wants(key)):
            return
        if not self._first("dead_letters", (*source, code)):
            return
        where = f"{source[0]}/{source[1]}@{source[2]}"
        self._dead.append(DeadLetterRow(ts, key, code, reason, where, refused_at))
        if key is not None:
            self._key(key).dead_letters += 1

    # --- the report -----------------------------------------------------------------------
    def build(self) -> Report:
        options = self.options
        notes: list[str] = []
        spec, series = self._series(notes)
        models, labelled = self._models(notes)
        for key, count in labelled.items():
            self._key(key).labelled = count
        anomalies = sorted(self._anomalies, key=lambda d: (d["ts"], str(d.get("key"))))
        drift = sorted(self._drift, key=lambda d: (d["ts"], str(d.get("key"))))
        model_events = sorted(self._model_events, key=lambda d: (d["ts"], str(d.get("key"))))
        dead = sorted(self._dead, key=lambda d: (d.ts, d.code))
        reasons = dict(Counter(d.code for d in dead).most_common())
        windows_by_spec = {name: len(docs) for name, docs in sorted(self._windows.items())}
        counts = {
            "events": self.events,
            "keys": len(self._keys),
            "windows": sum(windows_by_spec.values()),
            "anomalies": len(anomalies),
            "data_drift": sum(
                1 for d in drift if d.get("type") == "drift" and d.get("kind") == "data"
            ),
            "concept_drift": sum(
                1 for d in drift if d.get("type") == "drift" and d.get("kind") == "concept"
            ),
            "degradations": sum(1 for d in drift if d.get("type") == "degradation"),
            "promotions": sum(1 for d in model_events if d.get("event") == "promotion"),
            "model_events": len(model_events),
            "predictions": len(self._predictions),
            "labelled": sum(m.labelled for m in models),
            "dead_letters": len(dead),
            "stats_records": self.stats_records,
        }
        missing = sorted(k for k in options.keys if k not in self._keys)
        keys = sorted(self._keys)
        return Report(
            options=options,
            counts=counts,
            keys=keys,
            key_rows=[self._keys[k] for k in keys],
            missing_keys=missing,
            window_spec=spec,
            windows_by_spec=windows_by_spec,
            series=series,
            running_stats={k: self._stats[k] for k in sorted(self._stats)},
            anomalies=anomalies,
            drift=drift,
            model_events=model_events,
            dead_letters=dead,
            dead_letter_reasons=reasons,
            models=models,
            duplicates=dict(sorted(self.duplicates.items())),
            unreadable=dict(sorted(self.unreadable.items())),
            notes=notes,
        )

    def _series(
        self, notes: list[str]
    ) -> tuple[str | None, dict[str, dict[str, list[WindowPoint]]]]:
        """The window spec to chart and its points per key and value, oldest first."""
        found = [name for name in self._windows if self._windows[name]]
        wanted = self.options.window
        if wanted is not None:
            if wanted not in found:
                if found:
                    notes.append(
                        f"No {wanted} windows in range; windows found: {', '.join(sorted(found))}."
                    )
                return wanted, {}
            spec = wanted
        elif not found:
            return None, {}
        else:
            in_settings = [n for n in self.options.window_specs if n in found]
            tumbling = [n for n in in_settings if n.startswith("tumbling")]
            spec = (tumbling or in_settings or sorted(found))[0]
        series: dict[str, dict[str, list[WindowPoint]]] = defaultdict(lambda: defaultdict(list))
        for doc in self._windows[spec]:
            stats = doc["stats"]
            series[doc["key"]][str(doc.get("value"))].append(
                WindowPoint(
                    start=doc["start"],
                    end=int(doc.get("end") or doc["start"]),
                    count=int(stats.get("count") or 0),
                    mean=_number(stats.get("mean")),
                    std=_number(stats.get("std")),
                    min=_number(stats.get("min")),
                    max=_number(stats.get("max")),
                    p50=_number(stats.get("p50")),
                    p95=_number(stats.get("p95")),
                    p99=_number(stats.get("p99")),
                )
            )
        out = {}
        for key in sorted(series):
            out[key] = {
                value: sorted(points, key=lambda p: p.start)
                for value, points in sorted(series[key].items())
            }
        return spec, out

    def _label_of(self, prediction: _Prediction) -> tuple[bool, Any]:
        """``(found, label)``: the label the worker scored this prediction with, if any."""
        identity = (prediction.key, prediction.event_id)
        inline = self._event_labels.get(identity)
        if inline is not None:
            label, partition, offset = inline
            if (self.options.events_topic, partition, offset) not in self._refused_labels:
                return True, label
            # An unusable inline label: the prediction waited for no delayed label.
            return False, None
        for label, partition, offset in self._labels.get(identity, ()):
            if (self.options.labels_topic, partition, offset) not in self._refused_labels:
                return True, label
        return False, None

    def _models(self, notes: list[str]) -> tuple[list[ModelMetrics], Counter[str]]:
        """Metrics per model, and labelled predictions per key."""
        options = self.options
        labelled: Counter[str] = Counter()
        by_model: dict[str, list[_Prediction]] = defaultdict(list)
        for prediction in self._predictions:
            by_model[prediction.model].append(prediction)
        out = []
        for model in sorted(by_model):
            predictions = sorted(by_model[model], key=lambda p: (p.ts, p.key, p.event_id))
            scored: list[tuple[int, float]] = []  # (ts, 0/1 error or absolute error)
            for prediction in predictions:
                found, label = self._label_of(prediction)
                if not found:
                    continue
                try:
                    y = label_target(label, options.task, options.classes)
                    y_hat = label_target(prediction.prediction, options.task, options.classes)
                except ValueError:
                    continue  # refused by the model too
                if options.task == "regression":
                    scored.append((prediction.ts, abs(y - y_hat)))
                else:
                    scored.append((prediction.ts, 0.0 if y == y_hat else 1.0))
                labelled[prediction.key] += 1
            out.append(self._metrics(model, len(predictions), scored))
        if not self._predictions:
            notes.append(
                "No predictions in range: the online model is off (MODEL_ENABLED=false) or "
                "predicted nothing, so there are no model metrics."
            )
        return out, labelled

    def _metrics(
        self, model: str, predictions: int, scored: list[tuple[int, float]]
    ) -> ModelMetrics:
        options = self.options
        regression = options.task == "regression"
        result = ModelMetrics(
            model=model,
            task=options.task,
            metric="mae" if regression else "accuracy",
            predictions=predictions,
            labelled=len(scored),
            rolling_window=options.rolling_window,
        )
        if not scored:
            return result
        window: deque[float] = deque(maxlen=max(options.rolling_window, 1))
        total = squares = window_sum = 0.0
        curve = []
        for n, (ts, error) in enumerate(scored, start=1):
            if len(window) == window.maxlen:
                window_sum -= window[0]
            window.append(error)
            window_sum += error
            total += error
            squares += error * error
            rolling = window_sum / len(window)
            if regression:
                curve.append((ts, total / n, rolling))
            else:
                curve.append((ts, 1.0 - total / n, 1.0 - rolling))
        n = len(scored)
        if regression:
            result.overall = {
                "mae": total / n,
                "rmse": math.sqrt(squares / n),
                "mae_last": curve[-1][2],
            }
        else:
            result.overall = {"accuracy": 1.0 - total / n, "accuracy_last": curve[-1][2]}
        result.points = _thin(curve, MAX_CURVE_POINTS)
        return result


def _thin(points: list[Any], limit: int) -> list[Any]:
    """At most about ``limit`` evenly spaced points, the last one always kept.

    >>> _thin(list(range(10)), 4)
    [0, 3, 6, 9]
    """
    if len(points) <= limit:
        return points
    step = math.ceil(len(points) / limit)
    out = points[::step]
    if out[-1] is not points[-1]:
        out.append(points[-1])
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: bytes | None) -> int:
    try:
        return int(value) if value is not None else -1
    except ValueError:
        return -1
