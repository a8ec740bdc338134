"""``streamlearn demo``: broker, worker, a real data set and a live terminal summary."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.replay import Record, replay
from streamlearn.topics import ensure_topics


def sp500_events() -> Iterator[Record]:
    """River's bundled S&P 500 daily returns as events: one per stock and day.

    key = ticker, ts = the trading day (UTC midnight), values = {"return": %},
    label = the data set's target, the next day's equal-weighted portfolio return.
    """
    import river.datasets

    path = Path(river.datasets.__file__).parent / "sp500.csv.gz"
    with gzip.open(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            day = datetime.strptime(row.pop("date"), "%Y-%m-%d").replace(tzinfo=UTC)
            ts_ms = int(day.timestamp() * 1000)
            label = float(row.pop("next_day_return"))
            for ticker, value in row.items():
                event = {
                    "id": f"{ticker}-{ts_ms}",
                    "key": ticker,
                    "ts": ts_ms,
                    "values": {"return": float(value)},
                    "label": label,
                }
                yield Record(ticker.encode(), orjson.dumps(event), ts_ms)


WEEK = "tumbling-7d"


class Summary:
    """What the live summary shows, fed by the output topics."""

    def __init__(self) -> None:
        self.sent = 0
        self.stats_records = 0
        self.windows_closed = 0
        self.dead_letters = 0
        self.alerts: list[dict[str, Any]] = []
        self.alerts_by_key: dict[str, int] = {}
        self.drift: list[dict[str, Any]] = []  # drift, degradation, promotion records
        self.latest: dict[str, dict[str, Any]] = {}
        self.last_week: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()

    def on_output(self, topic_kind: str, value: bytes | None) -> None:
        if topic_kind == "deadletter":
            self.dead_letters += 1
            return
        if not value:
            return
        doc = orjson.loads(value)
        if topic_kind == "anomalies":
            self.alerts.append(doc)
            self.alerts_by_key[doc["key"]] = self.alerts_by_key.get(doc["key"], 0) + 1
            return
        if topic_kind in ("drift", "model_events"):
            if doc.get("type") in ("drift", "degradation", "promotion"):
                self.drift.append(doc)
            return
        if doc.get("kind") == "window":
            self.windows_closed += 1
            if doc["window"] == WEEK and doc["start"] >= self.last_week.get(doc["key"], {}).get(
                "start", -1
            ):
                self.last_week[doc["key"]] = doc
        else:
            self.stats_records += 1
            self.latest[doc["key"]] = doc

    def render(self, web_url: str) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        lines = [
            f"streamlearn demo — {elapsed:5.0f} s   events sent {self.sent:,} "
            f"({self.sent / elapsed:,.0f}/s)   windows closed {self.windows_closed:,}   "
            f"stats records {self.stats_records:,}   anomaly alerts {len(self.alerts):,}   "
            f"dead letters {self.dead_letters:,}   drift/model records {len(self.drift):,}",
            f"Faust web stats: {web_url}   metrics: {web_url}metrics   API: {web_url}api/v1/keys",
            f"{'key':<6} {'events':>7}  {'mean %':>8} {'std %':>7} {'min %':>8} {'max %':>8}"
            f"   {'last closed week':<18} {'mean %':>7} {'p95 %':>7}   {'alerts':>6}",
        ]
        for key in sorted(self.latest):
            doc = self.latest[key]
            stats = doc["values"].get("return")
            if not stats:
                continue
            line = (
                f"{key:<6} {doc['events']:>7}  {stats['mean']:>8.3f} {stats['std']:>7.3f} "
                f"{stats['min']:>8.3f} {stats['max']:>8.3f}"
            )
            week = self.last_week.get(key)
            if week:
                day = datetime.fromtimestamp(week["start"] / 1000, UTC).strftime("%Y-%m-%d")
                line += f"   {day:<18} {week['stats']['mean']:>7.3f} {week['stats']['p95']:>7.3f}"
            else:
                line += " " * 37
            lines.append(f"{line}   {self.alerts_by_key.get(key, 0):>6}")
        if self.alerts:
            lines.append("latest anomaly alerts:")
            lines.extend(f"  {format_alert(a)}" for a in self.alerts[-3:])
        if self.drift:
            lines.append("latest drift and model records:")
            lines.extend(
                f"  {datetime.fromtimestamp(d['ts'] / 1000, UTC):%Y-%m-%d} {d['type']} "
                f"({d['severity']}): {d['message']}"
                for d in self.drift[-3:]
            )
        return "\n".join(lines)


def format_alert(alert: dict[str, Any]) -> str:
    """One line for a human: when, which key, what value against which expected range.

    >>> format_alert({"key": "AAPL", "ts": 0, "severity": "major", "score": 0.999991,
    ...               "values": [{"name": "return", "value": -8.2, "expected_low": -3.1,
    ...                           "expected_high": 3.3}]})
    '1970-01-01 AAPL major (score 0.999991): return -8.200 (expected -3.100 .. 3.300)'
    """
    day = datetime.fromtimestamp(alert["ts"] / 1000, UTC).strftime("%Y-%m-%d")
    parts = [
        f"{v['name']} {v['value']:.3f} (expected {v['expected_low']:.3f} .. "
        f"{v['expected_high']:.3f})"
        for v in alert.get("values", [])
    ]
    return f"{day} {alert['key']} {alert['severity']} (score {alert['score']:.6f}): " + "; ".join(
        parts
    )


async def _watch(settings: Settings, summary: Summary, stop: asyncio.Event) -> None:
    names = ("aggregates", "deadletter", "anomalies", "drift", "model_events")
    kinds = {settings.topic(name): name for name in names}
    consumer = AIOKafkaConsumer(
        *kinds,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=300)
            for tp, records in batches.items():
                for record in records:
                    summary.on_output(kinds[tp.topic], record.value)
    finally:
        await consumer.stop()


async def _delete_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.kafka_client_options()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        mine = [
            t
            for t in existing
            if t.startswith(settings.topic_prefix) or t.startswith(f"{settings.app_id}-")
        ]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        secret = getattr(settings, name)
        if hasattr(secret, "get_secret_value"):  # dumped masked: pass the real value on
            value = secret.get_secret_value()
        if value is not None:
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            env[f"STREAMLEARN_{name.upper()}"] = text
    env.pop("STREAMLEARN_CONFIG", None)
    log = log_path.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "streamlearn", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _run(settings: Settings, duration_s: float | None, rate: float) -> None:
    summary = Summary()
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(settings, summary, stop))

    def on_sent(n: int) -> None:
        summary.sent += n

    producer = asyncio.create_task(
        replay(sp500_events(), settings, rate=rate, on_sent=on_sent, stop=stop)
    )
    web_url = f"http://{settings.web_host}:{settings.web_port}/"
    deadline = time.monotonic() + duration_s if duration_s else None
    interactive = sys.stdout.isatty()
    try:
        while deadline is None or time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            if producer.done() and producer.exception():
                raise StreamlearnError(f"replay failed: {producer.exception()!r}")
            text = summary.render(web_url)
            if interactive:
                sys.stdout.write("\x1b[2J\x1b[H" + text + "\n")
            else:
                sys.stdout.write(text.splitlines()[0] + "\n")
            sys.stdout.flush()
    finally:
        stop.set()
        for task in (producer, watcher):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
    print(summary.render(web_url))


def run_demo(settings: Settings, *, duration_s: float | None = None, rate: float = 250.0) -> int:
    """Run the demo; returns the exit status. Cleans up everything it started."""
    from streamlearn.kafka.cli import local_broker

    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="streamlearn-demo-"))
    demo_settings = settings.model_copy(
        update={
            "app_id": f"streamlearn-demo-{run_id}",
            "topic_prefix": f"{settings.topic_prefix}demo-{run_id}.",
            "data_dir": workdir / "data",
            "stats_emit_every_events": 50,
            "stats_emit_interval_s": 2.0,
            # Daily data: weekly and 4-weekly windows (1-minute ones would hold one event).
            "windows": ("tumbling:7d", "tumbling:28d"),
            "window_idle_timeout_s": 10.0,
            # Keep every closed window of the data set (2013-2018) for the dashboard's
            # key explorer, not just the default week of event time.
            "series_retention_ms": 20 * 365 * 86_400_000,
            # The label is a return (a number): the online model is a regression.
            "model_task": "regression",
            "model_learner": "linear",
        }
    )
    broker = None
    started_broker = False
    worker = None
    try:
        if settings.uses_local_broker:
            broker = local_broker(settings)
            started_broker = not broker.status().running
            print("starting the local Kafka broker..." if started_broker else "broker is up")
            broker.start()
        asyncio.run(ensure_topics(demo_settings))
        worker = _start_worker(demo_settings, workdir / "worker.log")
        print(f"worker pid {worker.pid}, log {workdir / 'worker.log'}")
        asyncio.run(_run(demo_settings, duration_s, rate))
        if worker.poll() is not None:
            tail = (workdir / "worker.log").read_text(errors="replace")[-2000:]
            raise StreamlearnError(f"the worker exited early:\n{tail}")
        return 0
    except KeyboardInterrupt:
        print("\nstopping...")
        return 0
    finally:
        if worker is not None:
            _stop_process(worker)
        with contextlib.suppress(Exception):
            asyncio.run(_delete_topics(demo_settings))
        if broker is not None and started_broker:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
