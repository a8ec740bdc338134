"""The time-series and analysis API on real workers: answers, 4xx errors, two workers."""

from __future__ import annotations

import asyncio
import math
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from scipy import stats as scipy_stats

from streamlearn.kafka import free_port
from tests.integration.truth import make_events, window_truth
from tests.integration.workers import WorkerProcess, produce, unique_settings

pytestmark = pytest.mark.integration

RANGE = "from=1699990000000&to=1700100000000"


def get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as reply:
            return reply.status, orjson.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def wait_processed(port: int, n: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = get(port, "/api/v1/keys")
        if status == 200 and body["keys"]:
            total = 0
            for key in body["keys"]:
                status, doc = get(port, f"/api/v1/stats/{key}")
                total += doc.get("events", 0) if status == 200 else 0
            if total == n:
                return
        time.sleep(0.5)
    raise AssertionError(f"not all {n} events processed in {timeout_s}s")


@pytest.fixture(scope="module")
def one_worker(kafka_broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp,
        window_idle_timeout_s=3600.0,
        api_max_range_ms=10 * 86_400_000,
    )
    events = make_events(4_000, 4, seed=9, disorder_ms=100)
    for i, event in enumerate(events):
        # 50x slower: about 67 minutes of data, disorder up to 5 s
        event["ts"] = 1_700_000_000_000 + (event["ts"] - 1_700_000_000_000) * 50
        event["attrs"] = {"tier": ["gold", "silver"][(i + (event["key"] == "key-001")) % 2]}
    worker = WorkerProcess(settings, tmp / "worker.log").start()
    payloads = [(None, orjson.dumps(e)) for e in events]
    asyncio.run(produce(settings, settings.topic("events"), payloads, partition_of=lambda i: i % 4))
    wait_processed(worker.web_port, len(events))
    yield worker, settings, events
    worker.stop()


def test_series_matches_ground_truth(one_worker) -> None:
    worker, settings, events = one_worker
    truth = window_truth(events, settings.window_specs())
    status, body = get(
        worker.web_port, f"/api/v1/series/key-000?value=a&window=tumbling-1m&{RANGE}"
    )
    assert status == 200
    assert body["windows"], body
    for window in body["windows"]:
        expected = truth[window["id"]]
        assert window["stats"]["count"] == expected["count"]
        assert window["stats"]["sum"] == expected["sum"]
        assert math.isclose(window["stats"]["mean"], expected["mean"], rel_tol=1e-9)
    assert [w["start"] for w in body["windows"]] == sorted(w["start"] for w in body["windows"])
    assert body["windows"][-1]["closed"] is False  # the newest window is still open


def test_downsampling_re_aggregates_finer_windows(one_worker) -> None:
    worker, _, events = one_worker
    status, body = get(
        worker.web_port, f"/api/v1/series/key-002/aggregate?value=b&agg=sum&every=5m&{RANGE}"
    )
    assert status == 200
    expected: dict[int, float] = {}
    for e in events:
        if e["key"] == "key-002":
            bucket = e["ts"] - e["ts"] % 300_000
            expected[bucket] = expected.get(bucket, 0.0) + e["values"]["b"]
    assert {p["start"]: p["value"] for p in body["points"]} == expected
    status, counts = get(
        worker.web_port, f"/api/v1/series/key-002/aggregate?value=b&agg=count&every=10m&{RANGE}"
    )
    assert sum(p["value"] for p in counts["points"]) == sum(e["key"] == "key-002" for e in events)


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/v1/series/nobody?value=a", 404, "unknown key 'nobody'"),
        ("/api/v1/series/key-000?value=zz", 404, "has no value 'zz'"),
        ("/api/v1/series/key-000", 400, "'value' is required"),
        ("/api/v1/series/key-000?value=a&window=weekly", 400, "window='weekly' is not one of"),
        ("/api/v1/series/key-000?value=a&from=yesterday", 400, "not epoch milliseconds or ISO"),
        ("/api/v1/series/key-000?value=a&from=2024-01-01T00:00:00", 400, "needs a time zone"),
        ("/api/v1/series/key-000?value=a&from=20&to=10", 400, "must be before"),
        ("/api/v1/series/key-000?value=a&from=0&to=1700000000000", 400, "the maximum is"),
        ("/api/v1/series/key-000/aggregate?value=a&every=90s", 400, "multiple of the finest"),
        ("/api/v1/series/key-000/aggregate?value=a&agg=median", 400, "agg='median'"),
        ("/api/v1/series/key-000/aggregate?value=a&every=5x", 400, "not a duration"),
        ("/api/v1/stats/nobody", 404, "unknown key"),
        ("/api/v1/analysis/anova?groups=key-000:a,key-001:a", 400, "at least 3 groups"),
        ("/api/v1/analysis/compare?a=key-000", 400, "KEY:VALUE"),
        ("/api/v1/analysis/ols/key-000?y=a", 400, "'x' is required"),
    ],
)
def test_clear_errors(one_worker, path: str, status: int, message: str) -> None:
    worker, _, _ = one_worker
    got, body = get(worker.web_port, path)
    assert got == status, body
    assert message in body["error"], body


def test_analysis_endpoints_agree_with_scipy(one_worker) -> None:
    worker, _, _ = one_worker

    def series(key: str, value: str) -> list[float]:
        _, body = get(worker.web_port, f"/api/v1/series/{key}?value={value}&{RANGE}")
        return [w["stats"]["mean"] for w in body["windows"]]

    a, b = series("key-000", "a"), series("key-001", "a")
    _, welch = get(worker.web_port, f"/api/v1/analysis/compare?a=key-000:a&b=key-001:a&{RANGE}")
    reference = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert math.isclose(welch["statistic"], reference.statistic, rel_tol=1e-12)
    assert math.isclose(welch["p_value"], reference.pvalue, rel_tol=1e-9)
    _, desc = get(worker.web_port, f"/api/v1/analysis/describe/key-000?value=a&{RANGE}")
    assert desc["n"] == len(a) and math.isclose(desc["describe"]["mean"], sum(a) / len(a))
    _, chi = get(worker.web_port, "/api/v1/analysis/chi-square?attr=tier&keys=key-000,key-001")
    assert chi["detail"]["row_labels"] == ["key-000", "key-001"]
    assert chi["detail"]["col_labels"] == ["gold", "silver"]
    _, stats = get(worker.web_port, "/api/v1/stats/key-000")
    assert chi["detail"]["table"][0] == [
        stats["attrs"]["tier"]["gold"],
        stats["attrs"]["tier"]["silver"],
    ]


def test_either_of_two_workers_answers_the_same(kafka_broker, tmp_path: Path) -> None:
    settings = unique_settings(
        kafka_broker.bootstrap_servers, tmp_path, window_idle_timeout_s=3600.0
    )
    other = settings.model_copy(update={"web_port": free_port(), "data_dir": tmp_path / "data-b"})
    a = WorkerProcess(settings, tmp_path / "a.log").start()
    b = WorkerProcess(other, tmp_path / "b.log").start()
    try:
        # Both own partitions before any event arrives.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            owned = [
                {
                    p
                    for p in (w.health() or {}).get("assigned_partitions", [])
                    if ".events-keyed:" in p
                }
                for w in (a, b)
            ]
            if all(owned) and len(owned[0] | owned[1]) == 4 and not owned[0] & owned[1]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"partitions not split between the workers: {owned}")
        events = make_events(3_000, 12, seed=2, disorder_ms=1_000)
        payloads = [(None, orjson.dumps(e)) for e in events]
        asyncio.run(
            produce(settings, settings.topic("events"), payloads, partition_of=lambda i: i % 4)
        )
        wait_processed(a.web_port, len(events))
        _, keys_a = get(a.web_port, "/api/v1/keys")
        _, keys_b = get(b.web_port, "/api/v1/keys")
        assert keys_a == keys_b and len(keys_a["keys"]) == 12
        for key in keys_a["keys"]:
            for path in (
                f"/api/v1/stats/{key}",
                f"/api/v1/series/{key}?value=a&window=hopping-5m-1m&{RANGE}",
                f"/api/v1/series/{key}/aggregate?value=b&agg=p95&every=2m&{RANGE}",
                f"/api/v1/analysis/describe/{key}?value=a&{RANGE}",
            ):
                status_a, body_a = get(a.web_port, path)
                status_b, body_b = get(b.web_port, path)
                assert status_a == status_b == 200, (path, body_a, body_b)
                assert body_a == body_b, path
        status_a, body_a = get(a.web_port, "/api/v1/series/missing?value=a")
        status_b, body_b = get(b.web_port, "/api/v1/series/missing?value=a")
        assert (status_a, body_a) == (status_b, body_b)
    finally:
        b.stop()
        a.stop()


def test_every_curl_example_in_the_docs_answers(one_worker) -> None:
    worker, _, _ = one_worker
    docs = (Path(__file__).parents[2] / "docs" / "analytics.md").read_text()
    urls = re.findall(r'curl -s "http://127\.0\.0\.1:6066(/api/v1/[^"]+)"', docs)
    assert len(urls) >= 10
    for path in urls:
        status, body = get(worker.web_port, path)
        assert status == 200, (path, body)
