"""Running statistics per key and value, emitted every N events or T seconds."""

from __future__ import annotations

import faust
from faust.types import EventT

from streamlearn.config import Settings
from streamlearn.records import Event
from streamlearn.tables import KeyStats, StateCache
from streamlearn.tables.context import bytes_table
from streamlearn.tables.keystats import StatsOptions
from streamlearn.topics import Topics
from streamlearn.web.metrics import Metrics


class StatsComponent:
    """Keeps a :class:`KeyStats` per key in the ``stats`` table."""

    def __init__(self, app: faust.App, settings: Settings, topics: Topics, metrics: Metrics):
        self.table = bytes_table(
            app,
            "stats",
            settings.topic_partitions,
            "Running statistics per key (KeyStats), with offset marks.",
        )
        self.options = StatsOptions(
            ewma_half_life_ms=settings.stats_ewma_half_life_ms,
            max_pair_values=settings.stats_correlation_max_values,
        )
        self.cache: StateCache[KeyStats] = StateCache(
            self.table,
            decode=self.decode,
            encode=KeyStats.to_bytes,
            factory=lambda: KeyStats(self.options),
        )
        self.every = settings.stats_emit_every_events
        self.interval = settings.stats_emit_interval_s
        self.aggregates = topics.aggregates
        self.out = metrics.events_out.labels(topic=topics.aggregates.get_topic_name())
        self.replays = metrics.replayed_skipped.labels(agent="stats")

    def decode(self, raw: bytes) -> KeyStats:
        return KeyStats.from_bytes(raw, self.options)

    def emit(self, key: str, state: KeyStats, now_s: float) -> None:
        record = state.aggregate(key, now_s)
        self.aggregates.send_soon(key=key.encode(), value=record.to_bytes())
        self.out.inc()

    def on_event(self, event: Event, source: EventT, now_s: float) -> None:
        state = self.cache.get(event.key, source)
        if not state.apply(event):
            self.replays.inc()
            return
        self.cache.mark_dirty(event.key, source)
        if state.due(now_s, self.every, 0.0):
            self.emit(event.key, state, now_s)

    def on_batch_end(self, now_s: float) -> None:
        pass

    def flush_state(self) -> None:
        self.cache.flush()

    def on_timer(self, now_s: float) -> None:
        if not self.interval:
            return
        for key, state in self.cache.items():
            if state.due(now_s, 0, self.interval):
                self.emit(key, state, now_s)

    def on_rebalance(self) -> None:
        self.cache.clear()
