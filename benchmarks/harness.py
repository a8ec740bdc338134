"""Reusable pieces for streamlearn benchmarks against a real Kafka broker.

Everything here is plain code around the project's own modules: a broker (the one
in ``STREAMLEARN_BROKER_URL`` or a private :class:`~streamlearn.kafka.LocalBroker`),
isolated settings per run, worker subprocesses, producers/consumers, percentiles,
machine info and the results file. Nothing here prints except :func:`log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import platform
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

# Benchmark the checkout this file is in, installed or not (a script's sys.path holds
# benchmarks/, not the repository root). Worker subprocesses get it via PYTHONPATH.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from streamlearn.config import Settings, load_settings  # noqa: E402
from streamlearn.kafka.broker import free_port  # noqa: E402
from streamlearn.kafka.cli import local_broker  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BROKER_URL_ENV = "STREAMLEARN_BROKER_URL"


def configure_logging() -> None:
    """Client library warnings (aiokafka retries...) on stderr, named and timestamped."""
    logging.basicConfig(
        level=logging.WARNING,
        format="[%(asctime)s] %(name)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def log(message: str) -> None:
    """Progress on stderr (the table of figures goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- termination ----------------------------------------------------------------------


class Terminated(BaseException):
    """SIGTERM/SIGHUP turned into an exception, so ``finally`` blocks clean up."""


def raise_on_termination() -> None:
    """Make SIGTERM and SIGHUP unwind the stack like Ctrl-C (SIGINT) does."""

    def handler(signum: int, _frame: Any) -> None:
        raise Terminated(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    # Python leaves SIGINT ignored when it starts ignored (e.g. `cmd &` in a script):
    # Ctrl-C / kill -INT must still stop the benchmark and clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)


# --- broker ---------------------------------------------------------------------------


@dataclass
class Broker:
    """Where the benchmark's Kafka is; ``own`` when this process started it."""

    url: str
    own: bool

    @property
    def bootstrap_servers(self) -> str:
        """``host:port,...`` for aiokafka clients (the url may list several, ``;``-separated)."""
        parts = self.url.replace(",", ";").split(";")
        return ",".join(p.strip().removeprefix("kafka://") for p in parts if p.strip())


@contextlib.contextmanager
def benchmark_broker(tmp_dir: Path) -> Iterator[Broker]:
    """The broker in ``STREAMLEARN_BROKER_URL``, else a private one stopped on exit."""
    url = os.environ.get(BROKER_URL_ENV)
    if url:
        yield Broker(url=url, own=False)
        return
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    settings = load_settings(
        broker_url=None,
        data_dir=tmp_dir / "broker-home",
        kafka_port=port,
        kafka_controller_port=controller_port,
    )
    broker = local_broker(settings)
    log(f"no {BROKER_URL_ENV}: starting a private Kafka broker on 127.0.0.1:{port}")
    started = time.monotonic()
    try:
        broker.start(timeout_s=180)
        log(f"broker ready in {time.monotonic() - started:.1f} s")
        yield Broker(url=f"kafka://{broker.bootstrap_servers}", own=True)
    finally:
        if broker.stop(timeout_s=30):
            log("private broker stopped")


# --- settings -------------------------------------------------------------------------


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def phase_settings(
    broker: Broker, run_prefix: str, phase: str, data_root: Path, **overrides: Any
) -> Settings:
    """Settings for one isolated worker run: own app id, topic prefix, data dir, port.

    Every name starts with ``run_prefix`` so :func:`delete_run_topics` finds them all
    (Faust's changelog and assignor topics are named after the app id).
    """
    values: dict[str, Any] = {
        "broker_url": broker.url,
        "app_id": f"{run_prefix}-{phase}",
        "topic_prefix": f"{run_prefix}-{phase}.",
        "data_dir": data_root / phase,
        "web_port": free_port(),
        "log_level": "info",
    }
    values.update(overrides)
    return load_settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """This environment minus STREAMLEARN_*, plus every setting as STREAMLEARN_*,
    with the checkout first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p
    )
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        # Complex settings (lists, tables) are read from the environment as JSON.
        text = orjson.dumps(value).decode() if isinstance(value, list | dict) else str(value)
        env[f"STREAMLEARN_{name.upper()}"] = text
    return env


async def create_topic(bootstrap_servers: str, name: str, partitions: int) -> None:
    """Create one topic and wait until all its partitions have a leader."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (described,) = await admin.describe_topics([name])
            parts = described["partitions"]
            if described["error_code"] == 0 and parts and all(p["leader"] >= 0 for p in parts):
                return
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def delete_run_topics(bootstrap_servers: str, run_prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``run_prefix``; returns their names."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000)
    await admin.start()
    try:
        doomed = sorted(t for t in await admin.list_topics() if t.startswith(run_prefix))
        if doomed:
            await admin.delete_topics(doomed, timeout_ms=30_000)
        return doomed
    finally:
        await admin.close()


# --- worker subprocess -----------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` (Linux /proc), None when unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class WorkerProcess:
    """``python -m streamlearn worker`` in its own session, logging to ``log_path``."""

    settings: Settings
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    spawned_at: float = field(default=0.0)

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}/api/v1/health"

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamlearn", "worker", "-l", self.settings.log_level],
                env=settings_env(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C goes to us; we stop it ourselves
            )
        self.spawned_at = time.monotonic()

    async def wait_ready(self, timeout_s: float, poll_s: float = 0.02) -> float:
        """Poll the health endpoint until the worker owns partitions; monotonic time then."""
        deadline = time.monotonic() + timeout_s
        client_timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=client_timeout) as session:
            while time.monotonic() < deadline:
                self.check_alive()
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                    async with session.get(self.health_url) as response:
                        if response.status == 200:
                            body = await response.json(loads=orjson.loads)
                            if body.get("assigned_partitions"):
                                return time.monotonic()
                await asyncio.sleep(poll_s)
        raise RuntimeError(f"worker not ready within {timeout_s:.0f} s:\n{self.log_tail()}")

    async def wait_consuming(self, timeout_s: float, poll_s: float = 0.02) -> float | None:
        """Until Faust logs ``[^Worker]: Ready`` (table recovery done, fetcher started):
        that line's wall-clock time, or None if it did not appear within ``timeout_s``.

        Health lists partitions as soon as they are assigned; Faust then still reads the
        changelog highwaters and seeks before it fetches, which can take seconds.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            found = faust_ready_wall(self.log_text())
            if found is not None:
                return found
            await asyncio.sleep(poll_s)
        return None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"worker exited with status {self.proc.returncode}:\n{self.log_tail()}"
            )

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.proc.pid) if self.proc is not None else None

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the worker's process group, SIGKILL it after ``timeout_s``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log(f"worker pid {self.proc.pid} ignored SIGTERM for {timeout_s:.0f} s: SIGKILL")
        # Also reap anything the worker left in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]


_FAUST_READY = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[INFO\] \[\^Worker\]: Ready", re.M
)


def faust_ready_wall(log_text: str) -> float | None:
    """Epoch seconds of Faust's ``[^Worker]: Ready`` line (logged in local time)."""
    match = _FAUST_READY.search(log_text)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


class Workers:
    """Every worker a benchmark started, so one ``finally`` stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[WorkerProcess] = []

    def new(self, settings: Settings, name: str) -> WorkerProcess:
        worker = WorkerProcess(settings, self.log_dir / f"worker-{name}.log")
        self.started.append(worker)
        worker.spawn()
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


TROUBLE_WORDS = ("ERROR", "CRITICAL", "Traceback", "crashed", "Restarting", "raised exception")
_LOG_PREFIX = re.compile(r"^\[[^]]*\] \[\d+\] \[[A-Z]+\] ")
_NUMBER = re.compile(r"\d+(\.\d+)?")


def log_findings(text: str, limit: int = 10) -> dict[str, Any]:
    """A worker log's WARNING and error lines: counts, and the most frequent messages
    (numbers masked as N, so "producer buffer full size 123" groups together)."""
    lines = text.splitlines()
    warnings = [line for line in lines if "WARNING" in line]
    trouble = [line for line in lines if any(word in line for word in TROUBLE_WORDS)]

    def top(found: list[str]) -> list[dict[str, Any]]:
        counts = Counter(
            _NUMBER.sub("N", _LOG_PREFIX.sub("", line)).strip()[:200] for line in found
        )
        return [{"message": m, "count": c} for m, c in counts.most_common(limit)]

    return {
        "lines": len(lines),
        "warnings": len(warnings),
        "errors": len(trouble),
        "top_warnings": top(warnings),
        "top_errors": top(trouble),
        "first_errors": [line[:300] for line in trouble[:limit]],
    }


# --- events ---------------------------------------------------------------------------


def key_names(keys: int) -> list[str]:
    width = len(str(max(keys - 1, 0)))
    return [f"sensor-{i:0{width}d}" for i in range(keys)]


def event_bytes(run_id: str, index: int, key: str, key_index: int, ts_ms: int) -> bytes:
    """One realistic event: 2 or 3 readings depending on the key, an id, a ts."""
    phase = index * 0.001
    values: dict[str, float] = {
        "temperature": round(20.0 + 5.0 * ((index * 7919) % 1000) / 1000.0 + key_index, 3),
        "humidity": round(40.0 + 20.0 * ((index * 104729) % 1000) / 1000.0, 3),
    }
    if key_index % 2 == 0:
        values["pressure"] = round(1013.0 + (phase % 10.0), 3)
    return orjson.dumps({"key": key, "ts": ts_ms, "values": values, "id": f"{run_id}-{index}"})


def batch_events(run_id: str, count: int, keys: int, start_ts_ms: int) -> list[tuple[bytes, bytes]]:
    """``count`` (key, value) pairs, keys round-robin, ts increasing 1 ms per event."""
    names = key_names(keys)
    out: list[tuple[bytes, bytes]] = []
    for i in range(count):
        k = i % keys
        out.append((names[k].encode(), event_bytes(run_id, i, names[k], k, start_ts_ms + i)))
    return out


async def produce_all(
    bootstrap_servers: str, topic: str, records: Sequence[tuple[bytes, bytes]]
) -> float:
    """Send every record (batched, acks=all); seconds from first send to last ack."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        linger_ms=20,
        max_batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        started = time.monotonic()
        pending: list[asyncio.Future[Any]] = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return time.monotonic() - started
    finally:
        await producer.stop()


@dataclass(frozen=True)
class PacedRun:
    """What :func:`produce_paced` did."""

    sent: int
    start_wall_ms: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


async def produce_paced(
    bootstrap_servers: str,
    topic: str,
    rate: float,
    seconds: float,
    make_record: Callable[[int, int], tuple[bytes, bytes]],
) -> PacedRun:
    """Send ``rate`` records/s for ``seconds``; ``make_record(index, now_ms)`` builds
    each (key, value) just before it is sent, so a ts in it is the send time.

    acks=1 and linger_ms=0: every record leaves as soon as the client can send it.
    """
    total = int(rate * seconds)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks=1, linger_ms=0)
    await producer.start()
    try:
        started = time.monotonic()
        start_wall_ms = float(int(time.time() * 1000))  # same resolution as the ts
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            while sent < due:
                key, value = make_record(sent, int(time.time() * 1000))
                await producer.send(topic, value, key=key)
                sent += 1
            await asyncio.sleep(max(0.0, sent / rate - (time.monotonic() - started)))
        await producer.flush()
        return PacedRun(sent, start_wall_ms, time.monotonic() - started)
    finally:
        await producer.stop()


def event_factory(run_id: str, keys: int) -> Callable[[int, int], tuple[bytes, bytes]]:
    """``make_record`` for :func:`produce_paced`: realistic events, keys round-robin."""
    names = key_names(keys)
    encoded = [n.encode() for n in names]

    def make(index: int, now_ms: int) -> tuple[bytes, bytes]:
        k = index % keys
        return encoded[k], event_bytes(run_id, index, names[k], k, now_ms)

    return make


# --- aggregates -----------------------------------------------------------------------


@dataclass
class AggregateProgress:
    """Per-key maximum of the aggregates' ``events``; their sum is events processed.

    Set ``target`` to have ``done_at`` (monotonic) stamped when the sum reaches it.
    """

    target: int = 0
    by_key: dict[str, int] = field(default_factory=dict)
    total: int = 0
    records: int = 0
    first_seen: float | None = None  # monotonic
    done_at: float | None = None  # monotonic
    last_emitted_at: float = 0.0  # worker wall clock, epoch s

    def add(self, doc: dict[str, Any], now: float) -> None:
        self.records += 1
        if self.first_seen is None:
            self.first_seen = now
        self.last_emitted_at = max(self.last_emitted_at, float(doc.get("emitted_at", 0.0)))
        key, events = doc["key"], int(doc["events"])
        previous = self.by_key.get(key, 0)
        if events > previous:
            self.by_key[key] = events
            self.total += events - previous
        self.check_done(now)

    def check_done(self, now: float) -> None:
        if self.done_at is None and self.target and self.total >= self.target:
            self.done_at = now

    def on_batch(self, docs: list[dict[str, Any]], mono: float, wall: float) -> None:
        """Callback for :func:`consume_aggregates`."""
        for doc in docs:
            self.add(doc, mono)


def aggregates_consumer(bootstrap_servers: str, topic: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,  # latency: do not let the broker hold fetches long
    )


async def consume_aggregates(
    consumer: AIOKafkaConsumer,
    on_batch: Callable[[list[dict[str, Any]], float, float], None],
    kind: str | None = "stats",
) -> None:
    """Forever: hand each fetched batch of JSON docs (only ``kind`` ones, unless None)
    to ``on_batch(docs, monotonic, wall)``, with the receive time of the whole batch."""
    while True:
        batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
        mono, wall = time.monotonic(), time.time()
        docs = [orjson.loads(r.value) for records in batches.values() for r in records]
        if kind is not None:
            docs = [d for d in docs if d.get("kind") == kind]
        if docs:
            on_batch(docs, mono, wall)


# --- statistics -----------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (0-100) of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = (len(sorted_values) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summarize(values: Iterable[float]) -> dict[str, float]:
    data = sorted(values)
    if not data:
        return {"count": 0}
    return {
        "count": len(data),
        "min": data[0],
        "p50": percentile(data, 50),
        "p95": percentile(data, 95),
        "p99": percentile(data, 99),
        "max": data[-1],
        "mean": sum(data) / len(data),
    }


def timeline(
    points: Iterable[tuple[float, float]], bucket_s: float = 1.0
) -> list[dict[str, float]]:
    """(t seconds, value) points -> per-bucket count, p50 and max, in time order."""
    buckets: dict[int, list[float]] = {}
    for t, value in points:
        buckets.setdefault(int(t // bucket_s), []).append(value)
    out = []
    for index in sorted(buckets):
        data = sorted(buckets[index])
        out.append(
            {
                "t_s": index * bucket_s,
                "count": len(data),
                "p50": percentile(data, 50),
                "max": data[-1],
            }
        )
    return out


# --- machine and results ----------------------------------------------------------------


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "source_sha256": source_fingerprint(),
    }


def source_fingerprint(package: str = "streamlearn") -> str:
    """SHA-256 over the package's .py files (paths and contents): identifies the code
    measured even when the working tree differs from the commit."""
    digest = hashlib.sha256()
    root = REPO_ROOT / package
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    import streamlearn

    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "git": git_commit(),
        "packages": {
            "streamlearn": streamlearn.__version__,
            **{
                name: package_version(name)
                for name in ("faust-streaming", "aiokafka", "orjson", "rocksdict")
            },
        },
    }


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_results(
    name: str, stamp: str, data: dict[str, Any], directory: Path = RESULTS_DIR
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".gitkeep").touch(exist_ok=True)
    path = directory / f"{name}-{stamp}.json"
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return path
