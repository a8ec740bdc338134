"""Event-time windows per key and value: watermark, grace, late events, idle close.

Each keyed-topic partition has a :class:`~streamlearn.tables.watermark.Watermark` (the
minimum over source partitions of the newest event time, minus ``window_lateness_ms``).
A window closes, and its one final record goes to the aggregates topic and the series
store, when the watermark passes its end + ``window_grace_ms``. A partition with no
events for ``window_idle_timeout_s`` (and nothing left to read) closes all its windows.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import faust
import orjson
from aiokafka.partitioner import murmur2
from faust.types import EventT

from streamlearn.config import Settings
from streamlearn.records import DeadLetter, ErrorCode, Event
from streamlearn.tables import StateCache
from streamlearn.tables.context import PartitionEvent, as_current_event, bytes_table
from streamlearn.tables.series import SEP, SeriesStore
from streamlearn.tables.watermark import NO_WATERMARK, Watermark
from streamlearn.tables.windows import APPLIED, LATE, KeyWindows
from streamlearn.topics import Topics
from streamlearn.web.metrics import Metrics

logger = logging.getLogger(__name__)


def partition_for_key(key: str, partitions: int) -> int:
    """The keyed-topic partition of ``key`` (Kafka's default partitioner)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class WindowsComponent:
    """Keeps a :class:`KeyWindows` per key in the ``windows`` table."""

    def __init__(self, app: faust.App, settings: Settings, topics: Topics, metrics: Metrics):
        self.app = app
        self.specs = settings.window_specs()
        self.lateness_ms = settings.window_lateness_ms  # inside Watermark
        self.grace_ms = settings.window_grace_ms
        self.idle_timeout_s = settings.window_idle_timeout_s
        self.retention_ms = settings.series_retention_ms
        self.retention_check_s = settings.series_retention_check_s
        self._logged_waiting_at = -1e9
        self.next_retention_s = 0.0
        self.source_idle_timeout_s = settings.window_source_idle_timeout_s
        self.partitions = settings.topic_partitions
        self.keyed_topic = topics.keyed.get_topic_name()
        self.events_topic = topics.events.get_topic_name()
        self.table = bytes_table(
            app,
            "windows",
            settings.topic_partitions,
            "Open event-time windows per key (KeyWindows), with offset marks.",
        )
        # Watermark per keyed-topic partition, so late detection survives restarts.
        self.watermarks = bytes_table(
            app, "watermarks", settings.topic_partitions, "Event-time watermark per partition."
        )
        self.series = SeriesStore(
            bytes_table(
                app,
                "series",
                settings.topic_partitions,
                "Closed windows by key, value, spec and start (the query API's store).",
            ),
            self.keyed_topic,
        )
        self.cache: StateCache[KeyWindows] = StateCache(
            self.table, decode=KeyWindows.from_bytes, encode=KeyWindows.to_bytes, factory=KeyWindows
        )
        self.aggregates = topics.aggregates
        self.deadletter = topics.deadletter
        self.metrics = metrics
        self.out = metrics.events_out.labels(topic=topics.aggregates.get_topic_name())
        self.late = metrics.dead_letters.labels(reason=ErrorCode.LATE.value)
        self.late_events = metrics.late_events
        self.replays = metrics.replayed_skipped.labels(agent="windows")
        self._reset()

    def _reset(self) -> None:
        self.cache.clear()
        self.watermark: dict[int, Watermark] = {}
        self.last_event_s: dict[int, float] = {}
        # partition -> key -> watermark at which its earliest open window closes
        self.due: dict[int, dict[str, int]] = defaultdict(dict)
        self.touched: dict[int, set[str]] = defaultdict(set)
        self.changed_watermarks: set[int] = set()
        self.scanned = False

    # --- per event ---------------------------------------------------------------
    def on_event(self, event: Event, source: EventT, now_s: float) -> None:
        if not self.scanned:
            self._scan_state(now_s)
        partition = source.message.partition
        tracker = self.watermark.get(partition)
        if tracker is None:
            tracker = self._load_watermark(partition, source, now_s)
        tracker.observe(event.src_partition, event.ts_ms, now_s, event.src_partitions)
        watermark = tracker.current(now_s)
        self.changed_watermarks.add(partition)
        self.last_event_s[partition] = now_s
        state = self.cache.get(event.key, source)
        outcome = state.apply(event, self.specs, watermark, self.grace_ms)
        if outcome == APPLIED:
            self.cache.mark_dirty(event.key, source)
            self.touched[partition].add(event.key)
        elif outcome == LATE:
            self._dead_letter_late(event, watermark)
        else:
            self.replays.inc()

    def _dead_letter_late(self, event: Event, watermark: int) -> None:
        reason = (
            f"event time {event.ts_ms} is too late: its window has closed "
            f"(watermark {watermark}, grace {self.grace_ms} ms)"
        )
        letter = DeadLetter(
            ErrorCode.LATE, reason, self.events_topic, event.src_partition, event.src_offset
        )
        self.deadletter.send_soon(
            key=event.key.encode(), value=event.to_keyed(), headers=letter.headers()
        )
        self.late.inc()
        self.late_events.inc()

    # --- batch end: close what the watermark passed, write state -------------------
    def on_batch_end(self, now_s: float) -> None:
        for partition, keys in self.touched.items():
            due = self.due[partition]
            for key in keys:
                state = self.cache.get(key, PartitionEvent(self.keyed_topic, partition))
                next_close = state.next_close_ms(self.specs, self.grace_ms)
                if next_close is None:
                    due.pop(key, None)
                else:
                    due[key] = next_close
        self.touched.clear()
        for partition in self.changed_watermarks:
            self._close_due(partition, self.watermark[partition].current(now_s))

    def flush_state(self) -> None:
        for partition in self.changed_watermarks:
            with as_current_event(PartitionEvent(self.keyed_topic, partition)):
                self.watermarks[b"%d" % partition] = self.watermark[partition].to_bytes()
        self.changed_watermarks.clear()
        self.cache.flush()

    def _close_due(self, partition: int, watermark: int | None) -> None:
        """Close windows of ``partition`` up to ``watermark`` (None: every open window)."""
        due = self.due.get(partition)
        if not due:
            return
        context = PartitionEvent(self.keyed_topic, partition)
        for key in [k for k, at in due.items() if watermark is None or at <= watermark]:
            state = self.cache.get(key, context)
            for record, stats in state.close(key, self.specs, self.grace_ms, watermark):
                self.aggregates.send_soon(key=key.encode(), value=orjson.dumps(record))
                self.series.put(partition, record, stats)
                self.out.inc()
            self.cache.mark_dirty(key, context)
            next_close = state.next_close_ms(self.specs, self.grace_ms)
            if next_close is None:
                del due[key]
            else:
                due[key] = next_close

    # --- timer: idle partitions -----------------------------------------------------
    def on_timer(self, now_s: float) -> None:
        if not self.scanned:
            if self.app.in_recovery or not self.app.tables.recovery.completed.is_set():
                return
            self._scan_state(now_s)
        idle = [
            p
            for p, last in self.last_event_s.items()
            if now_s - last >= self.idle_timeout_s and self.due.get(p)
        ]
        # No events for a while is not idleness while a backlog waits: after a restart
        # the ingest agent can drain the events topic for many seconds before the keyed
        # topic gets a turn. Close idle windows only when this worker has read everything.
        if idle and not self._caught_up():
            idle = []
        for partition in idle:
            self._close_due(partition, None)  # the pipeline writes the state after a flush
        self.metrics.windows_open.set(self.open_windows())
        self._report_watermarks(now_s)
        if now_s >= self.next_retention_s:
            self.next_retention_s = now_s + self.retention_check_s
            self.expire_series(now_s)

    def expire_series(self, now_s: float) -> int:
        """Delete closed windows older than the retention (event time, per partition)."""
        horizon = {p: t.current(now_s) - self.retention_ms for p, t in self.watermark.items()}
        doomed = []
        for _, raw_key, _ in self.series.entries():
            parts = raw_key.split(SEP)
            if len(parts) != 4 or not parts[3].isdigit():
                continue  # the store's own bookkeeping (e.g. Faust's persisted offsets)
            key = parts[0].decode()
            partition = partition_for_key(key, self.partitions)
            start = int(parts[3])
            if partition in horizon and start < horizon[partition]:
                doomed.append((partition, raw_key))
        for partition, raw_key in doomed:
            self.series.delete(partition, raw_key)
        return len(doomed)

    def _report_watermarks(self, now_s: float) -> None:
        for partition, tracker in self.watermark.items():
            watermark = tracker.current(now_s)
            if watermark != NO_WATERMARK:
                gauge = self.metrics.watermark_lag.labels(partition=str(partition))
                gauge.set(round(now_s - watermark / 1000, 3))

    def on_rebalance(self) -> None:
        self._reset()
        self.metrics.watermark_lag.clear()  # partitions this worker may no longer own

    # --- state loading ----------------------------------------------------------------
    def _load_watermark(self, partition: int, source: EventT, now_s: float) -> Watermark:
        tracker = Watermark(
            self.lateness_ms,
            self.source_idle_timeout_s,
            started_s=now_s,
            unheard_timeout_s=self.idle_timeout_s,
        )
        with as_current_event(source):
            tracker.load(self.watermarks.get(b"%d" % partition), now_s)
        self.watermark[partition] = tracker
        return tracker

    def _scan_state(self, now_s: float) -> None:
        """After (re)assignment: index every key with open windows, so windows of keys
        that see no new event still close (by the idle timeout at the latest)."""
        self.scanned = True
        started = time.monotonic()
        for raw_key, raw in self.table.items():
            if raw is None:
                continue
            key = raw_key.decode()
            state = KeyWindows.from_bytes(raw)
            next_close = state.next_close_ms(self.specs, self.grace_ms)
            if next_close is not None:
                partition = partition_for_key(key, self.partitions)
                self.due[partition][key] = next_close
                self.last_event_s.setdefault(partition, now_s)
                self.cache.put(key, state)
        self.metrics.state_scan_seconds.observe(time.monotonic() - started)

    def _caught_up(self) -> bool:
        """True when this worker has read every record of its events and keyed partitions."""
        consumer = self.app.consumer
        topics = {self.events_topic, self.keyed_topic}
        try:
            for tp in self.app.assignor.assigned_actives():
                if tp.topic not in topics:
                    continue
                highwater = consumer.highwater(tp)
                if highwater is None:
                    return False
                # Faust's read and committed positions (its monitor reads the same maps).
                read = consumer._read_offset.get(tp)
                committed = consumer._committed_offset.get(tp)
                position = max(read + 1 if read is not None else 0, committed or 0)
                if position < highwater:
                    self._log_waiting(f"{tp.topic}:{tp.partition} at {position} of {highwater}")
                    return False
        except Exception:  # consumer not started or rebalancing: not idle yet
            return False
        return True

    def _log_waiting(self, where: str) -> None:
        now = time.monotonic()
        if now - self._logged_waiting_at >= 60:
            self._logged_waiting_at = now
            logger.info("idle partitions keep their windows open: still reading %s", where)

    def open_windows(self) -> int:
        return sum(state.open_windows() for _, state in self.cache.items())
