"""Anomaly scoring of every keyed event; one alert per episode to the anomalies topic.

Each key's :class:`~streamlearn.models.anomaly.scorer.KeyState` (detector,
calibration, episode, offset marks) lives in the ``anomaly`` table, pickled inside a
signed envelope and written once per batch for the keys the batch touched, before the
batch's offsets are committed. A replayed event (offset at or below the key's mark) is
skipped, so after kill -9 every event has been learned exactly once.
"""

from __future__ import annotations

import logging
import time

import faust
import orjson
from faust.types import EventT

from streamlearn.agents.checkpoint import CachedComponent, open_checkpoint
from streamlearn.config import Settings
from streamlearn.models.anomaly.defaults import detector_factory
from streamlearn.models.anomaly.scorer import KeyState, Scorer
from streamlearn.models.envelope import seal
from streamlearn.records import Event
from streamlearn.tables import StateCache
from streamlearn.tables.context import bytes_table
from streamlearn.topics import Topics
from streamlearn.web.metrics import Metrics

logger = logging.getLogger(__name__)

#: Time one event in this many (a histogram observation costs about a microsecond).
TIMING_SAMPLE = 64


class AnomalyComponent(CachedComponent[KeyState]):
    """Scores events with a per-key detector and publishes alerts (and scores, optionally)."""

    def __init__(self, app: faust.App, settings: Settings, topics: Topics, metrics: Metrics):
        self.settings = settings
        self.scorer = Scorer(
            detector_factory(settings.anomaly_detector, settings.anomaly_params),
            settings.alert_policy(),
            settings.anomaly_detector,
        )
        self.key = settings.signing_key()
        self.table = bytes_table(
            app,
            "anomaly",
            settings.topic_partitions,
            "Anomaly detector state per key (signed pickle), with offset marks.",
        )
        self.cache: StateCache[KeyState] = StateCache(
            self.table, decode=self.decode, encode=self.encode, factory=self.scorer.new_state
        )
        self.anomalies = topics.anomalies
        self.scores = topics.scores if settings.anomaly_emit_scores else None
        self.metrics = metrics
        self.alerts_out = metrics.events_out.labels(topic=topics.anomalies.get_topic_name())
        self.scores_out = metrics.events_out.labels(topic=topics.scores.get_topic_name())
        self.replays = metrics.replayed_skipped.labels(agent="anomaly")
        self._n = 0

    def encode(self, state: KeyState) -> bytes:
        return seal(state, self.key, "anomaly")

    def decode(self, raw: bytes) -> KeyState:
        return open_checkpoint(
            raw,
            self.key,
            KeyState,
            self.scorer.new_state,
            self.metrics,
            "detector checkpoint (the key starts over)",
        )

    def on_event(self, event: Event, source: EventT, now_s: float) -> None:
        state = self.cache.get(event.key, source)
        if not state.marks.accept(event.src_partition, event.src_offset):
            self.replays.inc()
            return
        self._n += 1
        timed = self._n % TIMING_SAMPLE == 0
        started = time.perf_counter() if timed else 0.0
        scored = self.scorer.process(state, event.key, event.values, event.ts_ms, event.id)
        if timed:
            self.metrics.anomaly_score_seconds.observe(time.perf_counter() - started)
        self.cache.mark_dirty(event.key, source)
        key = event.key.encode()
        if scored.is_anomaly:
            self.metrics.anomalies.inc()
        if scored.alert is not None:
            self.anomalies.send_soon(key=key, value=orjson.dumps(scored.alert))
            self.alerts_out.inc()
            self.metrics.alerts.labels(severity=scored.alert["severity"]).inc()
        if self.scores is not None:
            record = {
                "key": event.key,
                "event_id": event.id,
                "ts": event.ts_ms,
                "score": scored.score,
                "raw_score": scored.raw_score,
                "is_anomaly": scored.is_anomaly,
            }
            self.scores.send_soon(key=key, value=orjson.dumps(record))
            self.scores_out.inc()
