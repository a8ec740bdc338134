"""Issue acceptance: valid events counted exactly, every invalid one dead-lettered as sent."""

from __future__ import annotations

import asyncio
import math
import random
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from streamlearn.records import DeadLetter, ErrorCode
from tests.integration.workers import (
    WorkerProcess,
    agent_trouble,
    consume_until,
    latest_stats,
    produce,
    unique_settings,
)

pytestmark = pytest.mark.integration

N_VALID = 10_000
N_BAD_EACH = 100
MAX_BYTES = 4096


def invalid_record(kind: ErrorCode, i: int) -> bytes:
    """A distinct invalid record of each kind (distinct bytes, so the set comparison is exact)."""
    match kind:
        case ErrorCode.INVALID_JSON:
            return b'{"key": "bad-%d", "values": {"x": 1}' % i
        case ErrorCode.NOT_OBJECT:
            return b"[%d, 2, 3]" % i
        case ErrorCode.MISSING_KEY:
            return (
                b'{"key": "", "values": {"x": %d}}' % i if i % 2 else b'{"values": {"x": %d}}' % i
            )
        case ErrorCode.INVALID_VALUES:
            return b'{"key": "k%d", "values": {}}' % i if i % 2 else b'{"key": "k%d"}' % i
        case ErrorCode.NON_FINITE:
            return b'{"key": "k%d", "values": {"x": %s}}' % (i, [b"NaN", b"Infinity"][i % 2])
        case ErrorCode.INVALID_ENCODING:
            return b'{"key": "k\xff\xfe%d", "values": {"x": 1}}' % i
        case ErrorCode.TOO_LARGE:
            return orjson.dumps({"key": f"k{i}", "values": {"x": 1}, "pad": "p" * MAX_BYTES})
        case ErrorCode.INVALID_TS:
            return b'{"key": "k%d", "values": {"x": 1}, "ts": "not a time %d"}' % (i, i)
    raise AssertionError(kind)


BAD_KINDS = [
    ErrorCode.INVALID_JSON,
    ErrorCode.NOT_OBJECT,
    ErrorCode.MISSING_KEY,
    ErrorCode.INVALID_VALUES,
    ErrorCode.NON_FINITE,
    ErrorCode.INVALID_ENCODING,
    ErrorCode.TOO_LARGE,
    ErrorCode.INVALID_TS,
]


def test_valid_counted_exactly_and_invalid_dead_lettered(kafka_broker, tmp_path: Path) -> None:
    settings = unique_settings(kafka_broker.bootstrap_servers, tmp_path, max_event_bytes=MAX_BYTES)
    rng = random.Random(7)
    expected: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    records: list[tuple[bytes | None, bytes]] = []
    for i in range(N_VALID):
        key = f"key-{i % 20}"
        values = {"a": rng.uniform(-100, 100)}
        if i % 3:
            values["b"] = float(rng.randint(0, 1000))
        for name, x in values.items():
            expected[key][name].append(x)
        records.append(
            (None, orjson.dumps({"key": key, "ts": 1_700_000_000_000 + i, "values": values}))
        )
    bad: dict[bytes, ErrorCode] = {}
    for kind in BAD_KINDS:
        for i in range(N_BAD_EACH):
            raw = invalid_record(kind, i)
            bad[raw] = kind
    bad_records = list(bad)
    assert len(bad_records) == N_BAD_EACH * len(BAD_KINDS)
    # Interleave the bad records among the valid ones, spread over the 4 partitions.
    stream = records + [(b"bad", raw) for raw in bad_records]
    rng.shuffle(stream)

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        sent = asyncio.run(
            produce(settings, settings.topic("events"), stream, partition_of=lambda i: i % 4)
        )
        assert sent == N_VALID + len(bad_records)

        def all_counted(recs) -> bool:
            final = latest_stats(recs)
            return len(final) == 20 and sum(d["events"] for d in final.values()) == N_VALID

        aggregates = asyncio.run(consume_until(settings, settings.topic("aggregates"), all_counted))
        dead = asyncio.run(
            consume_until(
                settings, settings.topic("deadletter"), lambda r: len(r) >= len(bad_records)
            )
        )
    finally:
        worker.stop()

    final = latest_stats(aggregates)
    assert set(final) == set(expected)
    for key, per_value in expected.items():
        doc = final[key]
        assert doc["events"] == len(per_value["a"])
        for name, xs in per_value.items():
            stats = doc["values"][name]
            assert stats["count"] == len(xs)
            assert stats["min"] == min(xs) and stats["max"] == max(xs)
            assert math.isclose(stats["mean"], sum(xs) / len(xs), rel_tol=1e-9)

    assert len(dead) == len(bad_records)
    seen: dict[bytes, ErrorCode] = {}
    for record in dead:
        letter = DeadLetter.from_headers(record.headers)
        assert letter.reason
        assert letter.source_topic == settings.topic("events")
        assert 0 <= letter.source_partition < 4 and letter.source_offset >= 0
        seen[record.value] = letter.code
    assert seen == bad  # the original bytes, each with the right code

    assert agent_trouble(worker.log()) == []


def test_garbage_on_the_internal_topic_is_dead_lettered(kafka_broker, tmp_path: Path) -> None:
    settings = unique_settings(kafka_broker.bootstrap_servers, tmp_path)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        garbage = [(b"k", b"not a keyed record"), (b"k", b'{"key": "k"}')]
        good = [(None, orjson.dumps({"key": "k", "values": {"x": float(i)}})) for i in range(10)]
        asyncio.run(produce(settings, settings.topic("keyed"), garbage))
        asyncio.run(produce(settings, settings.topic("events"), good))
        dead = asyncio.run(
            consume_until(settings, settings.topic("deadletter"), lambda r: len(r) >= 2)
        )
        stats = asyncio.run(
            consume_until(
                settings,
                settings.topic("aggregates"),
                lambda r: latest_stats(r).get("k", {}).get("events") == 10,
            )
        )
        assert worker.proc is not None and worker.proc.poll() is None  # still running
    finally:
        worker.stop()
    assert sorted(r.value for r in dead) == sorted(v for _, v in garbage)
    for record in dead:
        letter = DeadLetter.from_headers(record.headers)
        assert letter.code is ErrorCode.PROCESSING_ERROR
        assert letter.source_topic == settings.topic("keyed")
    assert latest_stats(stats)["k"]["events"] == 10
    assert "Restarting" not in worker.log()
