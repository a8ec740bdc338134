"""The overview's pure parts: the alert buffer, the throughput history, lag, merging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamlearn.monitor import AlertBuffer, History, Sample, dir_bytes, partition_lag
from streamlearn.web.overview_api import alerts_query, merge_overviews
from streamlearn.web.params import BadRequest


def _alert(i: int, **fields: Any) -> dict[str, Any]:
    base = {
        "type": "anomaly",
        "severity": "warning",
        "key": f"k{i % 3}",
        "subject": "x",
        "message": f"alert {i}",
        "ts": 1_000 * i,
        "dedup_key": f"d{i}",
    }
    base.update(fields)
    return base


def test_buffer_keeps_the_newest_once_each() -> None:
    buf = AlertBuffer(capacity=5)
    for i in range(8):
        assert buf.add(_alert(i))
    assert not buf.add(_alert(7, message="sent again after a crash"))
    found, matched = buf.query()
    assert [a["dedup_key"] for a in found] == ["d7", "d6", "d5", "d4", "d3"]
    assert matched == 5 and len(buf) == 5
    assert found[0]["message"] == "alert 7"  # the first delivery stays


def test_buffer_filters_combine() -> None:
    buf = AlertBuffer()
    buf.add(_alert(1, severity="info"))
    buf.add(_alert(2, severity="critical", type="drift"))
    buf.add(_alert(3, severity="critical", message="Pump OVERHEAT"))
    buf.add(_alert(4, severity="warning"))
    buf.add({"type": "anomaly", "severity": "odd", "key": "k0"})  # no dedup key, odd severity

    def keys(**kw: Any) -> list[str]:
        return [a["dedup_key"] for a in buf.query(**kw)[0] if "dedup_key" in a]

    assert keys(types=["drift"]) == ["d2"]
    assert keys(min_severity="warning") == ["d4", "d3", "d2"]
    assert keys(severities=["info", "critical"]) == ["d3", "d2", "d1"]
    assert keys(key="k1", min_severity="info") == ["d4", "d1"]
    assert keys(since_ms=2_000, until_ms=4_000) == ["d3", "d2"]
    assert keys(text="overheat") == ["d3"]
    found, matched = buf.query(limit=2)
    assert len(found) == 2 and matched == 5


def test_history_rates_survive_counter_resets_and_trim_to_the_span() -> None:
    h = History(span_s=10)
    for t, n in [(0, 0), (5, 50), (10, 150), (15, 10), (20, 60)]:  # worker restarted at 15
        h.add(Sample(t * 1000, events_in=n, events_out=2 * n, dead_letters=0, lag=t))
    series = h.series()
    assert series["ts_ms"] == [15_000, 20_000]  # older pairs fell out of the 10 s span
    assert series["events_in_per_s"] == [0.0, 10.0]
    assert series["events_out_per_s"] == [0.0, 20.0]
    assert series["lag"] == [15, 20]


def test_partition_lag() -> None:
    assert partition_lag(10, 10, 9) == 0
    assert partition_lag(10, 4, 9) == 6
    assert partition_lag(10, None, None) is None
    assert partition_lag(5, 9, None) == 0  # committed ahead of a stale high-water mark


def test_dir_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x" * 100)
    (tmp_path / "g").write_bytes(b"y" * 20)
    assert dir_bytes(tmp_path) == 120
    assert dir_bytes(tmp_path / "missing") == 0


def _doc(url: str, events_in: int, history: dict[str, list[Any]], lag: int) -> dict[str, Any]:
    return {
        "now_ms": 1,
        "uptime_s": 5.0,
        "workers": [{"url": url, "uptime_s": 5.0, "partitions": []}],
        "totals": {"events_in": events_in, "dead_letters": 1},
        "dead_letters_by_reason": {"bad_json": 1},
        "events_out_by_topic": {"t.predictions": events_in},
        "lag": {"total": lag, "partitions": [{"topic": "t", "partition": lag, "lag": lag}]},
        "state_bytes": {"windows": 10},
        "history": history,
        "sample_s": 5.0,
    }


def test_merge_sums_workers_and_aligns_history_slots() -> None:
    a = _doc("a", 10, {"ts_ms": [5_000, 10_000], "events_in_per_s": [1.0, 2.0], "lag": [0, 1]}, 1)
    b = _doc("b", 20, {"ts_ms": [6_000, 11_000], "events_in_per_s": [3.0, 4.0], "lag": [2, 0]}, 0)
    merged = merge_overviews([a, b])
    assert [w["url"] for w in merged["workers"]] == ["a", "b"]
    assert merged["totals"] == {"dead_letters": 2, "events_in": 30}
    assert merged["dead_letters_by_reason"] == {"bad_json": 2}
    assert merged["lag"]["total"] == 1
    assert [p["partition"] for p in merged["lag"]["partitions"]] == [0, 1]
    assert merged["history"] == {
        "ts_ms": [5_000, 10_000],
        "events_in_per_s": [4.0, 6.0],
        "lag": [2, 1],
    }
    assert merged["state_bytes"] == {"windows": 20}


class _Feed:
    def __init__(self) -> None:
        import asyncio

        self.buffer = AlertBuffer()
        self.ready = asyncio.Event()
        for i in range(5):
            self.buffer.add(_alert(i, severity="critical" if i % 2 else "info"))


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ({"type": "anomaly,bogus"}, "bogus"),
        ({"severity": "major"}, "major"),
        ({"min_severity": "high"}, "high"),
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "5000", "until": "1000"}, "before"),
        ({"kee": "k1"}, "kee"),
    ],
)
def test_alerts_query_refuses_bad_parameters(query: dict[str, str], needle: str) -> None:
    with pytest.raises(BadRequest, match=needle) as info:
        alerts_query(_Feed(), query)  # type: ignore[arg-type]
    assert info.value.status == 400


def test_alerts_query_answers() -> None:
    body = alerts_query(_Feed(), {"min_severity": "critical", "limit": "1"})  # type: ignore[arg-type]
    assert [a["dedup_key"] for a in body["alerts"]] == ["d3"]
    assert body["count"] == 2 and body["truncated"] is True and body["ready"] is False
    assert body["kept"] == 5


def test_buffer_answers_in_event_time_order_whatever_the_read_order() -> None:
    buf = AlertBuffer()
    for i in (3, 1, 4, 2):  # read from several partitions, out of event-time order
        buf.add(_alert(i))
    buf.add({**_alert(9), "ts": "not a time"})
    found, matched = buf.query(limit=3)
    assert [a["ts"] for a in found] == [4_000, 3_000, 2_000] and matched == 5
    assert buf.query(limit=10)[0][-1]["dedup_key"] == "d9"  # no usable time: last
