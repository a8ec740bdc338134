"""Records a batch emits, handed to the Kafka client in one go and acknowledged together.

Faust's ``Topic.send_soon`` puts each record in the producer buffer, which one
background task drains a record at a time (an awaited send and an event-loop round
per record), and a stream stalls whenever that buffer holds over 100 records. Waiting
for "everything sent so far" then meant draining the whole buffer, including records
other agents keep adding. The analytics batch instead collects its outputs here and
:meth:`Outbox.flush` hands them straight to the Kafka client (which batches them per
partition) and waits for exactly their acknowledgements.

Partitioning is the client's default (murmur2 of the key), as with ``send_soon``.
A record that is not acknowledged (broker down, leader moved, timeout) is sent again
until it is; one refused for good (too large for the topic) is logged and counted as
dropped, so one bad record cannot stall the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, fields
from typing import Any

import faust
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from streamlearn.topics import Topics

logger = logging.getLogger(__name__)

#: Refusals that sending again cannot cure. Everything else (timeouts while the broker
#: is down, leader changes, lost connections) is retried: aiokafka marks its own
#: delivery timeout as not retriable, but after an outage the same record goes through.
REFUSED_FOR_GOOD = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
)

Headers = list[tuple[str, bytes]]


class Outbox:
    """Pending records of one agent; :meth:`flush` sends them and awaits their acks."""

    def __init__(self, app: faust.App, retry_backoff_s: float = 0.5) -> None:
        self.app = app
        self.retry_backoff_s = retry_backoff_s
        self.pending: list[tuple[str, bytes | None, bytes | None, int | None, Headers | None]] = []
        #: records the broker refused for good (not retriable)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.pending)

    def add(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.pending.append((topic, key, value, partition, headers))

    def topics(self, topics: Topics) -> Topics:
        """``topics`` whose ``send_soon`` adds to this outbox (everything else as is)."""
        wrapped = {f.name: OutboxTopic(getattr(topics, f.name), self) for f in fields(topics)}
        return Topics(**wrapped)  # type: ignore[arg-type]

    async def flush(self) -> None:
        """Send every pending record and return once Kafka acknowledged each one."""
        records, self.pending = self.pending, []
        producer = self.app.producer
        started = warned_at = time.monotonic()
        while records:
            sent = []
            failed = []
            for record in records:
                topic, key, value, partition, headers = record
                try:
                    future = await producer.send(topic, key, value, partition, None, headers)
                    sent.append((record, future))
                except KafkaError as exc:
                    failed.append(self._failed(record, exc))
            results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
            for (record, _), result in zip(sent, results, strict=True):
                if isinstance(result, BaseException):
                    failed.append(self._failed(record, result))
            records = [record for record in failed if record is not None]
            if records:
                now = time.monotonic()
                if now - warned_at >= 10.0 or warned_at == started:
                    warned_at = now
                    logger.warning(
                        "%d records not acknowledged by Kafka yet (%.0f s); sending them again",
                        len(records),
                        now - started,
                    )
                await asyncio.sleep(self.retry_backoff_s)

    def _failed(self, record: Any, exc: BaseException) -> Any:
        """``record`` to send again, or None when the broker will never take it."""
        if isinstance(exc, REFUSED_FOR_GOOD):
            self.dropped += 1
            logger.error("Kafka refused a record for %s for good: %r; dropped", record[0], exc)
            return None
        if not isinstance(exc, Exception):
            raise exc
        return record


@dataclass(frozen=True, slots=True)
class OutboxTopic:
    """A Faust topic whose ``send_soon`` goes to an :class:`Outbox`."""

    topic: Any
    outbox: Outbox

    def send_soon(
        self,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.outbox.add(self.topic.get_topic_name(), key, value, partition, headers)

    def get_topic_name(self) -> str:
        name: str = self.topic.get_topic_name()
        return name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.topic, name)
