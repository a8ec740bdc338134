"""One agent over the keyed stream, feeding every analytics component.

A second agent on the same topic would cost Faust's per-event overhead again; one loop
parses each keyed record once and hands it to each component in turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import faust
from faust.types import EventT

from streamlearn.config import Settings
from streamlearn.records import DeadLetter, ErrorCode, Event
from streamlearn.topics import Topics

logger = logging.getLogger(__name__)


class Component(Protocol):
    """A consumer of keyed events with per-key state in a table."""

    def on_event(self, event: Event, source: EventT, now_s: float) -> None:
        """Apply one event (called in partition order, inside a batch)."""

    def on_batch_end(self, now_s: float) -> None:
        """Emit what is due and write dirty state (before the batch is acked)."""

    def on_timer(self, now_s: float) -> None:
        """Periodic work without events (emission cadence, idle partitions)."""

    def on_rebalance(self) -> None:
        """Partitions moved: forget everything cached in memory."""


def _dead_letter(topics: Topics, source: EventT, exc: Exception) -> None:
    message = source.message
    letter = DeadLetter(
        ErrorCode.PROCESSING_ERROR,
        f"{type(exc).__name__}: {exc}"[:500],
        message.topic,
        message.partition,
        message.offset,
    )
    topics.deadletter.send_soon(key=message.key, value=message.value, headers=letter.headers())


def register_pipeline(
    app: faust.App, settings: Settings, topics: Topics, components: Sequence[Component]
) -> Any:
    @app.agent(topics.keyed, name="streamlearn.analytics", concurrency=1)
    async def analytics(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_max_events, settings.batch_within_s):
            now_s = time.time()
            for source in batch:
                try:
                    event = Event.from_keyed(source.value)
                    for component in components:
                        component.on_event(event, source, now_s)
                except Exception as exc:
                    # Never a crash loop over one record: dead-letter it and go on.
                    logger.exception("could not process a keyed record")
                    _dead_letter(topics, source, exc)
            # Before take_events acks the batch: Faust flushes these changelog writes
            # ahead of the offset commit.
            for component in components:
                component.on_batch_end(now_s)

    @app.timer(interval=1.0, name="streamlearn.analytics.timer")
    async def tick() -> None:
        now_s = time.time()
        for component in components:
            try:
                component.on_timer(now_s)
            except Exception:
                # A timer that raises would crash the whole worker (mode stops the app):
                # log it and try again next tick.
                logger.exception("%s.on_timer failed", type(component).__name__)

    @app.on_partitions_revoked.connect
    async def _revoked(app: Any, revoked: Any, **kwargs: Any) -> None:
        for component in components:
            component.on_rebalance()

    @app.on_partitions_assigned.connect
    async def _assigned(app: Any, assigned: Any, **kwargs: Any) -> None:
        for component in components:
            component.on_rebalance()

    return analytics
