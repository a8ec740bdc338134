"""Read the records of a time range from Kafka, for a report.

Every partition of every topic is read from a start found with ``offsets_for_times``
to the end offset captured when reading starts: no consumer group, nothing committed.

Kafka timestamps are *publish* times, not event times, so they only bound where to
look. Records are published after the events they describe (windows close after they
end, alerts and predictions follow their event), so a record about event time ``t``
has a Kafka timestamp after ``t``, unless its events were stamped ahead of the clock
that published it. Reading therefore starts at the first record published at or after
``from - slack``. Where it ends is not bounded the same way: a window closed after a
restart, or events of last month replayed today, are published long after their event
time. So by default every partition is read to its end offset; ``max_delay`` stops a
partition at its first record published more than that after ``to`` (faster on a
long topic, and exact when outputs are published within ``max_delay`` of their events).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.report.data import TOPIC_KINDS, RawRecord

__all__ = ["KafkaUnavailable", "ReadSummary", "TopicRead", "read_range"]


class KafkaUnavailable(StreamlearnError):
    """The broker could not be reached, or stopped answering while reading."""


@dataclass(slots=True)
class TopicRead:
    """What was read of one topic."""

    kind: str
    topic: str
    exists: bool = True
    partitions: int = 0
    records: int = 0
    #: offsets the range covered (end - start, summed over partitions)
    span: int = 0
    #: partitions stopped by ``max_delay`` before their end offset
    stopped_early: int = 0


@dataclass(slots=True)
class ReadSummary:
    seek_ms: int
    stop_after_ms: int | None
    topics: list[TopicRead] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(t.records for t in self.topics)


def _explain(settings: Settings, exc: BaseException) -> KafkaUnavailable:
    hint = (
        "start the local broker with `streamlearn kafka start`"
        if settings.uses_local_broker
        else "check STREAMLEARN_BROKER_URL and the broker's security settings"
    )
    return KafkaUnavailable(f"cannot reach Kafka at {settings.bootstrap_servers} ({exc}): {hint}")


async def read_range(
    settings: Settings,
    on_record: Callable[[RawRecord], None],
    *,
    seek_ms: int,
    stop_after_ms: int | None = None,
    kinds: Sequence[str] = TOPIC_KINDS,
    stall_timeout_s: float = 30.0,
    request_timeout_s: float = 15.0,
) -> ReadSummary:
    """Call ``on_record`` with every record published at or after ``seek_ms``.

    ``kinds`` are logical topic names (``settings.topic(kind)``); a topic that does not
    exist is reported as such, not an error. With ``stop_after_ms``, a partition stops
    at its first record published later. :class:`KafkaUnavailable` when the broker
    cannot be reached, or no record arrives for ``stall_timeout_s`` while some are due.
    """
    started = time.monotonic()
    summary = ReadSummary(seek_ms=seek_ms, stop_after_ms=stop_after_ms)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(request_timeout_s * 1000),
        **settings.kafka_client_options(),
    )
    try:
        await consumer.start()
    except (TimeoutError, KafkaError, OSError) as exc:
        await _stop_quietly(consumer)
        raise _explain(settings, exc) from None
    try:
        await _read(
            consumer, settings, on_record, summary, kinds, stall_timeout_s, request_timeout_s
        )
    except (TimeoutError, KafkaError, OSError) as exc:
        raise _explain(settings, exc) from None
    finally:
        await _stop_quietly(consumer)
    summary.seconds = time.monotonic() - started
    return summary


async def _stop_quietly(consumer: AIOKafkaConsumer) -> None:
    with contextlib.suppress(Exception):  # already failing or done: nothing to add
        await consumer.stop()


async def _read(
    consumer: AIOKafkaConsumer,
    settings: Settings,
    on_record: Callable[[RawRecord], None],
    summary: ReadSummary,
    kinds: Sequence[str],
    stall_timeout_s: float,
    request_timeout_s: float,
) -> None:
    names = [settings.topic(kind) for kind in kinds]
    found_partitions = await _partitions(settings, names, request_timeout_s)
    kind_of: dict[str, str] = {}
    reads: dict[str, TopicRead] = {}
    partitions: list[TopicPartition] = []
    for kind, topic in zip(kinds, names, strict=True):
        numbers = found_partitions.get(topic)
        read = TopicRead(kind, topic, exists=numbers is not None)
        summary.topics.append(read)
        if numbers is None:
            continue
        read.partitions = len(numbers)
        kind_of[topic] = kind
        reads[topic] = read
        partitions.extend(TopicPartition(topic, p) for p in sorted(numbers))
    if not partitions:
        return
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    found = await consumer.offsets_for_times(dict.fromkeys(partitions, max(summary.seek_ms, 0)))
    pending: set[TopicPartition] = set()
    for tp in partitions:
        start = found[tp].offset if found.get(tp) is not None else ends[tp]
        if start < ends[tp]:
            consumer.seek(tp, start)
            pending.add(tp)
            reads[tp.topic].span += ends[tp] - start
    done = set(partitions) - pending
    if done:
        consumer.pause(*done)
    last_progress = time.monotonic()
    stop_after = summary.stop_after_ms
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=500)
        for tp, records in batches.items():
            if tp not in pending:
                continue
            read = reads[tp.topic]
            for record in records:
                if record.offset >= ends[tp]:
                    pending.discard(tp)
                    break
                if stop_after is not None and record.timestamp > stop_after:
                    read.stopped_early += 1
                    pending.discard(tp)
                    break
                on_record(
                    RawRecord(
                        kind=kind_of[tp.topic],
                        value=record.value,
                        key=record.key,
                        headers=tuple(record.headers or ()),
                        timestamp_ms=record.timestamp,
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                    )
                )
                read.records += 1
                last_progress = time.monotonic()
            if tp not in pending:
                consumer.pause(tp)
        for tp in list(pending):
            # Past the end (e.g. the last offsets held transaction markers): done.
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
                consumer.pause(tp)
        if pending and time.monotonic() - last_progress > stall_timeout_s:
            waiting = ", ".join(sorted(f"{tp.topic}:{tp.partition}" for tp in pending)[:5])
            raise KafkaUnavailable(
                f"no records for {stall_timeout_s:.0f} s from Kafka at "
                f"{settings.bootstrap_servers} while reading {waiting}"
            )


async def _partitions(
    settings: Settings, topics: list[str], request_timeout_s: float
) -> dict[str, list[int]]:
    """The partitions of each of ``topics`` that exists."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=int(request_timeout_s * 1000),
        **settings.kafka_client_options(),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t in existing]
        described = await admin.describe_topics(wanted) if wanted else []
    finally:
        await admin.close()
    return {
        d["topic"]: sorted(p["partition"] for p in d["partitions"])
        for d in described
        if d["error_code"] == 0
    }


def source_info(settings: Settings, summary: ReadSummary, slack_ms: int) -> dict[str, Any]:
    """Where the records came from, for the report's source section."""
    return {
        "broker": settings.bootstrap_servers,
        "app_id": settings.app_id,
        "topic_prefix": settings.topic_prefix,
        "seek_ms": summary.seek_ms,
        "slack_ms": slack_ms,
        "stop_after_ms": summary.stop_after_ms,
        "seconds": round(summary.seconds, 2),
        "topics": [
            {
                "kind": t.kind,
                "topic": t.topic,
                "exists": t.exists,
                "partitions": t.partitions,
                "records": t.records,
                "stopped_early": t.stopped_early,
            }
            for t in summary.topics
        ],
    }
