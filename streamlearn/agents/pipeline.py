"""One agent over the keyed stream, feeding every analytics component.

A second agent on the same topic would cost Faust's per-event overhead again; one loop
parses each keyed record once and hands it to each component in turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import faust
from faust.types import EventT

from streamlearn.config import Settings
from streamlearn.outbox import Outbox
from streamlearn.records import DeadLetter, ErrorCode, Event, LabelRecord, parse_keyed
from streamlearn.topics import Topics
from streamlearn.web.metrics import Metrics

logger = logging.getLogger(__name__)


class Component(Protocol):
    """A consumer of keyed events with per-key state in a table."""

    def on_event(self, event: Event, source: EventT, now_s: float) -> None:
        """Apply one event (called in partition order, inside a batch)."""

    def on_batch_end(self, now_s: float) -> None:
        """Emit what is due (sends only: state is written by ``flush_state``)."""

    def flush_state(self) -> None:
        """Write dirty state to the tables (after this batch's outputs are in Kafka)."""

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


async def commit_state(outbox: Outbox, components: Sequence[Component]) -> None:
    """Write the components' state, but only once everything they sent is in Kafka.

    Table writes reach the local RocksDB store at once, while sent records wait to be
    acknowledged. A worker killed in between would restart with state saying "applied"
    for records whose outputs never left (a replayed event is then skipped, and its
    prediction, score or window record is lost). Sending the outbox and awaiting its
    acknowledgements first keeps outputs at-least-once. The offsets of the batch are
    committed after this (``take_events`` acks when the loop body returns; Faust
    flushes the changelog writes before committing).
    """
    await outbox.flush()
    for component in components:
        component.flush_state()


def register_pipeline(
    app: faust.App,
    settings: Settings,
    topics: Topics,
    components: Sequence[Component],
    metrics: Metrics,
    outbox: Outbox,
) -> Any:
    """The analytics agent and its timer. ``components`` must send through ``outbox``
    (build them with ``outbox.topics(topics)``); so does the agent's own dead letter."""
    sends = outbox.topics(topics)
    batch_seconds = metrics.processing_seconds.labels(agent="analytics")
    end_to_end = metrics.end_to_end_seconds
    # Components that join delayed labels (``on_label``); the others see events only.
    label_components = [c for c in components if hasattr(c, "on_label")]
    # The batch end and the timer both emit and then write state: never interleaved.
    checkpoint = asyncio.Lock()

    @app.agent(topics.keyed, name="streamlearn.analytics", concurrency=1)
    async def analytics(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_max_events, settings.batch_within_s):
            started = time.perf_counter()
            now_s = time.time()
            event_times: list[int] = []
            for source in batch:
                try:
                    record = parse_keyed(source.value)
                    if isinstance(record, LabelRecord):
                        for component in label_components:
                            component.on_label(record, source, now_s)
                        continue
                    event_times.append(record.ts_ms)
                    for component in components:
                        component.on_event(record, source, now_s)
                except Exception as exc:
                    # Never a crash loop over one record: dead-letter it and go on.
                    logger.exception("could not process a keyed record")
                    _dead_letter(sends, source, exc)
            async with checkpoint:
                for component in components:
                    component.on_batch_end(now_s)
                await commit_state(outbox, components)
            # Every output of these events is acknowledged by Kafka now.
            done_s = time.time()
            for ts_ms in event_times:
                end_to_end.observe(done_s - ts_ms / 1000)
            batch_seconds.observe(time.perf_counter() - started)

    @app.timer(interval=1.0, name="streamlearn.analytics.timer")
    async def tick() -> None:
        now_s = time.time()
        async with checkpoint:
            for component in components:
                try:
                    component.on_timer(now_s)
                except Exception:
                    # A timer that raises would crash the whole worker (mode stops the
                    # app): log it and try again next tick.
                    logger.exception("%s.on_timer failed", type(component).__name__)
            await commit_state(outbox, components)

    @app.on_partitions_revoked.connect
    async def _revoked(app: Any, revoked: Any, **kwargs: Any) -> None:
        for component in components:
            component.on_rebalance()

    @app.on_partitions_assigned.connect
    async def _assigned(app: Any, assigned: Any, **kwargs: Any) -> None:
        for component in components:
            component.on_rebalance()

    return analytics
