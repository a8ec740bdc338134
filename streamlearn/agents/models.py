"""Online models: predict on every event, learn on inline or delayed labels.

Model state (:class:`~streamlearn.models.online.ModelState`: learner, metrics, pending
predictions, per-key feature state, offset marks of events and labels) is one value per
keyed partition (``model_scope="global"``) or per key (``"key"``) in the ``models``
table, signed and checkpointed once per batch for the states the batch touched, before
the batch's offsets are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
from typing import Any

import faust
import orjson
from faust.types import EventT

from streamlearn.agents.checkpoint import open_checkpoint
from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.models.envelope import seal
from streamlearn.models.features import FeaturePipeline
from streamlearn.models.online import LabelError, ModelState, OnlineModel
from streamlearn.records import DeadLetter, ErrorCode, Event, LabelRecord
from streamlearn.registry.errors import ConcurrentChangeError
from streamlearn.tables import StateCache
from streamlearn.tables.cache import MAX_STATE_BYTES
from streamlearn.tables.context import bytes_table
from streamlearn.topics import Topics
from streamlearn.web.metrics import Metrics

logger = logging.getLogger(__name__)

#: Who the registry records for the stream's own promotions.
AUTO_ACTOR = "streamlearn (auto)"


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
        self.drift_topic = topics.drift
        self.model_events = topics.model_events
        self.registry: Any = None  # the worker's RegistryClient, when there is one
        self.promotions: list[tuple[str, bytes, dict[str, Any]]] = []
        self._tasks: set[asyncio.Future[None]] = set()
        self._registry_revision: int | None = None
        self._candidates: dict[int, bytes] = {}  # staging versions: pickled learners
        self._production: tuple[int, bytes] | None = None  # production chosen by a person
        self._skipped: set[int] = set()
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
        return open_checkpoint(
            raw,
            self.key,
            ModelState,
            self.model.new_state,
            self.metrics,
            "model checkpoint (the model starts over)",
        )

    def state_key(self, key: str, partition: int) -> str:
        return key if self.per_key else shard_key(partition)

    def version_of(self, key: str, partition: int) -> int | None:
        """The champion version serving ``key`` (the state is cached: the event was just
        predicted), or None when there is no state yet."""
        state = self.cache.peek(self.state_key(key, partition))
        return state.champion.version if state is not None else None

    # --- stream ------------------------------------------------------------------------
    def on_event(self, event: Event, source: EventT, now_s: float) -> None:
        name = self.state_key(event.key, source.message.partition)
        state = self.cache.get(name, source)
        if not state.event_marks.accept(event.src_partition, event.src_offset):
            self.replays.inc()
            return
        self.cache.mark_dirty(name, source)
        if self._candidates or self._production is not None:
            self._apply_registry(state, event.key, event.ts_ms)
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
        if state.outbox:
            self._publish_lifecycle(state, name)

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
        if state.outbox:
            self._publish_lifecycle(state, name)

    def _publish_lifecycle(self, state: ModelState, name: str) -> None:
        """Publish drift, degradation and promotion records, in the batch that made them.

        Drift and degradation records go to the drift topic, promotions and challenger
        events to the model-events topic; a promotion is also queued for the registry.
        """
        where = display_name(name)
        for record in self.model.drain(state):
            record.setdefault("model_state", where)
            kind = record.get("type")
            value = orjson.dumps(record)
            key = (record.get("key") or where).encode()
            if kind in ("drift", "degradation"):
                self.drift_topic.send_soon(key=key, value=value)
                if kind == "drift":
                    self.metrics.drift_alerts.labels(kind="concept").inc()
                else:
                    self.metrics.model_degradations.inc()
            else:
                self.model_events.send_soon(key=key, value=value)
                if record.get("event") == "promotion":
                    self.metrics.model_promotions.inc()
                    if self.registry is not None:
                        artifact = seal(state.learner, self.key, "river")
                        self.promotions.append((where, artifact, record))

    def _dead_letter(
        self, exc: LabelError, key: str, value: bytes, topic: str, partition: int, offset: int
    ) -> None:
        code = ErrorCode(exc.code)
        source_topic = self.labels_topic if topic == "labels" else self.settings.topic("events")
        letter = DeadLetter(code, str(exc), source_topic, partition, offset)
        self.deadletter.send_soon(key=key.encode(), value=value, headers=letter.headers())
        self.metrics.dead_letters.labels(reason=code.value).inc()

    def on_batch_end(self, now_s: float) -> None:
        if self.promotions and self.registry is not None:
            promotions, self.promotions = self.promotions, []
            task = asyncio.ensure_future(self._record_promotions(promotions))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _record_promotions(self, promotions: list[tuple[str, bytes, dict[str, Any]]]) -> None:
        """Register each promoted champion and make it the production version.

        At least once: a promotion replayed after a crash finds its version by its
        ``training_data`` reference (which holds the record's dedup key) and is not
        registered twice. Concurrent changes (other partitions promoting) are retried; a
        registry outage is logged and the stream goes on.
        """
        for where, artifact, record in promotions:
            for attempt in range(5):
                try:
                    await self._record_promotion(where, artifact, record)
                    self.metrics.registry_recorded.inc()
                    break
                except ConcurrentChangeError:
                    await asyncio.sleep(0.2 * (attempt + 1))
                except Exception as exc:
                    logger.warning(
                        "could not record promotion %s in the registry: %s",
                        record["dedup_key"],
                        exc,
                    )
                    break
            else:
                logger.warning(
                    "could not record promotion %s in the registry: it kept changing",
                    record["dedup_key"],
                )

    async def _record_promotion(self, where: str, artifact: bytes, record: dict[str, Any]) -> None:
        registry = self.registry
        assert registry is not None
        reference = f"stream:{self.settings.topic('events')}:{where}:{record['dedup_key']}"
        await registry.wait_ready(30.0)
        await registry.sync()
        known = None
        with contextlib.suppress(StreamlearnError):
            for version in registry.entry(self.model.name).versions.values():
                if version.training_data == reference:
                    known = version
        if known is None:
            evidence = record.get("evidence", {})
            known = await registry.register_blob(
                self.model.name,
                artifact,
                params={
                    "learner": self.settings.model_learner,
                    "params": dict(self.settings.model_params),
                    "features": dict(self.settings.model_features),
                    "task": self.settings.model_task,
                },
                metrics={k: v for k, v in evidence.items() if isinstance(v, int | float)},
                training_data=reference,
                created_by=AUTO_ACTOR,
                description=record.get("message", ""),
            )
        if known.stage != "production" and not any(
            change.stage == "production" for change in known.history
        ):
            await registry.promote(
                self.model.name,
                known.version,
                "production",
                by=AUTO_ACTOR,
                why=record.get("message", "champion/challenger promotion"),
            )

    def on_timer(self, now_s: float) -> None:
        self._sync_registry()
        if self.per_key:
            return
        gauge = self.metrics.model_metric
        for name, state in self.cache.items():
            partition = display_name(name).removeprefix("partition-")
            self.metrics.model_version.labels(model=self.model.name, partition=partition).set(
                state.champion.version
            )
            self.metrics.model_challengers.labels(model=self.model.name, partition=partition).set(
                len(state.challengers)
            )
            for metric, value in self.model.metrics(state).items():
                if value is not None:
                    gauge.labels(model=self.model.name, metric=metric, partition=partition).set(
                        value
                    )

    # --- the registry: candidates and production -----------------------------------------
    def _sync_registry(self) -> None:
        """Load new staging candidates and a production version a person chose.

        Only River artifacts (``kind`` river) can run on the stream's features; others
        are skipped with a warning, once. Applied to each state at its next event.
        """
        registry = self.registry
        if registry is None or not registry.ready:
            return
        try:
            entry = registry.entry(self.model.name)
        except (LookupError, StreamlearnError):
            return
        if entry.revision == self._registry_revision:
            return
        self._registry_revision = entry.revision
        candidates: dict[int, bytes] = {}
        production: tuple[int, bytes] | None = None
        for version in entry.versions.values():
            wanted = version.stage == "staging" or (
                version.stage == "production"
                and version.history
                and version.history[-1].by != AUTO_ACTOR
            )
            if not wanted:
                continue
            if version.artifact.kind != "river":
                if version.version not in self._skipped:
                    self._skipped.add(version.version)
                    logger.warning(
                        "registry: %s v%d is a %s artifact; only river models run in the stream",
                        self.model.name,
                        version.version,
                        version.artifact.kind,
                    )
                continue
            try:
                blob = pickle.dumps(registry.load(version), protocol=5)
            except Exception as exc:
                if version.version not in self._skipped:
                    self._skipped.add(version.version)
                    logger.error(
                        "registry: %s v%d refused: %s", self.model.name, version.version, exc
                    )
                continue
            if version.stage == "staging":
                candidates[version.version] = blob
            else:
                production = (version.version, blob)
        self._candidates = candidates
        self._production = production

    def _apply_registry(self, state: ModelState, key: str, ts_ms: int) -> None:
        """Start challengers for new candidates; adopt a production version set by hand."""
        lifecycle = self.model.lifecycle
        if self._production is not None and lifecycle is not None:
            version, blob = self._production
            if state.registry_version != version:
                lifecycle.adopt(state, pickle.loads(blob), f"registry:v{version}", ts_ms, key)
                state.registry_version = version
        for version, blob in self._candidates.items():
            if version not in state.candidates_seen:
                state.candidates_seen.add(version)
                if lifecycle is not None:
                    lifecycle.challenge(state, pickle.loads(blob), f"candidate:v{version}", ts_ms)

    def flush_state(self) -> None:
        self.cache.flush()

    def on_rebalance(self) -> None:
        self.cache.clear()

    # --- queries -----------------------------------------------------------------------
    def state_of(self, name: str) -> ModelState | None:
        return self.cache.lookup(name)

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

    def report_all(self, from_ts: int | None, to_ts: int | None) -> dict[str, Any]:
        """Each local state's performance report within [from_ts, to_ts)."""
        return {
            display_name(name): self.model.report(state, from_ts, to_ts)
            for name, state in self.local_states()
        }

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
