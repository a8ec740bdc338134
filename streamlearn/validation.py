"""Parse and validate raw input bytes into an :class:`~streamlearn.records.Event`.

Pure code. The fast path is one ``orjson.loads`` and a few type checks; the slow
path (classifying *why* bytes are not JSON) only runs for bad input.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import orjson

from streamlearn.records import ErrorCode, Event, LabelRecord


class InvalidEvent(ValueError):
    """Raised by :func:`parse_event`; ``code`` goes to the dead-letter headers."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _loads_slow(raw: bytes, error: Exception) -> Any:
    """What orjson refused: say why, or parse it when it is JSON after all.

    The stdlib accepts numbers orjson does not (integers beyond 64 bits, 1e999);
    those documents go on to validation, which names the offending field.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(
            ErrorCode.INVALID_ENCODING, f"not UTF-8: byte {exc.start} cannot be decoded"
        ) from None

    def reject_constant(name: str) -> Any:
        raise InvalidEvent(ErrorCode.NON_FINITE, f"{name} is not a finite number")

    try:
        return json.loads(text, parse_constant=reject_constant)
    except InvalidEvent:
        raise
    except ValueError:
        raise InvalidEvent(ErrorCode.INVALID_JSON, f"malformed JSON: {error}") from None


def _parse_ts(value: Any, fallback_ms: int) -> int:
    if value is None:
        return fallback_ms
    if isinstance(value, bool):
        raise InvalidEvent(ErrorCode.INVALID_TS, "ts must be epoch milliseconds or ISO-8601")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise InvalidEvent(ErrorCode.INVALID_TS, f"ts {value!r} is not a valid epoch ms")
        return int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidEvent(ErrorCode.INVALID_TS, f"ts {value[:64]!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            raise InvalidEvent(ErrorCode.INVALID_TS, f"ts {value[:64]!r} has no time zone")
        return int(parsed.timestamp() * 1000)
    raise InvalidEvent(ErrorCode.INVALID_TS, f"ts must be a number or string, not {_kind(value)}")


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )


def _parse_values(values: Any) -> dict[str, float]:
    if not isinstance(values, dict) or not values:
        if values is None:
            raise InvalidEvent(ErrorCode.INVALID_VALUES, "values is missing")
        raise InvalidEvent(ErrorCode.INVALID_VALUES, "values must be a non-empty object")
    out: dict[str, float] = {}
    for name, number in values.items():
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise InvalidEvent(
                ErrorCode.INVALID_VALUES,
                f"values.{name[:64]} must be a number, not {_kind(number)}",
            )
        try:
            number = float(number)
        except OverflowError:
            raise InvalidEvent(ErrorCode.NON_FINITE, f"values.{name[:64]} is too large") from None
        if not math.isfinite(number):
            raise InvalidEvent(ErrorCode.NON_FINITE, f"values.{name[:64]} is not finite")
        if not name:
            raise InvalidEvent(ErrorCode.INVALID_VALUES, "a value name is empty")
        out[name] = number
    return out


def parse_event(
    raw: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    max_bytes: int,
) -> Event:
    """Parse one input record; raise :class:`InvalidEvent` naming what is wrong."""
    if raw is None:
        raise InvalidEvent(ErrorCode.INVALID_JSON, "record has no value")
    if len(raw) > max_bytes:
        raise InvalidEvent(
            ErrorCode.TOO_LARGE, f"record is {len(raw)} bytes, the maximum is {max_bytes}"
        )
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        doc = _loads_slow(raw, exc)
    if not isinstance(doc, dict):
        raise InvalidEvent(ErrorCode.NOT_OBJECT, f"event must be a JSON object, not {_kind(doc)}")
    key = doc.get("key")
    if not isinstance(key, str) or not key:
        reason = "key is missing" if key is None else "key must be a non-empty string"
        raise InvalidEvent(ErrorCode.MISSING_KEY, reason)
    values = _parse_values(doc.get("values"))
    ts_ms = _parse_ts(doc.get("ts"), timestamp_ms)
    event_id = doc.get("id")
    if event_id is None:
        event_id = f"{topic}-{partition}-{offset}"
    elif not isinstance(event_id, str) or not event_id:
        raise InvalidEvent(ErrorCode.INVALID_FIELD, "id must be a non-empty string")
    label = doc.get("label")
    if label is not None:
        if not isinstance(label, int | float | str):
            raise InvalidEvent(
                ErrorCode.INVALID_FIELD,
                f"label must be a number, string or boolean, not {_kind(label)}",
            )
        if isinstance(label, float) and not math.isfinite(label):
            raise InvalidEvent(ErrorCode.NON_FINITE, "label is not finite")
    attrs = doc.get("attrs")
    if attrs is not None and (
        not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values())
    ):
        raise InvalidEvent(ErrorCode.INVALID_FIELD, "attrs must be an object of strings")
    return Event(
        key=key,
        ts_ms=ts_ms,
        values=values,
        id=event_id,
        src_partition=partition,
        src_offset=offset,
        label=label,
        attrs=attrs or None,
    )


def parse_label(
    raw: bytes | None,
    *,
    partition: int,
    offset: int,
    timestamp_ms: int,
    max_bytes: int,
) -> LabelRecord:
    """Parse one labels-topic record ``{id, key, label, ts}``; :class:`InvalidEvent` if bad.

    >>> parse_label(b'{"id": "e1", "key": "k", "label": true}', partition=0, offset=5,
    ...             timestamp_ms=1000, max_bytes=1024)
    LabelRecord(id='e1', key='k', label=True, ts_ms=None, src_partition=0, src_offset=5)
    >>> parse_label(b'{"key": "k", "label": 1}', partition=0, offset=5,
    ...             timestamp_ms=0, max_bytes=1024)
    Traceback (most recent call last):
    ...
    streamlearn.validation.InvalidEvent: id must be a non-empty string (the event's id)
    """
    if raw is None:
        raise InvalidEvent(ErrorCode.INVALID_JSON, "record has no value")
    if len(raw) > max_bytes:
        raise InvalidEvent(
            ErrorCode.TOO_LARGE, f"record is {len(raw)} bytes, the maximum is {max_bytes}"
        )
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        doc = _loads_slow(raw, exc)
    if not isinstance(doc, dict):
        raise InvalidEvent(ErrorCode.NOT_OBJECT, f"label must be a JSON object, not {_kind(doc)}")
    key = doc.get("key")
    if not isinstance(key, str) or not key:
        reason = "key is missing" if key is None else "key must be a non-empty string"
        raise InvalidEvent(ErrorCode.MISSING_KEY, f"{reason} (the event's key)")
    event_id = doc.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidEvent(
            ErrorCode.INVALID_FIELD, "id must be a non-empty string (the event's id)"
        )
    label = doc.get("label")
    if label is None or not isinstance(label, int | float | str):
        raise InvalidEvent(
            ErrorCode.INVALID_FIELD,
            f"label must be a number, string or boolean, not {_kind(label)}",
        )
    if isinstance(label, float) and not math.isfinite(label):
        raise InvalidEvent(ErrorCode.NON_FINITE, "label is not finite")
    raw_ts = doc.get("ts")
    ts_ms = None if raw_ts is None else _parse_ts(raw_ts, timestamp_ms)
    return LabelRecord(event_id, key, label, ts_ms, partition, offset)
