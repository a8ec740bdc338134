"""Feeds for the dashboard and Prometheus: the alert feed, throughput history, lag, sizes.

- :class:`AlertFeed` tails the alert topics (anomalies, drift, model events) in full,
  from ``alert_feed_lookback_s`` ago, without a consumer group: every worker holds
  the same recent alerts, so any worker answers ``GET /api/v1/alerts``.
- :class:`Observer` samples every ``overview_sample_s``: consumer lag per partition,
  the counters the overview's charts show, the size of each table's local store and
  the registry's production versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from streamlearn.monitor import AlertBuffer, History, Sample, dir_bytes, partition_lag
from streamlearn.topics import partition_count

if TYPE_CHECKING:
    import faust

    from streamlearn.config import Settings
    from streamlearn.registry import RegistryClient
    from streamlearn.web.metrics import Metrics

log = logging.getLogger(__name__)


class AlertFeed:
    """The recent alerts of the whole app, read from the alert topics."""

    def __init__(self, settings: Settings, topics: list[str]) -> None:
        self.settings = settings
        self.topics = topics
        self.buffer = AlertBuffer(settings.alert_feed_max)
        self.ready = asyncio.Event()
        self.invalid = 0  # records that are not JSON objects (skipped)

    def add(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        try:
            record = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            self.invalid += 1
            return
        record.setdefault("topic", topic)
        record.setdefault("partition", partition)
        record.setdefault("offset", offset)
        self.buffer.add(record)

    async def run(self) -> None:
        """Tail until cancelled; reconnect after errors (Kafka away, topics not there)."""
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.settings.bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=250,
                **self.settings.kafka_client_options(),
            )
            try:
                await consumer.start()
                await self._tail(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # aiokafka raises several unrelated types
                log.warning("alert feed: %r; reconnecting in 5 s", exc)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(5)

    async def _partitions(self) -> list[TopicPartition]:
        while True:
            counts = {t: await partition_count(self.settings, t) for t in self.topics}
            if all(counts.values()):
                return [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
            await asyncio.sleep(2)  # a topic the workers have not created yet

    async def _tail(self, consumer: AIOKafkaConsumer) -> None:
        partitions = await self._partitions()
        consumer.assign(partitions)
        since_ms = int((time.time() - self.settings.alert_feed_lookback_s) * 1000)
        starts = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            found = starts.get(tp)
            consumer.seek(tp, found.offset if found is not None else ends[tp])
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=2_000)
            for tp, records in batches.items():
                for record in records:
                    self.add(tp.topic, tp.partition, record.offset, record.value)
            if not self.ready.is_set():
                positions = [await consumer.position(tp) for tp in partitions]
                if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                    self.ready.set()


class Observer:
    """Samples lag, counter totals, table sizes and registry versions for the overview."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        metrics: Metrics,
        registry: RegistryClient | None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.registry = registry
        self.history = History(span_s=settings.overview_history_s)
        self.lag: dict[tuple[str, int], int] = {}
        self.sizes: dict[str, int] = {}
        self._lag_labels: set[tuple[str, str]] = set()

    def sample(self, now_s: float | None = None) -> Sample:
        now_s = time.time() if now_s is None else now_s
        self.lag = self.consumer_lag()
        labels = set()
        for (topic, partition), lag in self.lag.items():
            label = (topic, str(partition))
            labels.add(label)
            self.metrics.consumer_lag.labels(*label).set(lag)
        for gone in self._lag_labels - labels:  # revoked partitions
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(*gone)
        self._lag_labels = labels
        sample = Sample(
            ts_ms=int(now_s * 1000),
            events_in=counter_total(self.metrics.events_in),
            events_out=counter_total(self.metrics.events_out),
            dead_letters=counter_total(self.metrics.dead_letters),
            lag=sum(self.lag.values()),
        )
        self.history.add(sample)
        self.sizes = self.state_sizes()
        for table, size in self.sizes.items():
            self.metrics.state_bytes.labels(table=table).set(size)
        self.production_versions()
        return sample

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """Lag of each partition of the source topics this worker is assigned."""
        consumer = self.app.consumer
        try:
            assigned = consumer.assignment()
        except Exception:  # not started, or between rebalances
            return {}
        # The consumer's own record of committed offsets: filled from the broker when
        # partitions are assigned and updated at every commit. (Faust's monitor forgets
        # its offsets at each rebalance and learns them again only at the next commit.)
        committed = getattr(consumer, "_committed_offset", None) or {}
        monitored = self.app.monitor.tp_committed_offsets
        read = self.app.monitor.tp_read_offsets
        out = {}
        for tp in assigned:
            if tp.topic.endswith("-changelog"):
                continue  # standby/recovery reads, not the app's input
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # a partition being revoked
                continue
            done = committed.get(tp)
            lag = partition_lag(
                highwater, done if done is not None else monitored.get(tp), read.get(tp)
            )
            if lag is not None:
                out[(tp.topic, tp.partition)] = lag
        return out

    def state_sizes(self) -> dict[str, int]:
        tabledir = self.app.conf.tabledir
        return {
            name: dir_bytes_glob(tabledir, f"{table.name}-*.db")
            for name, table in self.app.tables.items()
        }

    def production_versions(self) -> None:
        registry = self.registry
        if registry is None or not registry.ready:
            return
        for entry in registry.entries():
            version = entry.production()
            if version is not None:
                self.metrics.registry_production.labels(model=entry.name).set(version.version)
            else:
                with contextlib.suppress(KeyError):
                    self.metrics.registry_production.remove(entry.name)


def dir_bytes_glob(parent: Any, pattern: str) -> int:
    return sum(dir_bytes(path) for path in parent.glob(pattern))


def counter_total(counter: Any) -> float:
    """Sum of a labelled counter over its label values (its ``_total`` samples)."""
    total = 0.0
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                total += sample.value
    return total


def register_observer(
    app: faust.App,
    settings: Settings,
    metrics: Metrics,
    registry: RegistryClient | None,
    alert_topics: list[str],
) -> tuple[Observer, AlertFeed]:
    observer = Observer(app, settings, metrics, registry)
    feed = AlertFeed(settings, alert_topics)
    app.task(feed.run)

    @app.timer(interval=settings.overview_sample_s, name="streamlearn.observe")
    async def sample() -> None:
        try:
            observer.sample()
        except Exception:
            # A timer that raises stops the worker: log and sample again next time.
            log.exception("sampling the overview failed")

    return observer, feed
