"""Online models in the stream: predictions, inline and delayed labels, exactly-once learning.

* River's Phishing data set (1,250 rows) streamed over five keys: half the events carry
  their label, the other half are labelled later on the labels topic. Every valid event
  gets one prediction record, every usable label is learned once, and the predictions,
  counters and prequential metrics equal an offline reference (the same
  :class:`~streamlearn.models.online.OnlineModel` and
  :class:`~streamlearn.models.features.FeaturePipeline`, one model per keyed partition,
  fed each partition's sequence). Labels for unknown ids, expired predictions and values
  that are not a class are dead-lettered and not learned.
* kill -9 mid-stream while events and delayed labels flow, restart: the models equal
  the reference fed the keyed topic's records once each, in order; no prediction is lost.
* The predict API refuses bad bodies with 400 naming the field; a regression model
  dead-letters labels it cannot use and is not changed by them; events with new or
  missing features keep working.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from river import datasets

from streamlearn.agents.windows import partition_for_key
from streamlearn.config import Settings
from streamlearn.models.features import FeaturePipeline, Observation
from streamlearn.models.online import LabelError, ModelState, OnlineModel
from streamlearn.records import DeadLetter
from tests.integration.workers import (
    LEAN,
    PacedProducer,
    WorkerProcess,
    agent_trouble,
    consume_until,
    http,
    metric,
    produce,
    unique_settings,
    wait_for,
)

pytestmark = pytest.mark.integration

BASE_TS = 1_700_000_000_000
PREDICTION_FIELDS = {
    "key",
    "event_id",
    "ts",
    "prediction",
    "probability",
    "model",
    "model_version",
    "latency_us",
}
#: What the models API reports per state, next to the learner and its metrics.
COUNTERS = (
    "predicted",
    "learned",
    "version",
    "pending",
    "labels_unknown",
    "labels_expired",
    "labels_invalid",
)


# --- helpers ----------------------------------------------------------------------------


def model_states(worker: WorkerProcess) -> dict[str, dict[str, Any]]:
    status, body = http(worker, "GET", "/api/v1/models")
    assert status == 200, (status, body)
    return body["states"]


def totals(worker: WorkerProcess) -> tuple[int, int]:
    """``(predicted, learned)`` summed over the worker's model states."""
    states = model_states(worker).values()
    return sum(s["predicted"] for s in states), sum(s["learned"] for s in states)


def predict(worker: WorkerProcess, key: str, values: dict[str, float], ts: int) -> dict:
    status, body = http(
        worker, "POST", "/api/v1/predict", orjson.dumps({"key": key, "values": values, "ts": ts})
    )
    assert status == 200, (status, body)
    return body


def same(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=0.0, abs_tol=tol)


def same_metrics(got: dict[str, Any], want: dict[str, Any], tol: float) -> bool:
    return got.keys() == want.keys() and all(same(got[k], want[k], tol) for k in want)


def covering(wanted: set[Any], ident: Callable[[Any], Any]) -> Callable[[list[Any]], bool]:
    """A ``consume_until`` predicate: true once ``ident`` of the records covers ``wanted``."""
    seen: set[Any] = set()
    read = [0]

    def done(records: list[Any]) -> bool:
        seen.update(ident(orjson.loads(r.value)) for r in records[read[0] :])
        read[0] = len(records)
        return seen >= wanted

    return done


def stop_at(done: Callable[[list[Any]], bool], quiet_s: float) -> Callable[[list[Any]], bool]:
    """A ``consume_until`` predicate: ``done``, or nothing new for ``quiet_s`` since a record."""
    state = {"n": -1, "since": time.monotonic()}

    def check(records: list[Any]) -> bool:
        if done(records):
            return True
        if len(records) != state["n"]:
            state["n"], state["since"] = len(records), time.monotonic()
            return False
        return bool(records) and time.monotonic() - state["since"] >= quiet_s

    return check


#: Codes of labels the model refuses (the other codes are records ingest refuses).
MODEL_CODES = {"unknown_id", "expired", "invalid_label"}

Place = tuple[str, int, int]  # (topic, partition, offset)


def read_topics(settings: Settings, counts: dict[str, int]) -> dict[Place, bytes]:
    """Every record of the topics named (logical name -> how many), by place."""
    out: dict[Place, bytes] = {}
    for name, count in counts.items():
        topic = settings.topic(name)
        records = asyncio.run(consume_until(settings, topic, lambda r, n=count: len(r) >= n, 30))
        out.update({(topic, r.partition, r.offset): r.value for r in records})
    return out


@dataclass
class Refusals:
    """The dead letters, each traced through its headers to the record it refuses."""

    by_model: list[tuple[str, str, Any]]  # (code, event id, label) of the original record
    by_ingest: dict[bytes, str]  # original bytes -> code
    #: (dead-letter value, original bytes) of the labels the model refused
    model_values: list[tuple[bytes, bytes]]
    reasons: dict[str, list[str]]


def refusals(dead: list[Any], originals: dict[Place, bytes]) -> Refusals:
    out = Refusals([], {}, [], defaultdict(list))
    for record in dead:
        letter = DeadLetter.from_headers(record.headers)
        code = letter.code.value
        raw = originals[(letter.source_topic, letter.source_partition, letter.source_offset)]
        out.reasons[code].append(letter.reason)
        if code in MODEL_CODES:
            doc = orjson.loads(raw)
            out.by_model.append((code, doc["id"], doc["label"]))
            out.model_values.append((record.value, raw))
            assert record.key == doc["key"].encode(), (record.key, doc)
        else:
            assert record.value == raw, (record.value, raw)
            out.by_ingest[raw] = code
    return out


class Reference:
    """The worker's model component, offline: a model state per keyed partition or key.

    Fed records in a keyed partition's order, it predicts and learns exactly as the
    stream should, and records each prediction and each refused label.
    """

    def __init__(self, settings: Settings) -> None:
        self.model = OnlineModel(settings.online_model_config())
        self.pipeline = FeaturePipeline(settings.model_features)
        self.per_key = settings.model_scope == "key"
        self.partitions = settings.topic_partitions
        self.states: dict[str, ModelState] = {}
        self.predictions: dict[str, dict[str, Any]] = {}
        self.refused: list[tuple[str, str, Any]] = []  # (code, event id, label)
        self.order: dict[str, list[str]] = defaultdict(list)  # key -> event ids applied

    def name(self, key: str) -> str:
        """The name the models API gives ``key``'s model state."""
        return key if self.per_key else f"partition-{partition_for_key(key, self.partitions)}"

    def state(self, key: str) -> ModelState:
        name = self.name(key)
        if name not in self.states:
            self.states[name] = self.model.new_state()
        return self.states[name]

    def event(
        self,
        key: str,
        event_id: str,
        ts: int,
        values: dict[str, float],
        label: Any = None,
        attrs: dict[str, str] | None = None,
    ) -> None:
        state = self.state(key)
        features = state.features.setdefault(key, self.pipeline.new_state())
        observation = Observation(key, ts, {k: float(v) for k, v in values.items()}, attrs)
        x = self.pipeline.transform(observation, features)
        self.pipeline.update(observation, features)
        prediction, error = self.model.predict_event(state, key, event_id, ts, x, label)
        self.predictions[event_id] = prediction.to_dict()
        self.order[key].append(event_id)
        if error is not None:
            self.refused.append((error.code, event_id, label))

    def label(self, key: str, event_id: str, label: Any, ts: int) -> None:
        try:
            self.model.apply_label(self.state(key), event_id, label, ts)
        except LabelError as exc:
            self.refused.append((exc.code, event_id, label))

    def probe(self, key: str, values: dict[str, float], ts: int) -> tuple[Any, float | None]:
        state = self.state(key)
        features = state.features.get(key) or self.pipeline.new_state()
        x = self.pipeline.transform(Observation(key, ts, values), features)
        return self.model.predict_one(state, x)

    def describe(self) -> dict[str, dict[str, Any]]:
        return {name: self.model.describe(state) for name, state in self.states.items()}


def check_states(got: dict[str, dict[str, Any]], reference: Reference, tol: float) -> None:
    """The worker's model states (GET /api/v1/models) are the reference's."""
    want = reference.describe()
    assert sorted(got) == sorted(want)
    for name, state in want.items():
        assert {c: got[name][c] for c in COUNTERS} == {c: state[c] for c in COUNTERS}, name
        assert got[name]["model"] == state["model"] and got[name]["task"] == state["task"]
        assert same_metrics(got[name]["metrics"], state["metrics"], tol), (
            name,
            got[name]["metrics"],
            state["metrics"],
        )


def check_prediction(doc: dict[str, Any], want: dict[str, Any], tol: float) -> None:
    assert set(doc) == PREDICTION_FIELDS, doc
    assert (doc["key"], doc["ts"], doc["model"], doc["model_version"]) == (
        want["key"],
        want["ts"],
        want["model"],
        want["model_version"],
    ), (doc, want)
    assert doc["prediction"] == want["prediction"] or same(
        doc["prediction"], want["prediction"], tol
    ), (doc, want)
    assert same(doc["probability"], want["probability"], tol), (doc, want)
    assert isinstance(doc["latency_us"], int | float) and doc["latency_us"] >= 0, doc


# --- 1. inline and delayed labels on the Phishing data set ------------------------------

#: Five keys over four keyed partitions: site-2 and site-3 share partition 3, so their
#: events train one model (global scope).
KEYS = ["site-0", "site-1", "site-2", "site-3", "site-4"]
TTL_MS = 1_800_000  # above the data's 1,250 s span plus the labels' delay: none expires
PHISHING_SETTINGS: dict[str, Any] = {**LEAN, "model_label_ttl_ms": TTL_MS}


@dataclass
class PhishingData:
    """Events and label records in production order, and what each should come to."""

    events: list[tuple[str, bytes]] = field(default_factory=list)  # (key, raw)
    labels: list[tuple[str, bytes]] = field(default_factory=list)  # (key, raw)
    valid_events: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> event
    learned: int = 0  # labels the model must learn
    #: (code, event id, label) refused by the model, in no particular order
    refused: list[tuple[str, str, Any]] = field(default_factory=list)
    #: raw label or event records refused by ingest -> code
    malformed: dict[bytes, str] = field(default_factory=dict)


def phishing_data() -> PhishingData:
    """The data set over five keys (1 s apart); even rows labelled inline, odd ones later.

    Every 50th odd row is never labelled (its prediction stays pending) except to test
    expiry; a handful of bad labels go in with the good ones.
    """
    rng = random.Random(1250)
    data = PhishingData()
    by_key_unlabelled: dict[str, list[dict[str, Any]]] = defaultdict(list)
    delayed: list[dict[str, Any]] = []
    inline_ids: list[str] = []
    for i, (x, y) in enumerate(datasets.Phishing()):
        key = KEYS[rng.randrange(len(KEYS))]
        event: dict[str, Any] = {
            "id": f"ph-{i}",
            "key": key,
            "ts": BASE_TS + i * 1000,
            "values": {name: float(v) for name, v in x.items()},
        }
        if i % 2 == 0:
            event["label"] = y
            if i == 600:
                event["label"] = "maybe"  # inline and unusable: predicted, not learned
                data.refused.append(("invalid_label", event["id"], "maybe"))
            else:
                data.learned += 1
                inline_ids.append(event["id"])
        elif i % 50 == 1:
            by_key_unlabelled[key].append(event)
        else:
            delayed.append({**event, "label": y})
        data.events.append((key, orjson.dumps(event)))
        data.valid_events[event["id"]] = event
        if i == 333:
            bad = orjson.dumps({"id": "bad-ev", "key": "site-1", "values": {"https": "yes"}})
            data.events.append(("site-1", bad))
            data.malformed[bad] = "invalid_values"

    def label(event: dict[str, Any], value: Any, ts: int) -> tuple[str, bytes]:
        doc = {"id": event["id"], "key": event["key"], "label": value, "ts": ts}
        return event["key"], orjson.dumps(doc)

    # Bad labels first: before the good label of the events they name.
    d1 = next(e for e in delayed if e["key"] == "site-2")
    d2 = next(e for e in delayed if e["key"] == "site-3")
    late_ts = BASE_TS + 1_300_000
    first = [
        label({"id": "no-such-event", "key": "site-0"}, True, late_ts),
        label({"id": inline_ids[7], "key": data.valid_events[inline_ids[7]]["key"]}, True, late_ts),
        label(d1, "maybe", d1["ts"] + 1000),
        label(d2, 2, d2["ts"] + 1000),
    ]
    data.refused += [
        ("unknown_id", "no-such-event", True),
        ("unknown_id", inline_ids[7], True),
        ("invalid_label", d1["id"], "maybe"),
        ("invalid_label", d2["id"], 2),
    ]
    good = [label(e, e["label"], e["ts"] + rng.randint(1, 300) * 1000) for e in delayed]
    rng.shuffle(good)
    data.learned += len(good)
    no_id = orjson.dumps({"key": "site-1", "label": True})
    null_label = orjson.dumps({"id": delayed[0]["id"], "key": delayed[0]["key"], "label": None})
    data.malformed[no_id] = data.malformed[null_label] = "invalid_field"
    middle = [("site-1", no_id), ("site-1", null_label)]
    # Last: a second label for a learned event, then expiry on site-1 (partition 2 alone):
    # by then only its never-labelled events are pending there.
    u1, u2 = by_key_unlabelled["site-1"][:2]
    last = [
        label(delayed[-1], delayed[-1]["label"], delayed[-1]["ts"] + 2000),
        # Event time past u1 + TTL: u1 expires now, and this label with it.
        label(u1, True, u1["ts"] + TTL_MS + 1),
        label(u1, True, u1["ts"] + 2000),  # expired already
        label(u2, False, u2["ts"] + 1000),  # u2 is later than u1: still pending, learned
    ]
    data.refused += [
        ("unknown_id", delayed[-1]["id"], delayed[-1]["label"]),
        ("expired", u1["id"], True),
        ("expired", u1["id"], True),
    ]
    data.learned += 1
    data.labels = first + good[:300] + middle + good[300:] + last
    return data


def reference_of(settings: Settings, data: PhishingData) -> Reference:
    """Each keyed partition's model fed its events, then its labels, in production order."""
    reference = Reference(settings)
    for key, raw in data.events:
        if raw in data.malformed:
            continue
        doc = orjson.loads(raw)
        reference.event(key, doc["id"], doc["ts"], doc["values"], doc.get("label"))
    for key, raw in data.labels:
        if raw in data.malformed:
            continue
        doc = orjson.loads(raw)
        reference.label(key, doc["id"], doc["label"], doc["ts"])
    return reference


#: Bodies POST /api/v1/predict refuses, with the message naming what is wrong.
GOOD_VALUES = {"https": 1.0, "long_url": 0.0, "is_popular": 0.5}
BAD_PREDICTS = [
    (b"{not json", "the body is not JSON"),
    (b"", "the body is not JSON"),
    (b'{"key": "site-0", "values": {"https": 1e999}}', "the body is not JSON"),
    (b"[1, 2]", "body must be an object with key and values"),
    (b'"site-0"', "body must be an object with key and values"),
    (b'{"values": {"https": 1.0}}', "body.key must be a non-empty string"),
    (b'{"key": "", "values": {"https": 1.0}}', "body.key must be a non-empty string"),
    (b'{"key": 7, "values": {"https": 1.0}}', "body.key must be a non-empty string"),
    (b'{"key": "site-0"}', "body.values must be an object of 1 to 1000 numbers"),
    (b'{"key": "site-0", "values": {}}', "body.values must be an object of 1 to 1000 numbers"),
    (b'{"key": "site-0", "values": [1.0]}', "body.values must be an object of 1 to 1000"),
    (
        b'{"key": "site-0", "values": {"https": "yes"}}',
        "body.values.https must be a finite number, got 'yes'",
    ),
    (
        b'{"key": "site-0", "values": {"https": true}}',
        "body.values.https must be a finite number, got True",
    ),
    (
        b'{"key": "site-0", "values": {"https": 1.0, "long_url": null}}',
        "body.values.long_url must be a finite number, got None",
    ),
    (
        orjson.dumps({"key": "site-0", "values": {f"v{i}": 1.0 for i in range(1001)}}),
        "body.values must be an object of 1 to 1000 numbers",
    ),
    (
        b'{"key": "site-0", "values": {"https": 1.0}, "ts": "2024-01-01T00:00:00Z"}',
        "body.ts must be epoch milliseconds, got '2024-01-01T00:00:00Z'",
    ),
    (
        b'{"key": "site-0", "values": {"https": 1.0}, "ts": -5}',
        "body.ts must be epoch milliseconds, got",
    ),
    (
        b'{"key": "site-0", "values": {"https": 1.0}, "ts": 1.5}',
        "body.ts must be epoch milliseconds, got",
    ),
    (
        b'{"key": "site-0", "values": {"https": 1.0}, "ts": true}',
        "body.ts must be epoch milliseconds, got",
    ),
    (
        b'{"key": "site-0", "values": {"https": 1.0}, "attrs": {"os": 3}}',
        "body.attrs must be an object of strings",
    ),
    (
        b'{"key": "site-0", "values": {"https": 1.0}, "attrs": "linux"}',
        "body.attrs must be an object of strings",
    ),
]
GOOD_EVENT = {"key": "site-0", "values": GOOD_VALUES, "ts": BASE_TS + 2_000_000}
BAD_BATCHES = [
    (b"{not json", "the body is not JSON"),
    (b"[]", 'the body must be {"events": [1 to 1000 events]}'),
    (b'{"events": []}', 'the body must be {"events": [1 to 1000 events]}'),
    (b'{"events": {"key": "site-0"}}', 'the body must be {"events": [1 to 1000 events]}'),
    (orjson.dumps({"events": [GOOD_EVENT] * 1001}), '{"events": [1 to 1000 events]}'),
    (
        orjson.dumps({"events": [GOOD_EVENT, {"key": "site-1", "values": {"https": "x"}}]}),
        "events[1].values.https must be a finite number, got 'x'",
    ),
    (
        orjson.dumps({"events": [{"values": {"https": 1.0}}, GOOD_EVENT]}),
        "events[0].key must be a non-empty string",
    ),
    (
        orjson.dumps({"events": [GOOD_EVENT, GOOD_EVENT, {**GOOD_EVENT, "ts": "now"}]}),
        "events[2].ts must be epoch milliseconds, got 'now'",
    ),
    (
        orjson.dumps({"events": [GOOD_EVENT, {**GOOD_EVENT, "attrs": {"a": None}}]}),
        "events[1].attrs must be an object of strings",
    ),
    (orjson.dumps({"events": [GOOD_EVENT, 5]}), "events[1] must be an object with key and"),
]


@dataclass
class PhishingRun:
    settings: Settings
    data: PhishingData
    reference: Reference
    states: dict[str, dict[str, Any]]
    model_metrics: dict[str, Any]
    predictions: list[Any]
    dead: list[Any]
    originals: dict[Place, bytes]  # the events and labels topics
    probes: list[tuple[str, dict[str, float], int, dict[str, Any]]]
    bad_predicts: list[tuple[bytes, int, Any]]
    bad_batches: list[tuple[bytes, int, Any]]
    good_batch: tuple[int, Any]
    unknown_model: tuple[int, Any]
    states_after_bad: dict[str, dict[str, Any]]
    alive: bool
    log: str


@pytest.fixture(scope="module")
def phishing_run(kafka_broker, tmp_path_factory) -> PhishingRun:
    """One worker: the events, then (once all are predicted) the labels; then bad requests."""
    tmp_path = tmp_path_factory.mktemp("phishing")
    settings = unique_settings(kafka_broker.bootstrap_servers, tmp_path, **PHISHING_SETTINGS)
    data = phishing_data()
    reference = reference_of(settings, data)
    partitions = settings.topic_partitions

    def by_key(records: list[tuple[str, bytes]]) -> Callable[[int], int]:
        # Each key's records go to one source partition: the keyed partition's order is
        # then the production order.
        return lambda i: partition_for_key(records[i][0], partitions)

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        events = [(key.encode(), raw) for key, raw in data.events]
        asyncio.run(
            produce(settings, settings.topic("events"), events, partition_of=by_key(data.events))
        )
        n_events = len(data.valid_events)
        wait_for(lambda: totals(worker)[0] >= n_events, 90, f"{n_events} predictions")

        labels = [(key.encode(), raw) for key, raw in data.labels]
        asyncio.run(
            produce(settings, settings.topic("labels"), labels, partition_of=by_key(data.labels))
        )

        def settled() -> bool:
            # Every label handled, learned or refused (more: one handled twice, shown below).
            states = model_states(worker).values()
            handled = sum(
                s["learned"] + s["labels_unknown"] + s["labels_expired"] + s["labels_invalid"]
                for s in states
            )
            return handled >= data.learned + len(data.refused)

        wait_for(settled, 90, f"{data.learned} labels learned and {len(data.refused)} refused")
        states = model_states(worker)
        status, model_metrics = http(
            worker, "GET", f"/api/v1/models/{settings.model_learner}/metrics"
        )
        assert status == 200, model_metrics

        probes = []
        for i, key in enumerate(KEYS):
            for j, row in enumerate([GOOD_VALUES, {"https": 0.0, "age_of_domain": 1.0}]):
                ts = BASE_TS + 1_260_000 + 1000 * (2 * i + j)
                probes.append((key, row, ts, predict(worker, key, row, ts)))

        bad_predicts = [
            (body, *http(worker, "POST", "/api/v1/predict", body)) for body, _ in BAD_PREDICTS
        ]
        bad_batches = [
            (body, *http(worker, "POST", "/api/v1/predict/batch", body)) for body, _ in BAD_BATCHES
        ]
        batch = [{"key": key, "values": row, "ts": ts} for key, row, ts, _ in probes]
        good_batch = http(worker, "POST", "/api/v1/predict/batch", orjson.dumps({"events": batch}))
        unknown_model = http(worker, "GET", "/api/v1/models/nope/metrics")
        states_after_bad = model_states(worker)
        alive = worker.proc is not None and worker.proc.poll() is None and bool(worker.health())

        predictions = asyncio.run(
            consume_until(
                settings,
                settings.topic("predictions"),
                covering(set(data.valid_events), lambda doc: doc["event_id"]),
                60,
            )
        )
        n_dead = len(data.refused) + len(data.malformed)
        dead = asyncio.run(
            consume_until(
                settings, settings.topic("deadletter"), stop_at(lambda r: len(r) >= n_dead, 3.0), 60
            )
        )
        originals = read_topics(settings, {"events": len(data.events), "labels": len(data.labels)})
    finally:
        worker.stop()
    return PhishingRun(
        settings=settings,
        data=data,
        reference=reference,
        states=states,
        model_metrics=model_metrics,
        predictions=predictions,
        dead=dead,
        originals=originals,
        probes=probes,
        bad_predicts=bad_predicts,
        bad_batches=bad_batches,
        good_batch=good_batch,
        unknown_model=unknown_model,
        states_after_bad=states_after_bad,
        alive=alive,
        log=worker.log(),
    )


def test_reference_is_what_the_data_says(phishing_run: PhishingRun) -> None:
    """The offline reference itself: every good label learned, the bad ones refused."""
    run = phishing_run
    reference = run.reference
    assert sum(s.learned for s in reference.states.values()) == run.data.learned
    assert Counter(reference.refused) == Counter(run.data.refused)
    # Five keys on four partitions, two of them sharing one model.
    assert len(reference.states) == 4
    assert len({partition_for_key(k, run.settings.topic_partitions) for k in KEYS}) == 4
    for state in reference.states.values():
        # It learned something: better than chance, well above the majority class (56 %).
        metrics = reference.model.metrics(state)
        assert 0.7 < metrics["accuracy"] < 1.0 and metrics["roc_auc"] > 0.8, metrics


def test_one_prediction_per_event_equal_to_the_reference(phishing_run: PhishingRun) -> None:
    run = phishing_run
    docs = [orjson.loads(record.value) for record in run.predictions]
    counts = Counter(doc["event_id"] for doc in docs)
    assert set(counts) == set(run.data.valid_events)  # none for the invalid event
    assert [i for i, n in counts.items() if n != 1] == []
    for record, doc in zip(run.predictions, docs, strict=True):
        assert record.key == doc["key"].encode()
        check_prediction(doc, run.reference.predictions[doc["event_id"]], 1e-12)
    # The first prediction of each model has nothing learned yet: no probability.
    assert sum(doc["probability"] is None for doc in docs) >= len(run.reference.states)
    assert {doc["prediction"] for doc in docs} == {False, True}


def test_every_label_learned_once_and_metrics_equal_the_reference(
    phishing_run: PhishingRun,
) -> None:
    run = phishing_run
    check_states(run.states, run.reference, 1e-12)
    assert sum(s["learned"] for s in run.states.values()) == run.data.learned
    body = run.model_metrics
    assert body["model"] == run.settings.model_learner
    assert body["learned"] == run.data.learned
    assert body["predicted"] == len(run.data.valid_events)
    want = run.reference.describe()
    assert body["pending"] == sum(s["pending"] for s in want.values()) > 0
    assert sorted(body["states"]) == sorted(want)
    for name, state in body["states"].items():
        assert state["learned"] == want[name]["learned"]
        assert math.isclose(
            state["metrics"]["accuracy"], want[name]["metrics"]["accuracy"], abs_tol=1e-12
        ), name
        assert same_metrics(state["metrics"], want[name]["metrics"], 1e-12), name
    # Probes with an explicit ts: the live models answer as the reference does.
    for key, values, ts, answer in run.probes:
        y, p = run.reference.probe(key, values, ts)
        assert answer["key"] == key and answer["model"] == run.settings.model_learner
        assert answer["model_version"] == run.reference.state(key).learned
        assert answer["prediction"] == y and same(answer["probability"], p, 1e-12), (key, answer)


def test_unusable_labels_are_dead_letters(phishing_run: PhishingRun) -> None:
    """Each refused label (and the refused event) is a dead letter whose headers name it."""
    run = phishing_run
    got = refusals(run.dead, run.originals)
    assert Counter(got.by_model) == Counter(run.data.refused)
    assert got.by_ingest == run.data.malformed
    assert all("no pending prediction for event id" in r for r in got.reasons["unknown_id"])
    assert all("expired" in r for r in got.reasons["expired"])
    assert all("is not one of the classes" in r for r in got.reasons["invalid_label"])


def test_refused_labels_are_dead_lettered_as_parsed(phishing_run: PhishingRun) -> None:
    """A record the model refuses is dead-lettered in its parsed (keyed) form: the same id,
    key and label as the record sent, and headers locating that record."""
    values = refusals(phishing_run.dead, phishing_run.originals).model_values
    assert len(values) == len(phishing_run.data.refused)
    for value, original in values:
        sent, letter = orjson.loads(original), orjson.loads(value)
        assert (letter["id"], letter["key"], letter["label"]) == (
            sent["id"],
            sent["key"],
            sent["label"],
        )


def test_predict_api_refuses_bad_input(phishing_run: PhishingRun) -> None:
    run = phishing_run
    for (body, status, answer), (_, message) in zip(run.bad_predicts, BAD_PREDICTS, strict=True):
        assert status == 400, (body[:80], status, answer)
        assert answer["status"] == 400 and message in answer["error"], (body[:80], answer)
    for (body, status, answer), (_, message) in zip(run.bad_batches, BAD_BATCHES, strict=True):
        assert status == 400, (body[:80], status, answer)
        assert answer["status"] == 400 and message in answer["error"], (body[:80], answer)
    status, answer = run.unknown_model
    assert status == 404 and "no model 'nope'" in answer["error"], answer

    # A good batch answers in order, as the single requests did.
    status, answer = run.good_batch
    assert status == 200, answer
    for got, (*_, single) in zip(answer["predictions"], run.probes, strict=True):
        assert {**got, "latency_us": 0} == {**single, "latency_us": 0}
    # Nothing was learned from any of it, and the worker never stumbled.
    assert run.states_after_bad == run.states
    assert run.alive
    assert agent_trouble(run.log) == [], "\n".join(agent_trouble(run.log)[:20])


# --- 2. exactly-once learning under kill -9 ---------------------------------------------

KILL_KEYS = ["site-0", "site-1", "site-2", "site-3", "site-4"]


class LabelFeeder(threading.Thread):
    """Sends an event's delayed label once its prediction is on the predictions topic.

    A label is never sent before its event reached the keyed topic, so it never comes
    before its event there, whatever the kill does. Each label is sent once.
    """

    def __init__(self, settings: Settings, labels: dict[str, tuple[str, bool, int]]):
        super().__init__(daemon=True)
        self.settings = settings
        self.labels = dict(labels)  # event id -> (key, label, ts)
        self.sent = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _run(self) -> None:
        settings = self.settings
        consumer = AIOKafkaConsumer(
            settings.topic("predictions"),
            bootstrap_servers=settings.bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            linger_ms=5,
            acks="all",
            enable_idempotence=True,
        )
        await consumer.start()
        await producer.start()
        deadline = time.monotonic() + 150
        try:
            while self.labels and not self.done.is_set():
                assert time.monotonic() < deadline, f"{len(self.labels)} labels never sent"
                batches = await consumer.getmany(timeout_ms=200)
                sends = []
                for batch in batches.values():
                    for record in batch:
                        item = self.labels.pop(orjson.loads(record.value)["event_id"], None)
                        if item is None:
                            continue
                        key, label, ts = item
                        doc = {"id": orjson.loads(record.value)["event_id"], "key": key}
                        value = orjson.dumps({**doc, "label": label, "ts": ts})
                        partition = partition_for_key(key, settings.topic_partitions)
                        sends.append(
                            await producer.send(
                                settings.topic("labels"),
                                value,
                                key=key.encode(),
                                partition=partition,
                            )
                        )
                await asyncio.gather(*sends)
                self.sent += len(sends)
        finally:
            await producer.stop()
            await consumer.stop()


@dataclass
class KillRun:
    settings: Settings
    events: dict[str, dict[str, Any]]  # id -> event, production order
    labels: dict[str, tuple[str, bool, int]]
    learned: int
    reference: Reference
    applied_at_kill: int
    produced_at_kill: int
    labels_at_kill: int
    replayed: float
    states: dict[str, dict[str, Any]]
    probes: list[tuple[str, dict[str, float], int, dict[str, Any]]]
    predictions: list[Any]
    log: str


@pytest.fixture(scope="module")
def kill_run(kafka_broker, tmp_path_factory) -> KillRun:
    """Events paced in, labels sent as predictions appear, SIGKILL mid-stream, restart."""
    tmp_path = tmp_path_factory.mktemp("models-kill")
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        batch_max_events=100,
        broker_session_timeout_s=6.0,
        # No periodic commit before the kill: everything the first run applied is
        # redelivered after the restart and must be recognised by the offset marks.
        commit_interval_s=30.0,
        # Labels can trail their events by the whole restart: no prediction expires.
        model_label_ttl_ms=10**12,
        **LEAN,
    )
    rng = random.Random(99)
    events: dict[str, dict[str, Any]] = {}
    labels: dict[str, tuple[str, bool, int]] = {}
    records = []
    learned = 0
    for i, (x, y) in enumerate(datasets.Phishing()):
        key = KILL_KEYS[rng.randrange(len(KILL_KEYS))]
        event: dict[str, Any] = {
            "id": f"k-{i}",
            "key": key,
            "ts": BASE_TS + i * 1000,
            "values": {name: float(v) for name, v in x.items()},
        }
        if rng.random() < 0.5:
            event["label"] = y
        else:
            labels[event["id"]] = (key, y, event["ts"] + 500)
        learned += 1
        events[event["id"]] = event
        records.append(
            (key.encode(), orjson.dumps(event), partition_for_key(key, settings.topic_partitions))
        )

    # The second half waits for the kill, so the kill lands mid-stream.
    producer = PacedProducer(
        settings,
        settings.topic("events"),
        records,
        rate=len(records) / 6.0,
        hold_at=len(records) // 2,
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    feeder = LabelFeeder(settings, labels)
    try:
        feeder.start()
        producer.start()
        deadline = time.monotonic() + 60
        applied_at_kill = 0
        while applied_at_kill < len(events) // 5:
            assert time.monotonic() < deadline, "the worker applied too little in 60 s"
            time.sleep(0.05)
            applied_at_kill = totals(worker)[0]
        produced_at_kill = producer.acked
        labels_at_kill = feeder.sent
        worker.kill()  # SIGKILL: no shutdown, no final commit, no producer flush
        producer.release()

        worker.start()
        producer.join(120)
        assert not producer.is_alive() and producer.error is None, producer.error
        wait_for(
            # At least: more than that is a record applied twice, which the checks show.
            lambda: all(
                a >= b for a, b in zip(totals(worker), (len(events), learned), strict=True)
            ),
            120,
            f"{len(events)} events predicted and {learned} labels learned",
        )
        feeder.join(30)
        assert not feeder.is_alive() and feeder.error is None, feeder.error
        replayed = metric(worker, "streamlearn_replayed_skipped_total", 'agent="models"')
        states = model_states(worker)
        probes = []
        for i, key in enumerate(KILL_KEYS):
            for j, row in enumerate([GOOD_VALUES, {"https": 0.0, "age_of_domain": 1.0}]):
                ts = BASE_TS + 1_300_000 + 1000 * (2 * i + j)
                probes.append((key, row, ts, predict(worker, key, row, ts)))
        predictions = asyncio.run(
            consume_until(
                settings,
                settings.topic("predictions"),
                covering(set(events), lambda doc: doc["event_id"]),
                60,
            )
        )
        keyed = asyncio.run(
            consume_until(
                settings,
                settings.topic("keyed"),
                covering(
                    {("event", i) for i in events} | {("label", i) for i in labels},
                    lambda doc: (doc.get("kind", "event"), doc["id"]),
                ),
                60,
            )
        )
        # Nothing is applied twice later either.
        assert totals(worker) == (len(events), learned)
        assert worker.proc is not None and worker.proc.poll() is None
    finally:
        feeder.done.set()
        producer.release()
        producer.join(30)
        feeder.join(30)
        worker.stop()

    # The reference: each keyed partition's records once (the first delivery of each
    # source offset, as the offset marks decide), in the keyed topic's order.
    reference = Reference(settings)
    marks: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
    for record in sorted(keyed, key=lambda r: (r.partition, r.offset)):
        doc = orjson.loads(record.value)
        kind = "label" if doc.get("kind") == "label" else "event"
        assert partition_for_key(doc["key"], settings.topic_partitions) == record.partition
        src_partition, src_offset = doc["src"][0], doc["src"][1]
        seen = marks[(record.partition, kind)]
        if src_offset <= seen.get(src_partition, -1):
            continue
        seen[src_partition] = src_offset
        if kind == "label":
            reference.label(doc["key"], doc["id"], doc["label"], doc["ts"])
        else:
            reference.event(
                doc["key"], doc["id"], doc["ts"], doc["values"], doc.get("label"), doc.get("attrs")
            )
    return KillRun(
        settings=settings,
        events=events,
        labels=labels,
        learned=learned,
        reference=reference,
        applied_at_kill=applied_at_kill,
        produced_at_kill=produced_at_kill,
        labels_at_kill=labels_at_kill,
        replayed=replayed,
        states=states,
        probes=probes,
        predictions=predictions,
        log=worker.log(),
    )


def test_models_exactly_once_after_kill_9(kill_run: KillRun) -> None:
    run = kill_run
    # The kill landed mid-stream: events applied and labels sent, not all even produced.
    assert 0 < run.applied_at_kill < len(run.events)
    assert run.produced_at_kill < len(run.events)
    assert 0 < run.labels_at_kill < len(run.labels)
    # ...and the restarted worker was redelivered records it had applied, and skipped them.
    assert run.replayed > 0

    # The reference saw every event and label once, each key's events in production
    # order, and refused no label (each came after its event).
    reference = run.reference
    assert reference.refused == []
    for key in KILL_KEYS:
        assert reference.order[key] == [i for i, e in run.events.items() if e["key"] == key]
    assert sum(s.learned for s in reference.states.values()) == run.learned
    assert sum(s.predicted for s in reference.states.values()) == len(run.events)

    # Counters, metrics and answers of every model equal the reference's.
    check_states(run.states, reference, 1e-9)
    for key, values, ts, answer in run.probes:
        y, p = reference.probe(key, values, ts)
        assert answer["model_version"] == reference.state(key).learned
        assert answer["prediction"] == y and same(answer["probability"], p, 1e-9), (key, answer)
    assert agent_trouble(run.log) == [], "\n".join(agent_trouble(run.log)[:20])


def test_no_prediction_lost_to_kill_9(kill_run: KillRun) -> None:
    """Predictions are at-least-once, and each one, sent before the kill or after it, is
    the reference's: no event was predicted by a model that had learned it, or missed one."""
    run = kill_run
    docs = {}
    for record in run.predictions:
        doc = orjson.loads(record.value)
        check_prediction(doc, run.reference.predictions[doc["event_id"]], 1e-9)
        docs[doc["event_id"]] = doc
    missing = sorted(run.events.keys() - docs.keys())
    assert missing == [], f"{len(missing)} events have no prediction, e.g. {missing[:10]}"


# --- 3. a regression model: unusable labels, new and missing features -------------------

REG_KEYS = ["r-0", "r-1"]


@dataclass
class RegressionRun:
    settings: Settings
    reference: Reference
    learned: int
    refused: list[tuple[str, str, Any]]
    malformed: dict[bytes, str]
    n_events: int
    states: dict[str, dict[str, Any]]
    states_after: dict[str, dict[str, Any]]
    probes: list[tuple[str, dict[str, float], int, dict[str, Any]]]
    probes_after: list[dict[str, Any]]
    predictions: list[Any]
    dead: list[Any]
    originals: dict[Place, bytes]
    alive: bool
    log: str


REG_PROBES = [
    {"a": 3.0, "b": 1.0},
    {"a": 3.0, "b": 1.0, "c": 4.0},
    {"a": 3.0},  # b missing
    {"a": 3.0, "b": 1.0, "zzz": 10.0},  # a feature never seen
    {"zzz": 1.0},
]


@pytest.fixture(scope="module")
def regression_run(kafka_broker, tmp_path_factory) -> RegressionRun:
    """A linear regression per key: events (a value appearing late, one often missing),
    labels inline and delayed, then only unusable labels."""
    tmp_path = tmp_path_factory.mktemp("regression")
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        model_task="regression",
        model_learner="linear",
        model_scope="key",
        **LEAN,
    )
    rng = random.Random(5)
    events: list[tuple[str, bytes]] = []
    good_labels: list[tuple[str, bytes]] = []
    pending: list[dict[str, Any]] = []
    refused: list[tuple[str, str, Any]] = []
    malformed: dict[bytes, str] = {}
    learned = 0
    for i in range(300):
        key = REG_KEYS[i % 2]
        a, b = rng.uniform(0, 10), rng.uniform(-5, 5)
        values = {"a": round(a, 4)}
        if i % 7 != 3:
            values["b"] = round(b, 4)
        if i >= 150:
            values["c"] = float(i % 5)  # a value that only appears later
        y = 2.0 * a - b + 0.5 * values.get("c", 0.0) + rng.gauss(0, 0.1)
        event: dict[str, Any] = {"id": f"r{i}", "key": key, "ts": BASE_TS + i * 1000}
        event["values"] = values
        if i % 4 < 2:  # both keys: half inline, half delayed
            event["label"] = "high" if i == 100 else round(y, 4)
            if i == 100:
                refused.append(("invalid_label", event["id"], "high"))
            else:
                learned += 1
        elif i % 20 < 4:
            pending.append(event)  # never labelled well
        else:
            doc = {"id": event["id"], "key": key, "label": round(y, 4), "ts": event["ts"] + 5000}
            good_labels.append((key, orjson.dumps(doc)))
            learned += 1
        events.append((key, orjson.dumps(event)))
    n_events = len(events)
    # Unusable labels for events still waiting for theirs: a string, a boolean, a number
    # that is not finite (refused at ingest) and an id that was never seen.
    bad_labels = []
    for j, event in enumerate(pending[:6]):
        value: Any = ["high", True, "3.5"][j % 3]
        doc = {"id": event["id"], "key": event["key"], "label": value, "ts": event["ts"] + 5000}
        bad_labels.append((event["key"], orjson.dumps(doc)))
        refused.append(("invalid_label", event["id"], value))
    inf_label = b'{"id": "%s", "key": "r-1", "label": 1e999}' % pending[1]["id"].encode()
    bad_labels.append(("r-1", inf_label))
    malformed[inf_label] = "non_finite"
    bad_labels.append(
        ("r-0", orjson.dumps({"id": "r-none", "key": "r-0", "label": 1.0, "ts": BASE_TS}))
    )
    refused.append(("unknown_id", "r-none", 1.0))

    reference = Reference(settings)
    for key, raw in events:
        doc = orjson.loads(raw)
        reference.event(key, doc["id"], doc["ts"], doc["values"], doc.get("label"))
    for key, raw in good_labels:
        doc = orjson.loads(raw)
        reference.label(key, doc["id"], doc["label"], doc["ts"])

    def by_key(records: list[tuple[str, bytes]]) -> Callable[[int], int]:
        return lambda i: partition_for_key(records[i][0], settings.topic_partitions)

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        asyncio.run(
            produce(
                settings,
                settings.topic("events"),
                [(k.encode(), v) for k, v in events],
                partition_of=by_key(events),
            )
        )
        wait_for(lambda: totals(worker)[0] >= n_events, 60, f"{n_events} predictions")
        asyncio.run(
            produce(
                settings,
                settings.topic("labels"),
                [(k.encode(), v) for k, v in good_labels],
                partition_of=by_key(good_labels),
            )
        )
        wait_for(lambda: totals(worker)[1] >= learned, 60, f"{learned} labels learned")
        states = model_states(worker)
        probes = []
        for key in REG_KEYS:
            for j, row in enumerate(REG_PROBES):
                ts = BASE_TS + 400_000 + j * 1000
                probes.append((key, row, ts, predict(worker, key, row, ts)))

        asyncio.run(
            produce(
                settings,
                settings.topic("labels"),
                [(k.encode(), v) for k, v in bad_labels],
                partition_of=by_key(bad_labels),
            )
        )
        n_dead = len(refused) + len(malformed)
        dead = asyncio.run(
            consume_until(
                settings, settings.topic("deadletter"), stop_at(lambda r: len(r) >= n_dead, 3.0), 60
            )
        )
        states_after = model_states(worker)
        probes_after = [predict(worker, key, row, ts) for key, row, ts, _ in probes]
        predictions = asyncio.run(
            consume_until(
                settings,
                settings.topic("predictions"),
                covering({orjson.loads(raw)["id"] for _, raw in events}, lambda d: d["event_id"]),
                60,
            )
        )
        alive = worker.proc is not None and worker.proc.poll() is None and bool(worker.health())
    finally:
        worker.stop()
    n_labels = len(good_labels) + len(bad_labels)
    originals = read_topics(settings, {"events": len(events), "labels": n_labels})
    for key, raw in bad_labels:
        if raw not in malformed:
            doc = orjson.loads(raw)
            reference.label(key, doc["id"], doc["label"], doc["ts"])
    return RegressionRun(
        settings=settings,
        reference=reference,
        learned=learned,
        refused=refused,
        malformed=malformed,
        n_events=n_events,
        states=states,
        states_after=states_after,
        probes=probes,
        probes_after=probes_after,
        predictions=predictions,
        dead=dead,
        originals=originals,
        alive=alive,
        log=worker.log(),
    )


def test_regression_learns_every_label_and_predicts_with_changing_features(
    regression_run: RegressionRun,
) -> None:
    run = regression_run
    reference = run.reference
    assert sum(s.learned for s in reference.states.values()) == run.learned
    # One model per key (key scope), named by the key.
    assert sorted(run.states) == REG_KEYS
    assert sum(s["learned"] for s in run.states.values()) == run.learned
    assert all(s["task"] == "regression" and s["model"] == "linear" for s in run.states.values())

    docs = [orjson.loads(record.value) for record in run.predictions]
    assert len(docs) == run.n_events == len({d["event_id"] for d in docs})
    for doc in docs:
        assert isinstance(doc["prediction"], float) and math.isfinite(doc["prediction"]), doc
        assert doc["probability"] is None
        check_prediction(doc, reference.predictions[doc["event_id"]], 1e-9)
    # Events with a new value (c, from the 150th on) or without b were predicted and
    # learned from like the others; probes with unknown or missing values are answered.
    for key, values, ts, answer in run.probes:
        y, _ = reference.probe(key, values, ts)
        assert math.isfinite(answer["prediction"]) and same(answer["prediction"], y, 1e-9), (
            key,
            values,
            answer,
        )
        assert answer["probability"] is None and answer["model_version"] > 0
    # It learned the relation (prequential R2, over labels it had not seen yet).
    r2 = {name: s["metrics"]["r2"] for name, s in run.states.items()}
    assert all(value > 0.5 for value in r2.values()), r2


def test_unusable_labels_leave_the_model_unchanged(regression_run: RegressionRun) -> None:
    run = regression_run
    # Every unusable label is a dead letter with its reason...
    got = refusals(run.dead, run.originals)
    assert Counter(got.by_model) == Counter(run.refused)
    assert got.by_ingest == run.malformed
    assert all("must be a number" in r for r in got.reasons["invalid_label"]), got.reasons
    assert got.reasons["non_finite"] == ["label is not finite"]
    assert Counter(run.reference.refused) == Counter(run.refused)

    # ...and changed nothing: same learned count, same pending, same answers.
    for name, before in run.states.items():
        after = run.states_after[name]
        for counter in ("learned", "predicted", "pending", "version"):
            assert after[counter] == before[counter], (name, counter)
        assert after["metrics"] == before["metrics"]
    assert sum(s["labels_invalid"] for s in run.states_after.values()) == sum(
        1 for code, *_ in run.refused if code == "invalid_label"
    )
    assert sum(s["labels_unknown"] for s in run.states_after.values()) == 1
    check_states(run.states_after, run.reference, 1e-9)
    for (_, _, _, before), after in zip(run.probes, run.probes_after, strict=True):
        assert math.isfinite(after["prediction"])
        assert {**after, "latency_us": 0} == {**before, "latency_us": 0}
    assert run.alive
    assert agent_trouble(run.log) == [], "\n".join(agent_trouble(run.log)[:20])
