"""Data drift of every key x value; one record per drift episode to the drift topic.

Each key's :class:`KeyDrift` (the :class:`~streamlearn.drift.DataDriftMonitor` state of
its values, the model version its reference belongs to, offset marks) lives in the
``drift`` table, pickled inside a signed envelope and written once per batch for the
keys the batch touched, before the batch's offsets are committed: after a crash every
event has been applied exactly once and a drift record is published at least once
(its ``dedup_key`` is stable).

The reference of a key is the first ``drift_reference_events`` of its values after the
model serving it started a version (a promotion restarts it), or, with
``drift_reference_from_ms``/``drift_reference_to_ms``, the values whose event time is in
that range. Concept drift (a model's error stream) is the models component's.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson
from faust.types import EventT

from streamlearn.agents.checkpoint import CachedComponent, open_checkpoint
from streamlearn.config import Settings
from streamlearn.drift import DataDriftMonitor
from streamlearn.models.envelope import seal
from streamlearn.records import Event
from streamlearn.tables import StateCache
from streamlearn.tables.context import bytes_table
from streamlearn.tables.marks import OffsetMarks
from streamlearn.topics import Topics
from streamlearn.web.metrics import Metrics

logger = logging.getLogger(__name__)


class KeyDrift:
    """A key's data drift state with the offset marks of the events it applied."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.model_version: int | None = None
        self.marks = OffsetMarks()
        self.records = 0


class DriftComponent(CachedComponent[KeyDrift]):
    """Feeds every event's values to its key's data drift monitor; publishes records."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        topics: Topics,
        metrics: Metrics,
        models: Any = None,
    ):
        self.settings = settings
        self.monitor = DataDriftMonitor(settings.drift_config())
        self.models = models  # the ModelComponent: its versions restart references
        self.pinned = settings.drift_reference_from_ms is not None
        self.key = settings.signing_key()
        self.table = bytes_table(
            app,
            "drift",
            settings.topic_partitions,
            "Data drift state per key (signed pickle), with offset marks.",
        )
        self.cache: StateCache[KeyDrift] = StateCache(
            self.table, decode=self.decode, encode=self.encode, factory=self.new_state
        )
        self.drift = topics.drift
        self.metrics = metrics
        self.out = metrics.events_out.labels(topic=topics.drift.get_topic_name())
        self.replays = metrics.replayed_skipped.labels(agent="drift")

    def new_state(self) -> KeyDrift:
        return KeyDrift(self.monitor.new_state())

    def encode(self, state: KeyDrift) -> bytes:
        return seal(state, self.key, "drift")

    def decode(self, raw: bytes) -> KeyDrift:
        return open_checkpoint(
            raw,
            self.key,
            KeyDrift,
            self.new_state,
            self.metrics,
            "drift checkpoint (the key's reference restarts)",
        )

    def on_event(self, event: Event, source: EventT, now_s: float) -> None:
        state = self.cache.get(event.key, source)
        if not state.marks.accept(event.src_partition, event.src_offset):
            self.replays.inc()
            return
        self.cache.mark_dirty(event.key, source)
        if self.models is not None and not self.pinned:
            version = self.models.version_of(event.key, source.message.partition)
            if version != state.model_version:
                if state.model_version is not None:
                    self.monitor.reset_reference(state.data)
                state.model_version = version
        for record in self.monitor.update(state.data, event.key, event.values, event.ts_ms):
            doc = record.to_dict()
            if self.models is not None:
                doc["model_version"] = state.model_version
            self.drift.send_soon(key=event.key.encode(), value=orjson.dumps(doc))
            self.out.inc()
            self.metrics.drift_alerts.labels(kind="data").inc()
            state.records += 1
