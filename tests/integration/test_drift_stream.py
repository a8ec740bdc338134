"""Drift detection and champion/challenger in the stream, against the real broker.

* Data drift: a key whose value shifts gets one drift record (the shared alert
  envelope) on the drift topic; a stationary key gets none.
* Concept drift: SEA events whose concept changes abruptly, labelled inline. The
  champion's errors rise, a concept drift record is published, a fresh challenger runs
  in shadow and is promoted (a record on the model-events topic), the report endpoint
  shows version 2, and the served predictions after the drift are about as accurate as
  a model trained on post-drift events only.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson
import pytest
from river.datasets import synth

from streamlearn.models.online import ModelConfig, OnlineModel
from streamlearn.registry import RegistryClient
from tests.integration.workers import (
    LEAN,
    WorkerProcess,
    consume_until,
    http,
    produce,
    unique_settings,
)

pytestmark = pytest.mark.integration

BASE_TS = 1_700_000_000_000
ENVELOPE = {"type", "severity", "key", "subject", "message", "evidence", "ts", "dedup_key"}


def _rows(stream: Any) -> list[tuple[dict[str, float], Any]]:
    """River ``(x, y)`` pairs with string feature names."""
    return [({f"x{k}": v for k, v in x.items()}, y) for x, y in stream]


def _labelled_events(rows: list[Any], start: int) -> list[tuple[bytes, bytes]]:
    """Events of key ``line-1`` carrying their label, one second apart from ``start``."""
    out = []
    for i, (x, y) in enumerate(rows, start=start):
        doc = {"id": f"e{i}", "key": "line-1", "ts": BASE_TS + i * 1000, "values": x, "label": y}
        out.append((b"line-1", orjson.dumps(doc)))
    return out


def _docs(records: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


def test_data_drift_one_record_per_episode(kafka_broker: Any, tmp_path: Any) -> None:
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        model_enabled=False,
        drift_reference_events=500,
        drift_window_events=500,
        drift_compare_every=250,
        drift_cooldown_events=5_000,
        **LEAN,
    )
    rng = random.Random(4)
    events = []
    for i in range(3_500):
        shifted = i >= 2_000
        for key, mean in (("boiler", 26.0 if shifted else 20.0), ("calm", 20.0)):
            doc = {"id": f"{key}-{i}", "key": key, "ts": BASE_TS + i * 1000}
            doc["values"] = {"temp": rng.gauss(mean, 1.0), "load": rng.gauss(5.0, 0.5)}
            events.append((key.encode(), orjson.dumps(doc)))
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        asyncio.run(produce(settings, settings.topic("events"), events))
        drift = asyncio.run(
            consume_until(
                settings,
                settings.topic("drift"),
                lambda rs: any(orjson.loads(r.value)["key"] == "boiler" for r in rs),
                timeout_s=120,
            )
        )
        # Every event applied (so a late duplicate would have had its chance).
        status, body = http(worker, "GET", "/api/v1/stats/calm")
        assert status == 200, body
    finally:
        worker.stop()
    docs = _docs(drift)
    boiler = [d for d in docs if d["key"] == "boiler"]
    assert len(boiler) == 1, docs
    record = boiler[0]
    assert record.keys() >= ENVELOPE
    assert record["type"] == "drift" and record["kind"] == "data"
    assert record["subject"] == "temp"
    assert BASE_TS + 2_000_000 <= record["ts"] < BASE_TS + 2_600_000
    assert record["current"]["mean"] > record["reference"]["mean"] + 4
    assert record["dedup_key"] == record["episode"]
    assert not [d for d in docs if d["key"] == "calm" or d["subject"] == "load"], docs


def test_concept_drift_promotes_a_challenger_in_the_stream(
    kafka_broker: Any, tmp_path: Any
) -> None:
    drift_at, total = 5_000, 15_000
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        model_learner="naive-bayes",
        model_delayed_labels=False,
        model_name="sea",
        model_features={"temporal": False},  # SEA's rows are not time-dependent
        **LEAN,
    )
    stream = synth.ConceptDriftStream(
        synth.SEA(variant=0, seed=7),
        synth.SEA(variant=3, seed=8),
        position=drift_at,
        width=50,
        seed=7,
    )
    rows = _rows(stream.take(total))
    events = _labelled_events(rows, 0)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        asyncio.run(produce(settings, settings.topic("events"), events))
        lifecycle = asyncio.run(
            consume_until(
                settings,
                settings.topic("model_events"),
                lambda rs: any(orjson.loads(r.value).get("event") == "promotion" for r in rs),
                timeout_s=240,
            )
        )
        predictions = asyncio.run(
            consume_until(settings, settings.topic("predictions"), lambda rs: len(rs) >= total)
        )
        drift = _docs(asyncio.run(consume_until(settings, settings.topic("drift"), bool, 30)))
        status, report = http(worker, "GET", "/api/v1/models/sea/report")
        assert status == 200, report
        status, missing = http(worker, "GET", "/api/v1/models/other/report")
        assert status == 404 and "other" in missing["error"]
        status, bad = http(worker, "GET", "/api/v1/models/sea/report?from=yesterday")
        assert status == 400 and "from" in bad["error"]
        status, empty = http(
            worker, "GET", f"/api/v1/models/sea/report?from={BASE_TS}&to={BASE_TS + 1000}"
        )
        assert status == 200
        production = wait_for_production(worker, "sea")
        metrics = worker_metrics(worker)
    finally:
        worker.stop()
    # The promotion is recorded in the registry: registered and made production.
    assert production["created_by"] == "streamlearn (auto)"
    assert production["artifact"]["kind"] == "river"
    assert production["history"][-1]["stage"] == "production"
    events_out = _docs(lifecycle)
    promotion = next(d for d in events_out if d.get("event") == "promotion")
    assert promotion.keys() >= ENVELOPE
    assert promotion["type"] == "promotion" and promotion["subject"] == "sea"
    promoted_at = (promotion["ts"] - BASE_TS) // 1000
    assert drift_at < promoted_at < drift_at + 2_500, promotion
    assert promotion["evidence"]["p_value"] < settings.model_promote_alpha
    concept = [d for d in drift if d.get("kind") == "concept"]
    assert concept and concept[0].keys() >= ENVELOPE
    assert BASE_TS + drift_at * 1000 <= concept[0]["ts"] <= promotion["ts"]
    # SEA's features do not change with its concept: no data drift.
    assert not [d for d in drift if d.get("kind") == "data"], drift
    (state,) = report["states"].values()
    assert state["champion"]["version"] == 2 and state["champion"]["origin"] == "drift"
    assert [v["version"] for v in state["versions"]] == [2]
    assert state["drift"] and state["metrics_over_time"]
    # A range before any label: no metrics, no drift; the version history is always whole.
    (early,) = empty["states"].values()
    assert not early["metrics_over_time"] and not early["drift"]
    assert [v["version"] for v in early["versions"]] == [2]
    # The served predictions after the drift recover to a post-drift-only model's level.
    served = {}
    for record in predictions:
        doc = orjson.loads(record.value)
        served[doc["event_id"]] = doc["prediction"]
    reference = OnlineModel(ModelConfig(learner="naive-bayes"))
    ref_state = reference.new_state()
    tail = range(total - 5_000, total)
    hits = ref_hits = 0
    for i in range(drift_at, total):
        x, y = rows[i]
        p, _ = reference.predict_event(ref_state, "k", f"e{i}", i, x, y)
        if i in tail:
            ref_hits += p.prediction == y
            hits += served[f"e{i}"] == y
    assert hits / len(tail) >= ref_hits / len(tail) - 0.02, (hits, ref_hits)
    assert production["training_data"].endswith(promotion["dedup_key"])
    assert metrics.get("streamlearn_model_promotions_total", 0) >= 1
    assert metrics.get("streamlearn_registry_promotions_recorded_total", 0) >= 1
    versions = [v for k, v in metrics.items() if k.startswith("streamlearn_model_champion_version")]
    assert 2.0 in versions, versions
    assert metrics.get('streamlearn_drift_alerts_total{kind="concept"}', 0) >= 1


def worker_metrics(worker: WorkerProcess) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def wait_for_production(worker: WorkerProcess, name: str, timeout_s: float = 60) -> dict[str, Any]:
    """The registry's production version of ``name`` once there is one."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = http(worker, "GET", f"/api/v1/registry/models/{name}/versions/production")
        if status == 200 or time.monotonic() > deadline:
            assert status == 200, body
            return body
        time.sleep(0.5)


def test_registered_candidate_challenges_and_a_human_choice_is_adopted(
    kafka_broker: Any, tmp_path: Any
) -> None:
    """A staging version runs in shadow and wins; a version promoted by hand serves."""
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        model_learner="naive-bayes",
        model_delayed_labels=False,
        model_name="sea",
        model_challengers=False,  # no drift challengers: only the registered candidate
        model_features={"temporal": False},
        secret_key="5e" * 16,
        **LEAN,
    )
    old = _rows(synth.SEA(0, seed=3).take(3_000))
    new = _rows(synth.SEA(3, seed=4).take(6_000))

    # A candidate trained offline on the new concept.
    candidate = OnlineModel(ModelConfig(learner="naive-bayes"))
    trained = candidate.new_state()
    for i, (x, y) in enumerate(_rows(synth.SEA(3, seed=5).take(3_000))):
        candidate.predict_event(trained, "k", str(i), i, x, y)

    async def register(stage: str, learner: Any = None, version: int | None = None) -> int:
        async with RegistryClient(settings) as client:
            if version is None:
                version = (await client.register("sea", learner, kind="river")).version
            await client.promote("sea", version, stage, by="ana", why=f"to {stage}")
            return version

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        asyncio.run(produce(settings, settings.topic("events"), _labelled_events(old, 0)))
        first = asyncio.run(
            consume_until(settings, settings.topic("predictions"), lambda rs: len(rs) >= 3_000)
        )
        assert len(first) >= 3_000
        v1 = asyncio.run(register("staging", trained.learner))
        time.sleep(2)  # the worker's view sees it within a timer tick
        asyncio.run(produce(settings, settings.topic("events"), _labelled_events(new, 3_000)))
        lifecycle = _docs(
            asyncio.run(
                consume_until(
                    settings,
                    settings.topic("model_events"),
                    lambda rs: any(orjson.loads(r.value).get("event") == "promotion" for r in rs),
                    timeout_s=180,
                )
            )
        )
        started = [d for d in lifecycle if d.get("event") == "challenger_started"]
        assert [d["evidence"]["origin"] for d in started] == [f"candidate:v{v1}"], lifecycle
        promotion = next(d for d in lifecycle if d.get("event") == "promotion")
        assert promotion["version"] == 2
        assert BASE_TS + 3_000_000 <= promotion["ts"] < BASE_TS + 5_000_000
        auto = wait_for_production(worker, "sea")
        assert auto["created_by"] == "streamlearn (auto)" and auto["version"] == v1 + 1
        # A person puts v1 in production: the stream adopts it at its next event.
        asyncio.run(register("production", version=v1))
        time.sleep(2)
        asyncio.run(produce(settings, settings.topic("events"), _labelled_events(new[:50], 9_000)))
        adopted = _docs(
            asyncio.run(
                consume_until(
                    settings,
                    settings.topic("model_events"),
                    lambda rs: any(orjson.loads(r.value).get("event") == "adopted" for r in rs),
                    timeout_s=60,
                )
            )
        )
        status, models = http(worker, "GET", "/api/v1/models")
        assert status == 200, models
    finally:
        worker.stop()
    record = next(d for d in adopted if d.get("event") == "adopted")
    assert record["evidence"]["origin"] == f"registry:v{v1}" and record["version"] == 3
    (state,) = models["states"].values()
    assert state["champion"] == {**state["champion"], "version": 3, "origin": f"registry:v{v1}"}
