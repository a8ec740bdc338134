"""A model saved by `streamlearn train --save`, served by a worker next to the live one."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from river import datasets

from streamlearn.models.offline import load_model
from tests.integration.workers import WorkerProcess, agent_trouble, settings_env, unique_settings

SECRET = "5e" * 32


def post(port: int, path: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_saved_model_is_served_and_live_model_is_default(kafka_broker: str, tmp_path: Path) -> None:
    rows = [({k: float(v) for k, v in x.items()}, y) for x, y in datasets.Phishing()]
    csv = tmp_path / "phishing.csv"
    pd.DataFrame([{**x, "is_phishing": y} for x, y in rows]).to_csv(csv, index=False)
    saved = tmp_path / "model.sle"
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        secret_key=SECRET,
        anomaly_enabled=False,
        model_serve_path=saved,
    )
    train = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamlearn",
            "train",
            str(csv),
            "--target",
            "is_phishing",
            "--model",
            "logreg",
            "--folds",
            "2",
            "--search",
            "none",
            "--no-learning-curve",
            "--no-html",
            "--output",
            str(tmp_path / "report"),
            "--save",
            str(saved),
            "-q",
        ],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert train.returncode == 0, train.stderr
    reference = load_model(saved, bytes.fromhex(SECRET))

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        port = settings.web_port
        for x, _ in rows[:20]:
            status, answer = post(port, "/api/v1/predict?model=offline", {"key": "s", "values": x})
            assert status == 200, answer
            assert answer["model"] == "offline:logreg"
            assert answer["prediction"] == reference.predict_one(x)
            proba = reference.predict_proba_one(x)
            assert answer["probability"] == pytest.approx(max(proba.values()), abs=1e-12)
        status, answer = post(
            port,
            "/api/v1/predict/batch?model=offline",
            {"events": [{"key": f"k{i}", "values": x} for i, (x, _) in enumerate(rows[:5])]},
        )
        assert status == 200
        assert [a["prediction"] for a in answer["predictions"]] == [
            reference.predict_one(x) for x, _ in rows[:5]
        ]
        # the live (River) model is the default; a missing training feature is a 400
        status, answer = post(port, "/api/v1/predict", {"key": "s", "values": rows[0][0]})
        assert status == 200 and answer["model"] == settings.model_learner
        status, answer = post(
            port, "/api/v1/predict?model=offline", {"key": "s", "values": {"https": 1.0}}
        )
        assert status == 400 and "values:" in answer["error"]
        status, answer = post(port, "/api/v1/predict?model=best", {"key": "s", "values": {"a": 1}})
        assert status == 400 and "model must be live or offline" in answer["error"]
    finally:
        worker.stop()
    assert agent_trouble(worker.log()) == []


def test_a_saved_model_signed_with_another_key_stops_the_worker(
    kafka_broker: Any, tmp_path: Path
) -> None:
    from streamlearn.models.envelope import seal

    path = tmp_path / "forged.sle"
    path.write_bytes(seal({"not": "a model"}, b"another key 0123456789abcdef0000"))
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        secret_key=SECRET,
        anomaly_enabled=False,
        model_serve_path=path,
    )
    result = subprocess.run(
        [sys.executable, "-m", "streamlearn", "worker"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "signature mismatch" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
