"""pytest plugin: one real Kafka broker for the whole test session.

Load it with ``pytest_plugins = ["tests.integration.broker_fixture"]``. The broker is
built from the same Settings as ``streamlearn kafka start`` (jar cache, KAFKA_HOME,
heap, partitions) but runs on free ports with its data under pytest's temp dir, so it
never collides with a developer's own broker. ``STREAMLEARN_TEST_BOOTSTRAP=host:port``
points the tests at an external broker instead and starts nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from streamlearn.config import load_settings
from streamlearn.kafka import LocalBroker, free_port

BOOTSTRAP_ENV = "STREAMLEARN_TEST_BOOTSTRAP"


@dataclass(frozen=True)
class ExternalBroker:
    """A broker someone else runs; only its address is known."""

    bootstrap_servers: str


@pytest.fixture(scope="session")
def kafka_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalBroker | ExternalBroker]:
    """A running broker; use ``.bootstrap_servers``. Stopped at session end."""
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        yield ExternalBroker(external)
        return
    settings = load_settings()
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    broker = LocalBroker(
        data_dir=tmp_path_factory.mktemp("kafka-broker"),
        port=port,
        controller_port=controller_port,
        cache_dir=settings.kafka_cache_dir,
        kafka_home=settings.kafka_home,
        # Every test makes its own topics (about 20 per worker, 4 partitions each) and a
        # session keeps them all: thousands of partitions, more than 512 MB of heap holds.
        heap_mb=max(settings.kafka_heap_mb, 1536),
        partitions=settings.topic_partitions,
    )
    broker.start(timeout_s=180)
    try:
        yield broker
    finally:
        broker.stop()
