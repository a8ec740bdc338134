"""Running statistics per key and value, emitted every N events or T seconds."""

from __future__ import annotations

import time
from typing import Any

import faust

from streamlearn.config import Settings
from streamlearn.records import Event
from streamlearn.tables import KeyStats, StateCache
from streamlearn.topics import Topics
from streamlearn.web.metrics import Metrics


def register_stats(
    app: faust.App, settings: Settings, topics: Topics, metrics: Metrics
) -> StateCache[KeyStats]:
    table = app.Table(
        "stats",
        partitions=settings.topic_partitions,
        key_type=str,
        value_type=bytes,
        help="Running statistics per key (KeyStats), with offset marks.",
    )
    cache: StateCache[KeyStats] = StateCache(
        table, decode=KeyStats.from_bytes, encode=KeyStats.to_bytes, factory=KeyStats
    )
    every = settings.stats_emit_every_events
    interval = settings.stats_emit_interval_s
    aggregates = topics.aggregates
    aggregates_out = metrics.events_out.labels(topic=aggregates.get_topic_name())
    replays = metrics.replayed_skipped.labels(agent="stats")

    def emit(key: str, state: KeyStats, now_s: float) -> None:
        record = state.aggregate(key, now_s)
        aggregates.send_soon(key=key.encode(), value=record.to_bytes())
        aggregates_out.inc()

    @app.agent(topics.keyed, name="streamlearn.stats", concurrency=1)
    async def stats(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_max_events, settings.batch_within_s):
            now_s = time.time()
            for event in batch:
                parsed = Event.from_keyed(event.value)
                state = cache.get(parsed.key, event)
                if not state.apply(parsed):
                    replays.inc()
                    continue
                cache.mark_dirty(parsed.key, event)
                if state.due(now_s, every, 0.0):
                    emit(parsed.key, state, now_s)
            # Before take_events acks the batch: the changelog writes are then flushed
            # ahead of the offset commit.
            cache.flush()

    if interval:

        @app.timer(interval=min(interval, 1.0), name="streamlearn.stats.emit")
        async def emit_due() -> None:
            now_s = time.time()
            for key, state in cache.items():
                if state.due(now_s, 0, interval):
                    emit(key, state, now_s)

    @app.on_partitions_revoked.connect
    async def _forget_revoked(app: Any, revoked: Any, **kwargs: Any) -> None:
        cache.clear()

    @app.on_partitions_assigned.connect
    async def _forget_assigned(app: Any, assigned: Any, **kwargs: Any) -> None:
        cache.clear()

    return cache
