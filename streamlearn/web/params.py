"""Query-string parsing for the HTTP API: every mistake becomes a 400 with a message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from streamlearn.errors import StreamlearnError

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class BadRequest(StreamlearnError):
    """A request the API refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NotFound(BadRequest):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


def parse_time_ms(name: str, text: str) -> int:
    """Epoch milliseconds or ISO-8601 with a zone.

    >>> parse_time_ms("from", "1700000000000"), parse_time_ms("to", "2024-01-01T00:00:00Z")
    (1700000000000, 1704067200000)
    """
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}={text!r} is not epoch milliseconds or ISO-8601") from None
    if moment.tzinfo is None:
        raise BadRequest(f"{name}={text!r} needs a time zone (e.g. Z or +01:00)")
    return int(moment.timestamp() * 1000)


def parse_duration_ms(name: str, text: str) -> int:
    """``5m``, ``90s``, ``1h``... as milliseconds.

    >>> parse_duration_ms("every", "5m")
    300000
    """
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise BadRequest(f"{name}={text!r} is not a duration like 500ms, 30s, 5m, 1h or 1d")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def time_range(
    query: Mapping[str, str], *, default_to_ms: int, default_span_ms: int, max_span_ms: int
) -> tuple[int, int]:
    """``from``/``to`` of a request: validated, not reversed, not longer than allowed."""
    to_ms = parse_time_ms("to", query["to"]) if query.get("to") else default_to_ms
    from_ms = parse_time_ms("from", query["from"]) if query.get("from") else to_ms - default_span_ms
    if from_ms >= to_ms:
        raise BadRequest(f"from ({from_ms}) must be before to ({to_ms})")
    if to_ms - from_ms > max_span_ms:
        raise BadRequest(
            f"the range is {to_ms - from_ms} ms; the maximum is {max_span_ms} ms "
            "(setting api_max_range_ms)"
        )
    return from_ms, to_ms


def required(query: Mapping[str, str], name: str) -> str:
    value = query.get(name)
    if not value:
        raise BadRequest(f"query parameter {name!r} is required")
    return value


def one_of(name: str, value: str, allowed: list[str] | tuple[str, ...]) -> str:
    if value not in allowed:
        raise BadRequest(f"{name}={value!r} is not one of {', '.join(sorted(allowed))}")
    return value
