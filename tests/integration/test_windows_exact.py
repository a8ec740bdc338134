"""Windows are exact under kill -9, rebuilt from the changelog, and keep expiring.

Sizes are reduced for `make test`; `make chaos` runs the full 200,000 events and three
kills (STREAMLEARN_CHAOS_EVENTS, STREAMLEARN_CHAOS_KILLS).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamlearn.analytics.windows import WindowSpec
from tests.integration.truth import compare, make_events, window_truth
from tests.integration.workers import (
    WorkerProcess,
    agent_trouble,
    consume_until,
    produce,
    unique_settings,
)

pytestmark = pytest.mark.integration

EVENTS = int(os.environ.get("STREAMLEARN_CHAOS_EVENTS", "50000"))
KILLS = int(os.environ.get("STREAMLEARN_CHAOS_KILLS", "2"))
KEYS = 50
WINDOW_SETTINGS = {
    "windows": ("tumbling:1m", "hopping:5m:1m"),
    "window_lateness_ms": 5_000,
    "window_grace_ms": 5_000,
    "stats_emit_every_events": 100_000,
}


def final_windows(records: list[Any]) -> dict[str, dict[str, Any]]:
    """Window records deduplicated by id, last wins."""
    out = {}
    for record in records:
        doc = orjson.loads(record.value)
        if doc.get("kind") == "window":
            out[doc["id"]] = doc["stats"]
    return out


def quiet_for(seconds: float):
    """A `done` predicate: true once no record arrived for ``seconds``."""
    state = {"n": -1, "since": time.monotonic()}

    def done(records: list[Any], wanted: int) -> bool:
        if len(records) != state["n"]:
            state["n"], state["since"] = len(records), time.monotonic()
            return False
        return (
            len(final_windows(records)) >= wanted and time.monotonic() - state["since"] >= seconds
        )

    return done


def test_windows_exact_after_kill_9(kafka_broker, tmp_path: Path) -> None:
    settings = unique_settings(
        kafka_broker.bootstrap_servers, tmp_path, window_idle_timeout_s=8.0, **WINDOW_SETTINGS
    )
    specs = settings.window_specs()
    events = make_events(EVENTS, KEYS, seed=11, disorder_ms=8_000)
    expected = window_truth(events, specs)
    payloads = [(None, orjson.dumps(e)) for e in events]

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    rate = max(EVENTS / 25, 1_000)  # spread production over ~25 s so kills land mid-stream

    def paced_produce() -> None:
        async def run() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
            await producer.start()
            try:
                chunk = int(rate / 10)
                for i in range(0, len(payloads), chunk):
                    started = time.monotonic()
                    sends = [
                        await producer.send(settings.topic("events"), value, partition=j % 4)
                        for j, (_, value) in enumerate(payloads[i : i + chunk], start=i)
                    ]
                    await asyncio.gather(*sends)
                    await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
            finally:
                await producer.stop()

        asyncio.run(run())

    producer = threading.Thread(target=paced_produce)
    producer.start()
    rng = random.Random(5)
    kills = 0
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(3, 8))
            worker.kill()  # SIGKILL: no shutdown, no final commit
            kills += 1
            worker.start()
        producer.join()
        done = quiet_for(6.0)
        records = asyncio.run(
            consume_until(
                settings,
                settings.topic("aggregates"),
                lambda r: done(r, len(expected)),
                timeout_s=300,
            )
        )
        dead = asyncio.run(
            consume_until(settings, settings.topic("deadletter"), lambda r: False, 3)
        )
    finally:
        producer.join()
        worker.stop()

    assert kills == KILLS
    assert dead == []  # nothing was late: disorder stayed within lateness + grace
    problems = compare(expected, final_windows(records))
    assert problems == [], "\n".join(problems[:20])
    assert "Restarting" not in worker.log()


def _get(worker: WorkerProcess, path: str) -> Any:
    url = f"http://127.0.0.1:{worker.web_port}{path}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return orjson.loads(response.read())


def _snapshot(worker: WorkerProcess, specs: list[WindowSpec]) -> dict[str, Any]:
    snap: dict[str, Any] = {}
    for key in _get(worker, "/api/v1/keys")["keys"]:
        stats = _get(worker, f"/api/v1/stats/{key}")
        snap[f"stats/{key}"] = stats
        for value in stats["values"]:
            for spec in specs:
                series = _get(
                    worker,
                    f"/api/v1/series/{key}?value={value}&window={spec.name}"
                    "&from=1699990000000&to=1700100000000",
                )
                snap[f"series/{key}/{value}/{spec.name}"] = series["windows"]
    return snap


def _processed(worker: WorkerProcess, n: int) -> bool:
    keys = _get(worker, "/api/v1/keys")["keys"]
    return sum(_get(worker, f"/api/v1/stats/{k}")["events"] for k in keys) == n


def _feed(worker: WorkerProcess, settings: Any, events: list[dict[str, Any]]) -> None:
    """Produce ``events`` round-robin over 4 partitions and wait until all are applied."""
    payloads = [(None, orjson.dumps(e)) for e in events]
    asyncio.run(produce(settings, settings.topic("events"), payloads, partition_of=lambda i: i % 4))
    _wait(lambda: _processed(worker, len(events)))


def _wait(predicate, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("timed out")


def test_state_rebuilt_from_changelog_equals_state_before(kafka_broker, tmp_path: Path) -> None:
    settings = unique_settings(
        kafka_broker.bootstrap_servers, tmp_path, window_idle_timeout_s=3600.0, **WINDOW_SETTINGS
    )
    specs = settings.window_specs()
    events = make_events(6_000, 10, seed=3, disorder_ms=4_000)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        _feed(worker, settings, events)
        before = _snapshot(worker, specs)
        worker.stop()
        shutil.rmtree(settings.data_dir)
        worker.start()
        _wait(lambda: _processed(worker, len(events)))
        after = _snapshot(worker, specs)
    finally:
        worker.stop()
    open_windows = sum(
        1
        for name, windows in before.items()
        if name.startswith("series/")
        for w in windows
        if not w["closed"]
    )
    assert open_windows > 0  # the rebuilt state includes windows still open
    assert after == before


def test_windows_keep_expiring_after_restart(kafka_broker, tmp_path: Path) -> None:
    settings = unique_settings(
        kafka_broker.bootstrap_servers, tmp_path, window_idle_timeout_s=4.0, **WINDOW_SETTINGS
    )
    events = make_events(3_000, 10, seed=4, disorder_ms=2_000)
    expected = window_truth(events, settings.window_specs())
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()

    def open_windows() -> float:
        url = f"http://127.0.0.1:{worker.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("streamlearn_windows_open "):
                    return float(line.split()[1])
        raise AssertionError("no streamlearn_windows_open metric")

    try:
        _feed(worker, settings, events)
        _wait(lambda: open_windows() > 0, 10)
        worker.kill()  # windows still open in state; no event will ever arrive again
        worker.start()
        _wait(lambda: open_windows() == 0, 60)  # closed by the idle timeout after restart
        done = quiet_for(3.0)
        records = asyncio.run(
            consume_until(settings, settings.topic("aggregates"), lambda r: done(r, len(expected)))
        )
    finally:
        worker.stop()
    assert compare(expected, final_windows(records)) == []
    assert agent_trouble(worker.log()) == []


def test_closed_windows_expire_from_the_series_store(kafka_broker, tmp_path: Path) -> None:
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        window_idle_timeout_s=3600.0,
        series_retention_ms=300_000,
        series_retention_check_s=1.0,
        **WINDOW_SETTINGS,
    )
    # One event a second for 20 minutes of event time, one key.
    events = [
        {"key": "k", "ts": 1_700_000_000_000 + i * 1000, "values": {"x": float(i)}}
        for i in range(1200)
    ]
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        _feed(worker, settings, events)

        def starts() -> list[int]:
            body = _get(
                worker,
                "/api/v1/series/k?value=x&window=tumbling-1m&from=1699990000000&to=1700100000000",
            )
            return [w["start"] for w in body["windows"]]

        # watermark = last ts - 5 s lateness; windows starting 5 min before it are gone
        horizon = events[-1]["ts"] - 5_000 - 300_000
        _wait(lambda: min(starts()) >= horizon - 60_000, 90)
        kept = starts()
    finally:
        worker.stop()
    assert min(kept) >= horizon - 60_000  # older windows were deleted...
    assert min(kept) <= horizon + 60_000  # ...and only those
    assert len(kept) >= 5
