"""Events from an independent client (Debian's kcat, librdkafka) are processed the same."""

from __future__ import annotations

import asyncio
import math
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.integration.workers import (
    WorkerProcess,
    agent_trouble,
    consume_until,
    latest_stats,
    produce,
    unique_settings,
)

pytestmark = pytest.mark.integration

KEYS = [f"dev-{i}" for i in range(5)]


def events(suffix: str) -> list[bytes]:
    out = []
    for i in range(1_000):
        key = f"{KEYS[i % len(KEYS)]}-{suffix}"
        values = {"x": (i * 37 % 101) / 7.0, "y": float(i)}
        out.append(orjson.dumps({"key": key, "ts": 1_700_000_000_000 + i * 10, "values": values}))
    out.append(b'{"key": "broken"')  # and one bad record each
    return out


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (make system-deps)")
def test_kcat_and_own_producer_give_identical_results(kafka_broker, tmp_path: Path) -> None:
    settings = unique_settings(kafka_broker.bootstrap_servers, tmp_path)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        kcat_lines = events("kcat")
        kcat_input = b"\n".join(kcat_lines) + b"\n"
        subprocess.run(
            ["kcat", "-P", "-b", settings.bootstrap_servers, "-t", settings.topic("events")],
            input=kcat_input,
            check=True,
            timeout=60,
        )
        own = [(None, line) for line in events("own")]
        asyncio.run(produce(settings, settings.topic("events"), own))

        def complete(records) -> bool:
            final = latest_stats(records)
            return len(final) == 2 * len(KEYS) and all(d["events"] == 200 for d in final.values())

        aggregates = asyncio.run(consume_until(settings, settings.topic("aggregates"), complete))
        dead = asyncio.run(
            consume_until(settings, settings.topic("deadletter"), lambda r: len(r) >= 2)
        )
    finally:
        worker.stop()

    final = latest_stats(aggregates)
    assert len(final) == 2 * len(KEYS)
    for key in KEYS:
        via_kcat, via_own = final[f"{key}-kcat"], final[f"{key}-own"]
        assert via_kcat["events"] == via_own["events"] == 200
        for name in ("x", "y"):
            a, b = via_kcat["values"][name], via_own["values"][name]
            assert a["count"] == b["count"] and a["min"] == b["min"] and a["max"] == b["max"]
            assert math.isclose(a["mean"], b["mean"], rel_tol=1e-12)
            assert math.isclose(a["std"], b["std"], rel_tol=1e-9)
    assert sorted(r.value for r in dead) == [b'{"key": "broken"', b'{"key": "broken"']
    assert agent_trouble(worker.log()) == []
