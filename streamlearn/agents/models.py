"""Online models: predict on every event, learn on inline or delayed labels.

Model state (:class:`~streamlearn.models.online.ModelState`: learner, metrics, pending
predictions, per-key feature state, offset marks of events and labels) is one value per
keyed partition (``model_scope="global"``) or per key (``"key"``) in the ``models``
table, signed and checkpointed once per batch for the states the batch touched, before
the batch's offsets are committed.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson
from faust.types import EventT

from streamlearn.config import Settings
from streamlearn.models.envelope import open_envelope, seal
from streamlearn.models.features import FeaturePipeline
from streamlearn.models.online import LabelError, ModelState, OnlineModel
from streamlearn.records import DeadLetter, ErrorCode, Event, LabelRecord
from streamlearn.tables import StateCache
from streamlearn.tables.cache import MAX_STATE_BYTES
from streamlearn.tables.context import bytes_table
from streamlearn.topics import Topics
from streamlearn.web.metrics import Metrics

logger = logging.getLogger(__name__)


def shard_key(partition: int) -> str:
    """The table key of a partition's global model (unique per partition, any store)."""
    return f"\x00model:{partition}"


class ModelComponent:
    """Predicts every event, publishes predictions, learns from labels."""

    def __init__(self, app: faust.App, settings: Settings, topics: Topics, metrics: Metrics):
        self.settings = settings
        self.model = OnlineModel(settings.online_model_config())
        self.features = FeaturePipeline(settings.model_features)
        self.per_key = settings.model_scope == "key"
        self.offline = None  # a scikit-learn model saved by `streamlearn train --save`
        if settings.model_serve_path is not None:
            from streamlearn.models.offline import load_model

            self.offline = load_model(settings.model_serve_path, settings.signing_key())
        self.delayed = settings.model_delayed_labels
        self.key = settings.signing_key()
        self.table = bytes_table(
            app,
            "models",
            settings.topic_partitions,
            "Online model state per partition or key (signed pickle), with offset marks.",
        )
        self.cache: StateCache[ModelState] = StateCache(
            self.table, decode=self.decode, encode=self.encode, factory=self.model.new_state
        )
        self.predictions = topics.predictions
        self.deadletter = topics.deadletter
        self.labels_topic = topics.labels.get_topic_name()
        self.metrics = metrics
        self.out = metrics.events_out.labels(topic=topics.predictions.get_topic_name())
        self.replays = metrics.replayed_skipped.labels(agent="models")

    # --- state codec -------------------------------------------------------------------
    def encode(self, state: ModelState) -> bytes:
        blob = seal(state, self.key, "model")
        while len(blob) > MAX_STATE_BYTES and state.pending:
            # Too many predictions waiting for labels to checkpoint: expire the oldest half.
            dropped = self.model.drop_oldest_pending(state, max(1, len(state.pending) // 2))
            logger.warning(
                "model state over %d bytes: expired the %d oldest pending predictions "
                "(lower model_pending_max or model_label_ttl_ms)",
                MAX_STATE_BYTES,
                dropped,
            )
            blob = seal(state, self.key, "model")
        return blob

    def decode(self, raw: bytes) -> ModelState:
        try:
            state = open_envelope(raw, self.key)
            if not isinstance(state, ModelState):
                raise TypeError(f"expected ModelState, found {type(state).__name__}")
        except Exception as exc:
            logger.error("discarding a model checkpoint (the model starts over): %s", exc)
            self.metrics.checkpoint_rejected.inc()
            return self.model.new_state()
        return state

    def state_key(self, key: str, partition: int) -> str:
        return key if self.per_key else shard_key(partition)

    # --- stream ------------------------------------------------------------------------
    def on_event(self, event: Event, source: EventT, now_s: float) -> None:
        name = self.state_key(event.key, source.message.partition)
        state = self.cache.get(name, source)
        if not state.event_marks.accept(event.src_partition, event.src_offset):
            self.replays.inc()
            return
        self.cache.mark_dirty(name, source)
        key_features = state.features.get(event.key)
        fresh = self.features.state_for(key_features)  # new if the configuration changed
        if fresh is not key_features:
            key_features = state.features[event.key] = fresh
        x = self.features.transform(event, key_features)
        self.features.update(event, key_features)
        learned = state.learned
        prediction, error = self.model.predict_event(
            state, event.key, event.id, event.ts_ms, x, event.label, hold=self.delayed
        )
        if state.learned > learned:
            self.metrics.model_learned.inc()
        if error is not None:
            # The prediction stands; the unusable label is dead-lettered, nothing learned.
            self._dead_letter(
                error, event.key, event.to_keyed(), "events", event.src_partition, event.src_offset
            )
        self.predictions.send_soon(key=event.key.encode(), value=orjson.dumps(prediction.to_dict()))
        self.out.inc()

    def on_label(self, label: LabelRecord, source: EventT, now_s: float) -> None:
        name = self.state_key(label.key, source.message.partition)
        state = self.cache.get(name, source)
        if not state.label_marks.accept(label.src_partition, label.src_offset):
            self.replays.inc()
            return
        self.cache.mark_dirty(name, source)
        try:
            self.model.apply_label(state, label.id, label.label, label.ts_ms)
            self.metrics.model_learned.inc()
        except LabelError as exc:
            self._dead_letter(
                exc, label.key, label.to_keyed(), "labels", label.src_partition, label.src_offset
            )

    def _dead_letter(
        self, exc: LabelError, key: str, value: bytes, topic: str, partition: int, offset: int
    ) -> None:
        code = ErrorCode(exc.code)
        source_topic = self.labels_topic if topic == "labels" else self.settings.topic("events")
        letter = DeadLetter(code, str(exc), source_topic, partition, offset)
        self.deadletter.send_soon(key=key.encode(), value=value, headers=letter.headers())
        self.metrics.dead_letters.labels(reason=code.value).inc()

    def on_batch_end(self, now_s: float) -> None:
        pass

    def flush_state(self) -> None:
        self.cache.flush()

    def on_timer(self, now_s: float) -> None:
        if self.per_key:
            return
        gauge = self.metrics.model_metric
        for name, state in self.cache.items():
            partition = display_name(name).removeprefix("partition-")
            for metric, value in self.model.metrics(state).items():
                if value is not None:
                    gauge.labels(model=self.model.name, metric=metric, partition=partition).set(
                        value
                    )

    def on_rebalance(self) -> None:
        self.cache.clear()

    # --- queries -----------------------------------------------------------------------
    def state_of(self, name: str) -> ModelState | None:
        state = self.cache.peek(name)
        if state is None:
            raw = self.table.get(name.encode())
            state = self.decode(raw) if raw is not None else None
        return state

    def local_states(self) -> list[tuple[str, ModelState]]:
        """Every model state this worker holds (cached first, then the table)."""
        found: dict[str, ModelState] = dict(self.cache.items())
        for raw_key, raw in self.table.items():
            if raw_key.startswith(b"__faust"):
                continue  # the store's own bookkeeping (persisted offsets)
            name = raw_key.decode()
            if name not in found and raw is not None:
                found[name] = self.decode(raw)
        return sorted(found.items())

    def describe_all(self) -> dict[str, Any]:
        """Each state by a readable name: ``partition-<n>`` (global scope) or the key."""
        return {
            display_name(name): self.model.describe(state) for name, state in self.local_states()
        }


def display_name(name: str) -> str:
    """``partition-3`` for a partition's global model, else the key itself.

    >>> display_name(shard_key(3)), display_name("pump-7")
    ('partition-3', 'pump-7')
    """
    prefix = shard_key(0)[:-1]
    return f"partition-{name[len(prefix) :]}" if name.startswith(prefix) else name
