"""The one envelope that anomaly, drift, degradation and promotion alerts share.

Every alert record is a JSON object with these fields first, then its type's own
fields (an anomaly's ``score`` and ``episode_id``, a drift record's test statistic):

``type``, ``severity``, ``key``, ``subject``, ``message``, ``evidence``, ``ts``,
``dedup_key``.

Pure Python, no Faust: producers build records with :class:`Alert` (or check theirs
with :meth:`Alert.from_dict`), the webhook agent validates what it reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamlearn.errors import StreamlearnError

__all__ = [
    "ENVELOPE_FIELDS",
    "SEVERITIES",
    "TYPES",
    "Alert",
    "AlertError",
    "at_least",
    "dedup_key",
    "max_severity",
    "severity_rank",
]

#: Alert types, and the topic each is published on: anomalies on the anomalies topic,
#: the others on the drift topic.
TYPES = ("anomaly", "drift", "degradation", "promotion")

#: Severities, least severe first: ``info`` to read later, ``warning`` to look at
#: today, ``critical`` to act on now.
SEVERITIES = ("info", "warning", "critical")

#: The envelope's fields, in the order records carry them.
ENVELOPE_FIELDS = ("type", "severity", "key", "subject", "message", "evidence", "ts", "dedup_key")


class AlertError(StreamlearnError, ValueError):
    """A record is not a valid alert envelope; the message names the field."""


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (higher is more severe).

    Examples
    --------
    >>> severity_rank("info") < severity_rank("warning") < severity_rank("critical")
    True
    >>> severity_rank("major")
    Traceback (most recent call last):
    ...
    streamlearn.alerts.envelope.AlertError: severity must be info, warning or critical; got 'major'
    """
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise AlertError(f"severity must be info, warning or critical; got {severity!r}") from None


def at_least(severity: str, minimum: str) -> bool:
    """Whether ``severity`` is ``minimum`` or more severe.

    Examples
    --------
    >>> at_least("critical", "warning"), at_least("info", "warning")
    (True, False)
    """
    return severity_rank(severity) >= severity_rank(minimum)


def max_severity(*severities: str) -> str:
    """The most severe of ``severities`` (``info`` when there are none).

    Examples
    --------
    >>> max_severity("warning", "critical", "info")
    'critical'
    """
    return max(severities, key=severity_rank, default=SEVERITIES[0])


def dedup_key(*parts: object) -> str:
    """A dedup key from its parts, joined by ``:`` (receivers drop repeats of one key).

    Examples
    --------
    >>> dedup_key("drift", "pump-7", "temp", 3)
    'drift:pump-7:temp:3'
    """
    if not parts:
        raise AlertError("a dedup key needs at least one part")
    return ":".join(str(p) for p in parts)


def _text(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip():
        raise AlertError(f"alert field {name!r} must be a non-empty string; got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: the shared envelope plus its type's own fields (``extra``).

    Parameters
    ----------
    type
        One of :data:`TYPES`.
    severity
        One of :data:`SEVERITIES`.
    subject
        What the alert is about: the anomalous values' names, a feature, a model.
    message
        One human sentence (no line breaks).
    ts
        Event time of the alert in epoch milliseconds.
    dedup_key
        The same for every copy of the same alert: deliveries are at-least-once, so a
        receiver drops a dedup key it has seen.
    key
        The series key the alert is about, or ``None`` (a model-wide alert).
    evidence
        JSON-ready numbers that back the message (scores, statistics, ranges).
    extra
        The type's own fields, published after the envelope's.

    Examples
    --------
    >>> alert = Alert("drift", "warning", "temp", "Drift on pump-7: temp mean moved.",
    ...               1767607200000, "drift:pump-7:temp:1", key="pump-7",
    ...               evidence={"psi": 0.31}, extra={"kind": "data"})
    >>> doc = alert.to_dict()
    >>> list(doc)
    ['type', 'severity', 'key', 'subject', 'message', 'evidence', 'ts', 'dedup_key', 'kind']
    >>> Alert.from_dict(doc) == alert
    True
    >>> Alert.from_dict({**doc, "severity": "urgent"})
    Traceback (most recent call last):
    ...
    streamlearn.alerts.envelope.AlertError: severity must be info, warning or critical; got 'urgent'
    """

    type: str
    severity: str
    subject: str
    message: str
    ts: int
    dedup_key: str
    key: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise AlertError(f"type must be one of {', '.join(TYPES)}; got {self.type!r}")
        severity_rank(self.severity)
        if self.key is not None and not isinstance(self.key, str):
            raise AlertError(f"alert field 'key' must be a string or null; got {self.key!r}")
        doc = {"subject": self.subject, "message": self.message, "dedup_key": self.dedup_key}
        for name in doc:
            _text(doc, name)
        if "\n" in self.message or "\r" in self.message:
            raise AlertError("alert field 'message' must be one sentence on one line")
        if isinstance(self.ts, bool) or not isinstance(self.ts, int) or self.ts < 0:
            raise AlertError(
                f"alert field 'ts' must be epoch milliseconds (an integer >= 0); got {self.ts!r}"
            )
        if not isinstance(self.evidence, dict) or not all(
            isinstance(k, str) for k in self.evidence
        ):
            raise AlertError(
                f"alert field 'evidence' must be an object; got {type(self.evidence).__name__}"
            )
        if not isinstance(self.extra, dict):
            raise AlertError(f"extra must be a dict; got {type(self.extra).__name__}")
        clash = sorted(set(self.extra) & set(ENVELOPE_FIELDS))
        if clash:
            raise AlertError(f"extra fields may not replace envelope fields: {', '.join(clash)}")

    def to_dict(self) -> dict[str, Any]:
        """The record as published: envelope fields first, then the type's own."""
        return {
            "type": self.type,
            "severity": self.severity,
            "key": self.key,
            "subject": self.subject,
            "message": self.message,
            "evidence": self.evidence,
            "ts": self.ts,
            "dedup_key": self.dedup_key,
            **self.extra,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Alert:
        """Validate a record; fields beyond the envelope's are kept in ``extra``."""
        if not isinstance(doc, Mapping):
            raise AlertError(f"an alert must be a JSON object; got {type(doc).__name__}")
        missing = [name for name in ENVELOPE_FIELDS if name not in doc]
        if missing:
            raise AlertError(f"alert is missing envelope fields: {', '.join(missing)}")
        return cls(
            type=doc["type"],
            severity=doc["severity"],
            subject=doc["subject"],
            message=doc["message"],
            ts=doc["ts"],
            dedup_key=doc["dedup_key"],
            key=doc["key"],
            evidence=doc["evidence"],
            extra={k: v for k, v in doc.items() if k not in ENVELOPE_FIELDS},
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Alert:
        """Parse and validate one published record."""
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise AlertError(f"an alert must be JSON: {exc}") from None
        return cls.from_dict(doc)

    def at_least(self, minimum: str) -> bool:
        """Whether this alert is ``minimum`` or more severe."""
        return at_least(self.severity, minimum)
