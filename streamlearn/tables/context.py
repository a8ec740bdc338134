"""Write to a Faust table on behalf of a given event.

Faust tables pick the changelog partition and the RocksDB shard from the *current*
event (a context variable that the stream sets while iterating). A batch flush after
``stream.take_events`` runs with the batch's last event as current, which may belong
to another partition, so each key is written under its own last event instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event
from faust.types import EventT


@contextmanager
def as_current_event(event: EventT | PartitionEvent) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class _Message:
    __slots__ = ("partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition


class PartitionEvent:
    """Stands in for an event of ``topic``/``partition`` when state must be written
    without one (timers, state scans): Faust tables only read ``event.message``'s topic
    and partition."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


def bytes_table(app: Any, name: str, partitions: int, help: str) -> Any:
    """A Faust table with raw-bytes keys and values, co-partitioned with the keyed topic.

    Raw key bytes, exactly as on the keyed topic, keep Faust's router right: it hashes
    the serialized table key to find the owning worker (JSON keys would hash ``"k"``).
    """
    return app.Table(name, partitions=partitions, key_type=bytes, value_type=bytes, help=help)
