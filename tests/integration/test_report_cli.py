"""``streamlearn report`` against a real worker and broker.

One worker (windows, anomaly detection, drift, the online model with inline labels)
processes three keys over ten minutes of event time: a spike on ``pump-1``, a level
shift on ``fan-3`` (data drift), a label the model refuses, two malformed records.
Then ``python -m streamlearn report`` runs as a subprocess, with the worker's settings,
for the whole range, part of it, one key (and an unknown one) and an empty range; the
HTML is parsed and its numbers compared with what the test produced and what the
worker published.

A second test reads a topic whose records carry chosen Kafka timestamps, to check
where reading starts (``offsets_for_times`` with ``--slack``) and stops
(``--max-delay``).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamlearn.agents.windows import partition_for_key
from streamlearn.config import Settings
from streamlearn.report import command
from streamlearn.topics import ensure_topics
from tests.integration.workers import (
    LEAN,
    WorkerProcess,
    consume_until,
    produce,
    settings_env,
    unique_settings,
)

pytestmark = pytest.mark.integration

BASE_TS = 1_700_000_040_000  # a whole minute: 2023-11-14 22:14:00 UTC
KEYS = ("pump-1", "pump-2", "fan-3")
PER_KEY = 600  # one event a second: ten one-minute windows per key and value
SPIKE = ("pump-1", 400)
SHIFT_FROM = 300  # fan-3's value b moves up by 6 standard deviations
BAD_LABEL = ("pump-2", 200)
LEVEL = {"pump-1": 20.0, "pump-2": 40.0, "fan-3": 60.0}

SETTINGS: dict[str, Any] = {
    **LEAN,
    "anomaly_enabled": True,
    "anomaly_warmup_events": 100,
    "windows": ["tumbling:1m"],
    "window_idle_timeout_s": 2.0,
    "drift_reference_events": 100,
    "drift_window_events": 100,
    "drift_compare_every": 50,
    "drift_cooldown_events": 10_000,
}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def events() -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for i in range(PER_KEY):
        for key in KEYS:
            a = LEVEL[key] + rng.gauss(0.0, 1.0)
            if (key, i) == SPIKE:
                a += 40.0
            b = 5.0 + rng.gauss(0.0, 0.5) + (3.0 if key == "fan-3" and i >= SHIFT_FROM else 0.0)
            label: Any = a > LEVEL[key]
            if (key, i) == BAD_LABEL:
                label = "maybe"  # not a class: dead-lettered as invalid_label
            out.append(
                {
                    "id": f"{key}-{i}",
                    "key": key,
                    "ts": BASE_TS + i * 1000,
                    "values": {"a": a, "b": b},
                    "label": label,
                }
            )
    return out


#: Refused by the ingest agent: one with an event time in range, one without any.
MALFORMED = [
    (b"pump-1", orjson.dumps({"key": "pump-1", "ts": BASE_TS + 250_000, "values": {}})),
    (b"pump-1", b"{not json"),
]


# --- reading the page ---------------------------------------------------------------------


class Page(HTMLParser):
    """The tables (by id), the summary counts and the scripts of a report."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.tables: dict[str, list[list[str]]] = {}
        self.counts: dict[str, int] = {}
        self.script_srcs: list[str] = []
        self.scripts: list[str] = []
        self.ids: set[str] = set()
        self.classes: Counter[str] = Counter()
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._script: list[str] | None = None
        self._count_name: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        for cls in (found.get("class") or "").split():
            self.classes[cls] += 1
        if tag == "table":
            self._table = found.get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._count_name = found.get("data-count")
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            if tag == "td" and found.get("data-value") is not None:
                self._row.append(found["data-value"] or "")
                self._cell = None
        elif tag == "script":
            if found.get("src"):
                self.script_srcs.append(str(found["src"]))
            self._script = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            if self._table == "counts" and self._count_name:
                self.counts[self._count_name] = int(self._row[1])
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._script is not None:
            self._script.append(data)

    def rows(self, table: str) -> list[dict[str, str]]:
        """A table's rows as dicts by header."""
        header, *body = self.tables.get(table, [[]])
        return [dict(zip(header, row, strict=True)) for row in body]

    def count(self, name: str) -> int:
        """A summary count by its name (``data-count``)."""
        return self.counts[name]

    def figures(self) -> list[str]:
        """The chart scripts (plotly.js itself left out)."""
        return [s for s in self.scripts if "Plotly.newPlot" in s and len(s) < 1_000_000]

    def outside_plotlyjs(self) -> str:
        """The page without the inlined plotly.js (which holds arbitrary strings)."""
        bundles = [s for s in self.scripts if len(s) >= 1_000_000]
        text = self.text
        for bundle in bundles:
            text = text.replace(bundle, "")
        return text


def num(text: str) -> int:
    return int(text.replace(",", ""))


# --- the run ------------------------------------------------------------------------------


@dataclass
class Run:
    settings: Settings
    events: list[dict[str, Any]]
    windows: dict[str, dict[str, Any]]  # id -> window record
    anomalies: dict[str, dict[str, Any]]  # dedup_key -> alert
    drift: dict[str, dict[str, Any]]
    predictions: dict[tuple[str, str], dict[str, Any]]
    dead: list[Any]
    pages: dict[str, Page]
    stderr: dict[str, str]
    codes: dict[str, int]


REPORTS: dict[str, list[str]] = {
    # ISO-8601 and epoch ms
    "full": ["--from", iso(BASE_TS), "--to", str(BASE_TS + PER_KEY * 1000)],
    "part": ["--from", str(BASE_TS + 120_000), "--to", iso(BASE_TS + 360_000)],
    "key": [
        "--from",
        iso(BASE_TS),
        "--to",
        iso(BASE_TS + PER_KEY * 1000),
        "--key",
        "pump-1",
        "--key",
        "nosuch",
    ],
    "empty": ["--from", "2001-01-01T00:00:00Z", "--to", "2001-01-01T01:00:00Z"],
}


def by_id(records: list[Any], ident: str) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for record in records:
        doc = orjson.loads(record.value)
        out.setdefault(doc[ident], doc)
    return out


@pytest.fixture(scope="module")
def run(kafka_broker, tmp_path_factory) -> Run:
    tmp_path = tmp_path_factory.mktemp("report")
    settings = unique_settings(kafka_broker.bootstrap_servers, tmp_path, **SETTINGS)
    docs = events()
    partitions = settings.topic_partitions
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        records = [(d["key"].encode(), orjson.dumps(d)) for d in docs] + MALFORMED
        asyncio.run(
            produce(
                settings,
                settings.topic("events"),
                records,
                # Each key in one source partition, in event-time order.
                partition_of=lambda i: partition_for_key(records[i][0].decode(), partitions),
            )
        )
        n_windows = len(KEYS) * 2 * (PER_KEY // 60)

        def windows_done(records: list[Any]) -> bool:
            return len({orjson.loads(r.value).get("id") for r in records}) >= n_windows

        aggregates = asyncio.run(
            consume_until(settings, settings.topic("aggregates"), windows_done, 90)
        )
        predictions = asyncio.run(
            consume_until(
                settings,
                settings.topic("predictions"),
                lambda rs: len({orjson.loads(r.value)["event_id"] for r in rs}) >= len(docs),
                60,
            )
        )
        spike_id = f"{SPIKE[0]}-{SPIKE[1]}"

        def spiked(records: list[Any]) -> bool:
            return any(orjson.loads(r.value).get("event_id") == spike_id for r in records)

        anomalies = asyncio.run(consume_until(settings, settings.topic("anomalies"), spiked, 30))
        drift = asyncio.run(
            consume_until(
                settings,
                settings.topic("drift"),
                lambda rs: any(orjson.loads(r.value).get("key") == "fan-3" for r in rs),
                30,
            )
        )
        dead = asyncio.run(
            consume_until(settings, settings.topic("deadletter"), lambda rs: len(rs) >= 3, 30)
        )
        # Every output is in: now the reports, side by side.
        env = settings_env(settings)
        procs = {}
        for name, args in REPORTS.items():
            out = tmp_path / f"{name}.html"
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "streamlearn", "report", *args, "-o", str(out)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        stderr, codes, pages = {}, {}, {}
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=120)
            stderr[name], codes[name] = err.decode(errors="replace"), proc.returncode
            path = tmp_path / f"{name}.html"
            pages[name] = Page(path.read_text()) if path.exists() else Page("")
    finally:
        worker.stop()
    return Run(
        settings=settings,
        events=docs,
        windows=by_id([r for r in aggregates if b'"window"' in r.value], "id"),
        anomalies=by_id(anomalies, "dedup_key"),
        drift=by_id(drift, "dedup_key"),
        predictions={
            (d["key"], d["event_id"]): d
            for d in (orjson.loads(r.value) for r in reversed(predictions))
        },
        dead=dead,
        pages=pages,
        stderr=stderr,
        codes=codes,
    )


def in_range(ts: int, lo: int, hi: int) -> bool:
    return lo <= ts < hi


# --- the tests ----------------------------------------------------------------------------


def test_every_report_exits_zero_without_traceback(run: Run) -> None:
    for name in REPORTS:
        assert run.codes[name] == 0, (name, run.stderr[name])
        assert "Traceback" not in run.stderr[name], run.stderr[name]
        assert "report:" in run.stderr[name]


def test_full_range_counts_equal_what_was_produced_and_published(run: Run) -> None:
    page = run.pages["full"]
    hi = BASE_TS + PER_KEY * 1000
    assert page.count("events") == len(run.events) == len(KEYS) * PER_KEY
    assert page.count("keys") == len(KEYS)
    # Every window the worker closed, and all of them were closed.
    assert page.count("windows") == len(run.windows) == len(KEYS) * 2 * (PER_KEY // 60)
    anomalies = [a for a in run.anomalies.values() if in_range(a["ts"], BASE_TS, hi)]
    assert page.count("anomalies") == len(anomalies) >= 1
    data_drift = [d for d in run.drift.values() if d.get("kind") == "data"]
    assert page.count("data_drift") == len(data_drift) >= 1
    assert page.count("predictions") == len(run.predictions) == len(run.events)
    # Every event was labelled inline, but the model refused one label.
    assert page.count("labelled") == len(run.events) - 1
    assert page.count("promotions") == 0
    # The malformed record with an event time in range; the one without a ts was refused
    # now (wall clock), far outside 2023; the refused label is the event's.
    reasons = {
        row["reason (error.code)"]: num(row["records"]) for row in page.rows("dead-letter-reasons")
    }
    assert reasons == {"invalid_values": 1, "invalid_label": 1}
    assert page.count("dead_letters") == 2
    keys = {row["key"]: row for row in page.rows("keys")}
    assert sorted(keys) == sorted(KEYS)
    for key in KEYS:
        assert num(keys[key]["events"]) == PER_KEY
        assert num(keys[key]["windows"]) == 2 * (PER_KEY // 60)


def test_the_spike_is_an_anomaly_in_the_table_and_on_its_chart(run: Run) -> None:
    page = run.pages["full"]
    spike_id = f"{SPIKE[0]}-{SPIKE[1]}"
    rows = [r for r in page.rows("anomalies") if r["event"] == spike_id]
    assert len(rows) == 1, page.rows("anomalies")
    assert rows[0]["key"] == SPIKE[0]
    assert rows[0]["time (UTC)"] == datetime.fromtimestamp(
        (BASE_TS + SPIKE[1] * 1000) / 1000, UTC
    ).strftime("%Y-%m-%d %H:%M:%S")
    assert "a = " in rows[0]["values"]
    # A chart per key; pump-1's has the anomaly marker at the spike's time and value.
    charts = page.figures()
    spike_x = datetime.fromtimestamp((BASE_TS + SPIKE[1] * 1000) / 1000, UTC).strftime(
        "%Y-%m-%d %H:%M:%S.000"
    )
    pump = [c for c in charts if '"pump-1: tumbling-1m windows (UTC)"' in c]
    assert len(pump) == 1
    assert '"name":"anomaly"' in pump[0] and spike_x in pump[0]
    # fan-3's chart marks its data drift.
    fan = [c for c in charts if '"fan-3: tumbling-1m windows (UTC)"' in c]
    assert len(fan) == 1 and '"name":"data drift"' in fan[0]


def test_accuracy_is_the_predictions_scored_against_their_labels(run: Run) -> None:
    page = run.pages["full"]
    right = total = 0
    for doc in run.events:
        if doc["label"] == "maybe":
            continue
        prediction = run.predictions[(doc["key"], doc["id"])]["prediction"]
        right += prediction == doc["label"]
        total += 1
    (model,) = page.rows("models")
    assert num(model["labelled"]) == total
    assert model["metric"] == "accuracy"
    assert model["overall"] == f"{right / total:.4g}"


def test_the_time_range_excludes_records_outside_it(run: Run) -> None:
    page = run.pages["part"]
    lo, hi = BASE_TS + 120_000, BASE_TS + 360_000
    assert page.count("events") == sum(in_range(d["ts"], lo, hi) for d in run.events) == 720
    windows = [w for w in run.windows.values() if in_range(w["start"], lo, hi)]
    assert page.count("windows") == len(windows) == len(KEYS) * 2 * 4
    anomalies = [a for a in run.anomalies.values() if in_range(a["ts"], lo, hi)]
    assert page.count("anomalies") == len(anomalies)
    assert f"{SPIKE[0]}-{SPIKE[1]}" not in {r["event"] for r in page.rows("anomalies")}
    assert page.count("predictions") == 720
    drift = [d for d in run.drift.values() if in_range(d["ts"], lo, hi)]
    assert page.count("data_drift") + page.count("concept_drift") == len(drift)
    # The malformed record at BASE + 250 s is in range, the refused label (200 s) too.
    reasons = {row["reason (error.code)"] for row in page.rows("dead-letter-reasons")}
    assert reasons == {"invalid_values", "invalid_label"}
    first, last = page.rows("keys")[0]["first (UTC)"], page.rows("keys")[0]["last (UTC)"]
    assert first >= datetime.fromtimestamp(lo / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert last < datetime.fromtimestamp(hi / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_the_key_filter_keeps_one_key_and_names_the_unknown_one(run: Run) -> None:
    page = run.pages["key"]
    assert [row["key"] for row in page.rows("keys")] == ["pump-1"]
    assert page.count("events") == PER_KEY
    assert page.count("windows") == 2 * (PER_KEY // 60)
    assert page.count("predictions") == PER_KEY
    ours = [a for a in run.anomalies.values() if a["key"] == "pump-1"]
    assert page.count("anomalies") == len(ours) >= 1
    assert f"{SPIKE[0]}-{SPIKE[1]}" in {r["event"] for r in page.rows("anomalies")}
    assert page.count("data_drift") == 0  # fan-3's
    assert {r["reason (error.code)"] for r in page.rows("dead-letter-reasons")} == {
        "invalid_values"
    }
    assert page.classes["missing-key"] == 1
    assert "No records for key &#x27;nosuch&#x27; in range." in page.text
    body = page.outside_plotlyjs()
    for other in ("pump-2", "fan-3"):
        assert other not in body
    assert "no records for 'nosuch'" in run.stderr["key"]


def test_an_empty_range_is_a_valid_report_that_says_so(run: Run) -> None:
    page = run.pages["empty"]
    assert "nothing-found" in page.ids
    assert all(value == 0 for value in page.counts.values()) and page.counts
    assert "nothing found" in run.stderr["empty"]
    assert not page.figures()


def test_plotlyjs_is_inlined_once_and_nothing_is_loaded_from_the_network(run: Run) -> None:
    page = run.pages["full"]
    assert page.script_srcs == []
    assert not any(
        tag in page.text.lower()
        for tag in ('<script src="http', '<link rel="stylesheet" href="http')
    )
    bundles = [s for s in page.scripts if len(s) >= 1_000_000]
    assert len(bundles) == 1 and "plotly.js v" in bundles[0]
    assert page.text.count("window.PlotlyConfig") == 1
    # One chart per key, the model's accuracy, the alerts timeline.
    assert len(page.figures()) == len(KEYS) + 2
    assert page.text.index("plotly.js v") < page.text.index("Plotly.newPlot")


# --- where reading starts and stops -------------------------------------------------------

K0 = 1_600_000_000_000  # Kafka timestamps, chosen by the producer
HOUR = 3_600_000


def window_record(key: str, start: int) -> bytes:
    stats = {"count": 1, "sum": 1.0, "mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0}
    return orjson.dumps(
        {
            "kind": "window",
            "id": f"{key}:v:tumbling-1m:{start}",
            "key": key,
            "value": "v",
            "window": "tumbling-1m",
            "start": start,
            "end": start + 60_000,
            "stats": stats,
            "closed": True,
        }
    )


async def produce_at(settings: Settings, topic: str, records: list[tuple[int, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for timestamp, value in records:
            await producer.send_and_wait(topic, value, partition=0, timestamp_ms=timestamp)
    finally:
        await producer.stop()


def test_reading_starts_at_from_minus_slack_and_stops_at_max_delay(kafka_broker, tmp_path) -> None:
    settings = unique_settings(kafka_broker.bootstrap_servers, tmp_path, windows=["tumbling:1m"])
    asyncio.run(ensure_topics(settings))
    start = K0 + 5 * HOUR  # every record's window starts in the range
    asyncio.run(
        produce_at(
            settings,
            settings.topic("aggregates"),
            [
                (K0, window_record("early", start)),  # published before from - slack
                (K0 + 5 * HOUR + 1_000, window_record("prompt", start)),
                (K0 + 30 * HOUR, window_record("replayed", start)),  # long after --to
            ],
        )
    )
    args = {"from_text": str(start), "to_text": str(start + HOUR), "slack": "1h"}

    def report(name: str, **extra: Any) -> Page:
        path, _ = command.run(
            settings, output=tmp_path / f"{name}.html", include_plotlyjs=False, **{**args, **extra}
        )
        return Page(path.read_text())

    default = report("default")
    assert [r["key"] for r in default.rows("keys")] == ["prompt", "replayed"]
    assert {r["topic"]: num(r["records read"]) for r in default.rows("topics")}["aggregates"] == 2

    stopped = report("stopped", max_delay="1h")
    assert [r["key"] for r in stopped.rows("keys")] == ["prompt"]
    topics = {r["topic"]: r for r in stopped.rows("topics")}
    assert num(topics["aggregates"]["records read"]) == 1
    assert "stopped early" in topics["aggregates"]["note"]

    # With a slack reaching back past the first record's Kafka time, it is read too.
    wide = report("wide", slack="6h")
    assert [r["key"] for r in wide.rows("keys")] == ["early", "prompt", "replayed"]
