"""The batch path (`streamlearn detect`, detect_rows/detect_csv) and the worker's state codec."""

from __future__ import annotations

import csv
import math
import os
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamlearn.cli import main
from streamlearn.config import load_settings
from streamlearn.errors import StreamlearnError
from streamlearn.models.anomaly.batch import OUTPUT_COLUMNS, detect_csv, detect_rows
from streamlearn.models.anomaly.scorer import AlertPolicy, KeyState
from streamlearn.models.envelope import seal


def write_csv(path: Path, rows: int = 3000, seed: int = 2) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        key = f"m{i % 3}"
        temp = rng.gauss(20.0, 1.0) + (25.0 if i in (2000, 2600) else 0.0)
        row = {"machine": key, "ts": str(1_700_000_000_000 + i * 1000), "temp": f"{temp:.5f}"}
        row["rpm"] = "" if i % 50 == 7 else f"{rng.gauss(1500.0, 20.0):.3f}"
        if i == 1234:
            row["temp"] = "hot"
        out.append(row)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["machine", "ts", "temp", "rpm"])
        writer.writeheader()
        writer.writerows(out)
    return out


POLICY = AlertPolicy(threshold=0.9999, warmup=300)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_detect_csv_writes_one_row_per_input_row(tmp_path: Path) -> None:
    rows = write_csv(tmp_path / "in.csv")
    summary = detect_csv(
        tmp_path / "in.csv",
        tmp_path / "out.csv",
        key_column="machine",
        time_column="ts",
        value_columns=["temp", "rpm"],
        policy=POLICY,
    )
    out = read(tmp_path / "out.csv")
    assert len(out) == len(rows) == summary.rows == 3000
    assert list(out[0]) == ["machine", "ts", "temp", "rpm", *OUTPUT_COLUMNS]
    assert [r["temp"] for r in out] == [r["temp"] for r in rows]  # input columns kept
    bad = out[1234]
    assert bad["anomaly_score"] == "" and "values.temp must be a number" in bad["error"]
    scored = [r for r in out if not r["error"]]
    assert summary.scored == len(scored) == 2999 and summary.errors == 1 and summary.keys == 3
    scores = [float(r["anomaly_score"]) for r in scored]
    assert all(0.0 <= s <= 1.0 and math.isfinite(s) for s in scores)
    flagged = [i for i, r in enumerate(out) if r["is_anomaly"] == "true"]
    assert {2000, 2600} <= set(flagged)  # the two injected spikes
    assert out[2000]["episode_id"].startswith("m2:")
    assert summary.anomalies == len(flagged) and summary.alerts >= 2


def test_detect_rows_equals_detect_csv(tmp_path: Path) -> None:
    rows = write_csv(tmp_path / "in.csv", rows=800)
    detect_csv(
        tmp_path / "in.csv",
        tmp_path / "out.csv",
        key_column="machine",
        time_column="ts",
        policy=POLICY,
    )
    out = read(tmp_path / "out.csv")
    results = list(detect_rows(rows, key_column="machine", time_column="ts", policy=POLICY))
    assert len(results) == len(out)
    for result, row in zip(results, out, strict=True):
        if result.scored is None:
            assert row["error"] and result.error == row["error"]
        else:
            assert repr(result.scored.score) == row["anomaly_score"]


def test_without_a_key_column_the_file_is_one_series(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("v\n" + "\n".join(str(i % 7) for i in range(100)) + "\n")
    summary = detect_csv(path, tmp_path / "o.csv", detector="zscore", params={"window": 32})
    assert summary.keys == 1 and summary.scored == 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_column": "nope"}, "no column 'nope'"),
        ({"value_columns": ["temp", "x"]}, "no column 'x'"),
        ({"detector": "nope"}, "unknown detector 'nope'"),
    ],
)
def test_detect_csv_errors_name_the_problem(tmp_path: Path, kwargs: dict, message: str) -> None:
    write_csv(tmp_path / "in.csv", rows=10)
    with pytest.raises(StreamlearnError, match=message):
        detect_csv(tmp_path / "in.csv", tmp_path / "out.csv", **kwargs)
    with pytest.raises(StreamlearnError, match="no such file"):
        detect_csv(tmp_path / "missing.csv", tmp_path / "out.csv")
    (tmp_path / "clash.csv").write_text("v,is_anomaly\n1,0\n")
    with pytest.raises(StreamlearnError, match="already has output column"):
        detect_csv(tmp_path / "clash.csv", tmp_path / "out.csv")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("STREAMLEARN_"):
            monkeypatch.delenv(name)
    return CliRunner()


def test_cli_detect(runner: CliRunner, tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", rows=1000)
    args = ["detect", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]
    args += ["--key-column", "machine", "--time-column", "ts", "--value-columns", "temp,rpm"]
    result = runner.invoke(main, [*args, "--warmup", "100", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "scored 1000 of 1000 rows (3 keys)" in result.output  # row 1234 is not in 1000
    assert len(read(tmp_path / "out.csv")) == 1000
    bad = runner.invoke(main, [*args, "--params", "{nope"])
    assert bad.exit_code == 2 and "--params" in bad.output and "not JSON" in bad.output
    bad = runner.invoke(main, [*args, "--detector", "zscore", "--params", '{"window": 1}'])
    assert bad.exit_code == 1 and "window must be an integer >= 2" in bad.output
    bad = runner.invoke(main, [*args, "--threshold", "0.5"])
    assert bad.exit_code == 1 and "exit_threshold" in bad.output
    missing = runner.invoke(main, ["detect", str(tmp_path / "none.csv"), "-o", "x.csv"])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_worker_discards_a_checkpoint_it_cannot_verify(tmp_path: Path) -> None:
    from streamlearn.worker import build_worker

    settings = load_settings(data_dir=tmp_path, secret_key="ab" * 16, web_port=6999)
    worker = build_worker(settings)
    component = worker.anomaly
    assert component is not None
    state = component.scorer.new_state()
    component.scorer.process(state, "k", {"v": 1.0}, 0, "e0")
    good = component.encode(state)
    assert component.decode(good).events == 1
    for bad in (good[:-1] + bytes([good[-1] ^ 1]), seal(state, b"other" * 8), b"junk"):
        fresh = component.decode(bad)
        assert isinstance(fresh, KeyState) and fresh.events == 0
    rejected = worker.metrics.checkpoint_rejected._value.get()
    assert rejected == 3


def test_anomaly_settings_are_validated() -> None:
    with pytest.raises(StreamlearnError, match="ANOMALY_DETECTOR"):
        load_settings(anomaly_detector="zscore+nope")
    with pytest.raises(StreamlearnError, match="exit_threshold"):
        load_settings(anomaly_threshold=0.9, anomaly_exit_threshold=0.95)
    with pytest.raises(StreamlearnError, match="SECRET_KEY"):
        load_settings(secret_key="abc")
    off = load_settings(anomaly_enabled=False, anomaly_detector="nope")  # not built: not checked
    assert off.anomaly_detector == "nope"
