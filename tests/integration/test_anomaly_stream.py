"""Anomaly detection in the stream: exactly-once detector state, stream == batch, bad input.

* kill -9 mid-stream, restart: every key's detector state equals an offline
  :class:`~streamlearn.models.anomaly.scorer.Scorer` fed each valid event once, in
  order (compared through the probe API, the state API, the scores and the alerts),
  and no event's score and no alert is lost to the kill.
* ``streamlearn detect`` on a CSV and ``streamlearn replay`` of the same CSV into a
  worker give the same score and verdict for every row, the same errors (as dead
  letters), and one alert per batch episode.
* The probe API refuses bad bodies with 400 and unknown keys with 404, and bad
  anomaly settings stop the worker and the CLI before they start.
"""

from __future__ import annotations

import asyncio
import csv
import math
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamlearn.config import Settings, load_settings
from streamlearn.errors import ConfigError
from streamlearn.models.anomaly.defaults import detector_factory
from streamlearn.models.anomaly.scorer import KeyState, Scorer
from streamlearn.records import DeadLetter
from tests.integration.workers import (
    PacedProducer,
    WorkerProcess,
    agent_trouble,
    consume_until,
    http,
    metric,
    settings_env,
    unique_settings,
    wait_for,
)

pytestmark = pytest.mark.integration

BASE_TS = 1_700_000_000_000
# Only the component under test works hard: no running-statistics records, no online
# model (its per-event predictions and checkpoints would slow a loaded CI machine).
QUIET = {"stats_emit_every_events": 100_000, "stats_emit_interval_s": 0.0, "model_enabled": False}


# --- helpers ----------------------------------------------------------------------------


def key_state(worker: WorkerProcess, key: str) -> dict[str, Any] | None:
    status, body = http(worker, "GET", f"/api/v1/anomaly/{key}")
    if status == 404:
        return None
    assert status == 200, (status, body)
    return body


def applied(worker: WorkerProcess, keys: list[str]) -> dict[str, int]:
    """Events applied per key, per the state API (0 for a key without state yet)."""
    out = {}
    for key in keys:
        state = key_state(worker, key)
        out[key] = state["events"] if state else 0
    return out


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9)


def reference_scorer(settings: Settings) -> Scorer:
    """The scorer the worker builds from ``settings`` (streamlearn.agents.anomaly)."""
    return Scorer(
        detector_factory(settings.anomaly_detector, settings.anomaly_params),
        settings.alert_policy(),
        settings.anomaly_detector,
    )


def dead_letters(records: list[Any]) -> list[tuple[bytes, DeadLetter]]:
    return [(r.value, DeadLetter.from_headers(r.headers)) for r in records]


# --- 1. exactly-once detector state under kill -9 -----------------------------------------

KEYS = [f"pump-{i}" for i in range(5)]
PER_KEY = 800
#: Produced to partition ``index % 4``: pump-0 and pump-4 share a partition.
PARTITION = {key: i % 4 for i, key in enumerate(KEYS)}

#: Invalid records: (key they are produced with, raw value, expected dead-letter code).
INVALID = [
    ("pump-1", b'{"key": "pump-1", "id": "bad-1", "values": {"a": "high"}}', "invalid_values"),
    ("pump-2", b'{"key": "pump-2", "id": "bad-2", "values": {}}', "invalid_values"),
    ("pump-3", b'{"key": "pump-3", "id": "bad-3", "values": {"a": 1e999}}', "non_finite"),
    (
        "pump-0",
        b'{"key": "pump-0", "id": "bad-4", "ts": "yesterday", "values": {"a": 1}}',
        "invalid_ts",
    ),
    ("pump-4", b'{"id": "bad-5", "values": {"a": 1.0}}', "missing_key"),
    ("pump-2", b'{"key": "pump-2", "values": {"a": 1.0', "invalid_json"),
]


def kill_events() -> list[tuple[str, bytes, dict[str, Any] | None]]:
    """``(key, raw value, event or None when invalid)`` in production order.

    Values are deterministic: a per-key level with noise and, after a key's first 100
    events, a spike on ``a`` every 25th event of the key and on ``b`` every 40th.
    """
    rng = random.Random(20240611)
    counters = dict.fromkeys(KEYS, 0)
    order = [key for key in KEYS for _ in range(PER_KEY)]
    rng.shuffle(order)
    out: list[tuple[str, bytes, dict[str, Any] | None]] = []
    invalid_at = {len(order) * (j + 1) // (len(INVALID) + 1): bad for j, bad in enumerate(INVALID)}
    for i, key in enumerate(order):
        if i in invalid_at:
            bad_key, raw, _ = invalid_at[i]
            out.append((bad_key, raw, None))
        n = counters[key]
        counters[key] += 1
        level = 10.0 * (KEYS.index(key) + 1)
        a = level + rng.gauss(0.0, 1.0) + (12.0 if n > 100 and n % 25 == 24 else 0.0)
        b = 0.5 * level + rng.gauss(0.0, 0.5) - (6.0 if n > 100 and n % 40 == 39 else 0.0)
        event = {
            "id": f"{key}-{n}",
            "key": key,
            "ts": BASE_TS + i * 1000,
            "values": {"a": round(a, 6), "b": round(b, 6)},
        }
        out.append((key, orjson.dumps(event), event))
    return out


#: Deterministic detectors cheap enough for a test, with their (small) parameters.
DETECTORS: dict[str, dict[str, Any]] = {
    "default": {},
    "zscore": {"window": 128},
    "hst": {"n_trees": 5, "height": 6, "window_size": 50},
}

PROBES = [
    {"a": 10.0, "b": 5.0},
    {"a": 31.5, "b": 14.8},
    {"a": 500.0, "b": 5.0},
    {"b": -40.0},
    {"a": 20.0, "b": 10.0, "c": 3.0},
]


@dataclass
class KillRun:
    """What a kill -9 run observed, and what an offline reference says it should be."""

    detector: str
    settings: Settings
    scorer: Scorer
    states: dict[str, KeyState]
    expected_scores: dict[str, tuple[float, float, bool]]
    expected_alerts: dict[str, dict[str, Any]]
    applied_at_kill: int
    produced_at_kill: int
    produced: int
    got_states: dict[str, dict[str, Any] | None]
    probes: dict[str, list[tuple[int, Any]]]
    replayed: float
    scores: list[Any]
    alerts: list[Any]
    dead: list[Any]
    log: str


def quiet_or(done: Callable[[list[Any]], bool], seconds: float) -> Callable[[list[Any]], bool]:
    """A ``consume_until`` predicate: ``done``, or no new record for ``seconds`` since one came."""
    state = {"n": -1, "since": time.monotonic()}

    def check(records: list[Any]) -> bool:
        if done(records):
            return True
        if len(records) != state["n"]:
            state["n"], state["since"] = len(records), time.monotonic()
            return False
        return bool(records) and time.monotonic() - state["since"] >= seconds

    return check


@pytest.fixture(scope="module", params=list(DETECTORS))
def kill_run(request, kafka_broker, tmp_path_factory) -> KillRun:
    """One worker run per detector: events paced in, SIGKILL mid-stream, restart."""
    detector = request.param
    tmp_path = tmp_path_factory.mktemp(f"kill-{detector}")
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        batch_max_events=200,
        broker_session_timeout_s=6.0,
        # No periodic commit before the kill: everything the first run applied is
        # redelivered after the restart and must be recognised by the offset marks.
        commit_interval_s=30.0,
        anomaly_detector=detector,
        anomaly_params=DETECTORS[detector],
        # Alert at 1 in 100 with short episodes: every key raises an alert every few
        # dozen events, so the batch in flight at the kill holds some.
        anomaly_warmup_events=100,
        anomaly_threshold=0.99,
        anomaly_exit_threshold=0.9,
        anomaly_cooldown_events=2,
        anomaly_emit_scores=True,
        **QUIET,
    )
    produced = kill_events()
    valid = [event for _, _, event in produced if event is not None]

    # The reference: each key's valid events once, in production (= partition) order.
    scorer = reference_scorer(settings)
    states: dict[str, KeyState] = {key: scorer.new_state() for key in KEYS}
    expected_scores: dict[str, tuple[float, float, bool]] = {}
    expected_alerts: dict[str, dict[str, Any]] = {}
    for event in valid:
        values = {name: float(v) for name, v in event["values"].items()}
        out = scorer.process(states[event["key"]], event["key"], values, event["ts"], event["id"])
        expected_scores[event["id"]] = (out.score, out.raw_score, out.is_anomaly)
        if out.alert is not None:
            expected_alerts[out.alert["id"]] = out.alert
    expected_events = {key: state.events for key, state in states.items()}

    records = [(raw, PARTITION[key]) for key, raw, _ in produced]
    producer = PacedProducer(
        settings,
        settings.topic("events"),
        [(None, value, partition) for value, partition in records],
        rate=len(records) / 6.0,
        hold_at=len(records) // 2,  # the rest waits for the kill
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        producer.start()
        deadline = time.monotonic() + 180
        applied_at_kill = 0
        while applied_at_kill < len(valid) // 5:
            assert time.monotonic() < deadline, "the worker applied too little in 180 s"
            time.sleep(0.02)
            applied_at_kill = sum(applied(worker, KEYS).values())
        # Right after a batch was applied: its outputs may still be on their way.
        produced_at_kill = producer.acked
        worker.kill()  # SIGKILL: no shutdown, no final commit, no producer flush
        producer.release()

        worker.start()
        producer.join(120)
        assert not producer.is_alive() and producer.error is None, producer.error
        wait_for(
            lambda: applied(worker, KEYS) == expected_events,
            120,
            f"every key to reach its event count {expected_events}",
        )
        got_states = {key: key_state(worker, key) for key in KEYS}
        probes = {
            key: [
                http(worker, "POST", f"/api/v1/anomaly/{key}/score", orjson.dumps({"values": p}))
                for p in PROBES
            ]
            for key in KEYS
        }
        replayed = metric(worker, "streamlearn_replayed_skipped_total", 'agent="anomaly"')
        # Everything is applied, so its outputs are sent or lost: a short quiet suffices.
        scores = asyncio.run(
            consume_until(
                settings,
                settings.topic("scores"),
                quiet_or(
                    lambda r: (
                        {orjson.loads(x.value)["event_id"] for x in r} >= expected_scores.keys()
                    ),
                    3.0,
                ),
            )
        )
        alerts = asyncio.run(
            consume_until(
                settings,
                settings.topic("anomalies"),
                quiet_or(
                    lambda r: {orjson.loads(x.value)["id"] for x in r} >= expected_alerts.keys(),
                    3.0,
                ),
            )
        )
        dead = asyncio.run(
            consume_until(
                settings,
                settings.topic("deadletter"),
                quiet_or(lambda r: {x.value for x in r} >= {raw for _, raw, _ in INVALID}, 3.0),
            )
        )
        # Nothing is counted twice later either.
        assert applied(worker, KEYS) == expected_events
        assert worker.proc is not None and worker.proc.poll() is None
    finally:
        producer.release()
        producer.join(30)
        worker.stop()
    return KillRun(
        detector=detector,
        settings=settings,
        scorer=scorer,
        states=states,
        expected_scores=expected_scores,
        expected_alerts=expected_alerts,
        applied_at_kill=applied_at_kill,
        produced_at_kill=produced_at_kill,
        produced=len(records),
        got_states=got_states,
        probes=probes,
        replayed=replayed,
        scores=scores,
        alerts=alerts,
        dead=dead,
        log=worker.log(),
    )


def test_detector_state_exactly_once_after_kill_9(kill_run: KillRun) -> None:
    run = kill_run
    # The kill landed mid-stream: events were applied, and not all were even produced.
    assert 0 < run.applied_at_kill < len(run.expected_scores)
    assert run.produced_at_kill < run.produced
    # ...and the restarted worker was redelivered events it had applied, and skipped them.
    assert run.replayed > 0
    assert run.expected_alerts, "the data must make the reference raise alerts"

    # State per key: the counters and the detector's answers equal the reference's.
    for key in KEYS:
        state = run.states[key]
        got = run.got_states[key]
        assert got is not None
        assert got["events"] == state.events == PER_KEY
        assert (got["anomalies"], got["episodes"], got["episode_open"]) == (
            state.anomalies,
            state.episodes,
            state.open,
        ), key
        assert got["recorded_scores"] == state.detector.recorded
        assert got["policy"]["threshold"] == run.settings.anomaly_threshold
        for probe, (status, body) in zip(PROBES, run.probes[key], strict=True):
            assert status == 200, body
            want = run.scorer.probe(state, probe)
            assert close(body["score"], want["score"]), (key, probe, body, want)
            assert close(body["raw_score"], want["raw_score"]), (key, probe, body, want)
            assert body["detectors"].keys() == want["detectors"].keys()
            assert [v["name"] for v in body["values"]] == [v["name"] for v in want["values"]]
            for g, w in zip(body["values"], want["values"], strict=True):
                assert close(g["z"], w["z"]) and close(g["expected_low"], w["expected_low"])
    assert sum(s.anomalies for s in run.states.values()) > 0

    # Every score sent, before the kill or after it, is the reference's score of that
    # event: no event was scored against a state that had learned it, or missed one.
    for record in run.scores:
        doc = orjson.loads(record.value)
        want_score, want_raw, want_flag = run.expected_scores[doc["event_id"]]
        assert close(doc["score"], want_score), (doc, want_score)
        assert close(doc["raw_score"], want_raw), (doc, want_raw)
        assert doc["is_anomaly"] is want_flag, doc

    # Every alert sent is one of the reference's, on the same event.
    for record in run.alerts:
        doc = orjson.loads(record.value)
        assert doc["id"] in run.expected_alerts, doc
        want = run.expected_alerts[doc["id"]]
        assert (doc["event_id"], doc["episode_id"], doc["key"], doc["ts"]) == (
            want["event_id"],
            want["episode_id"],
            want["key"],
            want["ts"],
        )
        assert close(doc["score"], want["score"]) and doc["severity"] == want["severity"]

    # Invalid records were dead-lettered with their reason (and never counted, above).
    letters = {value: letter.code.value for value, letter in dead_letters(run.dead)}
    assert letters == {raw: code for _, raw, code in INVALID}
    assert agent_trouble(run.log) == [], "\n".join(agent_trouble(run.log)[:20])


def test_no_score_lost_to_kill_9(kill_run: KillRun) -> None:
    """Outputs are at-least-once: after the kill and restart every event has a score."""
    scored = {orjson.loads(record.value)["event_id"] for record in kill_run.scores}
    missing = sorted(kill_run.expected_scores.keys() - scored)
    assert missing == [], f"{len(missing)} events have no score record, e.g. {missing[:10]}"


def test_no_alert_lost_to_kill_9(kill_run: KillRun) -> None:
    """Every episode's alert is published, also those raised just before the kill."""
    alerted = {orjson.loads(record.value)["id"] for record in kill_run.alerts}
    missing = sorted(kill_run.expected_alerts.keys() - alerted)
    assert missing == [], f"alerts never published: {missing}"


# --- 2. stream == batch ---------------------------------------------------------------

SENSORS = ["boiler-a", "boiler-b", "chiller"]
ROWS_PER_SENSOR = 1000
#: Rows (by position in the file) spoiled on purpose: what the worker must dead-letter.
SPOILED = {
    700: {"temp": "n/a"},
    1400: {"temp": "", "rh": ""},
    2100: {"rh": "inf"},
    2500: {"time": ""},
}


def make_rows() -> list[dict[str, str]]:
    """Readings of three sensors, interleaved, with gaps, level shifts and spikes."""
    rng = random.Random(77)
    order = [s for s in SENSORS for _ in range(ROWS_PER_SENSOR)]
    rng.shuffle(order)
    counts = dict.fromkeys(SENSORS, 0)
    rows = []
    for i, sensor in enumerate(order):
        n = counts[sensor]
        counts[sensor] += 1
        temp = 60 + 5 * SENSORS.index(sensor) + rng.gauss(0, 0.8) + 3 * ((n // 50) % 2)
        rh = 40 + rng.gauss(0, 2)
        if n > 250 and n % 111 == 0:
            temp += rng.choice([-1, 1]) * rng.uniform(8, 15)
        if n > 250 and n % 173 == 0:
            rh += 25
        row = {
            "time": str(BASE_TS + i * 500),
            "sensor": sensor,
            "temp": f"{temp:.3f}",
            "rh": f"{rh:.2f}",
        }
        if n % 61 == 17:
            row["temp"] = ""  # one value missing: still an event, scored on rh alone
        if n % 89 == 5:
            row["rh"] = ""
        rows.append(row)
    for index, cells in SPOILED.items():
        rows[index].update(cells)
    return rows


@dataclass
class StreamAndBatch:
    settings: Settings
    worker: WorkerProcess
    batch: list[dict[str, str]]  # the detect output, one row per input row
    scores: list[Any]
    dead: list[Any]
    alerts: list[Any]


def offset_of(event_id: str) -> int:
    """The events-topic offset in a generated event id ``<topic>-<partition>-<offset>``."""
    return int(event_id.rsplit("-", 1)[1])


@pytest.fixture(scope="module")
def stream_and_batch(kafka_broker, tmp_path_factory) -> Iterator[StreamAndBatch]:
    """One CSV scored by ``streamlearn detect`` and replayed into a running worker."""
    tmp_path = tmp_path_factory.mktemp("stream-batch")
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        anomaly_emit_scores=True,
        anomaly_warmup_events=200,
        anomaly_threshold=0.999,
        **QUIET,
    )
    env = settings_env(settings)
    source = tmp_path / "readings.csv"
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["time", "sensor", "temp", "rh"])
        writer.writeheader()
        writer.writerows(make_rows())
    columns = ["--key-column", "sensor", "--time-column", "time", "--value-columns", "temp,rh"]

    scored = tmp_path / "scored.csv"
    detect = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamlearn",
            "detect",
            str(source),
            "--output",
            str(scored),
            *columns,
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert detect.returncode == 0, detect.stderr
    with scored.open(newline="") as handle:
        batch = list(csv.DictReader(handle))
    valid = sum(1 for row in batch if not row["error"])
    invalid = len(batch) - valid
    episodes = len({row["episode_id"] for row in batch if row["episode_id"]})

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        replay = subprocess.run(
            [sys.executable, "-m", "streamlearn", "replay", str(source), *columns, "--no-progress"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert replay.returncode == 0, replay.stderr
        assert f"sent {len(batch)} events" in replay.stderr
        scores = asyncio.run(
            consume_until(
                settings,
                settings.topic("scores"),
                lambda r: len({orjson.loads(x.value)["event_id"] for x in r}) >= valid,
            )
        )
        dead = asyncio.run(
            consume_until(settings, settings.topic("deadletter"), lambda r: len(r) >= invalid, 60)
        )
        alerts = asyncio.run(
            consume_until(settings, settings.topic("anomalies"), lambda r: len(r) >= episodes, 60)
        )
        yield StreamAndBatch(settings, worker, batch, scores, dead, alerts)
    finally:
        worker.stop()


def test_stream_scores_equal_batch_scores(stream_and_batch: StreamAndBatch) -> None:
    """Row for row, the stream's score and verdict are the batch's, bit for bit."""
    run = stream_and_batch
    batch_rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in run.batch:
        batch_rows[row["sensor"]].append(row)

    stream: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for record in run.scores:
        doc = orjson.loads(record.value)
        stream[doc["key"]].setdefault(doc["event_id"], doc)
    assert sorted(stream) == sorted(batch_rows) == sorted(SENSORS)

    anomalies = 0
    for sensor in SENSORS:
        rows = [row for row in batch_rows[sensor] if not row["error"]]
        docs = sorted(stream[sensor].values(), key=lambda d: offset_of(d["event_id"]))
        assert len(docs) == len(rows), sensor
        for row, doc in zip(rows, docs, strict=True):
            # The batch writes repr(score); the stream's JSON float reads back identical.
            assert float(row["anomaly_score"]) == doc["score"], (sensor, row, doc)
            assert row["anomaly_score"] == repr(doc["score"])
            assert (row["is_anomaly"] == "true") is doc["is_anomaly"], (sensor, row, doc)
            assert doc["ts"] == int(row["time"])
            anomalies += doc["is_anomaly"]
        # The worker's state of the key counts what the batch counted.
        state = key_state(run.worker, sensor)
        assert state is not None
        assert (state["events"], state["anomalies"], state["episodes"]) == (
            len(rows),
            sum(row["is_anomaly"] == "true" for row in rows),
            len({row["episode_id"] for row in rows if row["episode_id"]}),
        ), sensor
    assert anomalies > 0, "the data must hold anomalies"

    # Rows the batch could not score are the worker's dead letters, for the same reasons.
    errors = [row for row in run.batch if row["error"]]
    assert len(errors) == len(SPOILED)
    assert [row for i, row in enumerate(run.batch) if i in SPOILED] == errors
    letters = sorted(dead_letters(run.dead), key=lambda item: item[1].source_offset)
    assert len(letters) == len(errors)
    by_key: dict[str, list[str]] = defaultdict(list)
    for value, letter in letters:
        by_key[orjson.loads(value)["key"]].append(f"{letter.code.value}: {letter.reason}")
    for sensor in SENSORS:
        assert by_key[sensor] == [r["error"] for r in batch_rows[sensor] if r["error"]], sensor


def test_stream_alerts_are_the_batch_episodes(stream_and_batch: StreamAndBatch) -> None:
    """One alert per batch episode, on the row where the episode's id first appears."""
    run = stream_and_batch
    seen: dict[str, set[str]] = defaultdict(set)
    for record in run.scores:
        doc = orjson.loads(record.value)
        seen[doc["key"]].add(doc["event_id"])
    # Per key, in file order: the key's events are in one partition, in file order.
    event_ids = {key: sorted(ids, key=offset_of) for key, ids in seen.items()}

    expected: dict[str, dict[str, Any]] = {}
    position: dict[str, int] = defaultdict(int)
    for row in run.batch:
        if row["error"]:
            continue
        sensor = row["sensor"]
        index = position[sensor]
        position[sensor] += 1
        episode = row["episode_id"]
        if episode and episode not in expected:
            expected[episode] = {
                "id": episode,
                "episode_id": episode,
                "key": sensor,
                "event_id": event_ids[sensor][index],
                "ts": int(row["time"]),
                "score": float(row["anomaly_score"]),
            }
    assert len(expected) >= 2, "the data must open several episodes"

    got = {}
    for record in run.alerts:
        doc = orjson.loads(record.value)
        got[doc["id"]] = {name: doc[name] for name in expected[doc["id"]]}
        assert doc["severity"] in ("warning", "major", "critical")
        assert doc["threshold"] == run.settings.anomaly_threshold
        assert doc["values"], doc
    assert got == expected
    assert len(run.alerts) == len(expected)  # no crash here: no duplicate either


# --- 3. bad input at the API and in the settings -----------------------------------------


BAD_PROBES = [
    (b"{not json", "the body is not JSON"),
    (b"", "the body is not JSON"),
    (b'{"values": {"temp": 1e999}}', "the body is not JSON"),
    (b"[1, 2]", 'the body must be {"values"'),
    (b'{"values": [61.0, 40.0]}', 'the body must be {"values"'),
    (b'{"temp": 61.0}', 'the body must be {"values"'),
    (b'{"values": {}}', "values must hold 1 to 1000 numbers"),
    (b'{"values": {"temp": "hot"}}', "values.temp must be a finite number, got 'hot'"),
    (b'{"values": {"temp": true}}', "values.temp must be a finite number, got True"),
    (b'{"values": {"temp": null}}', "values.temp must be a finite number, got None"),
    (b'{"values": {"temp": 61.0, "rh": "40"}}', "values.rh must be a finite number"),
    (orjson.dumps({"values": {f"v{i}": 1.0 for i in range(1001)}}), "1 to 1000 numbers"),
]


def test_probe_api_refuses_bad_input(stream_and_batch: StreamAndBatch) -> None:
    worker = stream_and_batch.worker
    before = key_state(worker, "chiller")
    assert before is not None and before["events"] > 0
    path = "/api/v1/anomaly/chiller/score"
    good = orjson.dumps({"values": {"temp": 70.0, "rh": 41.0}})
    status, first = http(worker, "POST", path, good)
    assert status == 200, first

    for body, message in BAD_PROBES:
        status, answer = http(worker, "POST", path, body)
        assert status == 400, (body[:80], status, answer)
        assert answer["status"] == 400 and message in answer["error"], (body[:80], answer)

    status, answer = http(worker, "POST", "/api/v1/anomaly/no-such-sensor/score", good)
    assert status == 404 and "no anomaly state for key 'no-such-sensor'" in answer["error"]
    status, answer = http(worker, "GET", "/api/v1/anomaly/no-such-sensor")
    assert status == 404 and "no anomaly state" in answer["error"], answer

    # The worker is still up and answering; probing learned nothing.
    assert worker.proc is not None and worker.proc.poll() is None
    assert worker.health() is not None
    status, again = http(worker, "POST", path, good)
    assert status == 200 and again == first
    assert 0.0 <= first["score"] <= 1.0 and first["raw_score"] >= 0.0
    assert key_state(worker, "chiller") == before
    log = worker.log()
    assert agent_trouble(log) == [], "\n".join(agent_trouble(log)[:20])


BAD_SETTINGS = [
    ({"STREAMLEARN_ANOMALY_DETECTOR": "zcore"}, "unknown detector 'zcore'"),
    (
        {"STREAMLEARN_ANOMALY_DETECTOR": "hst", "STREAMLEARN_ANOMALY_PARAMS": '{"n_trees": 0}'},
        "n_trees must be an integer >= 1, got 0",
    ),
    ({"STREAMLEARN_ANOMALY_PARAMS": '{"window": 1}'}, "window must be an integer >= 2, got 1"),
    ({"STREAMLEARN_ANOMALY_PARAMS": "[1"}, "anomaly_params"),
    (
        {"STREAMLEARN_ANOMALY_THRESHOLD": "0.99", "STREAMLEARN_ANOMALY_EXIT_THRESHOLD": "0.995"},
        "exit_threshold (0.995) must be <= threshold (0.99)",
    ),
    ({"STREAMLEARN_ANOMALY_THRESHOLD": "1.5"}, "anomaly_threshold"),
    ({"STREAMLEARN_ANOMALY_WARMUP_EVENTS": "-1"}, "anomaly_warmup_events"),
    ({"STREAMLEARN_SECRET_KEY": "not-hex"}, "must be hex"),
    ({"STREAMLEARN_SECRET_KEY": "abcd"}, "at least 16 bytes"),
]


@pytest.mark.parametrize(("env", "message"), BAD_SETTINGS)
def test_bad_anomaly_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name in list(os.environ):
        if name.startswith("STREAMLEARN_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert message in str(refused.value)
    if "STREAMLEARN_SECRET_KEY" in env:
        assert env["STREAMLEARN_SECRET_KEY"] not in str(refused.value)  # never echoed


def test_bad_anomaly_settings_stop_the_worker_and_the_cli(kafka_broker, tmp_path: Path) -> None:
    """Refused before anything starts: exit status 1 or 2 and a message naming the cause."""
    settings = unique_settings(kafka_broker.bootstrap_servers, tmp_path)
    env = settings_env(settings)
    source = tmp_path / "in.csv"
    source.write_text("k,v\na,1\n")
    output = tmp_path / "out.csv"
    worker = [sys.executable, "-m", "streamlearn", "worker"]
    detect = [sys.executable, "-m", "streamlearn", "detect", str(source), "-o", str(output)]
    commands = [
        (worker, {**env, "STREAMLEARN_ANOMALY_DETECTOR": "zcore"}, "unknown detector 'zcore'"),
        (
            worker,
            {
                **env,
                "STREAMLEARN_ANOMALY_THRESHOLD": "0.99",
                "STREAMLEARN_ANOMALY_EXIT_THRESHOLD": "0.995",
            },
            "exit_threshold (0.995) must be <= threshold (0.99)",
        ),
        ([*detect, "--params", "{bad"], env, "Invalid value for --params: not JSON"),
        (
            [*detect, "--detector", "zscore", "--params", '{"window": "wide"}'],
            env,
            "window must be an integer",
        ),
    ]
    procs = [
        (
            subprocess.Popen(
                cmd,
                env=cmd_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            ),
            cmd,
            text,
        )
        for cmd, cmd_env, text in commands
    ]
    failures = []
    for proc, cmd, text in procs:
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            failures.append(f"{cmd[3:]}: still running after 90 s")
            continue
        message = out.decode(errors="replace")
        if proc.returncode not in (1, 2) or text not in message or "Traceback" in message:
            failures.append(f"{cmd[3:]} exit {proc.returncode}, wanted {text!r}:\n{message}")
    assert failures == [], "\n".join(failures)
    assert not output.exists()  # nothing written for a refused run
