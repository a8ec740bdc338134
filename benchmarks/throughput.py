"""Throughput and end-to-end latency of a streamlearn worker on a real Kafka broker.

    python benchmarks/throughput.py [--events N] [--keys K] [--partitions P]
                                    [--rate R] [--latency-seconds S] ...

Phases (see benchmarks/README.md for how to read the figures):

1. produce N events to a fresh events topic (produce rate);
2. a raw aiokafka consumer reads them back, decoding each with orjson (the Python
   ceiling on this machine);
3. a worker subprocess processes the same N events end to end (events -> ingest ->
   keyed -> stats -> aggregates), timed from its readiness to the aggregates
   accounting for all N events;
4. the broker alone at the paced rate (producer -> consumer, no worker): the floor;
5. a second worker (emits an aggregate per event) under a paced load: latency from
   an event's ts (wall clock at send) to its aggregate reaching our consumer.

Uses the broker in STREAMLEARN_BROKER_URL, else starts (and stops) a private one.
Results: a table on stdout and benchmarks/results/throughput-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

# harness first: it puts the checkout on sys.path for the streamlearn imports below.
from harness import (
    AggregateProgress,
    Broker,
    PacedRun,
    Terminated,
    WorkerProcess,
    Workers,
    aggregates_consumer,
    batch_events,
    benchmark_broker,
    configure_logging,
    consume_aggregates,
    create_topic,
    delete_run_topics,
    event_factory,
    faust_ready_wall,
    log,
    log_findings,
    machine_info,
    new_run_id,
    phase_settings,
    produce_all,
    produce_paced,
    raise_on_termination,
    summarize,
    timeline,
    utc_stamp,
    write_results,
)

from streamlearn.config import Settings
from streamlearn.topics import ensure_topics

RAW_MAX_RECORDS = 50_000
PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class Options:
    events: int
    keys: int
    partitions: int
    rate: float
    latency_seconds: float
    warmup_seconds: float
    baseline_seconds: float
    emit_every: int
    emit_interval: float
    store: str
    ready_timeout: float
    stall_timeout: float
    log_dir: Path | None
    skip_latency: bool


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="streamlearn worker throughput and end-to-end latency on real Kafka.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--events", type=int, default=200_000, help="events for the throughput phases")
    add("--keys", type=int, default=10, help="distinct event keys")
    add("--partitions", type=int, default=4, help="partitions of every benchmark topic")
    add("--rate", type=float, default=2_000.0, help="events/s in the latency phase")
    add("--latency-seconds", type=float, default=20.0, help="length of the latency phase")
    add("--warmup-seconds", type=float, default=2.0, help="latency samples discarded first")
    add("--baseline-seconds", type=float, default=5.0, help="broker-only latency (0: skip)")
    add("--emit-every", type=int, default=1_000, help="stats_emit_every_events, throughput")
    add("--emit-interval", type=float, default=1.0, help="stats_emit_interval_s, both workers")
    add("--store", choices=("rocksdb", "memory"), default="rocksdb", help="worker table store")
    add("--ready-timeout", type=float, default=120.0, help="seconds for a worker to be ready")
    add("--stall-timeout", type=float, default=120.0, help="fail after this long w/o progress")
    add("--log-dir", type=Path, default=None, help="keep worker logs here (default: discard)")
    add("--skip-latency", action="store_true", help="only the throughput phases")
    ns = parser.parse_args(argv)
    if ns.events < 1 or ns.keys < 1 or ns.partitions < 1 or ns.rate <= 0:
        parser.error("--events, --keys, --partitions and --rate must be positive")
    if ns.latency_seconds <= ns.warmup_seconds and not ns.skip_latency:
        parser.error("--latency-seconds must be longer than --warmup-seconds")
    return Options(**vars(ns))


# --- phase 1: produce -------------------------------------------------------------------


async def phase_produce(settings: Settings, opts: Options, run_id: str) -> dict[str, Any]:
    await ensure_topics(settings)
    start_ts = int(time.time() * 1000) - opts.events  # 1 ms apart, ending about now
    records = batch_events(run_id, opts.events, opts.keys, start_ts)
    payload = sum(len(v) for _, v in records)
    log(f"producing {opts.events:,} events ({payload / 1e6:.1f} MB) to {settings.topic('events')}")
    seconds = await produce_all(settings.bootstrap_servers, settings.topic("events"), records)
    rate = opts.events / seconds
    log(f"produced in {seconds:.2f} s: {rate:,.0f} events/s")
    return {
        "events": opts.events,
        "bytes": payload,
        "mean_event_bytes": payload / opts.events,
        "seconds": seconds,
        "events_per_s": rate,
        "mb_per_s": payload / seconds / 1e6,
        "producer": "aiokafka, acks=all, linger_ms=20, max_batch_size=256 KiB",
    }


# --- phase 2a: raw consumer ---------------------------------------------------------------


async def phase_raw(settings: Settings, opts: Options) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        settings.topic("events"),
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        count = 0
        checksum = 0
        started = time.monotonic()
        while count < opts.events:
            batches = await consumer.getmany(timeout_ms=1_000, max_records=RAW_MAX_RECORDS)
            for records in batches.values():
                for record in records:
                    checksum += len(orjson.loads(record.value)["values"])
                count += len(records)
            if time.monotonic() - started > opts.stall_timeout:
                raise RuntimeError(f"raw consumer read only {count} of {opts.events} events")
        seconds = time.monotonic() - started
    finally:
        await consumer.stop()
    rate = count / seconds
    log(f"raw aiokafka consumer: {count:,} events in {seconds:.2f} s = {rate:,.0f} events/s")
    return {
        "events": count,
        "seconds": seconds,
        "events_per_s": rate,
        "values_decoded": checksum,
        "consumer": f"aiokafka getmany(max_records={RAW_MAX_RECORDS}) + orjson.loads per value",
    }


# --- phase 2b: the worker end to end ------------------------------------------------------


async def wait_for_total(
    progress: AggregateProgress,
    target: int,
    worker: WorkerProcess,
    stall_timeout: float,
    label: str,
) -> float:
    """Until the aggregates account for ``target`` events; monotonic time it happened."""
    last_total, last_change = progress.total, time.monotonic()
    next_report = time.monotonic() + PROGRESS_EVERY_S
    while progress.total < target:
        await asyncio.sleep(0.01)
        worker.check_alive()
        now = time.monotonic()
        if progress.total != last_total:
            last_total, last_change = progress.total, now
        elif now - last_change > stall_timeout:
            raise RuntimeError(
                f"{label}: no progress for {stall_timeout:.0f} s at {progress.total:,} of "
                f"{target:,} events; worker log tail:\n{worker.log_tail()}"
            )
        if now >= next_report:
            log(f"{label}: aggregates account for {progress.total:,} / {target:,} events")
            next_report = now + PROGRESS_EVERY_S
    assert progress.done_at is not None
    return progress.done_at


async def phase_worker(
    settings: Settings, opts: Options, workers: Workers, raw: dict[str, Any]
) -> dict[str, Any]:
    progress = AggregateProgress(target=opts.events)
    consumer = aggregates_consumer(settings.bootstrap_servers, settings.topic("aggregates"))
    await consumer.start()
    reader = asyncio.create_task(consume_aggregates(consumer, progress.on_batch))
    try:
        worker = workers.new(settings, "throughput")
        ready = await worker.wait_ready(opts.ready_timeout)
        ready_wall = time.time()
        cpu_at_ready = worker.cpu_seconds()
        log(f"throughput worker ready {ready - worker.spawned_at:.1f} s after spawn")
        done = await wait_for_total(progress, opts.events, worker, opts.stall_timeout, "worker")
        done_wall = time.time()
        cpu_at_done = worker.cpu_seconds()
        consuming_wall = faust_ready_wall(worker.log_text())
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await consumer.stop()
    seconds = done - ready
    rate = opts.events / seconds
    cpu = (
        (cpu_at_done - cpu_at_ready)
        if cpu_at_done is not None and cpu_at_ready is not None
        else None
    )
    log(f"worker: {opts.events:,} events in {seconds:.2f} s = {rate:,.0f} events/s")
    first = (progress.first_seen - ready) if progress.first_seen is not None else None
    fetching_s = done_wall - consuming_wall if consuming_wall is not None else None
    return {
        "events": opts.events,
        "timed_from": "worker ready: GET /api/v1/health lists assigned partitions",
        "timed_until": "aggregates received whose per-key `events` sum to N",
        "spawn_to_ready_s": ready - worker.spawned_at,
        "seconds": seconds,
        "events_per_s": rate,
        "ratio_to_raw": rate / raw["events_per_s"],
        "first_aggregate_after_ready_s": first,
        # Faust's "[^Worker]: Ready" (recovery done, fetcher started) comes after the
        # assignment that health reports; timed from it, the figure is pure processing.
        "ready_to_fetching_s": consuming_wall - ready_wall if consuming_wall else None,
        "events_per_s_from_fetching": opts.events / fetching_s if fetching_s else None,
        "worker_side_seconds": progress.last_emitted_at - ready_wall,
        "aggregates_received": progress.records,
        "worker_cpu_seconds": cpu,
        "worker_cpu_utilisation": cpu / seconds if cpu is not None else None,
    }


# --- phase 3: latency ----------------------------------------------------------------------


@dataclass
class LatencySample:
    ts_ms: int
    emitted_ms: float
    received_ms: float


class LatencyRecorder(AggregateProgress):
    """Aggregate progress plus one latency sample per aggregate received."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[LatencySample] = []

    def on_batch(self, docs: list[dict[str, Any]], mono: float, wall: float) -> None:
        super().on_batch(docs, mono, wall)
        received_ms = wall * 1000.0
        for doc in docs:
            emitted_ms = float(doc.get("emitted_at", 0.0)) * 1000.0
            self.samples.append(LatencySample(int(doc["ts"]), emitted_ms, received_ms))


def baseline_topic(run_prefix: str) -> str:
    return f"{run_prefix}-base.events"


async def phase_baseline(
    broker: Broker, run_prefix: str, opts: Options, run_id: str
) -> dict[str, Any]:
    """Producer -> broker -> consumer latency at ``--rate``, no worker: the floor."""
    topic = baseline_topic(run_prefix)
    points: list[tuple[int, float]] = []

    def on_batch(docs: list[dict[str, Any]], mono: float, wall: float) -> None:
        points.extend((int(doc["ts"]), wall * 1000.0) for doc in docs)

    consumer = aggregates_consumer(broker.bootstrap_servers, topic)
    await consumer.start()
    reader = asyncio.create_task(consume_aggregates(consumer, on_batch, kind=None))
    try:
        paced = await produce_paced(
            broker.bootstrap_servers,
            topic,
            opts.rate,
            opts.baseline_seconds,
            event_factory(run_id, opts.keys),
        )
        deadline = time.monotonic() + opts.stall_timeout
        while len(points) < paced.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await consumer.stop()
    cutoff = paced.start_wall_ms + min(opts.warmup_seconds, opts.baseline_seconds / 2) * 1000.0
    latency = summarize(rx - ts for ts, rx in points if ts >= cutoff)
    log(f"broker baseline: p50 {latency.get('p50', 0):.1f} ms, p99 {latency.get('p99', 0):.1f} ms")
    return {
        "rate": paced.rate,
        "seconds": paced.seconds,
        "events_sent": paced.sent,
        "events_received": len(points),
        "end_to_end_ms": latency,
        "definition": "same events and producer as the latency phase, read back from the "
        "events topic by our consumer: received (wall clock) minus ts",
    }


async def phase_latency(
    settings: Settings, opts: Options, workers: Workers, run_id: str
) -> dict[str, Any]:
    await ensure_topics(settings)
    recorder = LatencyRecorder()
    worker = workers.new(settings, "latency")
    ready = await worker.wait_ready(opts.ready_timeout)
    ready_wall = time.time()
    # Load starts once Faust fetches (see wait_consuming), not at assignment: otherwise
    # the first seconds of latency would measure the worker's startup.
    consuming = await worker.wait_consuming(opts.ready_timeout)
    after = "never logged" if consuming is None else f"{consuming - ready_wall:+.1f} s"
    log(f"latency worker assigned {ready - worker.spawned_at:.1f} s after spawn, fetching {after}")
    # Our consumer starts once the worker is ready (nothing is produced before): the
    # fresh topics have settled leaders by then, so aiokafka does not log
    # NotLeaderForPartition while it retries.
    consumer = aggregates_consumer(settings.bootstrap_servers, settings.topic("aggregates"))
    await consumer.start()
    reader = asyncio.create_task(consume_aggregates(consumer, recorder.on_batch))
    try:
        log(f"producing {opts.rate:,.0f} events/s for {opts.latency_seconds:.0f} s")
        cpu_before = worker.cpu_seconds()
        producing = asyncio.create_task(
            produce_paced(
                settings.bootstrap_servers,
                settings.topic("events"),
                opts.rate,
                opts.latency_seconds,
                event_factory(run_id, opts.keys),
            )
        )
        while not producing.done():  # fail fast if the worker dies meanwhile
            worker.check_alive()
            await asyncio.wait({producing}, timeout=0.5)
        paced = producing.result()
        cpu_after = worker.cpu_seconds()
        produced_at = time.monotonic()
        recorder.target = paced.sent
        recorder.check_done(produced_at)
        done = await wait_for_total(
            recorder, paced.sent, worker, opts.stall_timeout, "latency worker"
        )
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await consumer.stop()
    figures = latency_figures(recorder.samples, paced, opts)
    figures["drain_after_last_send_s"] = done - produced_at
    if cpu_before is not None and cpu_after is not None:
        figures["worker_cpu_utilisation"] = (cpu_after - cpu_before) / paced.seconds
    return figures


def latency_figures(samples: list[LatencySample], paced: PacedRun, opts: Options) -> dict[str, Any]:
    cutoff = paced.start_wall_ms + opts.warmup_seconds * 1000.0
    kept = sorted((s for s in samples if s.ts_ms >= cutoff), key=lambda s: s.ts_ms)
    end_to_end = summarize(s.received_ms - s.ts_ms for s in kept)
    fifth = max(1, len(kept) // 5)
    log(
        f"latency over {len(kept):,} aggregates: p50 {end_to_end.get('p50', 0):.1f} ms, "
        f"p99 {end_to_end.get('p99', 0):.1f} ms, max {end_to_end.get('max', 0):.1f} ms"
    )
    return {
        "target_rate": opts.rate,
        "achieved_rate": paced.rate,
        "events_sent": paced.sent,
        "aggregates_received": len(samples),
        "warmup_s": opts.warmup_seconds,
        "samples": len(kept),
        "end_to_end_ms": end_to_end,
        "event_to_emit_ms": summarize(s.emitted_ms - s.ts_ms for s in kept),
        "emit_to_receive_ms": summarize(s.received_ms - s.emitted_ms for s in kept),
        # A worker that keeps up has the same latency early and late; one that does not
        # builds a backlog and its latency grows through the run.
        "p50_first_fifth_ms": summarize(s.received_ms - s.ts_ms for s in kept[:fifth]).get("p50"),
        "p50_last_fifth_ms": summarize(s.received_ms - s.ts_ms for s in kept[-fifth:]).get("p50"),
        # p50/max per second of send time, warm-up included: shows stalls and backlogs.
        "timeline_1s": timeline(
            ((s.ts_ms - paced.start_wall_ms) / 1000.0, s.received_ms - s.ts_ms) for s in samples
        ),
        "definition": "aggregate received by the benchmark's consumer (wall clock) minus the "
        "aggregate's ts (= the event's ts, its wall clock at send); stats_emit_every_events=1",
    }


# --- report ------------------------------------------------------------------------------


def format_table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []

    def section(title: str) -> None:
        rows.append((f"-- {title}", ""))

    def row(name: str, value: Any, fmt: str = "{:,.0f}", unit: str = "") -> None:
        missing = value is None or (isinstance(value, tuple) and None in value)
        text = "n/a" if missing else fmt.format(value)
        rows.append((f"   {name}", f"{text} {unit}".rstrip()))

    opts = results["options"]
    section(
        f"setup: {opts['events']:,} events, {opts['keys']} keys, "
        f"{opts['partitions']} partitions, broker {results['broker']['kind']}"
    )
    if "produce" in results:
        p = results["produce"]
        section("produce (aiokafka producer, acks=all)")
        row("events/s", p["events_per_s"], unit="events/s")
        row("throughput", p["mb_per_s"], "{:.1f}", "MB/s")
    if "raw_consumer" in results:
        section("raw aiokafka consumer + orjson.loads (Python ceiling)")
        row("events/s", results["raw_consumer"]["events_per_s"], unit="events/s")
    if "worker" in results:
        w = results["worker"]
        section("streamlearn worker end to end (ready -> last aggregate)")
        row("events/s", w["events_per_s"], unit="events/s")
        row("ratio worker / raw", w["ratio_to_raw"], "{:.3f}")
        row("time", w["seconds"], "{:.2f}", "s")
        row("worker CPU", w["worker_cpu_utilisation"], "{:.0%}", "of one core")
        row("spawn -> ready", w["spawn_to_ready_s"], "{:.1f}", "s (excluded)")
        row("ready -> fetching", w["ready_to_fetching_s"], "{:.1f}", "s (Faust recovery, included)")
        row("events/s from fetching", w["events_per_s_from_fetching"], unit="events/s")
    if "broker_baseline" in results:
        base = results["broker_baseline"]
        section(f"broker only (producer -> consumer) at {base['rate']:,.0f} events/s")
        row(
            "p50 / p99",
            (base["end_to_end_ms"].get("p50"), base["end_to_end_ms"].get("p99")),
            "{0[0]:.1f} / {0[1]:.1f}",
            "ms",
        )
    if "latency" in results:
        lat = results["latency"]
        e2e = lat["end_to_end_ms"]
        section(
            f"latency at {lat['target_rate']:,.0f} events/s "
            f"(achieved {lat['achieved_rate']:,.0f}), {lat['samples']:,} samples"
        )
        for p in ("p50", "p95", "p99", "max"):
            row(f"{p} end to end", e2e.get(p), "{:.1f}", "ms")
        row("p50 event -> emit", lat["event_to_emit_ms"].get("p50"), "{:.1f}", "ms")
        row("p50 emit -> receive", lat["emit_to_receive_ms"].get("p50"), "{:.1f}", "ms")
        row(
            "p50 first / last fifth",
            (lat["p50_first_fifth_ms"], lat["p50_last_fifth_ms"]),
            "{0[0]:.1f} / {0[1]:.1f}",
            "ms (rising = the worker falls behind)",
        )
        row("drain after last send", lat["drain_after_last_send_s"], "{:.2f}", "s")
        row("worker CPU", lat.get("worker_cpu_utilisation"), "{:.0%}", "of one core")
    for name, findings in results.get("worker_logs", {}).items():
        section(f"worker log ({name})")
        row("warning lines", findings["warnings"])
        row("error lines", findings["errors"])
    width = max(len(name) for name, value in rows if value) + 2
    return "\n".join(f"{name:<{width}}{value}" if value else name for name, value in rows)


# --- main --------------------------------------------------------------------------------


def run_phases(
    broker: Broker,
    opts: Options,
    run_id: str,
    data_root: Path,
    workers: Workers,
    results: dict[str, Any],
) -> None:
    run_prefix = f"bench-{run_id}"
    common = {"topic_partitions": opts.partitions, "store": opts.store}
    tput = phase_settings(
        broker,
        run_prefix,
        "tput",
        data_root,
        stats_emit_every_events=opts.emit_every,
        stats_emit_interval_s=opts.emit_interval,
        **common,
    )
    if opts.baseline_seconds > 0 and not opts.skip_latency:
        # Created now, used later: clients then see settled partition leaders.
        asyncio.run(
            create_topic(broker.bootstrap_servers, baseline_topic(run_prefix), opts.partitions)
        )
    results["produce"] = asyncio.run(phase_produce(tput, opts, run_id))
    results["raw_consumer"] = asyncio.run(phase_raw(tput, opts))
    results["worker"] = asyncio.run(phase_worker(tput, opts, workers, results["raw_consumer"]))
    workers.started[-1].stop()  # one worker at a time: they share the machine
    if opts.skip_latency:
        return
    lat = phase_settings(
        broker,
        run_prefix,
        "lat",
        data_root,
        stats_emit_every_events=1,
        stats_emit_interval_s=opts.emit_interval,
        **common,
    )
    if opts.baseline_seconds > 0:
        results["broker_baseline"] = asyncio.run(phase_baseline(broker, run_prefix, opts, run_id))
    results["latency"] = asyncio.run(phase_latency(lat, opts, workers, run_id))


def cleanup(broker: Broker, run_id: str, workers: Workers, results: dict[str, Any]) -> None:
    workers.stop_all()
    results["worker_logs"] = {
        w.log_path.stem.removeprefix("worker-"): log_findings(w.log_text()) for w in workers.started
    }
    try:
        deleted = asyncio.run(delete_run_topics(broker.bootstrap_servers, f"bench-{run_id}"))
        log(f"deleted {len(deleted)} benchmark topics")
    except Exception as exc:  # cleanup must not hide the real outcome
        log(f"could not delete the benchmark topics (bench-{run_id}*): {exc!r}")


def main(argv: list[str] | None = None) -> int:
    raise_on_termination()
    configure_logging()
    opts = parse_args(argv)
    run_id = new_run_id()
    stamp = utc_stamp()
    started = time.monotonic()
    results: dict[str, Any] = {
        "benchmark": "throughput",
        "run_id": run_id,
        "utc": stamp,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "machine": machine_info(),
    }
    status = 0
    with tempfile.TemporaryDirectory(prefix="streamlearn-bench-") as tmp_name:
        tmp = Path(tmp_name)
        workers = Workers(opts.log_dir or tmp / "logs")
        try:
            with benchmark_broker(tmp) as broker:
                results["broker"] = {
                    "kind": "private" if broker.own else "external",
                    "url": broker.url,
                }
                try:
                    run_phases(broker, opts, run_id, tmp / "workers", workers, results)
                except (KeyboardInterrupt, Terminated):
                    raise
                except Exception as exc:
                    log(f"benchmark failed: {exc}")
                    results["error"] = f"{type(exc).__name__}: {exc}"
                    status = 1
                finally:
                    cleanup(broker, run_id, workers, results)
        except (KeyboardInterrupt, Terminated) as exc:
            workers.stop_all()  # idempotent; covers an interrupt during cleanup itself
            log(f"interrupted ({exc.__class__.__name__}); cleaned up, no results written")
            return 130
        finally:
            workers.stop_all()
    results["total_seconds"] = time.monotonic() - started
    results["settings"] = {
        "stats_emit_every_events": {"throughput": opts.emit_every, "latency": 1},
        "stats_emit_interval_s": opts.emit_interval,
        "store": opts.store,
        "topic_partitions": opts.partitions,
    }
    print(format_table(results))
    path = write_results("throughput", stamp, results)
    print(f"\nresults: {path}  (total {results['total_seconds']:.0f} s)")
    if opts.log_dir:
        print(f"worker logs: {opts.log_dir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
