"""The registry topic: compacted, one partition (a single order of changes), on demand."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streamlearn.config import Settings
from streamlearn.registry.errors import RegistryError

__all__ = ["ensure_registry_topic"]


async def ensure_registry_topic(settings: Settings, timeout_s: float = 30.0) -> str:
    """Create the registry topic if it does not exist; its name.

    Raises :class:`RegistryError` when it exists with more than one partition: the
    registry needs every change in one order.
    """
    name = settings.topic("registry")
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=int(timeout_s * 1000),
        **settings.kafka_client_options(),
    )
    await admin.start()
    try:
        if name not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):  # another process raced us
                await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            1,
                            settings.topic_replication_factor,
                            topic_configs={"cleanup.policy": "compact"},
                        )
                    ]
                )
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            (described,) = await admin.describe_topics([name])
            partitions = described["partitions"] if described["error_code"] == 0 else []
            if partitions and all(p["leader"] >= 0 for p in partitions):
                break
            if asyncio.get_running_loop().time() > deadline:
                raise RegistryError(f"the registry topic {name} has no leader after {timeout_s} s")
            await asyncio.sleep(0.1)
        if len(partitions) != 1:
            raise RegistryError(
                f"the registry topic {name} has {len(partitions)} partitions; it needs exactly "
                "one (delete it, or set topic_registry to a new name)"
            )
        return name
    finally:
        await admin.close()
