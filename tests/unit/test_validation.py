"""parse_event: every kind of bad input gets its own code and a reason; good input parses."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamlearn.records import ErrorCode
from streamlearn.validation import InvalidEvent, parse_event


def parse(raw: bytes | None, max_bytes: int = 10_000, offset: int = 7):
    return parse_event(
        raw,
        topic="events",
        partition=2,
        offset=offset,
        timestamp_ms=1_700_000_000_000,
        max_bytes=max_bytes,
    )


def test_valid_event_with_every_field() -> None:
    event = parse(
        b'{"key":"k1","ts":1700000000123,"values":{"a":1,"b":-2.5},"id":"e1",'
        b'"label":true,"attrs":{"city":"Oslo"},"extra":"ignored"}'
    )
    assert event.key == "k1"
    assert event.ts_ms == 1_700_000_000_123
    assert event.values == {"a": 1.0, "b": -2.5}
    assert event.id == "e1"
    assert event.label is True
    assert event.attrs == {"city": "Oslo"}
    assert (event.src_partition, event.src_offset) == (2, 7)


def test_defaults_come_from_the_record() -> None:
    event = parse(b'{"key":"k","values":{"x":3}}', offset=42)
    assert event.ts_ms == 1_700_000_000_000  # the Kafka record timestamp
    assert event.id == "events-2-42"
    assert event.label is None and event.attrs is None


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ('"2024-01-02T03:04:05Z"', 1_704_164_645_000),
        ('"2024-01-02T04:04:05.5+01:00"', 1_704_164_645_500),
        ("1704164645000.9", 1_704_164_645_000),
    ],
)
def test_timestamps(ts: str, expected: int) -> None:
    assert parse(b'{"key":"k","values":{"x":1},"ts":' + ts.encode() + b"}").ts_ms == expected


@pytest.mark.parametrize(
    ("raw", "code", "reason_part"),
    [
        (b"\xff\xfe{}", ErrorCode.INVALID_ENCODING, "not UTF-8"),
        (b'{"key":"k","values":{"x":1}', ErrorCode.INVALID_JSON, "malformed JSON"),
        (b"", ErrorCode.INVALID_JSON, "malformed JSON"),
        (None, ErrorCode.INVALID_JSON, "no value"),
        (b"[1,2]", ErrorCode.NOT_OBJECT, "array"),
        (b'"text"', ErrorCode.NOT_OBJECT, "string"),
        (b'{"values":{"x":1}}', ErrorCode.MISSING_KEY, "missing"),
        (b'{"key":"","values":{"x":1}}', ErrorCode.MISSING_KEY, "non-empty"),
        (b'{"key":5,"values":{"x":1}}', ErrorCode.MISSING_KEY, "non-empty"),
        (b'{"key":"k"}', ErrorCode.INVALID_VALUES, "missing"),
        (b'{"key":"k","values":{}}', ErrorCode.INVALID_VALUES, "non-empty"),
        (b'{"key":"k","values":[1]}', ErrorCode.INVALID_VALUES, "non-empty"),
        (b'{"key":"k","values":{"x":"1"}}', ErrorCode.INVALID_VALUES, "values.x must be a number"),
        (b'{"key":"k","values":{"x":true}}', ErrorCode.INVALID_VALUES, "boolean"),
        (b'{"key":"k","values":{"x":NaN}}', ErrorCode.NON_FINITE, "NaN"),
        (b'{"key":"k","values":{"x":Infinity}}', ErrorCode.NON_FINITE, "Infinity"),
        (b'{"key":"k","values":{"x":-Infinity}}', ErrorCode.NON_FINITE, "Infinity"),
        (b'{"key":"k","values":{"x":1e999}}', ErrorCode.NON_FINITE, "values.x is not finite"),
        (
            b'{"key":"k","values":{"x":1' + b"0" * 400 + b"}}",
            ErrorCode.NON_FINITE,
            "values.x is too large",
        ),
        (b'{"key":"k","values":{"x":1},"ts":"yesterday"}', ErrorCode.INVALID_TS, "ISO-8601"),
        (b'{"key":"k","values":{"x":1},"ts":"2024-01-02T03:04:05"}', ErrorCode.INVALID_TS, "zone"),
        (b'{"key":"k","values":{"x":1},"ts":-5}', ErrorCode.INVALID_TS, "epoch"),
        (b'{"key":"k","values":{"x":1},"ts":[1]}', ErrorCode.INVALID_TS, "array"),
        (b'{"key":"k","values":{"x":1},"ts":true}', ErrorCode.INVALID_TS, "epoch"),
        (b'{"key":"k","values":{"x":1},"id":3}', ErrorCode.INVALID_FIELD, "id"),
        (b'{"key":"k","values":{"x":1},"label":[1]}', ErrorCode.INVALID_FIELD, "label"),
        (b'{"key":"k","values":{"x":1},"attrs":{"a":1}}', ErrorCode.INVALID_FIELD, "attrs"),
    ],
)
def test_invalid_inputs(raw: bytes | None, code: ErrorCode, reason_part: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse(raw)
    assert info.value.code is code
    assert reason_part in info.value.reason


def test_too_large_is_checked_before_parsing() -> None:
    raw = orjson.dumps({"key": "k", "values": {"x": 1}, "pad": "x" * 200})
    with pytest.raises(InvalidEvent) as info:
        parse(raw, max_bytes=100)
    assert info.value.code is ErrorCode.TOO_LARGE
    assert str(len(raw)) in info.value.reason


@given(st.binary(max_size=300))
def test_arbitrary_bytes_either_parse_or_raise_invalid_event(raw: bytes) -> None:
    try:
        event = parse(raw)
    except InvalidEvent as exc:
        assert isinstance(exc.code, ErrorCode) and exc.reason
    else:
        assert event.key and event.values
        assert all(math.isfinite(v) for v in event.values.values())


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53),
        min_size=1,
        max_size=5,
    ),
    st.text(min_size=1, max_size=20),
)
def test_valid_events_round_trip_through_the_keyed_form(values: dict, key: str) -> None:
    from streamlearn.records import Event

    event = parse(orjson.dumps({"key": key, "values": values, "ts": 5}))
    again = Event.from_keyed(event.to_keyed())
    assert again == event
    assert again.values == {k: float(v) for k, v in values.items()}
