"""Soak: a worker with full analytics under steady load, poison and periodic kill -9.

    python benchmarks/soak.py [--minutes 60] [--rate 3000] [--poison 0.005]
                              [--kill-every-minutes 10] [--warmup-minutes 5] ...

``make soak`` runs it with the defaults (1 hour; not part of CI). Uses the broker in
``STREAMLEARN_BROKER_URL``, else starts (and stops) a private one; every topic and the
consumer group are fresh (``soak-<run id>-``) and the topics are deleted at the end.

What happens
------------
1. ``--workers`` (1) real worker subprocesses (``python -m streamlearn worker``, the
   harness's :class:`~harness.WorkerProcess`) start with the **default settings**:
   windows (tumbling 1m, hopping 5m/1m), running statistics, anomaly detection, the
   online model (learning from inline labels) and drift detection. Only isolation
   differs (app id, topic prefix, data dir, port) and ``--partitions``.
2. Once the first worker owns partitions and fetches, one paced producer
   (:func:`harness.produce_paced`) sends ``--rate`` records/s for ``--minutes``:
   valid events (``--keys`` keys round-robin, Kafka key = event key; ``ts`` = the send
   time in ms, strictly increasing per key; 2-3 values that are multiples of 1/1024, so
   every window sum is exact in floating point; an inline boolean label on every other
   event; a humidity shift every 15 minutes of event time, to make drift fire) and,
   evenly spread, a ``--poison`` fraction of poison records: malformed or truncated
   JSON, NaN/Infinity/1e999 values, no key, a value that is not a number, an invalid
   ts, no values, a bad label, not an object, not UTF-8. Each poison record is distinct
   bytes (it carries its sequence number) and is checked to be refused by
   :func:`streamlearn.validation.parse_event` before it is sent.
3. Every ``--kill-every-minutes`` (0: never) of production a worker (round-robin) gets
   SIGKILL on its process group and is started again at once on the same settings and
   data dir: a new *life* of that worker.
4. Every ``--sample-seconds`` (10) the script records, per worker, its RSS
   (``VmRSS`` of ``/proc/<pid>/status``), its CPU time and its ``/metrics`` (records
   in, events applied, dead letters, open windows, replays skipped); the machine's load
   average (the machine may be shared); and the consumer group's lag
   (log end offset - committed offset, summed over the partitions of the events topic
   and of the internal keyed topic), with the committed offsets (progress that survives
   a kill).
5. After the last send: no more kills; the lag must drain to 0 (at most
   ``--drain-minutes``), then the open windows close by the idle timeout
   (``window_idle_timeout_s``, 30 s by default); the aggregates and dead-letter topics
   are read from the beginning to their end offsets.

Pass criteria (each printed PASS/FAIL with the reason)
-----------------------------------------------------
``windows_exact``
    The final closed windows (window records deduplicated by id, last wins:
    ``tests/integration/test_windows_exact.final_windows``) equal the ground truth of
    the valid events sent, compared by ``tests/integration/truth.compare`` (count, sum,
    min, max, first, last exactly; mean and variance to 1e-9). The truth is computed
    while producing, per key x value x bucket of the greatest common divisor of the
    window sizes and steps (1 minute by default; every window is a union of buckets),
    with integer numerators, so mean and variance are exact before the final rounding:
    ``truth.window_truth`` keeps every value in memory, which an hour at 3,000/s does
    not fit. When the run has at most ``--truth-cross-check-max`` (100,000) events the
    brute-force ``truth.window_truth`` is computed too and must agree. Not evaluated
    (FAIL) when the lag did not drain.
``dead_letters_exact``
    The dead letters whose source is the events topic hold exactly the poison records
    sent, byte for byte (same set), and their distinct source offsets number exactly
    the poison records sent; no valid event is dead-lettered (e.g. ``late``). A poison
    record dead-lettered twice at the same source offset is a replay after a kill
    (at-least-once output): counted and reported, not a failure.
``memory_growth``
    Per worker *life* (spawn to kill or to the end of production), samples taken at
    least ``--warmup-minutes`` after the life's own spawn are its post-warm-up samples
    (lives with fewer than 5 are too short and are only listed). Within a life:
    growth = max RSS of the last 20 % of them / max RSS of the first 20 % - 1 (the
    "RSS at the end of warm-up", made robust to the saw-tooth of batches and garbage
    collection by taking the same statistic at both ends). Across lives: each life's
    *level* is the median of its post-warm-up RSS; growth = the last judged life's
    level / the first one's - 1 (a leak that state carries across restarts shows here;
    a kill resets the process's heap, so only this figure sees the whole run). PASS when
    every within-life growth and the across-lives growth are below
    ``--max-memory-growth`` (0.10).
``lag_bounded``
    "About zero" means a total lag of at most ``--lag-ok-seconds`` (10) x ``--rate``
    records (Faust commits every second, so a healthy worker shows a second or two of
    input). PASS when (1) after every kill, before the next kill (or the end of
    production), the group has committed everything produced before the kill and the
    lag is about zero: the time that took is reported, with the time until committed
    offsets moved again (the outage: restart, and the group waiting for the killed
    member's session to expire, ``broker_session_timeout_s`` = 30 s by default); (2) the
    lowest of the last 3 samples of production is about zero (the lag did not grow
    over the run); (3) after the last send the lag reaches exactly 0 within
    ``--drain-minutes``. Also reported: the maximum lag, the processing rate (committed
    keyed-topic offsets per second over production) next to the produced rate, the
    capacity (the same while draining a backlog of more than "about zero", with no
    input), and the lag's growth (least-squares slope, records/s). When the worker is
    slower than
    ``--rate`` (with full analytics one worker manages roughly 1,000-1,500 events/s on
    a 2-core machine) the run still ends on time: the lag criterion fails with those
    figures and says the machine cannot sustain the rate, and the windows are not
    evaluated if the backlog did not drain.
``workers_stable``
    No worker exited without being killed by the soak (such a worker is restarted, and
    the exit is listed with the tail of its log).

Exit status: 0 all criteria pass, 1 one fails, 2 the soak itself failed (the error is
in the JSON), 130 interrupted (no results written).

Output: a table on stdout, progress on stderr, JSON in
``benchmarks/results/soak-<UTC>.json`` (or ``--json-out``) with the options, the
machine, every sample, the lives, the kills and each criterion's figures. Worker logs
are kept with ``--log-dir`` (their warnings and errors are summarised in the JSON).

Trial (about 5 minutes, low load)::

    python benchmarks/soak.py --minutes 3 --rate 300 --kill-every-minutes 1 \\
        --warmup-minutes 0.5 --sample-seconds 5

checks the mechanics (windows and dead letters exact under kills); its memory and lag
verdicts mean little: a one-minute life is mostly start-up and catch-up.

Resources: the producer runs in this process (a fraction of a core at 3,000/s), the
worker(s) and, without ``STREAMLEARN_BROKER_URL``, the broker on the same machine;
every valid event also yields a prediction record, so an hour at 3,000/s writes a few
GB to the broker's log directory (a temporary directory, deleted at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, TopicPartition

# harness first: it puts the checkout on sys.path for the imports below.
from harness import (
    Broker,
    Terminated,
    WorkerProcess,
    Workers,
    benchmark_broker,
    configure_logging,
    delete_run_topics,
    key_names,
    log,
    log_findings,
    machine_info,
    new_run_id,
    phase_settings,
    process_cpu_seconds,
    produce_paced,
    raise_on_termination,
    utc_stamp,
    write_results,
)

from streamlearn.analytics.windows import WindowSpec, window_id
from streamlearn.config import Settings
from streamlearn.records import DeadLetter, ErrorCode
from streamlearn.validation import InvalidEvent, parse_event
from tests.integration.test_windows_exact import final_windows
from tests.integration.truth import compare, window_truth

#: Values are multiples of 1/SCALE: window sums are then exact in floating point.
SCALE = 1024
#: Event time between humidity regime shifts (data drift).
REGIME_MS = 15 * 60_000
MIB = 1024 * 1024


@dataclass
class Options:
    minutes: float
    rate: float
    poison: float
    kill_every_minutes: float
    warmup_minutes: float
    keys: int
    partitions: int
    workers: int
    sample_seconds: float
    drain_minutes: float
    lag_ok_seconds: float
    max_memory_growth: float
    truth_cross_check_max: int
    seed: int
    json_out: Path | None
    log_dir: Path | None


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="Soak a streamlearn worker: steady load, poison, kill -9.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--minutes", type=float, default=60.0, help="length of production")
    add("--rate", type=float, default=3000.0, help="records/s produced (poison included)")
    add("--poison", type=float, default=0.005, help="fraction of poison records")
    add("--kill-every-minutes", type=float, default=10.0, help="SIGKILL period (0: never)")
    add("--warmup-minutes", type=float, default=5.0, help="per worker life, for memory")
    add("--keys", type=int, default=10, help="distinct event keys")
    add("--partitions", type=int, default=4, help="partitions of every topic")
    add("--workers", type=int, default=1, help="worker processes (one app)")
    add("--sample-seconds", type=float, default=10.0, help="sampling period")
    add("--drain-minutes", type=float, default=10.0, help="longest wait for lag 0 at the end")
    add("--lag-ok-seconds", type=float, default=10.0, help="lag <= this x rate is 'about 0'")
    add("--max-memory-growth", type=float, default=0.10, help="pass threshold (fraction)")
    add(
        "--truth-cross-check-max",
        type=int,
        default=100_000,
        help="also compute truth.window_truth when at most this many events",
    )
    add("--seed", type=int, default=20261206)
    add("--json-out", type=Path, default=None, help="default benchmarks/results/soak-<UTC>.json")
    add("--log-dir", type=Path, default=None, help="keep worker logs here (default: discard)")
    ns = parser.parse_args(argv)
    opts = Options(**vars(ns))
    if opts.minutes <= 0 or opts.rate <= 0 or opts.sample_seconds <= 0:
        parser.error("--minutes, --rate and --sample-seconds must be > 0")
    if not 0 <= opts.poison < 1:
        parser.error("--poison is a fraction in [0, 1)")
    if opts.keys < 1 or opts.partitions < 1 or opts.workers < 1:
        parser.error("--keys, --partitions and --workers must be >= 1")
    return opts


# --- events, poison and the ground truth --------------------------------------------------


class StreamingTruth:
    """Exact windowed statistics of the valid events, in memory independent of their number.

    Per key x value x bucket (``gcd`` of every window size and step, so each window is
    a union of whole buckets): count, sum and sum of squares of the integer numerators
    (value x SCALE), min, max, and the values at the smallest and largest ts.
    """

    def __init__(self, specs: list[WindowSpec]) -> None:
        self.specs = specs
        self.bucket_ms = math.gcd(*(n for s in specs for n in (s.size_ms, s.step_ms)))
        self.buckets: dict[tuple[str, str, int], list[int]] = {}

    def add(self, key: str, ts: int, numerators: dict[str, int]) -> None:
        start = ts - ts % self.bucket_ms
        for name, k in numerators.items():
            acc = self.buckets.get((key, name, start))
            if acc is None:
                self.buckets[(key, name, start)] = [1, k, k * k, k, k, ts, k, ts, k]
                continue
            acc[0] += 1
            acc[1] += k
            acc[2] += k * k
            if k < acc[3]:
                acc[3] = k
            if k > acc[4]:
                acc[4] = k
            if ts < acc[5]:
                acc[5], acc[6] = ts, k
            if ts > acc[7]:
                acc[7], acc[8] = ts, k

    def windows(self) -> dict[str, dict[str, Any]]:
        """Window id -> the fields :func:`tests.integration.truth.compare` reads."""
        merged: dict[str, list[int]] = {}
        for (key, name, bucket), acc in self.buckets.items():
            for spec in self.specs:
                for start in spec.windows_for(bucket):
                    wid = window_id(key, name, spec.name, start)
                    w = merged.get(wid)
                    if w is None:
                        merged[wid] = list(acc)
                        continue
                    w[0] += acc[0]
                    w[1] += acc[1]
                    w[2] += acc[2]
                    w[3] = min(w[3], acc[3])
                    w[4] = max(w[4], acc[4])
                    if acc[5] < w[5]:
                        w[5], w[6] = acc[5], acc[6]
                    if acc[7] > w[7]:
                        w[7], w[8] = acc[7], acc[8]
        out = {}
        for wid, (n, s, q, lo, hi, _, first, _, last) in merged.items():
            variance = Fraction(n * q - s * s, n * (n - 1) * SCALE * SCALE) if n > 1 else 0
            out[wid] = {
                "count": n,
                "sum": s / SCALE,
                "min": lo / SCALE,
                "max": hi / SCALE,
                "first": first / SCALE,
                "last": last / SCALE,
                "mean": float(Fraction(s, n * SCALE)),
                "variance": float(variance),
            }
        return out


POISON_KINDS = (
    "truncated json",
    "nan value",
    "1e999 value",
    "missing key",
    "value not a number",
    "invalid ts",
    "no values",
    "bad label",
    "not an object",
    "not utf-8",
)


def poison_record(j: int, key: str, ts: int, rng: random.Random) -> tuple[str, bytes]:
    """The ``j``-th poison record (the kinds in turn; the tag ``poison-<j>`` in every one
    keeps them distinct bytes)."""
    tag = f"poison-{j}"
    kind = POISON_KINDS[j % len(POISON_KINDS)]
    event: dict[str, Any] = {"id": tag, "key": key, "ts": ts, "values": {"a": 1.5}}
    if kind == "truncated json":
        raw = orjson.dumps(event)[:-5]
    elif kind in ("nan value", "1e999 value"):
        token = b"NaN" if kind == "nan value" else b"-1e999"
        raw = orjson.dumps(event).replace(b"1.5", token)
    elif kind == "missing key":
        raw = orjson.dumps({k: v for k, v in event.items() if k != "key"})
    elif kind == "value not a number":
        raw = orjson.dumps({**event, "values": {"a": tag}})
    elif kind == "invalid ts":
        raw = orjson.dumps({**event, "ts": f"{tag}T00:00"})
    elif kind == "no values":
        raw = orjson.dumps({**event, "values": {}})
    elif kind == "bad label":
        raw = orjson.dumps({**event, "label": {"x": j}})
    elif kind == "not an object":
        raw = orjson.dumps([tag, ts])
    else:  # not utf-8
        raw = b"\xff\xfe" + tag.encode() + rng.randbytes(8)
    return kind, raw


class Traffic:
    """``make_record`` for :func:`harness.produce_paced`: events, poison, and the truth."""

    def __init__(
        self, run_id: str, opts: Options, specs: list[WindowSpec], events_topic: str
    ) -> None:
        self.run_id = run_id
        self.poison_fraction = opts.poison
        self.names = key_names(opts.keys)
        self.encoded = [n.encode() for n in self.names]
        self.last_ts = [0] * opts.keys
        self.rng = random.Random(opts.seed)
        self.truth = StreamingTruth(specs)
        self.events_topic = events_topic
        planned = int(opts.rate * opts.minutes * 60)
        self.keep_events = planned <= opts.truth_cross_check_max
        self.kept: list[dict[str, Any]] = []
        self.valid = 0
        self.labelled = 0
        self.poison: dict[bytes, str] = {}
        self.poison_kinds: Counter[str] = Counter()

    @property
    def sent(self) -> int:
        return self.valid + len(self.poison)

    def is_poison(self, index: int) -> bool:
        """Evenly spread: record ``index`` is poison when floor((i+1)p) > floor(ip)."""
        p = self.poison_fraction
        return p > 0 and math.floor((index + 1) * p) > math.floor(index * p)

    def __call__(self, index: int, now_ms: int) -> tuple[bytes | None, bytes]:
        k = self.valid % len(self.names)
        if self.is_poison(index):
            j = len(self.poison)
            kind, raw = poison_record(j, self.names[k], now_ms, self.rng)
            try:
                parse_event(
                    raw,
                    topic=self.events_topic,
                    partition=0,
                    offset=0,
                    timestamp_ms=now_ms,
                    max_bytes=1_048_576,
                )
            except InvalidEvent:
                pass
            else:  # a bug in this script, not in the worker
                raise AssertionError(f"poison {kind!r} is a valid event: {raw!r}")
            if raw in self.poison:
                raise AssertionError(f"poison {raw!r} drawn twice")
            self.poison[raw] = kind
            self.poison_kinds[kind] += 1
            return None, raw
        key = self.names[k]
        ts = max(now_ms, self.last_ts[k] + 1)
        self.last_ts[k] = ts
        rng = self.rng
        regime = (ts // REGIME_MS) % 2
        temperature = 20.0 + k + rng.gauss(0.0, 2.0)
        if rng.random() < 0.0005:
            temperature += 25.0  # a rare spike for the anomaly detector
        numerators = {
            "temperature": round(temperature * SCALE),
            "humidity": round((45.0 + 8.0 * regime + rng.gauss(0.0, 3.0)) * SCALE),
        }
        if k % 2 == 0:
            numerators["pressure"] = round((1013.0 + rng.gauss(0.0, 1.5)) * SCALE)
        values = {name: n / SCALE for name, n in numerators.items()}
        event: dict[str, Any] = {
            "key": key,
            "ts": ts,
            "values": values,
            "id": f"{self.run_id}-{self.valid}",
        }
        if self.valid % 2 == 0:
            event["label"] = values["temperature"] > 20.0 + k
            self.labelled += 1
        self.truth.add(key, ts, numerators)
        if self.keep_events:
            self.kept.append({"key": key, "ts": ts, "values": values})
        self.valid += 1
        return self.encoded[k], orjson.dumps(event)


# --- probes --------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` (``VmRSS``), None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> ``{"name{labels}": value}`` (comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            with contextlib.suppress(ValueError):
                out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


def metric_sum(samples: dict[str, float], name: str) -> float:
    """Sum of every series of ``name`` (any labels)."""
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


def worker_figures(samples: dict[str, float], events_topic: str) -> dict[str, float]:
    """The figures of one /metrics scrape the soak keeps."""
    e2e_count = samples.get("streamlearn_end_to_end_latency_seconds_count", 0.0)
    e2e_sum = samples.get("streamlearn_end_to_end_latency_seconds_sum", 0.0)
    return {
        "records_in": samples.get(f'streamlearn_events_in_total{{topic="{events_topic}"}}', 0.0),
        "events_applied": e2e_count,
        "mean_latency_s": e2e_sum / e2e_count if e2e_count else 0.0,
        "dead_letters": metric_sum(samples, "streamlearn_dead_letters_total"),
        "late_events": metric_sum(samples, "streamlearn_late_events_total"),
        "replayed_skipped": metric_sum(samples, "streamlearn_replayed_skipped_total"),
        "windows_open": samples.get("streamlearn_windows_open", 0.0),
        "process_rss_bytes": samples.get("process_resident_memory_bytes", 0.0),
    }


class LagProbe:
    """The group's lag and committed offsets on some topics (long-lived clients)."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], partitions: int) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = topics
        self.partitions = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        self.admin: AIOKafkaAdminClient | None = None
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self.admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap, request_timeout_ms=10_000
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, request_timeout_ms=10_000
        )
        await self.admin.start()
        await self.consumer.start()

    async def close(self) -> None:
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.stop()
        if self.admin is not None:
            with contextlib.suppress(Exception):
                await self.admin.close()

    async def sample(self) -> dict[str, Any] | None:
        """Per topic: lag and committed (sums over partitions); None on a client error."""
        assert self.admin is not None and self.consumer is not None
        try:
            committed = await asyncio.wait_for(
                self.admin.list_consumer_group_offsets(self.group, partitions=self.partitions),
                15,
            )
            ends = await asyncio.wait_for(self.consumer.end_offsets(self.partitions), 15)
        except Exception as exc:  # a sample is lost, the soak goes on
            log(f"lag sample failed: {exc!r}")
            return None
        out: dict[str, Any] = {"lag": {}, "committed": {}, "end": {}}
        for tp in self.partitions:
            meta = committed.get(tp)
            done = max(meta.offset, 0) if meta is not None else 0
            out["lag"][tp.topic] = out["lag"].get(tp.topic, 0) + ends[tp] - done
            out["committed"][tp.topic] = out["committed"].get(tp.topic, 0) + done
            out["end"][tp.topic] = out["end"].get(tp.topic, 0) + ends[tp]
        out["total_lag"] = sum(out["lag"].values())
        return out


async def end_offsets(bootstrap: str, topics: list[str], partitions: int) -> dict[str, int]:
    """Records in each topic (sum of the partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    out: dict[str, int] = defaultdict(int)
    for tp, end in ends.items():
        out[tp.topic] += end
    return dict(out)


async def read_topic(
    bootstrap: str,
    topic: str,
    partitions: int,
    keep: Callable[[ConsumerRecord], bool],
    timeout_s: float = 600.0,
) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to its current end offsets for which ``keep`` holds."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    kept: list[ConsumerRecord] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: not at the end after {timeout_s:.0f} s")
            batches = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for records in batches.values():
                kept.extend(r for r in records if keep(r))
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return kept


# --- the soak ------------------------------------------------------------------------------


@dataclass
class Life:
    """One worker process between its spawn and its kill (or the end)."""

    worker: int
    life: int
    pid: int
    spawned_t: float  # seconds since production start (negative before)
    ended_t: float | None = None
    end: str | None = None  # kill, crash, stop
    ready_after_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SoakState:
    opts: Options
    settings: list[Settings]
    procs: list[WorkerProcess]
    events_topic: str
    keyed_topic: str
    t0: float = 0.0  # monotonic at production start (set then)
    phase: str = "startup"
    lives: list[Life] = field(default_factory=list)
    current: list[Life] = field(default_factory=list)
    kills: list[dict[str, Any]] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    killing: set[int] = field(default_factory=set)
    ready_tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start_life(self, j: int) -> Life:
        proc = self.procs[j].proc
        assert proc is not None
        life = Life(j, sum(1 for x in self.lives if x.worker == j) + 1, proc.pid, self.now())
        self.lives.append(life)
        if j < len(self.current):
            self.current[j] = life
        else:
            self.current.append(life)
        task = asyncio.create_task(self._time_ready(j, life))
        self.ready_tasks.add(task)
        task.add_done_callback(self.ready_tasks.discard)
        return life

    async def _time_ready(self, j: int, life: Life) -> None:
        with contextlib.suppress(Exception):
            await self.procs[j].wait_ready(300, poll_s=0.5)
            life.ready_after_s = self.now() - life.spawned_t

    def end_life(self, j: int, how: str) -> None:
        life = self.current[j]
        if life.ended_t is None:
            life.ended_t, life.end = self.now(), how


async def kill_and_restart(state: SoakState, j: int) -> None:
    worker = state.procs[j]
    assert worker.proc is not None
    pid = worker.proc.pid
    state.killing.add(j)
    try:
        t = state.now()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while worker.proc.poll() is None:
            await asyncio.sleep(0.05)
        state.end_life(j, "kill")
        worker.spawn()
        life = state.start_life(j)
    finally:
        state.killing.discard(j)
    state.kills.append({"t": t, "worker": j, "killed_pid": pid, "new_pid": life.pid})
    log(f"kill -9 worker {j} (pid {pid}) at {t / 60:.1f} min; restarted as pid {life.pid}")


async def killer(state: SoakState, production_s: float) -> None:
    every = state.opts.kill_every_minutes * 60
    if every <= 0:
        return
    k = 1
    while k * every < production_s - 1e-6:
        await asyncio.sleep(max(0.0, k * every - state.now()))
        await kill_and_restart(state, (k - 1) % len(state.procs))
        k += 1


async def sample_once(
    state: SoakState, probe: LagProbe, session: aiohttp.ClientSession, traffic: Traffic
) -> dict[str, Any]:
    t = state.now()
    workers = []
    for j, worker in enumerate(state.procs):
        proc = worker.proc
        assert proc is not None
        alive = proc.poll() is None
        if not alive and j not in state.killing:
            # Nobody killed it: note the crash, start it again, go on.
            code = proc.returncode
            state.end_life(j, "crash")
            state.crashes.append(
                {"t": t, "worker": j, "pid": proc.pid, "returncode": code, "log": worker.log_tail()}
            )
            log(f"worker {j} (pid {proc.pid}) exited on its own with {code}: restarting")
            worker.spawn()
            state.start_life(j)
            proc = worker.proc
            assert proc is not None
        entry: dict[str, Any] = {
            "worker": j,
            "life": state.current[j].life,
            "pid": proc.pid,
            "alive": alive,
            "rss_bytes": rss_bytes(proc.pid),
            "cpu_s": process_cpu_seconds(proc.pid),
            "metrics": None,
        }
        url = f"http://127.0.0.1:{worker.settings.web_port}/metrics"
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, UnicodeDecodeError):
            async with session.get(url) as response:
                if response.status == 200:
                    entry["metrics"] = worker_figures(
                        parse_metrics(await response.text()), state.events_topic
                    )
        workers.append(entry)
    lag = await probe.sample()
    sample = {
        "t": t,
        "phase": state.phase,
        "produced": traffic.sent,
        "load_1m": os.getloadavg()[0],
        "workers": workers,
    }
    if lag is not None:
        sample.update(lag)
    state.samples.append(sample)
    return sample


async def sampler(state: SoakState, probe: LagProbe, traffic: Traffic) -> None:
    every = state.opts.sample_seconds
    next_at = state.now()
    last_log = -1e9
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        while True:
            sample = await sample_once(state, probe, session, traffic)
            if sample["t"] - last_log >= 60 or state.phase == "drain":
                last_log = sample["t"]
                rss = ", ".join(
                    f"{w['rss_bytes'] / MIB:.0f}" if w["rss_bytes"] else "-"
                    for w in sample["workers"]
                )
                log(
                    f"t={sample['t'] / 60:5.1f} min [{state.phase}] produced {sample['produced']:,}"
                    f" lag {sample.get('total_lag', '?'):,} RSS {rss} MiB"
                )
            next_at += every
            await asyncio.sleep(max(0.0, next_at - state.now()))


async def wait_drained(probe: LagProbe, timeout_s: float) -> tuple[float | None, int | None]:
    """Until the group's lag is 0: (seconds it took or None, the last lag seen)."""
    started = time.monotonic()
    last: int | None = None
    while True:
        sample = await probe.sample()
        if sample is not None:
            last = sample["total_lag"]
            if last == 0:
                return time.monotonic() - started, 0
        if time.monotonic() - started > timeout_s:
            return None, last
        await asyncio.sleep(1.0)


async def open_windows(procs: list[WorkerProcess]) -> float | None:
    total = 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        for worker in procs:
            url = f"http://127.0.0.1:{worker.settings.web_port}/metrics"
            try:
                async with session.get(url) as response:
                    samples = parse_metrics(await response.text())
            except (aiohttp.ClientError, TimeoutError):
                return None
            total += samples.get("streamlearn_windows_open", 0.0)
    return total


async def wait_windows_closed(procs: list[WorkerProcess], timeout_s: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await open_windows(procs) == 0:
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    return None


def make_settings(
    broker: Broker, opts: Options, run_prefix: str, data_root: Path
) -> list[Settings]:
    """One Settings per worker: same app (group, topics), own data dir and port;
    everything else is the default (full analytics)."""
    return [
        phase_settings(
            broker,
            run_prefix,
            "soak",
            data_root,
            topic_partitions=opts.partitions,
            data_dir=data_root / f"worker-{j}",
            registry_dir=data_root / "registry",
        )
        for j in range(opts.workers)
    ]


async def run_soak(
    broker: Broker, opts: Options, run_id: str, data_root: Path, workers: Workers
) -> dict[str, Any]:
    run_prefix = f"soak-{run_id}"
    settings = make_settings(broker, opts, run_prefix, data_root)
    # Every worker signs checkpoints with the same key (they hand partitions over).
    key = random.Random(opts.seed).randbytes(32).hex()
    for s in settings:
        s.data_dir.mkdir(parents=True, exist_ok=True)
        (s.data_dir / "secret.key").write_text(key)
    first = settings[0]
    events_topic, keyed_topic = first.topic("events"), first.topic("keyed")
    procs = [workers.new(s, f"{j}") for j, s in enumerate(settings)]
    state = SoakState(opts, settings, procs, events_topic, keyed_topic)
    state.t0 = time.monotonic()  # provisional: startup samples get t < 0 later
    for j in range(len(procs)):
        state.start_life(j)
    log(f"{len(procs)} worker(s) starting (pids {[p.proc.pid for p in procs if p.proc]})")
    for worker in procs:
        await worker.wait_ready(300, poll_s=0.2)
    await procs[0].wait_consuming(120, poll_s=0.2)
    specs = first.window_specs()
    traffic = Traffic(run_id, opts, specs, events_topic)
    probe = LagProbe(
        broker.bootstrap_servers, first.app_id, [events_topic, keyed_topic], opts.partitions
    )
    await probe.start()
    production_s = opts.minutes * 60
    # Production starts now: move the clock so t = 0 is the first send.
    shift = time.monotonic() - state.t0
    state.t0 += shift
    for life in state.lives:
        life.spawned_t -= shift  # (ready_after_s is measured from the spawn: unchanged)
    state.phase = "produce"
    log(
        f"producing {opts.rate:,.0f} records/s for {opts.minutes:g} min "
        f"({opts.poison:.2%} poison), kill -9 every {opts.kill_every_minutes:g} min"
    )
    sampling = asyncio.create_task(sampler(state, probe, traffic))
    killing = asyncio.create_task(killer(state, production_s))
    result: dict[str, Any] = {"state": state, "traffic": traffic, "settings": first}
    try:
        paced = await produce_paced(
            broker.bootstrap_servers, events_topic, opts.rate, production_s, traffic
        )
        result["produced"] = {
            "records": paced.sent,
            "seconds": paced.seconds,
            "rate": paced.rate,
            "valid": traffic.valid,
            "labelled": traffic.labelled,
            "poison": len(traffic.poison),
            "poison_kinds": dict(sorted(traffic.poison_kinds.items())),
        }
        killing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await killing
        while state.killing:  # a kill in progress finishes its restart
            await asyncio.sleep(0.1)
        state.phase = "drain"
        for j in range(len(procs)):
            state.end_life(j, "end of production")
        log(f"production done: {paced.sent:,} records in {paced.seconds:.1f} s; draining")
        drain_s, lag_left = await wait_drained(probe, opts.drain_minutes * 60)
        result["drain"] = {"seconds": drain_s, "lag_left": lag_left}
        if drain_s is None:
            log(f"lag not drained after {opts.drain_minutes:g} min: {lag_left} records left")
        else:
            log(f"lag drained in {drain_s:.1f} s; waiting for the windows to close")
            closed = await wait_windows_closed(procs, first.window_idle_timeout_s + 120)
            result["windows_closed_after_s"] = closed
            await asyncio.sleep(3.0)  # the last window records are sent soon after
    finally:
        for task in (killing, sampling):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in list(state.ready_tasks):
            task.cancel()
        await probe.close()
    bootstrap = broker.bootstrap_servers
    outputs = ["events", "keyed", "aggregates", "anomalies", "predictions", "drift", "deadletter"]
    result["topic_records"] = await end_offsets(
        bootstrap, [first.topic(n) for n in outputs], opts.partitions
    )
    result["dead_letters"] = await read_topic(
        bootstrap, first.topic("deadletter"), opts.partitions, lambda r: True
    )
    if drain_s is not None:
        result["window_records"] = await read_topic(
            bootstrap,
            first.topic("aggregates"),
            opts.partitions,
            lambda r: r.value is not None and b'"kind":"window"' in r.value,
        )
    return result


# --- evaluation ------------------------------------------------------------------------------


def judge_windows(result: dict[str, Any]) -> dict[str, Any]:
    traffic: Traffic = result["traffic"]
    out: dict[str, Any] = {}
    started = time.monotonic()
    expected = traffic.truth.windows()
    out["truth_seconds"] = time.monotonic() - started
    if traffic.keep_events:
        brute = window_truth(traffic.kept, traffic.truth.specs)
        disagree = compare(brute, expected)
        if disagree:  # the script's own truth is wrong: not a worker finding
            raise AssertionError(
                "streaming truth != truth.window_truth: " + "; ".join(disagree[:5])
            )
        out["truth_cross_check"] = "equal to tests/integration/truth.window_truth"
    else:
        out["truth_cross_check"] = f"skipped: {traffic.valid:,} events > --truth-cross-check-max"
    out["expected_windows"] = len(expected)
    if "window_records" not in result:
        out.update(passed=False, why="not evaluated: the lag did not drain")
        return out
    got = final_windows(result["window_records"])
    problems = compare(expected, got)
    out.update(
        final_windows=len(got),
        window_records=len(result["window_records"]),
        differences=len(problems),
        first_differences=problems[:20],
        windows_closed_after_s=result.get("windows_closed_after_s"),
        passed=not problems,
        why="" if not problems else f"{len(problems)} differences, e.g. {problems[0]}",
    )
    return out


def judge_dead_letters(result: dict[str, Any], events_topic: str) -> dict[str, Any]:
    traffic: Traffic = result["traffic"]
    poison = set(traffic.poison)
    values: Counter[bytes] = Counter()
    where: dict[tuple[int, int], bytes] = {}
    late = other = 0
    reasons: Counter[str] = Counter()
    for record in result["dead_letters"]:
        try:
            letter = DeadLetter.from_headers(record.headers)
        except (KeyError, ValueError):
            other += 1
            continue
        reasons[letter.code.value] += 1
        if letter.code == ErrorCode.LATE:
            late += 1
        elif letter.source_topic != events_topic:
            other += 1
        else:
            values[record.value] += 1
            where[(letter.source_partition, letter.source_offset)] = record.value
    distinct = set(values)
    missing = len(poison - distinct)
    unexpected = len(distinct - poison)
    replayed = sum(values.values()) - len(where)
    passed = not missing and not unexpected and len(where) == len(poison) and not late and not other
    drained = result.get("drain", {}).get("seconds") is not None
    why = []
    if missing:
        why.append(f"{missing} poison records not dead-lettered")
        if not drained:
            why.append("(the backlog did not drain)")
    if unexpected:
        why.append(f"{unexpected} dead letters that are not poison")
    if len(where) != len(poison):
        why.append(f"{len(where)} distinct source offsets for {len(poison)} poison records")
    if late:
        why.append(f"{late} valid events dead-lettered as late")
    if other:
        why.append(f"{other} dead letters from another source or without headers")
    return {
        "poison_sent": len(poison),
        "dead_letter_records": len(result["dead_letters"]),
        "distinct_poison_dead_lettered": len(distinct & poison),
        "distinct_source_offsets": len(where),
        "replayed_duplicates": replayed,
        "missing": missing,
        "unexpected": unexpected,
        "late": late,
        "other": other,
        "by_reason": dict(sorted(reasons.items())),
        "passed": passed,
        "why": " ".join(why),
    }


def judge_memory(state: SoakState, opts: Options, production_s: float) -> dict[str, Any]:
    warmup_s = opts.warmup_minutes * 60
    lives_out = []
    for life in state.lives:
        points = [
            (s["t"] - life.spawned_t, w["rss_bytes"])
            for s in state.samples
            if s["phase"] in ("startup", "produce") and s["t"] <= production_s
            for w in s["workers"]
            if w["worker"] == life.worker and w["pid"] == life.pid and w["alive"] and w["rss_bytes"]
        ]
        post = [rss for age, rss in points if age >= warmup_s]
        cpu = [
            (s["t"], w["cpu_s"])
            for s in state.samples
            for w in s["workers"]
            if w["pid"] == life.pid and w["worker"] == life.worker and w.get("cpu_s") is not None
        ]
        entry: dict[str, Any] = {
            "worker": life.worker,
            "life": life.life,
            "pid": life.pid,
            "samples": len(points),
            "post_warmup_samples": len(post),
            "max_rss_mib": max((r for _, r in points), default=0) / MIB,
            "cpu_utilisation": (cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0])
            if len(cpu) >= 2 and cpu[-1][0] > cpu[0][0]
            else None,
        }
        if len(post) >= 5:
            n = max(1, math.ceil(0.2 * len(post)))
            start, end = max(post[:n]), max(post[-n:])
            entry.update(
                judged=True,
                start_mib=start / MIB,
                end_mib=end / MIB,
                growth=end / start - 1,
                level_mib=statistics.median(post) / MIB,
            )
        else:
            entry["judged"] = False
        lives_out.append(entry)
    judged = [e for e in lives_out if e["judged"]]
    out: dict[str, Any] = {"warmup_s": warmup_s, "lives": lives_out, "judged_lives": len(judged)}
    if not judged:
        out.update(passed=False, why="no worker life had 5 samples after its warm-up")
        return out
    worst = max(judged, key=lambda e: e["growth"])
    out["max_within_life_growth"] = worst["growth"]
    across = judged[-1]["level_mib"] / judged[0]["level_mib"] - 1 if len(judged) > 1 else None
    out["across_lives_growth"] = across
    out["levels_mib"] = [e["level_mib"] for e in judged]
    why = []
    if worst["growth"] >= opts.max_memory_growth:
        why.append(
            f"worker {worst['worker']} life {worst['life']} grew {worst['growth']:+.1%} "
            f"({worst['start_mib']:.0f} -> {worst['end_mib']:.0f} MiB)"
        )
    if across is not None and across >= opts.max_memory_growth:
        why.append(f"post-warm-up level grew {across:+.1%} from the first life to the last")
    out.update(passed=not why, why="; ".join(why))
    return out


def slope(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else None


def judge_lag(result: dict[str, Any], opts: Options, production_s: float) -> dict[str, Any]:
    state: SoakState = result["state"]
    ok = max(100.0, opts.lag_ok_seconds * opts.rate)
    prod = [
        s for s in state.samples if s["phase"] == "produce" and "total_lag" in s and s["t"] >= 0
    ]
    lags = [(s["t"], float(s["total_lag"])) for s in prod]
    out: dict[str, Any] = {"about_zero_records": ok}
    out["max_lag"] = max((lag for _, lag in lags), default=None)
    out["max_lag_per_topic"] = {
        topic: max((s["lag"].get(topic, 0) for s in prod), default=None)
        for topic in (state.events_topic, state.keyed_topic)
    }
    out["lag_growth_per_s"] = slope(lags)
    # Processing rate: committed keyed-topic offsets over production.
    keyed = [(s["t"], s["committed"].get(state.keyed_topic, 0)) for s in prod]
    produced = result.get("produced", {})
    if len(keyed) >= 2 and keyed[-1][0] > keyed[0][0]:
        out["processing_rate"] = (keyed[-1][1] - keyed[0][1]) / (keyed[-1][0] - keyed[0][0])
    else:
        out["processing_rate"] = None
    out["produced_rate"] = produced.get("rate")
    # Capacity: keyed-topic offsets committed per second while draining (no more input).
    drain_samples = [s for s in state.samples if s["phase"] == "drain" and "total_lag" in s]
    busy = []
    for s in drain_samples:
        busy.append(s)
        if s["total_lag"] == 0:
            break
    out["drain_rate"] = None  # not measured without a backlog worth the name
    if len(busy) >= 2 and busy[-1]["t"] > busy[0]["t"] and busy[0]["total_lag"] > ok:
        done = busy[-1]["committed"].get(state.keyed_topic, 0)
        out["drain_rate"] = (done - busy[0]["committed"].get(state.keyed_topic, 0)) / (
            busy[-1]["t"] - busy[0]["t"]
        )
    recoveries = []
    kill_times = [k["t"] for k in state.kills]
    for i, kill in enumerate(state.kills):
        until = kill_times[i + 1] if i + 1 < len(kill_times) else production_s
        # A killed worker commits nothing: a sample begun up to a second after the kill
        # still shows the offsets at the kill (it may have been read just before it).
        before = [s for s in prod if s["t"] <= kill["t"] + 1.0]
        after = [s for s in prod if kill["t"] + 1.0 < s["t"] <= until]
        if not before or not after:
            recoveries.append({"kill_t": kill["t"], "worker": kill["worker"]})
            continue
        at_kill = before[-1]
        produced_by_kill = at_kill["end"].get(state.events_topic, 0)
        keyed_at_kill = at_kill["committed"].get(state.keyed_topic, 0)
        # Resumed: committed progress again. Recovered: everything produced before the
        # kill is committed and the lag is about zero again.
        resumed = next(
            (s["t"] for s in after if s["committed"].get(state.keyed_topic, 0) > keyed_at_kill),
            None,
        )
        back = next(
            (
                s["t"]
                for s in after
                if s["committed"].get(state.events_topic, 0) >= produced_by_kill
                and s["total_lag"] <= ok
            ),
            None,
        )
        recoveries.append(
            {
                "kill_t": kill["t"],
                "worker": kill["worker"],
                "lag_at_kill": at_kill["total_lag"],
                "resumed_after_s": None if resumed is None else resumed - kill["t"],
                "recovered_after_s": None if back is None else back - kill["t"],
                "peak_lag": max(s["total_lag"] for s in after),
            }
        )
    out["after_kills"] = recoveries
    tail = [lag for _, lag in lags[-3:]]
    out["end_of_production_lag"] = min(tail) if tail else None
    drain = result.get("drain", {})
    out["drained_after_s"] = drain.get("seconds")
    out["lag_left"] = drain.get("lag_left")
    why = []
    unrecovered = [r for r in recoveries if r.get("recovered_after_s") is None]
    if unrecovered:
        why.append(
            f"after {len(unrecovered)} of {len(recoveries)} kills the lag did not get back to "
            f"<= {ok:,.0f} before the next kill / the end"
        )
    if out["end_of_production_lag"] is None or out["end_of_production_lag"] > ok:
        why.append(f"lag at the end of production {_f(out['end_of_production_lag'])} > {ok:,.0f}")
    if drain.get("seconds") is None:
        why.append(
            f"not drained to 0 within {opts.drain_minutes:g} min ({drain.get('lag_left')} left)"
        )
    rate, made, capacity = out["processing_rate"], out["produced_rate"], out["drain_rate"]
    if why and capacity and capacity < opts.rate:
        why.append(
            f"-- the worker's capacity ({capacity:,.0f} events/s while draining) is below "
            f"--rate {opts.rate:g}: this machine cannot sustain it (it averaged "
            f"{rate or 0:,.0f}/s of {made or 0:,.0f}/s produced; the lag grew "
            f"{out['lag_growth_per_s'] or 0:,.0f} records/s)"
        )
    elif why:
        outages = [r["resumed_after_s"] for r in recoveries if r.get("resumed_after_s")]
        outage = f"~{statistics.mean(outages):.0f} s" if outages else "-"
        why.append(
            f"-- the worker(s) averaged {rate or 0:,.0f} events/s of {made or 0:,.0f}/s "
            f"produced, {_f(capacity)}/s while draining; processing stopped for {outage} "
            "after a kill (restart, the group waiting for the killed member's session to "
            "expire, state recovery): see after_kills and the samples"
        )
    out.update(passed=not why, why="; ".join(why))
    return out


def judge_stability(state: SoakState) -> dict[str, Any]:
    crashes = [{k: v for k, v in c.items() if k != "log"} for c in state.crashes]
    return {
        "unexpected_exits": crashes,
        "passed": not crashes,
        "why": f"{len(crashes)} worker exit(s) not caused by the soak" if crashes else "",
    }


def evaluate(result: dict[str, Any], opts: Options) -> dict[str, Any]:
    state: SoakState = result["state"]
    production_s = opts.minutes * 60
    return {
        "windows_exact": judge_windows(result),
        "dead_letters_exact": judge_dead_letters(result, state.events_topic),
        "memory_growth": judge_memory(state, opts, production_s),
        "lag_bounded": judge_lag(result, opts, production_s),
        "workers_stable": judge_stability(state),
    }


# --- report -----------------------------------------------------------------------------------


def _f(value: Any, fmt: str = "{:,.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def format_table(report: dict[str, Any]) -> str:
    opts, crit = report["options"], report["criteria"]
    produced = report.get("produced", {})
    lines = [
        f"soak: {opts['minutes']:g} min at {opts['rate']:,.0f} records/s, "
        f"{opts['poison']:.2%} poison, kill -9 every {opts['kill_every_minutes']:g} min, "
        f"{opts['workers']} worker(s), {opts['partitions']} partitions, {opts['keys']} keys"
    ]

    def row(name: str, text: str) -> None:
        lines.append(f"  {name:<22}{text}")

    row(
        "produced",
        f"{_f(produced.get('records'))} records ({_f(produced.get('valid'))} valid, "
        f"{_f(produced.get('poison'))} poison) at {_f(produced.get('rate'), '{:,.1f}')}/s",
    )
    lag = crit["lag_bounded"]
    row(
        "processed",
        f"{_f(lag['processing_rate'], '{:,.1f}')} events/s (committed keyed offsets, "
        "production phase)",
    )
    lives = report["lives"]
    readies = [x["ready_after_s"] for x in lives if x["ready_after_s"] is not None]
    row(
        "kills",
        f"{len(report['kills'])}; spawn -> ready "
        + (" / ".join(f"{r:.1f}" for r in readies) + " s" if readies else "-"),
    )
    row(
        "lag",
        f"max {_f(lag['max_lag'])} records, growth {_f(lag['lag_growth_per_s'], '{:+,.1f}')}/s, "
        f"~0 means <= {lag['about_zero_records']:,.0f}",
    )
    row("  capacity", f"{_f(lag['drain_rate'], '{:,.1f}')} events/s while draining the backlog")
    for r in lag["after_kills"]:
        row(
            f"  after kill {r['kill_t'] / 60:.1f} min",
            f"lag {_f(r.get('lag_at_kill'))} at the kill, peak {_f(r.get('peak_lag'))}; "
            f"processing again after {_f(r.get('resumed_after_s'), '{:.0f} s')}, "
            f"back to ~0 after {_f(r.get('recovered_after_s'), '{:.0f} s')}",
        )
    row(
        "  end of production",
        f"{_f(lag['end_of_production_lag'])} records; drained to 0 after "
        f"{_f(lag['drained_after_s'], '{:.1f} s')}",
    )
    mem = crit["memory_growth"]
    for e in mem["lives"]:
        if e["judged"]:
            text = (
                f"{e['start_mib']:.0f} -> {e['end_mib']:.0f} MiB ({e['growth']:+.1%}), "
                f"level {e['level_mib']:.0f} MiB, max {e['max_rss_mib']:.0f}"
            )
        else:
            text = f"too short to judge ({e['post_warmup_samples']} post-warm-up samples)"
        if e.get("cpu_utilisation") is not None:
            text += f"; CPU {e['cpu_utilisation']:.0%} of a core"
        row(f"RSS w{e['worker']} life {e['life']}", text)
    row("RSS across lives", _f(mem.get("across_lives_growth"), "{:+.1%}"))
    win = crit["windows_exact"]
    row(
        "windows",
        f"{_f(win['expected_windows'])} expected, {_f(win.get('final_windows'))} final, "
        f"{_f(win.get('differences'))} differences (truth: {win['truth_cross_check']})",
    )
    dead = crit["dead_letters_exact"]
    row(
        "dead letters",
        f"{dead['poison_sent']:,} poison sent, {dead['distinct_poison_dead_lettered']:,} "
        f"dead-lettered ({dead['distinct_source_offsets']:,} offsets, "
        f"+{dead['replayed_duplicates']:,} replays), {dead['late']} late, "
        f"{dead['unexpected']} unexpected",
    )
    topics = report.get("topic_records", {})
    if topics:
        row("topic records", ", ".join(f"{k}: {v:,}" for k, v in topics.items()))
    lines.append("criteria:")
    for name, c in crit.items():
        lines.append(
            f"  {'PASS' if c['passed'] else 'FAIL'} {name}" + (f": {c['why']}" if c["why"] else "")
        )
    return "\n".join(lines)


def build_report(result: dict[str, Any], opts: Options, criteria: dict[str, Any]) -> dict[str, Any]:
    state: SoakState = result["state"]
    first: Settings = result["settings"]
    topics = {
        name.removeprefix(first.topic_prefix): count
        for name, count in result.get("topic_records", {}).items()
    }
    return {
        "produced": result.get("produced", {}),
        "drain": result.get("drain", {}),
        "topic_records": topics,
        "lives": [x.as_dict() for x in state.lives],
        "kills": state.kills,
        "crashes": state.crashes,
        "samples": state.samples,
        "criteria": criteria,
        "settings": {
            "windows": list(first.windows),
            "window_idle_timeout_s": first.window_idle_timeout_s,
            "anomaly_enabled": first.anomaly_enabled,
            "model_enabled": first.model_enabled,
            "drift_enabled": first.drift_enabled,
            "commit_interval_s": first.commit_interval_s,
            "broker_session_timeout_s": first.broker_session_timeout_s,
            "topic_partitions": first.topic_partitions,
        },
    }


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    raise_on_termination()
    configure_logging()
    opts = parse_args(argv)
    run_id = new_run_id()
    stamp = utc_stamp()
    started = time.monotonic()
    report: dict[str, Any] = {
        "benchmark": "soak",
        "run_id": run_id,
        "utc": stamp,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "machine": machine_info(),
    }
    status = 0
    with tempfile.TemporaryDirectory(prefix="streamlearn-soak-") as tmp_name:
        tmp = Path(tmp_name)
        workers = Workers(opts.log_dir or tmp / "logs")
        try:
            with benchmark_broker(tmp) as broker:
                report["broker"] = {
                    "kind": "private" if broker.own else "external",
                    "url": broker.url,
                }
                try:
                    result = asyncio.run(run_soak(broker, opts, run_id, tmp / "workers", workers))
                    workers.stop_all()
                    criteria = evaluate(result, opts)
                    report.update(build_report(result, opts, criteria))
                    failed = [name for name, c in criteria.items() if not c["passed"]]
                    status = 1 if failed else 0
                except (KeyboardInterrupt, Terminated):
                    raise
                except Exception as exc:
                    log(f"soak failed: {exc!r}")
                    report["error"] = f"{type(exc).__name__}: {exc}"
                    status = 2
                finally:
                    workers.stop_all()
                    report["worker_logs"] = {
                        w.log_path.stem.removeprefix("worker-"): log_findings(w.log_text())
                        for w in workers.started
                    }
                    with contextlib.suppress(Exception):
                        deleted = asyncio.run(
                            delete_run_topics(broker.bootstrap_servers, f"soak-{run_id}")
                        )
                        log(f"deleted {len(deleted)} soak topics")
        except (KeyboardInterrupt, Terminated) as exc:
            workers.stop_all()
            log(f"interrupted ({exc.__class__.__name__}); cleaned up, no results written")
            return 130
        finally:
            workers.stop_all()
    report["total_seconds"] = time.monotonic() - started
    if "criteria" in report:
        print(format_table(report))
    if opts.json_out is not None:
        opts.json_out.parent.mkdir(parents=True, exist_ok=True)
        opts.json_out.write_bytes(
            orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        )
        path = opts.json_out
    else:
        path = write_results("soak", stamp, report)
    print(f"\nresults: {path}  (total {report['total_seconds']:.0f} s)")
    if "criteria" in report:
        failed = [name for name, c in report["criteria"].items() if not c["passed"]]
        print("soak " + ("PASSED" if not failed else "FAILED: " + ", ".join(failed)))
    if opts.log_dir:
        print(f"worker logs: {opts.log_dir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
