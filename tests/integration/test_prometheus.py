"""A real Prometheus server scrapes a real worker; PromQL answers the expected counts.

Prometheus comes from Debian's ``prometheus`` package (``make test`` installs it, see
``scripts/system-deps.sh``); it runs on loopback with its data in pytest's temp dir,
with the rules of ``deploy/prometheus/alerts.yml`` loaded.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamlearn.kafka.broker import free_port
from tests.integration.workers import LEAN, WorkerProcess, produce, unique_settings, wait_for

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
BASE_TS = 1_700_000_000_000


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A started Prometheus: (config path to fill in, port); reload with SIGHUP."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (make test installs it)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s}\n")
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _get(port, "/-/ready") is not None, 30, "prometheus ready")
        yield config, port
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _get(port: int, path: str) -> Any:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            body = r.read()
    except OSError:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def query(port: int, promql: str) -> dict[str, float]:
    """An instant PromQL query: ``{label set: value}``."""
    answer = _get(port, "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert answer is not None and answer["status"] == "success", answer
    return {
        ",".join(f"{k}={v}" for k, v in sorted(r["metric"].items()) if k != "__name__"): float(
            r["value"][1]
        )
        for r in answer["data"]["result"]
    }


def test_prometheus_scrapes_a_worker_and_promql_counts_match(
    kafka_broker: Any, tmp_path: Path, prometheus: tuple[Path, int]
) -> None:
    config, port = prometheus
    settings = unique_settings(kafka_broker.bootstrap_servers, tmp_path, **LEAN)
    events = []
    for i in range(600):
        doc = {"id": f"e{i}", "key": f"k{i % 3}", "ts": BASE_TS + i * 1000, "values": {"v": i}}
        events.append((None, orjson.dumps(doc)))
    bad = [(None, b"{not json"), (None, orjson.dumps({"key": "k0", "values": {}}))] * 4
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        rules = tmp_path / "alerts.yml"
        shutil.copy(RULES, rules)
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{rules}]\n"
            "scrape_configs:\n"
            "  - job_name: streamlearn\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{settings.web_port}']}}]\n"
        )
        reload = urllib.request.Request(f"http://127.0.0.1:{port}/-/reload", method="POST")
        with urllib.request.urlopen(reload, timeout=10):
            pass
        asyncio.run(produce(settings, settings.topic("events"), events + bad))
        events_in = f'sum(streamlearn_events_in_total{{topic="{settings.topic("events")}"}})'
        wait_for(lambda: query(port, events_in).get("") == 608, 90, "608 events in Prometheus")
        lag_query = f'streamlearn_consumer_lag_records{{topic="{settings.topic("events")}"}}'
        wait_for(
            lambda: (
                len(q := query(port, lag_query)) == settings.topic_partitions
                and sum(q.values()) == 0
            ),
            60,
            "consumer lag 0 on every events partition",
        )
        dead = query(port, "sum by (reason) (streamlearn_dead_letters_total)")
        e2e = query(port, "sum(streamlearn_end_to_end_latency_seconds_count)")
        parsed = query(port, 'sum(streamlearn_processing_seconds_count{agent="ingest"})')
        sizes = query(port, "sum by (table) (streamlearn_state_bytes)")
        watermark_lag = query(port, "min(streamlearn_watermark_lag_seconds)")
        memory = query(port, "process_resident_memory_bytes")
        predicted = query(port, "sum(streamlearn_events_out_total{topic=~'.*predictions'})")
        up = query(port, 'up{job="streamlearn"}')
        rules_loaded = _get(port, "/api/v1/rules")
    finally:
        worker.stop()
    assert sum(dead.values()) == 8, dead
    assert all(k.startswith("reason=") for k in dead), dead
    assert predicted == {"": 600.0}
    assert e2e == {"": 600.0}  # each valid event's outputs timed once
    assert parsed == {"": 608.0}  # every record the ingest agent read, bad ones too
    assert {"table=windows", "table=series", "table=stats"} <= set(sizes)
    assert all(size > 0 for size in sizes.values()), sizes
    # Events from 2023: the watermark is years behind the wall clock.
    assert watermark_lag[""] > 86_400 * 365
    assert next(iter(memory.values())) > 0
    assert list(up.values()) == [1.0]
    names = {r["name"] for g in rules_loaded["data"]["groups"] for r in g["rules"]}
    assert {"StreamlearnWorkerDown", "StreamlearnDrift", "StreamlearnModelDegraded"} <= names
