"""Read output topics and print their records for humans."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from streamlearn.config import Settings


def _when(ts_ms: Any) -> str:
    try:
        return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ts_ms)


def format_record(value: bytes | None, headers: Any = (), *, topic_kind: str | None = None) -> str:
    """One line per record: aggregates, dead letters and anything else as compact JSON."""
    found = {k: v.decode(errors="replace") for k, v in (headers or ())}
    if "error.code" in found:
        preview = (value or b"")[:80].decode("utf-8", errors="replace")
        return (
            f"DEAD {found['error.code']:<16} {found.get('error.reason', '')}  "
            f"[{found.get('source.topic')}/{found.get('source.partition')}"
            f"@{found.get('source.offset')}]  {preview!r}"
        )
    if value is None:
        return "(tombstone)"
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value[:200].decode("utf-8", errors="replace")
    if isinstance(doc, dict) and doc.get("kind") == "stats":
        parts = [
            f"{name}: {s['mean']:.4g}±{s['std']:.3g} [{s['min']:.4g}, {s['max']:.4g}]"
            for name, s in doc.get("values", {}).items()
        ]
        return f"STATS {doc['key']:<12} n={doc['events']:<7} {_when(doc['ts'])}  " + "; ".join(
            parts
        )
    return orjson.dumps(doc).decode()


async def tail(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    max_records: int | None = None,
    timeout_s: float | None = None,
    raw: bool = False,
    emit: Callable[[str], None] = print,
) -> int:
    """Print records of ``topic`` until ``max_records`` or ``timeout_s``; returns the count."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    seen = 0
    deadline = time.monotonic() + timeout_s if timeout_s else None
    try:
        while max_records is None or seen < max_records:
            wait_ms = 500
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait_ms = int(min(500, left * 1000)) or 1
            batches = await consumer.getmany(timeout_ms=wait_ms)
            for records in batches.values():
                for record in records:
                    if raw:
                        emit((record.value or b"").decode("utf-8", errors="replace"))
                    else:
                        emit(format_record(record.value, record.headers))
                    seen += 1
                    if max_records is not None and seen >= max_records:
                        return seen
    except asyncio.CancelledError:  # pragma: no cover - Ctrl-C
        pass
    finally:
        await consumer.stop()
    return seen
