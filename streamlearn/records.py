"""Wire schemas: what travels on streamlearn's topics.

Every record is JSON (orjson). Input events are parsed and validated by
:mod:`streamlearn.validation`, never decoded by Faust (a decode error there would
stall or crash the agent), so the types here are plain slotted dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

Label = float | int | str | bool


class ErrorCode(StrEnum):
    """Why an input record went to the dead-letter topic (header ``error.code``)."""

    INVALID_ENCODING = "invalid_encoding"
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"
    MISSING_KEY = "missing_key"
    INVALID_VALUES = "invalid_values"
    NON_FINITE = "non_finite"
    TOO_LARGE = "too_large"
    INVALID_TS = "invalid_ts"
    INVALID_FIELD = "invalid_field"
    LATE = "late"
    PROCESSING_ERROR = "processing_error"
    #: a label whose event id has no pending prediction
    UNKNOWN_ID = "unknown_id"
    #: a label that came after its prediction expired (``label_ttl_ms``)
    EXPIRED = "expired"
    #: a label the model cannot learn (a class not declared, a string for regression)
    INVALID_LABEL = "invalid_label"


@dataclass(slots=True)
class Event:
    """A validated input event.

    ``ts_ms`` is epoch milliseconds; ``src_partition``/``src_offset`` locate the record
    in the events topic and make replays detectable downstream.
    """

    key: str
    ts_ms: int
    values: dict[str, float]
    id: str
    src_partition: int
    src_offset: int
    label: Label | None = None
    attrs: dict[str, str] | None = None
    #: partitions of the events topic (0: unknown); the watermark waits for all of them
    src_partitions: int = 0

    def to_keyed(self) -> bytes:
        """Compact form for the internal keyed topic."""
        doc: dict[str, Any] = {
            "id": self.id,
            "key": self.key,
            "ts": self.ts_ms,
            "values": self.values,
            "src": (self.src_partition, self.src_offset, self.src_partitions),
        }
        if self.label is not None:
            doc["label"] = self.label
        if self.attrs:
            doc["attrs"] = self.attrs
        return orjson.dumps(doc)

    @classmethod
    def from_keyed(cls, raw: bytes) -> Event:
        return cls.from_doc(orjson.loads(raw))

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Event:
        partition, offset, partitions = doc["src"]
        return cls(
            key=doc["key"],
            ts_ms=doc["ts"],
            values=doc["values"],
            id=doc["id"],
            src_partition=partition,
            src_offset=offset,
            label=doc.get("label"),
            attrs=doc.get("attrs"),
            src_partitions=partitions,
        )


@dataclass(slots=True)
class LabelRecord:
    """A delayed label from the labels topic: the ground truth of event ``id`` of ``key``.

    It travels on the keyed topic with the events (``"kind": "label"``), so it reaches
    the partition, and the worker, holding that event's pending prediction.
    """

    id: str
    key: str
    label: Label
    ts_ms: int | None  # None: the label record had no ts (it is not aged)
    src_partition: int
    src_offset: int

    def to_keyed(self) -> bytes:
        return orjson.dumps(
            {
                "kind": "label",
                "id": self.id,
                "key": self.key,
                "label": self.label,
                "ts": self.ts_ms,
                "src": (self.src_partition, self.src_offset),
            }
        )

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> LabelRecord:
        partition, offset = doc["src"]
        return cls(doc["id"], doc["key"], doc["label"], doc["ts"], partition, offset)


def parse_keyed(raw: bytes) -> Event | LabelRecord:
    """A keyed-topic record: an event, or a label (``"kind": "label"``)."""
    doc = orjson.loads(raw)
    if doc.get("kind") == "label":
        return LabelRecord.from_doc(doc)
    return Event.from_doc(doc)


@dataclass(slots=True)
class ValueStats:
    """Running statistics of one value of one key."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    ewma: float


@dataclass(slots=True)
class StatsAggregate:
    """Running statistics of a key, emitted every N events or T seconds.

    ``id`` is stable (``stats/<key>/<events applied>``): a consumer dedups replays by it.
    """

    id: str
    key: str
    ts: int
    events: int
    values: dict[str, ValueStats]
    kind: str = "stats"
    emitted_at: float = field(default=0.0)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self)


@dataclass(slots=True)
class DeadLetter:
    """Why a record was refused; travels as headers next to the original bytes."""

    code: ErrorCode
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("error.code", self.code.value.encode()),
            ("error.reason", self.reason.encode()),
            ("source.topic", self.source_topic.encode()),
            ("source.partition", str(self.source_partition).encode()),
            ("source.offset", str(self.source_offset).encode()),
        ]

    @classmethod
    def from_headers(cls, headers: Any) -> DeadLetter:
        found = {k: v.decode() for k, v in (headers or ()) if isinstance(v, bytes | bytearray)}
        return cls(
            code=ErrorCode(found["error.code"]),
            reason=found.get("error.reason", ""),
            source_topic=found.get("source.topic", ""),
            source_partition=int(found.get("source.partition", -1)),
            source_offset=int(found.get("source.offset", -1)),
        )
