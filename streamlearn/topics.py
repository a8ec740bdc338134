"""Every topic streamlearn reads or writes, with names from Settings."""

from __future__ import annotations

import asyncio
import contextlib
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
    "scores",
    "model_events",
)


@dataclass(frozen=True, slots=True)
class Topics:
    events: faust.TopicT
    keyed: faust.TopicT
    aggregates: faust.TopicT
    deadletter: faust.TopicT
    anomalies: faust.TopicT
    scores: faust.TopicT
    labels: faust.TopicT
    predictions: faust.TopicT
    drift: faust.TopicT
    model_events: faust.TopicT


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
        anomalies=_raw_topic(app, settings.topic("anomalies")),
        scores=_raw_topic(app, settings.topic("scores")),
        labels=_raw_topic(app, settings.topic("labels")),
        predictions=_raw_topic(app, settings.topic("predictions")),
        drift=_raw_topic(app, settings.topic("drift")),
        model_events=_raw_topic(app, settings.topic("model_events")),
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
            # Another worker may have raced us to it: fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(t, settings.topic_partitions, settings.topic_replication_factor)
                        for t in missing
                    ]
                )
            await _wait_for_leaders(admin, missing, timeout_s)
        return missing
    finally:
        await admin.close()


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float
) -> None:
    """Until every partition of ``topics`` has a leader (clients then start without errors)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = await admin.describe_topics(topics)
        ready = all(
            t["error_code"] == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        )
        if ready or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.1)


async def partition_count(settings: Settings, topic: str, timeout_s: float = 30.0) -> int:
    """How many partitions ``topic`` has (0 when it does not exist)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=int(timeout_s * 1000),
        **settings.kafka_client_options(),
    )
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return len(described["partitions"]) if described["error_code"] == 0 else 0
    finally:
        await admin.close()


def ensure_topics_sync(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    return asyncio.run(ensure_topics(settings, timeout_s))
