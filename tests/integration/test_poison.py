"""Poison input: hypothesis-made garbage and broken events, 1% among valid events.

A worker with every component on (windows, statistics, anomaly detection, the online
model with inline labels, drift) reads valid events with poison records mixed in:
random byte strings and structured mutations of valid events, both drawn by
hypothesis. The dead-letter topic must hold exactly the poison records (byte for byte),
the valid events must be counted exactly, no agent may crash or restart, and no output
record may carry a NaN or an infinity.

``make test`` sends 20,000 valid events; ``make chaos`` 100,000
(``STREAMLEARN_POISON_EVENTS``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from streamlearn.agents.windows import partition_for_key
from streamlearn.records import DeadLetter
from tests.integration.workers import (
    WorkerProcess,
    agent_trouble,
    consume_until,
    latest_stats,
    metric,
    produce,
    unique_settings,
    wait_for,
)

pytestmark = pytest.mark.integration

N_VALID = int(os.environ.get("STREAMLEARN_POISON_EVENTS", "20000"))
N_POISON = N_VALID // 100
KEYS = [f"dev-{i}" for i in range(16)]
MAX_BYTES = 2048
BASE_TS = 1_700_000_000_000


def valid_event(i: int, rng: random.Random) -> dict[str, Any]:
    key = KEYS[i % len(KEYS)]
    a = rng.gauss(10.0, 2.0)
    event: dict[str, Any] = {
        "id": f"ev-{i}",
        "key": key,
        "ts": BASE_TS + i * 50,
        "values": {"a": a, "b": float(rng.randint(0, 100))},
    }
    if i % 3:
        event["label"] = a > 10.0
    return event


# --- poison ----------------------------------------------------------------------------
# Each mutation breaks one rule of the event contract (README, docs/ingest) on an event
# with a unique id, so every poison record is distinct bytes.


def _drop(field: str):
    return lambda e, draw: {k: v for k, v in e.items() if k != field}


def _set(field: str, strategy: st.SearchStrategy[Any]):
    return lambda e, draw: {**e, field: draw(strategy)}


def _set_value(strategy: st.SearchStrategy[Any]):
    return lambda e, draw: {**e, "values": {**e["values"], "a": draw(strategy)}}


not_a_number = st.one_of(
    st.text(max_size=8), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)
)
OBJECT_MUTATIONS = {
    "no key": _drop("key"),
    "bad key": _set("key", st.one_of(st.just(""), st.integers(), st.booleans(), st.none())),
    "no values": _drop("values"),
    "bad values": _set("values", st.one_of(st.just({}), st.lists(st.floats()), st.text())),
    "value not a number": _set_value(not_a_number),
    "empty value name": lambda e, draw: {**e, "values": {"": draw(st.floats(-1e6, 1e6))}},
    "bad ts": _set(
        "ts",
        st.one_of(
            st.integers(max_value=-1),
            st.booleans(),
            st.text(alphabet="abcxyz:- ", min_size=1, max_size=12),
            st.just("2024-01-01T00:00:00"),  # no time zone
            st.lists(st.integers(), max_size=1),
        ),
    ),
    "bad id": _set("id", st.one_of(st.just(""), st.integers(), st.lists(st.text(), max_size=1))),
    "bad label": _set("label", st.one_of(st.dictionaries(st.text(), st.integers(), max_size=1))),
    "bad attrs": _set("attrs", st.one_of(st.integers(), st.just({"a": 1}), st.text())),
}


def _raw_mutation(event: dict[str, Any], kind: str, draw) -> bytes:
    raw = orjson.dumps(event)
    if kind == "truncated":
        # (a fraction, not an index: the draws must not depend on the event's length)
        return raw[: 1 + int(draw(st.floats(0.0, 1.0)) * (len(raw) - 2))]
    if kind == "non-finite":
        token = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"]))
        return orjson.dumps({**event, "values": {"a": 7777.25}}).replace(b"7777.25", token)
    if kind == "not utf-8":
        return raw.replace(b'"key":"', b'"key":"\xff' + draw(st.binary(max_size=2)), 1)
    if kind == "too large":
        return orjson.dumps({**event, "pad": "x" * MAX_BYTES})
    if kind == "not an object":
        return orjson.dumps(draw(st.sampled_from([[event], event["key"], 1, None, True])))
    raise AssertionError(kind)


RAW_MUTATIONS = ["truncated", "non-finite", "not utf-8", "too large", "not an object"]


@st.composite
def mutated_event(draw) -> tuple[str, bytes]:
    n = draw(st.integers(0, 2**32))
    event = valid_event(n, random.Random(n))
    event["id"] = f"poison-{n}"
    kind = draw(st.sampled_from(sorted(OBJECT_MUTATIONS) + RAW_MUTATIONS))
    if kind in OBJECT_MUTATIONS:
        # json, not orjson: hypothesis draws integers beyond 64 bits too
        return kind, json.dumps(OBJECT_MUTATIONS[kind](event, draw)).encode()
    return kind, _raw_mutation(event, kind, draw)


def is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError):
        return False


def draw_poison(count: int) -> dict[bytes, str]:
    """``count`` distinct poison records -> what kind of poison each is.

    About half are random byte strings that are not a JSON object (a JSON object drawn
    at random is discarded: whether it is a valid event is what the worker decides), the
    others mutated events.
    """
    poison: dict[bytes, str] = {}

    @settings(
        max_examples=count * 4,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def collect(data) -> None:
        if data.draw(st.booleans(), label="random bytes"):
            raw = data.draw(st.binary(max_size=256))
            kind = "random bytes"
            if is_json_object(raw):
                return
        else:
            kind, raw = data.draw(mutated_event())
        if len(poison) < count:
            poison.setdefault(raw, kind)

    collect()
    assert len(poison) == count, f"drew only {len(poison)} distinct poison records"
    return poison


# --- the test ----------------------------------------------------------------------------


def non_finite_paths(doc: Any, path: str = "") -> list[str]:
    """Where a parsed output holds NaN or an infinity (json.loads reads NaN/Infinity)."""
    if isinstance(doc, float):
        return [] if math.isfinite(doc) else [path]
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in non_finite_paths(v, f"{path}.{k}")]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in non_finite_paths(v, f"{path}[{i}]")]
    return []


def null_paths(doc: Any, path: str = "") -> list[str]:
    if doc is None:
        return [path]
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in null_paths(v, f"{path}.{k}")]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in null_paths(v, f"{path}[*]")]
    return []


OUTPUTS = ["aggregates", "anomalies", "scores", "predictions", "drift"]


def test_poison_is_dead_lettered_exactly_and_breaks_nothing(kafka_broker, tmp_path: Path) -> None:
    rng = random.Random(20261206)
    valid = [valid_event(i, rng) for i in range(N_VALID)]
    poison = draw_poison(N_POISON)
    stream: list[tuple[bytes | None, bytes]] = [(None, orjson.dumps(e)) for e in valid]
    # Poison lands at random places among the valid events, on every partition.
    for raw in poison:
        stream.insert(rng.randrange(len(stream) + 1), (None, raw))
    settings_ = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        max_event_bytes=MAX_BYTES,
        stats_emit_every_events=N_VALID // len(KEYS),
        anomaly_emit_scores=True,
    )
    partitions = settings_.topic_partitions
    key_of = {orjson.dumps(e): e["key"] for e in valid}

    worker = WorkerProcess(settings_, tmp_path / "worker.log").start()
    try:
        # A key's events stay in one partition (as a producer keying by entity does);
        # poison goes round-robin.
        def partition_of(i: int) -> int:
            key = key_of.get(stream[i][1])
            return partition_for_key(key, partitions) if key else i % partitions

        sent = asyncio.run(
            produce(settings_, settings_.topic("events"), stream, partition_of=partition_of)
        )
        assert sent == N_VALID + N_POISON

        def all_counted(records) -> bool:
            final = latest_stats(records)
            return sum(d["events"] for d in final.values()) >= N_VALID

        aggregates = asyncio.run(
            consume_until(settings_, settings_.topic("aggregates"), all_counted, 300)
        )
        dead = asyncio.run(
            consume_until(settings_, settings_.topic("deadletter"), lambda r: len(r) >= N_POISON)
        )
        wait_for(
            lambda: metric(worker, "streamlearn_end_to_end_latency_seconds_count") >= N_VALID,
            120,
            "every valid event's outputs to be sent",
        )
        ids = {e["id"] for e in valid}
        outputs = {
            name: asyncio.run(
                consume_until(
                    settings_,
                    settings_.topic(name),
                    (lambda r: {orjson.loads(x.value)["event_id"] for x in r} >= ids)
                    if name == "predictions"
                    else (lambda r: False),
                    60 if name == "predictions" else 5,
                )
            )
            for name in OUTPUTS
            if name != "aggregates"
        }
        outputs["aggregates"] = aggregates
        alive = worker.proc is not None and worker.proc.poll() is None
        log = worker.log()
    finally:
        worker.stop()

    kinds = Counter(poison.values())
    print(f"\n{N_VALID} valid events, {N_POISON} poison records: {dict(sorted(kinds.items()))}")

    # Dead letters: exactly the poison, byte for byte, each once, with a reason.
    got = Counter(record.value for record in dead)
    assert set(got) == set(poison), (
        f"missing {len(set(poison) - set(got))}, unexpected {len(set(got) - set(poison))}"
    )
    assert max(got.values()) == 1
    for record in dead:
        letter = DeadLetter.from_headers(record.headers)
        assert letter.reason and letter.source_topic == settings_.topic("events")

    # Valid events: counted exactly, per key and per value.
    expected: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for event in valid:
        for name, x in event["values"].items():
            expected[event["key"]][name].append(x)
    final = latest_stats(aggregates)
    assert set(final) == set(KEYS)
    for key, per_value in expected.items():
        assert final[key]["events"] == len(per_value["a"]), key
        for name, xs in per_value.items():
            stats = final[key]["values"][name]
            assert stats["count"] == len(xs)
            assert stats["min"] == min(xs) and stats["max"] == max(xs)
            assert math.isclose(stats["mean"], sum(xs) / len(xs), rel_tol=1e-9)

    # Every component saw only valid events: one prediction per valid event id.
    predicted = Counter(orjson.loads(r.value)["event_id"] for r in outputs["predictions"])
    assert set(predicted) == {e["id"] for e in valid}

    # No agent crashed or restarted, the worker is up, no output holds NaN/Infinity.
    assert alive and agent_trouble(log) == []
    bad = [
        (name, path)
        for name, records in outputs.items()
        for record in records
        for path in non_finite_paths(json.loads(record.value))
    ]
    assert bad == []
    nulls = Counter(
        (name, path)
        for name, records in outputs.items()
        for record in records
        for path in null_paths(json.loads(record.value))
    )
    # null only where docs/models.md says so (a model that has learned nothing yet).
    assert set(nulls) <= {("predictions", ".probability")}, nulls
    assert sum(len(records) for records in outputs.values()) > N_VALID
