"""The alert webhook against a real HTTP server on 127.0.0.1 (no mocks).

* The sink: delivered with its headers and JSON body; retried after 5xx, 429 (its
  Retry-After honoured), timeouts and refused connections; a 4xx other than 429 is not
  retried; after ``retries`` retries it gives up, logs the dedup key (never the URL's
  secrets), counts it, and the next alert is delivered.
* End to end: a real worker with ``alert_webhook_url`` posts the anomaly alert of an
  obvious outlier (the same alert an offline Scorer raises) and a drift record, skips
  a record that is not an alert; with a dead webhook it keeps detecting and publishing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from streamlearn.alerts import Alert
from streamlearn.alerts.webhook import Outcome, WebhookSink
from streamlearn.config import Settings
from streamlearn.kafka.broker import free_port
from streamlearn.models.anomaly.defaults import detector_factory
from streamlearn.models.anomaly.scorer import Scorer
from streamlearn.web.metrics import Metrics
from tests.integration.workers import (
    WorkerProcess,
    agent_trouble,
    consume_until,
    produce,
    unique_settings,
)

#: In the URL the workers get: must never show up in a log.
PASSWORD = "pw-s3cret"
TOKEN = "tok-s3cret"


# --- a real HTTP receiver -------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    def json(self) -> Any:
        return orjson.loads(self.body)


class Receiver:
    """An aiohttp server in its own thread; answers each POST with the next scripted Reply."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def url(self, path: str = "/hook", secret: bool = False) -> str:
        auth = f"bot:{PASSWORD}@" if secret else ""
        query = f"?token={TOKEN}" if secret else ""
        return f"http://{auth}127.0.0.1:{self.port}{path}{query}"

    def reply(self, *replies: Reply) -> None:
        with self.lock:
            self.script.extend(replies)

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def all(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.lock:
            reply = self.script.pop(0) if self.script else Reply()
            self.requests.append(
                Received(request.path, request.query_string, dict(request.headers), body, 0)
            )
            index = len(self.requests) - 1
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        with self.lock:
            received = self.requests[index]
            self.requests[index] = Received(
                received.path, received.query, received.headers, received.body, reply.status
            )
        return web.Response(status=reply.status, headers=reply.headers, text="ok")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]
        self.started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    def __enter__(self) -> Receiver:
        self.thread.start()
        assert self.started.wait(10), "the receiver did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def wait_for(self, done: Callable[[Receiver], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if done(self):
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}: {self.all()}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def drift_alert(n: int = 1, key: str | None = "pump-7") -> Alert:
    return Alert(
        "drift",
        "warning",
        "temp",
        f"Data drift on {key}: the mean of temp moved from 20.1 to 24.9.",
        1_767_607_200_000 + n,
        f"drift:{key}:temp:{n}",
        key=key,
        evidence={"psi": 0.31, "ks_p": 1e-9},
        extra={"kind": "data", "feature": "temp"},
    )


class Waits:
    """Records the sink's waits between attempts, and waits them for real."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        await asyncio.sleep(delay_s)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


# --- the sink -------------------------------------------------------------------------------


async def test_delivered_with_headers_and_the_envelope_as_json(receiver: Receiver) -> None:
    metrics = Metrics()
    alert = drift_alert()
    async with WebhookSink(receiver.url(secret=True), metrics=metrics) as sink:
        delivery = await sink.send(alert)
    assert delivery.outcome is Outcome.DELIVERED and delivery.attempts == 1
    assert delivery.status == 200
    (got,) = receiver.all()
    assert got.path == "/hook" and got.query == f"token={TOKEN}"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Idempotency-Key"] == alert.dedup_key
    assert got.headers["X-Streamlearn-Dedup-Key"] == alert.dedup_key
    assert got.headers["X-Streamlearn-Alert-Type"] == "drift"
    assert got.headers["Authorization"].startswith("Basic ")  # user:password of the URL
    assert got.headers["User-Agent"].startswith("streamlearn/")
    assert got.json() == alert.to_dict()
    assert Alert.from_json(got.body) == alert
    assert sample(metrics, "streamlearn_webhook_sent_total", type="drift") == 1
    assert sample(metrics, "streamlearn_webhook_delivery_seconds_count") == 1
    assert sample(metrics, "streamlearn_webhook_retries_total") == 0


async def test_retried_after_5xx_and_429_then_delivered(receiver: Receiver) -> None:
    metrics = Metrics()
    waits = Waits()
    receiver.reply(Reply(500), Reply(503), Reply(429, {"Retry-After": "1"}), Reply(200))
    sink = WebhookSink(receiver.url(), backoff_s=0.05, retries=5, metrics=metrics, sleep=waits)
    alert = drift_alert()
    started = time.monotonic()
    async with sink:
        delivery = await sink.send(alert)
    assert delivery.outcome is Outcome.DELIVERED and delivery.attempts == 4
    assert [r.status for r in receiver.all()] == [500, 503, 429, 200]
    assert {r.body for r in receiver.all()} == {alert.to_json()}  # the same alert each time
    assert {r.headers["Idempotency-Key"] for r in receiver.all()} == {alert.dedup_key}
    first, second, after_429 = waits.delays
    assert 0.025 < first <= 0.05 and 0.05 < second <= 0.1  # doubling, with jitter
    assert after_429 == 1.0  # Retry-After wins over the 0.2 s backoff
    assert time.monotonic() - started >= 1.0
    assert sample(metrics, "streamlearn_webhook_retries_total") == 3
    assert sample(metrics, "streamlearn_webhook_sent_total", type="drift") == 1
    assert sample(metrics, "streamlearn_webhook_failed_total", reason="gave_up") == 0


async def test_gives_up_after_the_retries_and_keeps_going(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    waits = Waits()
    retries = 3
    receiver.reply(*[Reply(502)] * (retries + 1))
    sink = WebhookSink(
        receiver.url(secret=True), retries=retries, backoff_s=0.01, metrics=metrics, sleep=waits
    )
    lost, next_one = drift_alert(1), drift_alert(2)
    async with sink:
        with caplog.at_level(logging.INFO, logger="streamlearn.alerts.webhook"):
            gave_up = await sink.send(lost)
            delivered = await sink.send(next_one)
    assert gave_up.outcome is Outcome.GAVE_UP and gave_up.attempts == retries + 1
    assert gave_up.status == 502 and "HTTP 502" in (gave_up.error or "")
    assert len(waits.delays) == retries
    assert delivered.outcome is Outcome.DELIVERED and delivered.attempts == 1
    assert [r.json()["dedup_key"] for r in receiver.accepted()] == [next_one.dedup_key]
    assert len(receiver.all()) == retries + 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and lost.dedup_key in errors[0] and "giving up" in errors[0]
    assert f"127.0.0.1:{receiver.port}/hook" in errors[0]
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text
    assert sample(metrics, "streamlearn_webhook_failed_total", reason="gave_up") == 1
    assert sample(metrics, "streamlearn_webhook_retries_total") == retries


async def test_a_4xx_is_not_retried(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    receiver.reply(Reply(400), Reply(404))
    async with WebhookSink(receiver.url(), backoff_s=0.01, metrics=metrics) as sink:
        with caplog.at_level(logging.ERROR, logger="streamlearn.alerts.webhook"):
            first = await sink.send(drift_alert(1))
            second = await sink.send(drift_alert(2))
            third = await sink.send(drift_alert(3))
    assert (first.outcome, first.attempts, first.status) == (Outcome.REJECTED, 1, 400)
    assert (second.outcome, second.status) == (Outcome.REJECTED, 404)
    assert third.outcome is Outcome.DELIVERED
    assert [r.status for r in receiver.all()] == [400, 404, 200]
    assert "drift:pump-7:temp:1" in caplog.text and "not retried" in caplog.text
    assert sample(metrics, "streamlearn_webhook_failed_total", reason="rejected") == 2
    assert sample(metrics, "streamlearn_webhook_retries_total") == 0


async def test_a_timeout_is_retried(receiver: Receiver) -> None:
    metrics = Metrics()
    receiver.reply(Reply(200, delay_s=2.0))  # answered too late: counts as lost
    sink = WebhookSink(receiver.url(), timeout_s=0.3, backoff_s=0.01, metrics=metrics)
    async with sink:
        delivery = await sink.send(drift_alert())
    assert delivery.outcome is Outcome.DELIVERED and delivery.attempts == 2
    assert len(receiver.all()) == 2  # at-least-once: the receiver saw it twice
    assert sample(metrics, "streamlearn_webhook_retries_total") == 1


async def test_a_refused_connection_is_retried_then_given_up() -> None:
    metrics = Metrics()
    waits = Waits()
    url = f"http://bot:{PASSWORD}@127.0.0.1:{free_port()}/hook?token={TOKEN}"  # nobody listens
    sink = WebhookSink(url, retries=2, backoff_s=0.01, metrics=metrics, sleep=waits)
    async with sink:
        delivery = await sink.send(drift_alert())
    assert delivery.outcome is Outcome.GAVE_UP and delivery.attempts == 3
    assert delivery.status is None and "Connect" in (delivery.error or "")
    assert PASSWORD not in (delivery.error or "") and TOKEN not in (delivery.error or "")
    assert len(waits.delays) == 2
    assert sample(metrics, "streamlearn_webhook_failed_total", reason="gave_up") == 1


# --- end to end: a real worker ------------------------------------------------------------------

BASE_TS = 1_700_000_000_000
NORMAL_EVENTS = 800
QUIET = {
    "stats_emit_every_events": 100_000,
    "stats_emit_interval_s": 0.0,
    "model_enabled": False,
    "anomaly_warmup_events": 50,
    "anomaly_threshold": 0.999,
}


def pump_events(key: str, seed: int) -> list[dict[str, Any]]:
    """Normal readings, then one obvious outlier (temp 60 against 20 +- 0.5)."""
    rng = random.Random(seed)
    out = []
    for i in range(NORMAL_EVENTS + 1):
        temp = 60.0 if i == NORMAL_EVENTS else 20.0 + rng.gauss(0.0, 0.5)
        out.append(
            {
                "id": f"{key}-{i}",
                "key": key,
                "ts": BASE_TS + i * 1000,
                "values": {"temp": round(temp, 6), "rpm": round(1500 + rng.gauss(0, 10), 6)},
            }
        )
    return out


def expected_alerts(settings: Settings, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the worker's anomaly component raises for ``events`` (of one key), offline."""
    scorer = Scorer(
        detector_factory(settings.anomaly_detector, settings.anomaly_params),
        settings.alert_policy(),
        settings.anomaly_detector,
    )
    state = scorer.new_state()
    alerts = []
    for event in events:
        scored = scorer.process(state, event["key"], event["values"], event["ts"], event["id"])
        if scored.alert is not None:
            alerts.append(orjson.loads(orjson.dumps(scored.alert)))
    return alerts


def metric(worker: WorkerProcess, name: str, labels: str = "") -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def produce_events(settings: Settings, events: list[dict[str, Any]]) -> None:
    records = [(e["key"].encode(), orjson.dumps(e)) for e in events]
    asyncio.run(produce(settings, settings.topic("events"), records))


@pytest.mark.integration
def test_worker_posts_anomaly_and_drift_alerts(
    kafka_broker: Any, tmp_path: Path, receiver: Receiver
) -> None:
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        alert_webhook_url=receiver.url(secret=True),
        alert_webhook_backoff_s=0.05,
        **QUIET,
    )
    events = pump_events("pump-1", seed=11)
    (want,) = expected_alerts(settings, events)
    assert want["values"][0]["name"] == "temp"
    receiver.reply(Reply(503))  # the first POST fails: the worker retries it
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        drift = drift_alert()
        asyncio.run(
            produce(
                settings,
                settings.topic("drift"),
                [(b"pump-7", drift.to_json()), (b"junk", b"not an alert")],
            )
        )
        # Promotions share the model-events topic with lifecycle events (not alerts).
        promotion = Alert(
            "promotion",
            "info",
            "default",
            "A challenger replaced the champion.",
            5,
            "promotion:default:1",
            key=None,
            extra={"event": "promotion"},
        )
        lifecycle = {"type": "model", "event": "challenger_started", "key": None}
        asyncio.run(
            produce(
                settings,
                settings.topic("model_events"),
                [(b"m", orjson.dumps(lifecycle)), (b"m", promotion.to_json())],
            )
        )
        produce_events(settings, events)
        receiver.wait_for(lambda r: len(r.accepted()) >= 3, 120, "three delivered alerts")
        time.sleep(1.0)  # nothing else may come
        by_type = {r.json()["type"]: r for r in receiver.accepted()}
        assert len(receiver.accepted()) == 3
        assert set(by_type) == {"anomaly", "drift", "promotion"}
        assert by_type["promotion"].json() == promotion.to_dict()

        got = by_type["anomaly"]
        doc = got.json()
        alert = Alert.from_dict(doc)  # a valid envelope
        assert doc == want  # exactly the offline scorer's alert
        assert alert.dedup_key == "pump-1:1" == doc["episode_id"]
        assert alert.key == "pump-1" and alert.subject == "temp" and alert.severity == "critical"
        assert alert.ts == events[-1]["ts"] and doc["event_id"] == events[-1]["id"]
        assert alert.message.startswith("Anomaly on pump-1: temp is 60, expected ")
        assert alert.evidence["values"][0]["expected_high"] < 60.0
        assert got.headers["Idempotency-Key"] == "pump-1:1"
        assert got.headers["Content-Type"] == "application/json"
        assert got.query == f"token={TOKEN}" and got.headers["Authorization"].startswith("Basic")
        assert by_type["drift"].json() == drift.to_dict()

        # The 503 was retried: one dedup key was posted twice, the body unchanged.
        statuses = [r.status for r in receiver.all()]
        assert sorted(statuses) == [200, 200, 200, 503]
        refused = next(r for r in receiver.all() if r.status == 503)
        assert refused.body == by_type[refused.json()["type"]].body

        assert metric(worker, "streamlearn_webhook_sent_total", 'type="anomaly"') == 1
        assert metric(worker, "streamlearn_webhook_sent_total", 'type="drift"') == 1
        assert metric(worker, "streamlearn_webhook_retries_total") == 1
        assert (
            metric(worker, "streamlearn_webhook_failed_total", 'reason="invalid"') == 1
        )  # junk only
        assert worker.health() is not None
    finally:
        worker.stop()
    log = worker.log()
    assert "not an alert envelope" in log
    masked = f"http://***@127.0.0.1:{receiver.port}/hook?***"
    assert f"alerts on {settings.topic('anomalies')} are POSTed to {masked}" in log
    assert f"alerts on {settings.topic('drift')} are POSTed to {masked}" in log
    assert PASSWORD not in log and TOKEN not in log
    assert agent_trouble(log) == [], "\n".join(agent_trouble(log)[:20])


@pytest.mark.integration
def test_a_dead_webhook_does_not_stop_detection(kafka_broker: Any, tmp_path: Path) -> None:
    dead = f"http://bot:{PASSWORD}@127.0.0.1:{free_port()}/hook?token={TOKEN}"
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        alert_webhook_url=dead,
        alert_webhook_retries=2,
        alert_webhook_backoff_s=0.05,
        **QUIET,
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        anomalies = settings.topic("anomalies")
        for n, key in enumerate(("pump-1", "pump-2"), start=1):
            produce_events(settings, pump_events(key, seed=n))
            records = asyncio.run(
                consume_until(settings, anomalies, lambda rs, n=n: len(rs) >= n, timeout_s=120)
            )
            assert [orjson.loads(r.value)["dedup_key"] for r in records] == [
                f"pump-{i}:1" for i in range(1, n + 1)
            ]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if metric(worker, "streamlearn_webhook_failed_total", 'reason="gave_up"') >= n:
                    break
                time.sleep(0.25)
            assert metric(worker, "streamlearn_webhook_failed_total", 'reason="gave_up"') == n
        assert metric(worker, "streamlearn_webhook_retries_total") == 4
        assert worker.health() is not None
    finally:
        worker.stop()
    log = worker.log()
    assert "dedup_key=pump-1:1" in log and "dedup_key=pump-2:1" in log
    assert PASSWORD not in log and TOKEN not in log
    assert agent_trouble(log) == [], "\n".join(agent_trouble(log)[:20])
