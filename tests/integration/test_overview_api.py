"""The overview and the alert feed against real workers and the real broker.

Two workers of one app: the overview sums both (every event counted once, both
workers listed), consumer lag drains to 0 for every source partition, the alert feed
holds the spike's alert on either worker, and a restarted worker reads it back from
the alert topic. The new metrics (end-to-end latency, processing time per agent,
watermark lag, state sizes) count what was processed.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamlearn.kafka.broker import free_port
from tests.integration.workers import (
    WorkerProcess,
    http,
    metric,
    produce,
    unique_settings,
    wait_for,
)

pytestmark = pytest.mark.integration

BASE_TS = 1_700_000_000_000
KEYS = [f"sensor-{i}" for i in range(6)]
PER_KEY = 300
SPIKE_KEY, SPIKE_AT = "sensor-2", 250


def _events() -> list[tuple[bytes | None, bytes]]:
    rng = random.Random(7)
    out: list[tuple[bytes | None, bytes]] = []
    for i in range(PER_KEY):
        for key in KEYS:
            value = rng.gauss(20.0, 1.0)
            if key == SPIKE_KEY and i == SPIKE_AT:
                value = 400.0
            doc = {"id": f"{key}-{i}", "key": key, "ts": BASE_TS + i * 1000, "values": {"t": value}}
            out.append((None, orjson.dumps(doc)))
    return out


BAD = [(None, b"{not json"), (None, orjson.dumps({"key": "x", "values": {}}))] * 3


def _overview(worker: WorkerProcess, scope: str = "app") -> dict[str, Any]:
    status, body = http(worker, "GET", f"/api/v1/overview?scope={scope}")
    assert status == 200, body
    return body


def _wait_split(settings: Any, *workers: WorkerProcess) -> None:
    """Until each events partition has exactly one owner for a second: a rebalance
    during the test would redeliver records, and counters count deliveries."""
    topic = settings.topic("events")
    wanted = sorted(f"{topic}:{p}" for p in range(settings.topic_partitions))
    history: list[list[str]] = []

    def split() -> bool:
        owned = []
        for worker in workers:
            health = worker.health() or {}
            owned += [p for p in health.get("assigned_partitions", []) if p.startswith(topic + ":")]
        history.append(sorted(owned))
        return history[-4:] == [wanted] * 4

    wait_for(split, 60, "a stable assignment over both workers")


def test_overview_and_alert_feed_across_two_workers(kafka_broker: Any, tmp_path: Path) -> None:
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        windows=["tumbling:1m"],
        anomaly_warmup_events=100,
        anomaly_threshold=0.99,  # a short history: the tail fit needs more to reach 1e-4
        model_enabled=False,
        drift_enabled=False,
        overview_sample_s=0.5,
    )
    second = settings.model_copy(
        update={"web_port": free_port(), "data_dir": tmp_path / "data-two"}
    )
    one = WorkerProcess(settings, tmp_path / "one.log").start()
    two = WorkerProcess(second, tmp_path / "two.log").start()
    try:
        _wait_split(settings, one, two)
        events = _events()
        asyncio.run(produce(settings, settings.topic("events"), events + BAD))
        total = len(events) + len(BAD)

        seen: list[dict[str, Any]] = []

        def all_in() -> bool:
            seen[:] = [_overview(one)]
            return seen[0]["totals"]["events_in"] == total and seen[0]["lag"]["total"] == 0

        try:
            wait_for(all_in, 120, f"{total} events in and no lag")
        except AssertionError:
            raise AssertionError(f"last overview: {seen[0]['totals']}, {seen[0]['lag']}") from None
        merged = _overview(one)
        from_two = _overview(two)
        local = [_overview(w, "local") for w in (one, two)]

        def spike_alert() -> list[dict[str, Any]]:
            status, body = http(two, "GET", f"/api/v1/alerts?type=anomaly&key={SPIKE_KEY}")
            assert status == 200, body
            return body["alerts"]

        # At 1 in 100 the spike's key alerts (the spike, or an episode it falls into).
        wait_for(lambda: bool(spike_alert()), 60, "an alert of the spike's key in the feed")
        alerts = spike_alert()
        spike = alerts[0]
        _, everything = http(one, "GET", "/api/v1/alerts?limit=1000")
        _, nothing = http(one, "GET", "/api/v1/alerts?key=no-such-key")
        bad_type = http(one, "GET", "/api/v1/alerts?type=spam")
        bad_limit = http(one, "GET", "/api/v1/alerts?limit=0")
        bad_range = http(one, "GET", "/api/v1/alerts?since=2024-01-02T00:00:00Z&until=1")
        bad_param = http(one, "GET", "/api/v1/alerts?sevrity=critical")
        bad_scope = http(one, "GET", "/api/v1/overview?scope=all")
        # Raw events of a key, from either worker (routed to the key's owner).
        raw = [http(w, "GET", f"/api/v1/events/{SPIKE_KEY}?value=t") for w in (one, two)]
        raw_missing_value = http(one, "GET", f"/api/v1/events/{SPIKE_KEY}")
        e2e = [metric(w, "streamlearn_end_to_end_latency_seconds_count") for w in (one, two)]
        ingest = [
            metric(w, "streamlearn_processing_seconds_count", 'agent="ingest"') for w in (one, two)
        ]
        batches = [
            metric(w, "streamlearn_processing_seconds_count", 'agent="analytics"')
            for w in (one, two)
        ]
        sizes = [metric(w, "streamlearn_state_bytes", 'table="windows"') for w in (one, two)]

        # The restarted worker reads the alert back from the topic.
        one.stop()
        one = WorkerProcess(settings, tmp_path / "one-again.log").start()
        wait_for(
            lambda: any(
                a["dedup_key"] == spike["dedup_key"]
                for a in http(one, "GET", f"/api/v1/alerts?key={SPIKE_KEY}")[1]["alerts"]
            ),
            60,
            "the alert read back after a restart",
        )
    finally:
        one.stop()
        two.stop()

    # One app: both workers listed, every event counted once, lag per partition.
    assert len(merged["workers"]) == 2
    assert merged["totals"]["events_in"] == total
    assert from_two["totals"] == merged["totals"]
    assert sum(doc["totals"]["events_in"] for doc in local) == total
    assert all(len(doc["workers"]) == 1 for doc in local)
    assert merged["totals"]["dead_letters"] == len(BAD)
    assert sum(merged["dead_letters_by_reason"].values()) == len(BAD)
    lagged = {(p["topic"], p["partition"]) for p in merged["lag"]["partitions"]}
    events_topic = settings.topic("events")
    assert {(events_topic, p) for p in range(settings.topic_partitions)} <= lagged
    assert all(p["lag"] == 0 for p in merged["lag"]["partitions"])
    assert merged["history"]["ts_ms"] == sorted(merged["history"]["ts_ms"])
    assert sum(merged["history"]["events_in_per_s"]) > 0

    # The spike's alert, on any worker, filterable; wrong parameters are 400s.
    assert {a["key"] for a in alerts} == {SPIKE_KEY}
    assert spike["type"] == "anomaly" and spike["topic"] == settings.topic("anomalies")
    assert [a["ts"] for a in alerts] == sorted((a["ts"] for a in alerts), reverse=True)
    assert spike["dedup_key"] in {a["dedup_key"] for a in everything["alerts"]}
    assert {a["key"] for a in everything["alerts"]} > {SPIKE_KEY}
    assert everything["count"] == len(everything["alerts"]) and everything["ready"] is True
    assert nothing["alerts"] == [] and nothing["count"] == 0
    for status, body in (bad_type, bad_limit, bad_range, bad_param, bad_scope):
        assert status == 400 and body["error"], body
    assert "spam" in bad_type[1]["error"] and "sevrity" in bad_param[1]["error"]

    # Every raw reading of the key, in event-time order, the spike among them.
    for status, body in raw:
        assert status == 200, body
        assert [p["ts"] for p in body["events"]] == [BASE_TS + i * 1000 for i in range(PER_KEY)]
        assert body["events"][SPIKE_AT]["value"] == 400.0
    assert raw_missing_value[0] == 400 and "value" in raw_missing_value[1]["error"]

    # Metrics: every keyed event's outputs timed once; every raw record parsed once.
    assert sum(e2e) == len(events)
    assert sum(ingest) == total
    assert sum(batches) >= 2  # both workers own keyed partitions with events
    assert all(size > 0 for size in sizes)
