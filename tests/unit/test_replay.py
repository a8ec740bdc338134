"""Reading CSV and JSON lines into records; pacing arguments."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from streamlearn.replay import ColumnMap, Pacer, ReplayError, count_lines, iter_records


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.csv",
        "sensor,time,temp,rh,fault\ns1,1000,21.5,40,0\ns2,2000,abc,,1\n",
    )
    columns = ColumnMap("sensor", "time", ["temp", "rh"], "fault")
    records = list(iter_records(path, columns))
    assert [r.key for r in records] == [b"s1", b"s2"]
    assert [r.ts_ms for r in records] == [1000, 2000]
    first = orjson.loads(records[0].value)
    assert first == {"key": "s1", "values": {"temp": 21.5, "rh": 40.0}, "ts": 1000, "label": 0.0}
    second = orjson.loads(records[1].value)
    # Non-numbers travel as they are (the worker dead-letters them); empty cells are absent.
    assert second["values"] == {"temp": "abc"}
    assert count_lines(path) == 3


def test_csv_default_value_columns_and_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "k,a,b\nx,1,2\n")
    (record,) = iter_records(path, ColumnMap(key_column="k"))
    assert orjson.loads(record.value)["values"] == {"a": 1.0, "b": 2.0}
    with pytest.raises(ReplayError, match="needs --key-column"):
        list(iter_records(path, ColumnMap()))
    with pytest.raises(ReplayError, match=r"r.csv:2: key column 'nope' not found"):
        list(iter_records(path, ColumnMap(key_column="nope")))
    with pytest.raises(ReplayError, match="value column 'c' not found"):
        list(iter_records(path, ColumnMap(key_column="k", value_columns=["c"])))
    with pytest.raises(ReplayError, match="no such file"):
        list(iter_records(tmp_path / "missing.csv", ColumnMap(key_column="k")))


def test_jsonl_passthrough_keeps_bytes(tmp_path: Path) -> None:
    lines = [
        b'{"key":"a","ts":"2024-01-01T00:00:00Z","values":{"x":1}}',
        b"not json",
        b"[1]",
        b'{"key":5,"values":{}}',
    ]
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    records = list(iter_records(path, ColumnMap()))
    assert [r.value for r in records] == lines
    assert [r.key for r in records] == [b"a", None, None, None]
    assert records[0].ts_ms == 1_704_067_200_000


def test_jsonl_with_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "e.jsonl", '{"id":"u1","t":5,"v":2.5}\n')
    (record,) = iter_records(path, ColumnMap("id", "t", ["v"]))
    assert orjson.loads(record.value) == {"key": "u1", "values": {"v": 2.5}, "ts": 5}
    bad = write(tmp_path, "bad.jsonl", "oops\n")
    with pytest.raises(ReplayError, match=r"bad\.jsonl:1: not JSON"):
        list(iter_records(bad, ColumnMap("id")))


@pytest.mark.parametrize(
    ("rate", "speedup", "message"),
    [(1.0, 2.0, "not both"), (0.0, None, "--rate"), (None, -1.0, "--speedup")],
)
def test_pacer_rejects_bad_arguments(rate, speedup, message) -> None:
    with pytest.raises(ReplayError, match=message):
        Pacer(rate, speedup)


def test_pacer_paces_by_rate_and_event_time() -> None:
    async def run(pacer: Pacer, stamps: list[int | None]) -> float:
        start = time.monotonic()
        for ts in stamps:
            await pacer.wait(ts)
        return time.monotonic() - start

    # 5 events at 50/s: the last is due 80 ms after the first.
    assert asyncio.run(run(Pacer(rate=50), [None] * 5)) >= 0.075
    # event time 0..400 ms at 4x: the last is due 100 ms in.
    assert asyncio.run(run(Pacer(speedup=4), [0, 200, 400])) >= 0.095
