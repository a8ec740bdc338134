"""The command line against the real broker: replay, tail, kafka start/status/stop, demo."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from click.testing import CliRunner

from streamlearn.cli import main
from streamlearn.kafka import free_port
from tests.integration.workers import (
    WorkerProcess,
    consume_until,
    latest_stats,
    settings_env,
    unique_settings,
)

pytestmark = pytest.mark.integration


def test_replay_csv_then_tail(kafka_broker, tmp_path: Path) -> None:
    settings = unique_settings(kafka_broker.bootstrap_servers, tmp_path)
    env = settings_env(settings)
    csv = tmp_path / "readings.csv"
    rows = ["sensor,time,temp,rh,fault"]
    rows += [
        f"s{i % 3},{1_700_000_000_000 + i * 1000},{20 + i % 7},{40 + i % 5},{i % 2}"
        for i in range(300)
    ]
    rows.append("s0,1700000999000,not-a-number,40,0")
    csv.write_text("\n".join(rows) + "\n")
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    runner = CliRunner()
    try:
        result = runner.invoke(
            main,
            [
                "replay",
                str(csv),
                "--key-column",
                "sensor",
                "--time-column",
                "time",
                "--value-columns",
                "temp,rh",
                "--label-column",
                "fault",
                "--rate",
                "2000",
            ],
            env=env,
        )
        assert result.exit_code == 0, result.output
        assert f"sent 301 events to {settings.topic('events')}" in result.output

        def complete(records) -> bool:
            final = latest_stats(records)
            return sum(d["events"] for d in final.values()) == 300

        records = asyncio.run(consume_until(settings, settings.topic("aggregates"), complete))
        assert complete(records)
        final = latest_stats(records)
        assert final["s0"]["values"]["temp"]["count"] == 100

        tailed = runner.invoke(main, ["tail", "deadletter", "--from-beginning", "-n", "1"], env=env)
        assert tailed.exit_code == 0, tailed.output
        assert (
            "DEAD invalid_values" in tailed.output
            and "values.temp must be a number" in tailed.output
        )
        agg = runner.invoke(
            main, ["tail", "aggregates", "--from-beginning", "--timeout", "3"], env=env
        )
        assert "STATS s0" in agg.output and "temp:" in agg.output
        raw = runner.invoke(
            main,
            ["tail", settings.topic("events"), "--from-beginning", "-n", "2", "--raw"],
            env=env,
        )
        assert raw.output.count('"key":"s') == 2
    finally:
        worker.stop()


def _env_without_settings(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    env.update(extra)
    return env


def test_kafka_commands_start_status_stop(tmp_path: Path) -> None:
    env = _env_without_settings(
        STREAMLEARN_KAFKA_PORT=str(free_port()),
        STREAMLEARN_KAFKA_CONTROLLER_PORT=str(free_port()),
        STREAMLEARN_DATA_DIR=str(tmp_path / "data"),
    )
    runner = CliRunner()
    down = runner.invoke(main, ["kafka", "status"], env=env)
    assert down.exit_code == 1
    try:
        started = runner.invoke(main, ["kafka", "start"], env=env)
        assert started.exit_code == 0, started.output
        assert "kafka running: 127.0.0.1:" in started.output
        again = runner.invoke(main, ["kafka", "start"], env=env)  # idempotent
        assert again.exit_code == 0 and again.output == started.output
        up = runner.invoke(main, ["kafka", "status"], env=env)
        assert up.exit_code == 0, up.output
    finally:
        stopped = runner.invoke(main, ["kafka", "stop"], env=env)
    assert stopped.exit_code == 0 and "kafka stopped" in stopped.output
    assert runner.invoke(main, ["kafka", "status"], env=env).exit_code == 1
    assert "not running" in runner.invoke(main, ["kafka", "stop"], env=env).output


def _java_processes_under(path: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(path) in line and "grep" not in line]


def test_demo_starts_and_stops_everything(tmp_path: Path) -> None:
    """`streamlearn demo --duration` on the embedded default: its own broker, then nothing left."""
    data_dir = tmp_path / "data"
    env = _env_without_settings(
        STREAMLEARN_KAFKA_PORT=str(free_port()),
        STREAMLEARN_KAFKA_CONTROLLER_PORT=str(free_port()),
        STREAMLEARN_DATA_DIR=str(data_dir),
        STREAMLEARN_WEB_PORT=str(free_port()),
    )
    result = subprocess.run(
        [sys.executable, "-m", "streamlearn", "demo", "--duration", "25", "--rate", "400"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "starting the local Kafka broker" in result.stdout
    table = result.stdout.split("key     events")[-1]
    for ticker in ("AAPL", "MSFT", "XOM"):
        assert ticker in table  # the final table shows aggregates per stock
    assert "dead letters 0" in result.stdout
    assert _java_processes_under(data_dir) == []  # broker stopped
    assert "streamlearn-demo" not in subprocess.run(
        ["ps", "-eo", "args"], capture_output=True, text=True
    ).stdout.replace("pytest", "")


def test_demo_on_a_configured_broker_cleans_its_topics(kafka_broker, tmp_path: Path) -> None:
    env = _env_without_settings(
        STREAMLEARN_BROKER_URL=f"kafka://{kafka_broker.bootstrap_servers}",
        STREAMLEARN_DATA_DIR=str(tmp_path / "data"),
        STREAMLEARN_WEB_PORT=str(free_port()),
        STREAMLEARN_TOPIC_PREFIX="cleanup-check.",
    )
    result = subprocess.run(
        [sys.executable, "-m", "streamlearn", "demo", "--duration", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "starting the local Kafka broker" not in result.stdout
    assert "AAPL" in result.stdout.split("key     events")[-1]

    async def leftover() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
        await admin.start()
        try:
            return [t for t in await admin.list_topics() if t.startswith("cleanup-check.")]
        finally:
            await admin.close()

    assert asyncio.run(leftover()) == []
