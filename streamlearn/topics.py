"""Every topic streamlearn reads or writes, with names from Settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streamlearn.config import Settings

#: Logical names, each resolved to ``settings.topic(name)``.
TOPIC_NAMES = (
    "events",
    "keyed",
    "aggregates",
    "anomalies",
    "predictions",
    "drift",
    "deadletter",
    "labels",
)


@dataclass(frozen=True, slots=True)
class Topics:
    events: faust.TopicT
    keyed: faust.TopicT
    aggregates: faust.TopicT
    deadletter: faust.TopicT


def _raw_topic(app: faust.App, name: str, *, partitions: int | None = None) -> faust.TopicT:
    # Raw bytes in and out: we parse and validate ourselves (a Faust decode error
    # would ack and rethrow into the agent, or stall a take() loop).
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    return Topics(
        events=_raw_topic(app, settings.topic("events")),
        keyed=_raw_topic(app, settings.topic("keyed"), partitions=settings.topic_partitions),
        aggregates=_raw_topic(app, settings.topic("aggregates")),
        deadletter=_raw_topic(app, settings.topic("deadletter")),
    )


async def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create every streamlearn topic that does not exist yet; returns those created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=int(timeout_s * 1000),
        **settings.kafka_client_options(),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [settings.topic(n) for n in TOPIC_NAMES]
        missing = [t for t in wanted if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(t, settings.topic_partitions, settings.topic_replication_factor)
                        for t in missing
                    ]
                )
            except TopicAlreadyExistsError:  # another worker raced us: fine
                pass
        return missing
    finally:
        await admin.close()


def ensure_topics_sync(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    return asyncio.run(ensure_topics(settings, timeout_s))
