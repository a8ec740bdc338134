"""The model registry against the real broker: CLI and HTTP round trips, a worker
restart, and two clients seeing each other's writes."""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from river import datasets, linear_model, preprocessing

from streamlearn.config import Settings
from streamlearn.models.envelope import seal
from streamlearn.models.offline import SavedModel, save_model
from streamlearn.registry import ConcurrentChangeError, RegistryClient
from tests.integration.workers import WorkerProcess, agent_trouble, settings_env, unique_settings

SECRET = "7c" * 32
KEY = bytes.fromhex(SECRET)
TOKEN = "registry-token-123"
FAST = {"anomaly_enabled": False, "model_enabled": False, "drift_enabled": False}


def settings_for(kafka_broker: Any, tmp_path: Path, **overrides: Any) -> Settings:
    return unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        **{"secret_key": SECRET, "api_token": TOKEN, **FAST, **overrides},
    )


def river_model() -> Any:
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for x, y in list(datasets.Phishing())[:200]:
        model.learn_one(x, y)
    return model


def sklearn_model_file(path: Path, offset: float = 0.0) -> Path:
    """A model as `streamlearn train --save` writes it (a SavedModel in a signed envelope)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]]) + offset
    fitted = LogisticRegression().fit(X, ["ham", "spam", "ham", "spam"])
    saved = SavedModel(
        fitted, ["a", "b"], "label", "classification", ["ham", "spam"], model="logreg",
        params={"C": 1.0}, metrics={"accuracy": 0.75 + offset},
    )  # fmt: skip
    return save_model(saved, path, KEY)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamlearn", "models", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def http(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = TOKEN,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif raw is not None:
        headers["Content-Type"] = "application/octet-stream"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_cli_round_trip(kafka_broker: Any, tmp_path: Path) -> None:
    settings = settings_for(kafka_broker, tmp_path)
    v1 = sklearn_model_file(tmp_path / "v1.sle")
    out = ok(
        cli(settings, "register", "churn", str(v1), "--training-data", "s3://b/churn.csv",
            "--description", "first", "--by", "ana")
    )  # fmt: skip
    assert "registered churn v1 (sklearn" in out and "in dev" in out
    ok(
        cli(
            settings, "promote", "churn", "1", "--to", "staging", "--why", "ci green", "--by", "ana"
        )
    )
    out = ok(cli(settings, "promote", "churn", "1", "--to", "production", "--why", "ab test"))
    assert "churn v1 is now in production" in out
    shown = json.loads(ok(cli(settings, "show", "churn", "--version", "production", "--json")))
    assert shown["version"] == 1 and shown["stage"] == "production"
    assert shown["metrics"] == {"accuracy": 0.75}  # from the saved model
    assert shown["training_data"] == "s3://b/churn.csv" and shown["created_by"] == "ana"
    assert shown["library_versions"]["scikit-learn"]
    assert [h["stage"] for h in shown["history"]] == ["dev", "staging", "production"]

    v2 = sklearn_model_file(tmp_path / "v2.sle", offset=0.1)
    ok(cli(settings, "register", "churn", str(v2), "--metrics", '{"accuracy": 0.9}'))
    out = ok(cli(settings, "promote", "churn", "2", "--to", "production", "--why", "better"))
    assert "churn v2 is now in production (v1 archived)" in out
    out = ok(cli(settings, "rollback", "churn", "--why", "worse live", "--by", "bob"))
    assert "churn: v1 is in production again (v2 archived)" in out
    shown = json.loads(ok(cli(settings, "show", "churn", "--json")))
    stages = {v["version"]: v["stage"] for v in shown["versions"]}
    assert stages == {1: "production", 2: "archived"}
    ok(cli(settings, "archive", "churn", "1", "--why", "retired"))
    listed = json.loads(ok(cli(settings, "list", "--json")))
    assert [(m["name"], m["versions"], m["production"]) for m in listed] == [("churn", 2, None)]
    table = ok(cli(settings, "show", "churn"))
    assert "archived" in table and "VERSION" in table

    # every mistake is a clear message and a non-zero exit
    for args, message in [
        (("show", "nope"), "no model named 'nope'"),
        (("show", "churn", "--version", "7"), "churn has no version 7"),
        (("show", "churn", "--version", "staging"), "churn has no version in staging"),
        (("promote", "churn", "2", "--to", "live", "--why", "x"), "staging or production"),
        (("rollback", "churn", "--why", "x"), "no production version to roll back"),
        (("archive", "churn", "1"), "already archived"),
        (("register", "churn", str(v1), "--metrics", "{bad"), "not JSON"),
        (("register", "churn", str(tmp_path / "missing.sle")), "cannot read"),
    ]:
        result = cli(settings, *args)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(b"\x80\x05K\x01.")
    result = cli(settings, "register", "churn", str(raw))
    assert result.returncode == 1 and "artifact refused: unsigned" in result.stderr
    forged = tmp_path / "forged.sle"
    forged.write_bytes(seal({"w": 1}, b"another key 0123456789abcdef0000"))
    result = cli(settings, "register", "churn", str(forged))
    assert result.returncode == 1 and "signature mismatch" in result.stderr


def test_http_round_trip_survives_a_worker_restart(kafka_broker: Any, tmp_path: Path) -> None:
    settings = settings_for(kafka_broker, tmp_path)
    blob = (sklearn_model_file(tmp_path / "m.sle")).read_bytes()
    worker = WorkerProcess(settings, tmp_path / "worker1.log").start()
    port = settings.web_port
    base = "/api/v1/registry/models"
    try:
        # writes need the token: missing or wrong is a 401, reads are open
        status, answer = http(port, "POST", f"{base}/fraud/versions", raw=blob, token=None)
        assert status == 401 and "Bearer" in answer["error"]
        status, answer = http(port, "POST", f"{base}/fraud/versions", raw=blob, token="guess")
        assert status == 401 and answer["error"] == "invalid API token"
        status, answer = http(port, "GET", base, token=None)
        assert status == 200 and answer == {"models": []}

        status, v1 = http(
            port, "POST", f"{base}/fraud/versions?by=ana&description=first&training_data=t1",
            raw=blob,
        )  # fmt: skip
        assert status == 201, v1
        assert (v1["version"], v1["stage"], v1["artifact"]["kind"]) == (1, "dev", "sklearn")
        status, v2 = http(
            port, "POST", f"{base}/fraud/versions",
            {"artifact_base64": base64.b64encode(seal(river_model(), KEY)).decode(),
             "metrics": {"accuracy": 0.91}, "by": "ana"},
        )  # fmt: skip
        assert status == 201 and v2["version"] == 2 and v2["artifact"]["kind"] == "river"
        status, answer = http(port, "POST", f"{base}/fraud/versions", raw=b"\x80\x05K\x01.")
        assert status == 400 and "unsigned" in answer["error"]
        tampered = bytearray(blob)
        tampered[-3] ^= 1
        status, answer = http(port, "POST", f"{base}/fraud/versions", raw=bytes(tampered))
        assert status == 400 and "signature mismatch" in answer["error"]

        promote = f"{base}/fraud/versions/1/promote"
        status, answer = http(port, "POST", promote, {"to": "production", "why": "x"}, token=None)
        assert status == 401
        status, answer = http(port, "POST", promote, {"to": "production", "why": "first"})
        assert status == 200 and answer["stage"] == "production"
        status, answer = http(
            port, "POST", f"{base}/fraud/versions/2/promote",
            {"to": "production", "why": "better", "by": "ana"},
        )  # fmt: skip
        assert status == 200 and answer["version"] == 2
        status, answer = http(port, "GET", f"{base}/fraud/versions/production", token=None)
        assert status == 200 and answer["version"] == 2
        status, answer = http(port, "POST", f"{base}/fraud/rollback", {"why": "drifted"})
        assert status == 200 and answer["version"] == 1
        status, answer = http(port, "POST", f"{base}/fraud/versions/2/archive", {})
        assert status == 409 and "already archived" in answer["error"]
        status, answer = http(port, "POST", promote, {"to": "staging", "why": "x"})
        assert status == 409 and "cannot move it down" in answer["error"]
        status, answer = http(port, "POST", promote, {"to": "gold", "why": "x"})
        assert status == 400 and "unknown stage" in answer["error"]
        status, answer = http(port, "POST", promote, {"to": "staging"})
        assert status == 400 and "why is required" in answer["error"]
        status, answer = http(port, "GET", f"{base}/fraud/versions/9")
        assert status == 404 and "no version 9" in answer["error"]
        status, answer = http(port, "GET", f"{base}/ghost")
        assert status == 404
        status, answer = http(port, "POST", f"{base}/ghost/rollback", {"why": "x"})
        assert status == 404
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            exposition = reply.read().decode()
        assert 'streamlearn_registry_changes_total{action="promote"} 2.0' in exposition
        assert "streamlearn_registry_refused_total 2.0" in exposition
    finally:
        worker.stop()
    assert agent_trouble(worker.log()) == []

    # a new worker process with the same settings: the registry is still there
    worker = WorkerProcess(settings, tmp_path / "worker2.log").start()
    try:
        status, answer = http(port, "GET", f"{base}/fraud/versions/production", token=None)
        assert status == 200 and answer["version"] == 1
        assert [h["stage"] for h in answer["history"]] == [
            "dev", "production", "archived", "production"
        ]  # fmt: skip
        assert answer["history"][-1]["why"] == "rollback from v2: drifted"
        status, answer = http(port, "GET", f"{base}/fraud/versions/2", token=None)
        assert answer["history"][-1]["why"] == "rolled back to v1: drifted"
        shown = json.loads(ok(cli(settings, "show", "fraud", "--version", "production", "--json")))
        assert shown["version"] == 1 and shown["created_by"] == "ana"
        # a change made by the CLI is visible over HTTP at once
        ok(cli(settings, "archive", "fraud", "1", "--why", "done"))
        status, answer = http(port, "GET", base, token=None)
        assert answer["models"][0]["production"] is None
    finally:
        worker.stop()
    assert agent_trouble(worker.log()) == []


def test_http_writes_refused_without_a_configured_token(kafka_broker: Any, tmp_path: Path) -> None:
    settings = settings_for(kafka_broker, tmp_path, api_token=None)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        status, answer = http(
            settings.web_port, "POST", "/api/v1/registry/models/m/rollback", {"why": "x"}
        )
        assert status == 401 and "no api_token is configured" in answer["error"]
    finally:
        worker.stop()


async def test_two_clients_see_each_others_writes(kafka_broker: Any, tmp_path: Path) -> None:
    settings = settings_for(kafka_broker, tmp_path)
    async with RegistryClient(settings) as one, RegistryClient(settings) as two:
        v1 = await one.register("m", river_model(), params={"lr": 0.1}, created_by="one")
        await two.sync()
        seen = two.get("m", "latest")
        assert (seen.version, seen.params, seen.created_by) == (1, {"lr": 0.1}, "one")
        assert type(two.load(seen)).__name__ == "Pipeline"
        await two.promote("m", v1.version, "production", by="two", why="ok")
        await one.sync()
        assert one.get("m", "production").history[-1].by == "two"

        # racing writers: every change is either applied or reported, none is lost
        results = await asyncio.gather(
            *(client.register("m", {"i": i}) for i in range(6) for client in (one, two)),
            return_exceptions=True,
        )
        applied = [r.version for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(r, ConcurrentChangeError) for r in refused), refused
        await one.sync()
        await two.sync()
        assert sorted(one.entry("m").versions) == sorted(two.entry("m").versions)
        assert sorted(one.entry("m").versions) == [1, *sorted(applied)]

    # a third client, started later, reads the same registry from the topic
    async with RegistryClient(settings) as three:
        assert three.entry("m").to_dict() == one.entry("m").to_dict()


def test_a_registered_train_model_loads_through_the_client(
    kafka_broker: Any, tmp_path: Path
) -> None:
    """A `streamlearn train --save` file registered by the CLI loads through the client."""
    settings = settings_for(kafka_broker, tmp_path)
    path = sklearn_model_file(tmp_path / "m.sle")
    ok(cli(settings, "register", "offline", str(path)))

    async def load() -> Any:
        async with RegistryClient(settings) as client:
            return client.load(client.get("offline", "latest"))

    model = asyncio.run(load())
    assert model.predict_one({"a": 0.95, "b": 0.0}) == "spam"


DOCS = Path(__file__).resolve().parents[2] / "docs" / "registry.md"


def doc_block(language: str) -> str:
    """The first ```language block of docs/registry.md."""
    text = DOCS.read_text()
    start = text.index(f"```{language}\n") + len(language) + 4
    return text[start : text.index("```", start)]


def test_the_python_example_in_the_docs_runs(
    kafka_broker: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(kafka_broker, tmp_path)
    code = compile(doc_block("python"), str(DOCS), "exec")
    exec(code, {"settings": settings, "__name__": "docs_registry"})
    assert capsys.readouterr().out.strip() == "(1, 'Pipeline')"


def test_the_cli_example_in_the_docs_runs(kafka_broker: Any, tmp_path: Path) -> None:
    settings = settings_for(kafka_broker, tmp_path)
    sklearn_model_file(tmp_path / "model.sle")  # what the `train --save` line writes
    lines = [
        line for line in doc_block("bash").splitlines() if line.startswith("streamlearn models")
    ]
    assert len(lines) == 11
    for line in lines:
        result = subprocess.run(
            [sys.executable, "-m", "streamlearn", *shlex.split(line)[1:]],
            env=settings_env(settings),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (line, result.stderr)
    assert json.loads(result.stdout)[0]["production"] == 1
