"""Run real streamlearn workers as subprocesses and talk to the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from streamlearn.config import Settings, load_settings
from streamlearn.kafka.broker import free_port
from streamlearn.topics import ensure_topics

#: Cheap workers: no anomaly detector, one window, no stats chatter, no answer cache.
LEAN: dict[str, Any] = {
    "anomaly_enabled": False,
    "windows": ["tumbling:1h"],
    "stats_emit_every_events": 100_000,
    "stats_emit_interval_s": 0.0,
    "model_predict_cache_s": 0.0,
}


def unique_settings(bootstrap: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings isolated from every other test: own topics, group, data dir, port."""
    run = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "broker_url": f"kafka://{bootstrap}",
        "app_id": f"sl-test-{run}",
        "topic_prefix": f"t-{run}.",
        "data_dir": tmp_path / f"data-{run}",
        "web_port": free_port(),
        "stats_emit_every_events": 500,
        "stats_emit_interval_s": 1.0,
        "commit_interval_s": 0.5,
        "broker_session_timeout_s": 10.0,
    }
    values.update(overrides)
    return load_settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    for name, value in settings.model_dump(mode="json").items():
        secret = getattr(settings, name)
        if hasattr(secret, "get_secret_value"):
            value = secret.get_secret_value()
        if value is not None:
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            env[f"STREAMLEARN_{name.upper()}"] = text
    return env


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    web_port: int = field(init=False)

    def __post_init__(self) -> None:
        self.web_port = self.settings.web_port

    def start(self, timeout_s: float = 90.0) -> WorkerProcess:
        asyncio.run(ensure_topics(self.settings))
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlearn", "worker", "-l", "info"],
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(timeout_s)
        return self

    def health(self) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.web_port}/api/v1/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return orjson.loads(response.read())
        except OSError:
            return None

    def wait_ready(self, timeout_s: float) -> None:
        """Until the worker's web server answers and it owns partitions."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log()[-3000:]}")
            health = self.health()
            if health and health["assigned_partitions"]:
                return
            time.sleep(0.25)
        raise AssertionError(f"worker not ready in {timeout_s}s:\n{self.log()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def produce(
    settings: Settings,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    partition_of: Callable[[int], int | None] | None = None,
) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=5, acks="all"
    )
    await producer.start()
    count = 0
    try:
        futures = []
        for i, (key, value) in enumerate(records):
            partition = partition_of(i) if partition_of else None
            futures.append(await producer.send(topic, value, key=key, partition=partition))
            count += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count


async def consume_until(
    settings: Settings,
    topic: str,
    done: Callable[[list[ConsumerRecord]], bool],
    timeout_s: float = 120.0,
) -> list[ConsumerRecord]:
    """Read ``topic`` from the start until ``done(records)`` or the timeout."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
            if done(records):
                return records
    finally:
        await consumer.stop()
    return records


class PacedProducer(threading.Thread):
    """Produces ``records`` (key, value, partition; None for the default) to ``topic`` at
    about ``rate`` per second, in tenths of a second (0: all at once); ``acked`` counts
    the records the broker acknowledged, ``error`` holds what stopped it.

    With ``hold_at``, it stops once that many records are acknowledged until
    :meth:`release` is called: a test that kills a worker "mid-stream" holds the rest
    back until the kill, so the kill lands mid-stream however slowly the worker starts.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        records: list[tuple[bytes | None, bytes, int | None]],
        rate: float = 0.0,
        hold_at: int | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.topic = topic
        self.records = records
        self.rate = rate
        self.hold_at = hold_at
        self._released = threading.Event()
        self.acked = 0
        self.error: BaseException | None = None

    def release(self) -> None:
        """Lets a producer held at ``hold_at`` go on (no effect otherwise)."""
        self._released.set()

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            linger_ms=5,
            acks="all",
            enable_idempotence=True,
        )
        await producer.start()
        try:
            chunk = max(int(self.rate / 10), 1) if self.rate else max(len(self.records), 1)
            hold_at = len(self.records) if self.hold_at is None else self.hold_at
            i = 0
            while i < len(self.records):
                if i >= hold_at and not self._released.is_set():
                    await asyncio.to_thread(self._released.wait)
                started = time.monotonic()
                stop = min(i + chunk, hold_at) if i < hold_at else i + chunk
                sends = [
                    await producer.send(self.topic, value, key=key, partition=partition)
                    for key, value, partition in self.records[i:stop]
                ]
                await asyncio.gather(*sends)
                i = min(stop, len(self.records))
                self.acked = i
                if self.rate:
                    await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
        finally:
            await producer.stop()


def latest_stats(records: list[ConsumerRecord]) -> dict[str, dict[str, Any]]:
    """The aggregate with the most events per key (the final one)."""
    best: dict[str, dict[str, Any]] = {}
    for record in records:
        doc = orjson.loads(record.value)
        if doc.get("kind") != "stats":
            continue
        if doc["key"] not in best or doc["events"] > best[doc["key"]]["events"]:
            best[doc["key"]] = doc
    return best


AGENT_TROUBLE = ("crashed", "Restarting", "Traceback", "raised exception")


def agent_trouble(log: str) -> list[str]:
    return [line for line in log.splitlines() if any(word in line for word in AGENT_TROUBLE)]


def http(
    worker: WorkerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """``(status, parsed JSON body)`` of one request to the worker (errors included)."""
    sent = {"Content-Type": "application/json"} if body is not None else {}
    sent.update(headers or {})
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.web_port}{path}", data=body, method=method, headers=sent
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return exc.code, raw.decode(errors="replace")


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def metric(worker: WorkerProcess, name: str, labels: str = "") -> float:
    """A sample of the worker's /metrics (0.0 when the series does not exist yet)."""
    url = f"http://127.0.0.1:{worker.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0
