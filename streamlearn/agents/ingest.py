"""Ingest: raw bytes in, validated events re-keyed by ``key`` out, bad input to dead letters."""

from __future__ import annotations

import time
from typing import Any

import faust

from streamlearn.config import Settings
from streamlearn.records import DeadLetter
from streamlearn.topics import Topics, partition_count
from streamlearn.validation import InvalidEvent, parse_event, parse_label
from streamlearn.web.metrics import Metrics


def register_ingest(app: faust.App, settings: Settings, topics: Topics, metrics: Metrics) -> Any:
    max_bytes = settings.max_event_bytes
    keyed = topics.keyed
    deadletter = topics.deadletter
    events_in = metrics.events_in.labels(topic=topics.events.get_topic_name())
    keyed_out = metrics.events_out.labels(topic=keyed.get_topic_name())
    clock = time.perf_counter
    ingest_seconds = metrics.processing_seconds.labels(agent="ingest")
    labels_seconds = metrics.processing_seconds.labels(agent="labels")

    def refuse(message: Any, exc: InvalidEvent) -> None:
        """The original record, byte for byte, to the dead-letter topic with the reason."""
        letter = DeadLetter(exc.code, exc.reason, message.topic, message.partition, message.offset)
        deadletter.send_soon(
            key=message.key,
            value=message.value,
            headers=[*(message.headers or ()), *letter.headers()],
        )
        metrics.dead_letters.labels(reason=exc.code.value).inc()

    # concurrency=1: with more, Faust can commit an offset past a message still in
    # flight, and a crash then loses it (faust-streaming #606).
    @app.agent(topics.events, name="streamlearn.ingest", concurrency=1)
    async def ingest(stream: faust.StreamT) -> None:
        # The windows' watermark waits until it has heard from every source partition.
        source_partitions = await partition_count(settings, topics.events.get_topic_name())
        async for event in stream.events():
            message = event.message
            events_in.inc()
            started = clock()
            try:
                parsed = parse_event(
                    message.value,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    timestamp_ms=int(message.timestamp * 1000),
                    max_bytes=max_bytes,
                )
            except InvalidEvent as exc:
                refuse(message, exc)
                ingest_seconds.observe(clock() - started)
                continue
            parsed.src_partitions = source_partitions
            keyed.send_soon(key=parsed.key.encode(), value=parsed.to_keyed())
            keyed_out.inc()
            ingest_seconds.observe(clock() - started)

    labels_in = metrics.events_in.labels(topic=topics.labels.get_topic_name())

    # Delayed labels join their event's pending prediction, which lives in the
    # partition of the event's key: re-key them onto the keyed topic next to the events.
    @app.agent(topics.labels, name="streamlearn.labels", concurrency=1)
    async def labels(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            labels_in.inc()
            started = clock()
            try:
                label = parse_label(
                    message.value,
                    partition=message.partition,
                    offset=message.offset,
                    timestamp_ms=int(message.timestamp * 1000),
                    max_bytes=max_bytes,
                )
            except InvalidEvent as exc:
                refuse(message, exc)
                labels_seconds.observe(clock() - started)
                continue
            keyed.send_soon(key=label.key.encode(), value=label.to_keyed())
            keyed_out.inc()
            labels_seconds.observe(clock() - started)

    return ingest
