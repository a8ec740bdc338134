"""Faults against a real broker: the broker dies and comes back; workers join and die.

* Broker faults: a worker runs against a broker of its own; mid-stream the broker's JVM
  gets SIGTERM (a clean shutdown) or SIGKILL (a crash), stays down
  ``STREAMLEARN_FAULT_DOWNTIME_S`` seconds (default 30) and is started again on the same
  data dir, so topics and committed offsets survive. The worker must ride it out by
  itself (the test never restarts it), the group's consumer lag must be 0 within 60 s
  of the broker's return, and the final windows must equal the brute-force truth.
* Rebalance: worker A alone; worker B joins mid-stream; A gets kill -9; A starts again.
  The final windows equal the truth, every event has its prediction (duplicates are
  counted and printed), and everything else test_scale_out checks holds (statistics,
  alerts, drift, checkpoints, no agent trouble).

`make test` runs small inputs; `make chaos` larger ones (STREAMLEARN_FAULT_EVENTS, and
STREAMLEARN_SCALE_EVENTS_PER_KEY for the rebalance). Figures are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import TopicPartition

from streamlearn.agents.windows import partition_for_key
from streamlearn.config import Settings, load_settings
from streamlearn.kafka import LocalBroker, free_port
from streamlearn.topics import _wait_for_leaders
from streamlearn.worker import build_worker
from tests.integration.test_scale_out import EVENTS as SCALE_EVENTS
from tests.integration.test_scale_out import (
    PARTITION,
    Run,
    TakeoverWatch,
    check_sound,
    expected_alerts,
    owned,
    read_outputs,
    scale_settings,
    stop_all,
    wait_split,
)
from tests.integration.test_windows_exact import WINDOW_SETTINGS, final_windows, quiet_for
from tests.integration.truth import compare, make_events, window_truth
from tests.integration.workers import (
    LEAN,
    PacedProducer,
    WorkerProcess,
    agent_trouble,
    consume_until,
    metric,
    unique_settings,
    wait_for,
)

pytestmark = pytest.mark.integration

#: Seconds from the signal to the broker's restart (it then takes a while to be ready).
DOWNTIME_S = float(os.environ.get("STREAMLEARN_FAULT_DOWNTIME_S", "30"))
#: Events of the broker-fault test: half before the fault, half after.
FAULT_EVENTS = int(os.environ.get("STREAMLEARN_FAULT_EVENTS", "3000"))
FAULT_KEYS = 20
#: The group's lag must be 0 within this long after the broker is back.
LAG_ZERO_WITHIN_S = 60.0
#: Longer than the outage and the broker's restart: no events for the idle timeout
#: closes a partition's windows, and an outage would pass for that (events produced
#: after it would then be late). The last windows are closed by far-future "flush"
#: events instead, so the test does not wait for the idle timeout either.
FAULT_IDLE_TIMEOUT_S = DOWNTIME_S + 90.0
FLUSH_PREFIX = "zz-flush-"
#: After the rebalance test's outputs are complete, how long to wait for the group's
#: committed lag to be 0 (reported, not asserted: docs/scaling.md, known limitations).
REBALANCE_LAG_WAIT_S = float(os.environ.get("STREAMLEARN_FAULT_LAG_WAIT_S", "10"))


# --- a broker of the test's own --------------------------------------------------------


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker for this test alone (the session's broker serves other tests)."""
    settings = load_settings()
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    broker = LocalBroker(
        data_dir=tmp_path / "kafka",
        port=port,
        controller_port=controller_port,
        cache_dir=settings.kafka_cache_dir,
        kafka_home=settings.kafka_home,
        heap_mb=settings.kafka_heap_mb,
        partitions=settings.topic_partitions,
    )
    broker.start(timeout_s=180)
    try:
        yield broker
    finally:
        broker.stop()


def signal_broker(broker: LocalBroker, sig: signal.Signals) -> tuple[int, float]:
    """Send ``sig`` to the broker's JVM and wait until it is gone: (pid, seconds taken)."""
    pid = broker._live_pid()
    assert pid is not None, "the broker is not running"
    started = time.monotonic()
    os.kill(pid, sig)
    if not broker._wait_gone(pid, 60):
        raise AssertionError(f"broker pid {pid} still alive 60 s after {sig.name}")
    return pid, time.monotonic() - started


async def create_changelogs(settings: Settings) -> None:
    """Create the worker's changelog topics and wait for their leaders.

    The worker creates them itself, but when its group is the first on a broker that
    has just started (GroupCoordinatorNotAvailable while the offsets topic is created),
    a changelog topic created last (drift's) can be missing from the consumer's
    metadata when the group assigns partitions ("Ignoring missing topic"): the
    analytics agent then crashes with PartitionsMismatch on its first state write, and
    the worker exits ("We experienced a crash!"). A start-up race of its own, not what
    these tests are about.
    """
    tables = build_worker(settings).app.tables.values()
    topics = [
        NewTopic(
            t.changelog_topic.get_topic_name(),
            t.partitions or settings.topic_partitions,
            settings.topic_replication_factor,
            topic_configs={"cleanup.policy": "compact"},
        )
        for t in tables
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(topics)
        await _wait_for_leaders(admin, [t.name for t in topics], 30)
    finally:
        await admin.close()


def flush_events(settings: Settings, ts: int) -> list[tuple[None, bytes, int]]:
    """A far-future event for every keyed partition from every events partition: each
    watermark passes every window of the data, and those windows close."""
    partitions = settings.topic_partitions
    keys: dict[int, str] = {}
    i = 0
    while len(keys) < partitions:
        keys.setdefault(partition_for_key(f"{FLUSH_PREFIX}{i}", partitions), f"{FLUSH_PREFIX}{i}")
        i += 1
    return [
        (None, orjson.dumps({"id": f"{key}-{s}", "key": key, "ts": ts, "values": {"a": 0}}), s)
        for key in keys.values()
        for s in range(partitions)
    ]


async def group_lag(settings: Settings, topics: list[str]) -> dict[str, int]:
    """Per partition of ``topics``: log end offset - the group's committed offset."""
    partitions = [TopicPartition(t, p) for t in topics for p in range(settings.topic_partitions)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=partitions)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    return {
        f"{tp.topic}:{tp.partition}": ends[tp] - max(committed[tp].offset, 0) for tp in partitions
    }


class AliveWatch(threading.Thread):
    """Notes the worker process's exit code if it exits (checked every 0.2 s)."""

    def __init__(self, worker: WorkerProcess) -> None:
        super().__init__(daemon=True)
        self.worker = worker
        self.exit_code: int | None = None
        self.done = threading.Event()

    def run(self) -> None:
        assert self.worker.proc is not None
        while not self.done.wait(0.2):
            code = self.worker.proc.poll()
            if code is not None:
                self.exit_code = code
                return


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_worker_rides_out_a_broker_outage(
    own_broker: LocalBroker, tmp_path: Path, sig: signal.Signals
) -> None:
    broker = own_broker
    settings = unique_settings(
        broker.bootstrap_servers,
        tmp_path,
        **{**LEAN, **WINDOW_SETTINGS},
        window_idle_timeout_s=FAULT_IDLE_TIMEOUT_S,
    )
    events = make_events(FAULT_EVENTS, FAULT_KEYS, seed=29, disorder_ms=8_000)
    expected = window_truth(events, settings.window_specs())
    partitions = settings.topic_partitions
    records = [(None, orjson.dumps(e), i % partitions) for i, e in enumerate(events)]
    half = len(records) // 2
    flush = flush_events(settings, max(e["ts"] for e in events) + 3_600_000)
    rate = max(len(events) / 8, 500)  # each half in about 4 s
    events_topic, keyed_topic = settings.topic("events"), settings.topic("keyed")

    def consumed() -> float:
        return metric(worker, "streamlearn_events_in_total", f'topic="{events_topic}"')

    asyncio.run(create_changelogs(settings))
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    alive = AliveWatch(worker)
    alive.start()
    lag: dict[str, int] = {}
    resumed_after: float | None = None
    lag_zero_after: float | None = None
    try:
        first = PacedProducer(settings, events_topic, records[:half], rate)
        first.run()
        assert first.error is None, first.error
        # Mid-stream: the worker is still busy with the tail of the first half.
        consumed_at_fault = consumed()
        pid, exit_s = signal_broker(broker, sig)
        time.sleep(max(0.0, DOWNTIME_S - exit_s))
        restart_at = time.monotonic()
        broker.start(timeout_s=180)
        back_at = time.monotonic()
        start_s, outage_s = back_at - restart_at, exit_s + back_at - restart_at + DOWNTIME_S
        alive_when_back = worker.proc is not None and worker.proc.poll() is None

        # The rest only now: the producer's own retries are not what is tested here.
        second = PacedProducer(settings, events_topic, records[half:] + flush, rate)
        second.run()
        assert second.error is None, second.error

        while time.monotonic() - back_at < LAG_ZERO_WITHIN_S:
            if resumed_after is None and consumed() > consumed_at_fault:
                resumed_after = time.monotonic() - back_at
            lag = asyncio.run(group_lag(settings, [events_topic, keyed_topic]))
            if not any(lag.values()):
                lag_zero_after = time.monotonic() - back_at
                break
            time.sleep(0.5)

        done = quiet_for(3.0)
        aggregates = asyncio.run(
            consume_until(
                settings,
                settings.topic("aggregates"),
                lambda r: done(r, len(expected)),
                timeout_s=60 if lag_zero_after is None else 120,
            )
        )
        late = metric(worker, "streamlearn_late_events_total")
    finally:
        alive.done.set()
        alive.join(5)
        worker.stop()

    log = worker.log()
    windows = {
        wid: stats
        for wid, stats in final_windows(aggregates).items()
        if not wid.startswith(FLUSH_PREFIX)
    }
    lag_text = (
        f"0 after {lag_zero_after:.1f} s"
        if lag_zero_after is not None
        else f"still {sum(lag.values())} records after {LAG_ZERO_WITHIN_S:.0f} s: "
        + str({p: n for p, n in lag.items() if n})
    )
    print(
        f"\nbroker {sig.name} after {half} of {len(events)} events were produced "
        f"({consumed_at_fault:.0f} consumed): the JVM (pid {pid}) was gone after "
        f"{exit_s:.1f} s, restarted {DOWNTIME_S:.0f} s after the signal and ready "
        f"{start_s:.1f} s later ({outage_s:.0f} s without a broker); from then on, the "
        f"worker consumed again after "
        + (f"{resumed_after:.1f} s" if resumed_after is not None else "never")
        + f" and the group's lag was {lag_text}; windows {len(windows)} of "
        f"{len(expected)}, late events {late:.0f}; "
        f"lines of agent trouble in the worker's log: {len(agent_trouble(log))}"
    )

    # The test never restarts the worker: it must have stayed up by itself.
    assert alive_when_back and alive.exit_code is None, (
        f"the worker exited (code {alive.exit_code}) during the broker outage:\n{log[-4000:]}"
    )
    assert lag_zero_after is not None, f"the group's lag: {lag_text}"
    problems = compare(expected, windows)
    assert problems == [], "\n".join(problems[:20])
    assert late == 0
    assert agent_trouble(log) == [], "\n".join(agent_trouble(log)[:20])


# --- a worker joins, one is killed and restarted ---------------------------------------------


class TrickleProducer(PacedProducer):
    """A :class:`PacedProducer` that, from ``hold_at`` until :meth:`release`, goes on at
    ``trickle`` records per second instead of stopping.

    A keyed partition without events for ``window_idle_timeout_s`` closes its windows
    (by design), and events for them that come after the pause are late: a hold longer
    than that (a worker restarting) would change the results.
    """

    def __init__(self, *args: Any, trickle: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trickle = trickle

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            linger_ms=5,
            acks="all",
            enable_idempotence=True,
        )
        await producer.start()
        try:
            chunk = max(int(self.rate / 10), 1)
            hold_at = len(self.records) if self.hold_at is None else self.hold_at
            i = 0
            while i < len(self.records):
                started = time.monotonic()
                slow = i >= hold_at and not self._released.is_set()
                stop = i + 1 if slow else min(i + chunk, hold_at) if i < hold_at else i + chunk
                sends = [
                    await producer.send(self.topic, value, key=key, partition=partition)
                    for key, value, partition in self.records[i:stop]
                ]
                await asyncio.gather(*sends)
                i = min(stop, len(self.records))
                self.acked = i
                period = 1 / self.trickle if slow else 0.1
                await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))
        finally:
            await producer.stop()


def applied(worker: WorkerProcess) -> float:
    """Keyed events the worker has applied (end-to-end latency samples)."""
    return metric(worker, "streamlearn_end_to_end_latency_seconds_count")


def test_worker_joins_then_one_is_killed_and_restarted(kafka_broker, tmp_path: Path) -> None:
    settings = scale_settings(kafka_broker.bootstrap_servers, tmp_path)
    alerts = expected_alerts(settings)
    windows = set(window_truth(SCALE_EVENTS, settings.window_specs()))
    total = len(SCALE_EVENTS)
    keyed_topic = settings.topic("keyed")
    a = WorkerProcess(settings, tmp_path / "worker-a.log")
    b = WorkerProcess(
        settings.model_copy(update={"web_port": free_port(), "data_dir": tmp_path / "data-b"}),
        tmp_path / "worker-b.log",
    )
    # About 20 s of input; from the last quarter on, a trickle until A is back (each
    # key's partition still hears from its key about once a second).
    records = [(None, orjson.dumps(e), PARTITION[e["key"]]) for e in SCALE_EVENTS]
    producer = TrickleProducer(
        settings,
        settings.topic("events"),
        records,
        rate=max(total / 20, 100),
        hold_at=3 * total // 4,
        trickle=8.0,
    )
    watch: TakeoverWatch | None = None
    asyncio.run(create_changelogs(settings))  # the first app on a new broker: see there
    try:
        a.start(120)
        producer.start()
        wait_for(lambda: applied(a) >= total // 8, 120, "A to apply an eighth of the input")
        produced_at_join = producer.acked
        joining = time.monotonic()
        b.start(120)
        wait_split(settings, [a, b])
        split_after = time.monotonic() - joining
        a_partitions = owned(a, keyed_topic)
        applied_by_a, produced_at_kill = applied(a), producer.acked
        killed_at = time.monotonic()
        a.kill()  # SIGKILL: no shutdown, no commit, no producer flush
        watch = TakeoverWatch(settings, b, producer, killed_at)
        watch.start()
        wait_for(lambda: watch.owns_after is not None, 120, "B to own every partition")
        restarting = time.monotonic()
        a.start(120)  # the same data dir and port
        wait_split(settings, [a, b])
        resplit_after = time.monotonic() - restarting
        produced_at_restart = producer.acked
        producer.release()
        producer.join(120)
        assert not producer.is_alive() and producer.error is None, producer.error
        produced_at = time.monotonic()
        outputs = read_outputs(settings, windows, set(alerts), b)
        # The group's committed offsets can trail the processing after a takeover
        # (docs/scaling.md, known limitations): a little longer, then report them.
        deadline = time.monotonic() + REBALANCE_LAG_WAIT_S
        while watch.is_alive() and time.monotonic() < deadline:
            time.sleep(0.25)
        lag_checked_after = time.monotonic() - produced_at
        rejected = sum(metric(w, "streamlearn_checkpoint_rejected_total") for w in (a, b))
        alive = [w.proc is not None and w.proc.poll() is None for w in (a, b)]
    finally:
        if watch is not None:
            watch.done.set()
            watch.join(30)
        producer.release()
        producer.join(30)
        stop_all([a, b])

    assert watch.error is None, watch.error
    if watch.lag_zero_after is not None:
        since_produced = watch.lag_zero_after - (produced_at - killed_at)
        lag_text = f"0 {since_produced:.1f} s after the last event was produced"
    else:
        lag_text = (
            f"still {sum(watch.lag.values())} records on "
            f"{sum(1 for v in watch.lag.values() if v)} partitions "
            f"{lag_checked_after:.0f} s after the last event was produced"
        )
    duplicates = outputs.duplicates()
    print(
        f"\nrebalance, {total} events: B joined after {produced_at_join} were produced "
        f"(the two shared the partitions {split_after:.1f} s after B started); A was killed "
        f"with {len(a_partitions)} keyed partitions, {applied_by_a:.0f} events applied and "
        f"{produced_at_kill} produced; B owned every partition {watch.owns_after:.1f} s "
        f"after the kill; A restarted and the two shared again after {resplit_after:.1f} s "
        f"({produced_at_restart} produced by then); "
        f"the group's lag was {lag_text}; duplicate outputs {duplicates} "
        f"(predictions: {duplicates['predictions']} of {total})"
    )

    assert all(alive), "a worker died during the run"
    # Every phase happened mid-stream.
    assert 0 < produced_at_join <= produced_at_kill <= produced_at_restart < total
    assert a_partitions and applied_by_a > 0
    # Windows equal the truth, every event has its prediction, and the rest of
    # test_scale_out's checks (statistics, alerts, drift, checkpoints, agent trouble).
    check_sound(Run(settings, outputs, [a.log(), b.log()], alerts, rejected))
