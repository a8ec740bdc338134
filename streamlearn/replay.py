"""Replay CSV or JSON-lines files to the events topic, paced by rate or by event time."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError


class ReplayError(StreamlearnError):
    """The file cannot be replayed as asked (the message names the line and column)."""


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """How a CSV row or a JSON object becomes an event."""

    key_column: str | None = None
    time_column: str | None = None
    value_columns: Sequence[str] | None = None
    label_column: str | None = None

    @property
    def identity(self) -> bool:
        """True when JSON lines are sent as they are (already events)."""
        return self.key_column is None and self.value_columns is None


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes | None
    value: bytes
    ts_ms: int | None


def _number(text: Any) -> Any:
    if isinstance(text, int | float) and not isinstance(text, bool):
        return text
    try:
        return float(text)
    except (TypeError, ValueError):
        return text  # left as is: the worker dead-letters it with a reason


def _ts_ms(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(float(value))
    except ValueError:
        pass
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        return None


def event_from_row(row: dict[str, Any], columns: ColumnMap, where: str) -> dict[str, Any]:
    key_column = columns.key_column
    if key_column is None or key_column not in row:
        raise ReplayError(f"{where}: key column {key_column!r} not found (have {sorted(row)})")
    skip = {key_column, columns.time_column, columns.label_column}
    names = columns.value_columns or [c for c in row if c not in skip]
    values = {}
    for name in names:
        if name not in row:
            raise ReplayError(f"{where}: value column {name!r} not found (have {sorted(row)})")
        cell = row[name]
        if cell is None or cell == "":
            continue
        values[name] = _number(cell)
    event: dict[str, Any] = {"key": str(row[key_column]), "values": values}
    if columns.time_column:
        if columns.time_column not in row:
            raise ReplayError(f"{where}: time column {columns.time_column!r} not found")
        event["ts"] = _number(row[columns.time_column])
        if isinstance(event["ts"], float):
            event["ts"] = int(event["ts"])
    if columns.label_column and row.get(columns.label_column) not in (None, ""):
        label = _number(row[columns.label_column])
        event["label"] = label
    return event


def file_format(path: Path, fmt: str | None = None) -> str:
    return fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")


def iter_records(path: Path, columns: ColumnMap, fmt: str | None = None) -> Iterator[Record]:
    """Records to produce, in file order. ``fmt`` is csv or jsonl (default: by suffix).

    Arguments are checked now; row errors are raised while iterating.
    """
    if not path.is_file():
        raise ReplayError(f"{path}: no such file")
    fmt = file_format(path, fmt)
    if fmt == "csv" and columns.key_column is None:
        raise ReplayError("a CSV file needs --key-column")
    return _iter_records(path, columns, fmt)


def _iter_records(path: Path, columns: ColumnMap, fmt: str) -> Iterator[Record]:
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for lineno, row in enumerate(csv.DictReader(handle), start=2):
                event = event_from_row(row, columns, f"{path}:{lineno}")
                yield Record(event["key"].encode(), orjson.dumps(event), _ts_ms(event.get("ts")))
        return
    with path.open("rb") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            if columns.identity:
                yield _passthrough(line)
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ReplayError(f"{path}:{lineno}: not JSON ({exc})") from None
            if not isinstance(row, dict):
                raise ReplayError(f"{path}:{lineno}: not a JSON object")
            event = event_from_row(row, columns, f"{path}:{lineno}")
            yield Record(event["key"].encode(), orjson.dumps(event), _ts_ms(event.get("ts")))


def _passthrough(line: bytes) -> Record:
    # Sent byte for byte, even when invalid: the worker's dead-letter topic says why.
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return Record(None, line, None)
    if not isinstance(doc, dict):
        return Record(None, line, None)
    key = doc.get("key")
    return Record(key.encode() if isinstance(key, str) else None, line, _ts_ms(doc.get("ts")))


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


class Pacer:
    """Sleeps so records go out at ``rate`` per second or at ``speedup`` x event time."""

    def __init__(self, rate: float | None = None, speedup: float | None = None) -> None:
        if rate is not None and speedup is not None:
            raise ReplayError("give --rate or --speedup, not both")
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            raise ReplayError("--rate must be a positive number of events per second")
        if speedup is not None and not (speedup > 0 and math.isfinite(speedup)):
            raise ReplayError("--speedup must be a positive factor")
        self.rate = rate
        self.speedup = speedup
        self._start = time.monotonic()
        self._first_ts: int | None = None
        self._sent = 0

    async def wait(self, ts_ms: int | None) -> None:
        due: float | None = None
        if self.rate:
            due = self._start + self._sent / self.rate
        elif self.speedup and ts_ms is not None:
            if self._first_ts is None:
                self._first_ts = ts_ms
            due = self._start + (ts_ms - self._first_ts) / 1000.0 / self.speedup
        self._sent += 1
        if due is not None:
            delay = due - time.monotonic()
            if delay > 0.001:
                await asyncio.sleep(delay)


async def replay(
    records: Iterator[Record],
    settings: Settings,
    *,
    topic: str | None = None,
    rate: float | None = None,
    speedup: float | None = None,
    on_sent: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Produce ``records`` to the events topic; returns how many were sent."""
    pacer = Pacer(rate, speedup)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=5,
        max_batch_size=256 * 1024,
        acks="all",
        enable_idempotence=True,
        **settings.kafka_client_options(),
    )
    await producer.start()
    sent = 0
    name = topic or settings.topic("events")
    try:
        pending = []
        for record in records:
            if stop is not None and stop.is_set():
                break
            await pacer.wait(record.ts_ms)
            pending.append(await producer.send(name, record.value, key=record.key))
            sent += 1
            if on_sent is not None:
                on_sent(1)
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


def records_from_text(text: str) -> Iterator[Record]:
    """JSON lines given as a string (for tests and the demo)."""
    for line in io.StringIO(text):
        line = line.strip()
        if line:
            yield _passthrough(line.encode())
