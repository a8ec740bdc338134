"""Ingest: raw bytes in, validated events re-keyed by ``key`` out, bad input to dead letters."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import faust

from streamlearn.config import Settings
from streamlearn.outbox import Outbox
from streamlearn.records import DeadLetter, Event, LabelRecord
from streamlearn.topics import Topics, partition_count
from streamlearn.validation import InvalidEvent, parse_event, parse_label
from streamlearn.web.metrics import Metrics


def register_ingest(app: faust.App, settings: Settings, topics: Topics, metrics: Metrics) -> Any:
    """The ingest and labels agents.

    Each takes batches (``batch_max_events`` within ``batch_within_s``), sends the
    batch's keyed records and dead letters through its own :class:`Outbox` and goes on
    once Kafka acknowledged them all, so the batch's offsets are committed only after
    its outputs are in Kafka (at-least-once, and no per-record trip through Faust's
    producer buffer).
    """
    max_bytes = settings.max_event_bytes
    batch, within = settings.batch_max_events, settings.batch_within_s
    events_in = metrics.events_in.labels(topic=topics.events.get_topic_name())
    keyed_out = metrics.events_out.labels(topic=topics.keyed.get_topic_name())
    clock = time.perf_counter
    ingest_seconds = metrics.processing_seconds.labels(agent="ingest")
    labels_seconds = metrics.processing_seconds.labels(agent="labels")

    keyed_topic = topics.keyed.get_topic_name()
    deadletter_topic = topics.deadletter.get_topic_name()

    def refuse(outbox: Outbox, message: Any, exc: InvalidEvent) -> None:
        """The original record, byte for byte, to the dead-letter topic with the reason."""
        letter = DeadLetter(exc.code, exc.reason, message.topic, message.partition, message.offset)
        outbox.add(
            deadletter_topic,
            message.key,
            message.value,
            headers=[*(message.headers or ()), *letter.headers()],
        )
        metrics.dead_letters.labels(reason=exc.code.value).inc()

    async def rekey(
        stream: faust.StreamT,
        parse: Callable[[Any], Event | LabelRecord],
        records_in: Any,
        seconds: Any,
    ) -> None:
        """Each batch: valid records onto the keyed topic, the others dead-lettered,
        then wait until Kafka acknowledged them all (only then are offsets committed)."""
        outbox = Outbox(app)
        async for events in stream.take_events(batch, within):
            for event in events:
                message = event.message
                records_in.inc()
                started = clock()
                try:
                    record = parse(message)
                except InvalidEvent as exc:
                    refuse(outbox, message, exc)
                else:
                    outbox.add(keyed_topic, record.key.encode(), record.to_keyed())
                    keyed_out.inc()
                seconds.observe(clock() - started)
            await outbox.flush()

    # concurrency=1: with more, Faust can commit an offset past a message still in
    # flight, and a crash then loses it (faust-streaming #606).
    @app.agent(topics.events, name="streamlearn.ingest", concurrency=1)
    async def ingest(stream: faust.StreamT) -> None:
        # The windows' watermark waits until it has heard from every source partition.
        source_partitions = await partition_count(settings, topics.events.get_topic_name())

        def parse(message: Any) -> Event:
            parsed = parse_event(
                message.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                timestamp_ms=int(message.timestamp * 1000),
                max_bytes=max_bytes,
            )
            parsed.src_partitions = source_partitions
            return parsed

        await rekey(stream, parse, events_in, ingest_seconds)

    labels_in = metrics.events_in.labels(topic=topics.labels.get_topic_name())

    def parse_label_message(message: Any) -> LabelRecord:
        return parse_label(
            message.value,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=int(message.timestamp * 1000),
            max_bytes=max_bytes,
        )

    # Delayed labels join their event's pending prediction, which lives in the
    # partition of the event's key: re-key them onto the keyed topic next to the events.
    @app.agent(topics.labels, name="streamlearn.labels", concurrency=1)
    async def labels(stream: faust.StreamT) -> None:
        await rekey(stream, parse_label_message, labels_in, labels_seconds)

    return ingest
