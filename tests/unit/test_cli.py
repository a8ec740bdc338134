"""The command line, without a broker: help, settings errors, argument errors."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from streamlearn.cli import main
from streamlearn.tail import format_record


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("STREAMLEARN_"):
            monkeypatch.delenv(name)
    return CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["worker"],
        ["replay"],
        ["detect"],
        ["train"],
        ["evaluate"],
        ["tail"],
        ["demo"],
        ["config"],
        ["kafka"],
        ["kafka", "start"],
    ],
)
def test_every_command_has_help(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "Options:" in result.output


def test_config_prints_settings_with_secrets_masked(runner: CliRunner) -> None:
    env = {"STREAMLEARN_API_TOKEN": "s3cret", "STREAMLEARN_WEB_PORT": "7070"}
    result = runner.invoke(main, ["config"], env=env)
    assert result.exit_code == 0, result.output
    assert "web_port = 7070" in result.output
    assert "s3cret" not in result.output
    shown = runner.invoke(main, ["config", "--show-secrets"], env=env)
    assert "s3cret" in shown.output


def test_bad_setting_is_a_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["config"], env={"STREAMLEARN_WEB_PORT": "0"})
    assert result.exit_code == 1
    assert "web_port (STREAMLEARN_WEB_PORT)" in result.output
    missing = runner.invoke(main, ["--config", "/nonexistent.toml", "config"])
    assert missing.exit_code == 1
    assert "does not exist" in missing.output


def test_replay_argument_errors(runner: CliRunner, tmp_path) -> None:
    result = runner.invoke(main, ["replay", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1 and "no such file" in result.output
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n")
    both = runner.invoke(main, ["replay", str(path), "--rate", "5", "--speedup", "2"])
    assert both.exit_code == 1 and "not both" in both.output
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n1,2\n")
    nokey = runner.invoke(main, ["replay", str(csv)])
    assert nokey.exit_code == 1 and "--key-column" in nokey.output


def test_worker_without_broker_explains(runner: CliRunner) -> None:
    from streamlearn.kafka.broker import free_port

    env = {"STREAMLEARN_KAFKA_PORT": str(free_port())}
    result = runner.invoke(main, ["worker"], env=env)
    assert result.exit_code == 1
    assert "cannot reach Kafka" in result.output
    assert "streamlearn kafka start" in result.output


def test_format_record_for_humans() -> None:
    stats = (
        b'{"kind":"stats","key":"k1","events":3,"ts":0,"values":'
        b'{"x":{"count":3,"mean":2.0,"std":1.0,"min":1.0,"max":3.0}}}'
    )
    line = format_record(stats)
    assert line.startswith("STATS k1") and "n=3" in line and "x: 2±1 [1, 3]" in line
    headers = [
        ("error.code", b"invalid_json"),
        ("error.reason", b"malformed JSON"),
        ("source.topic", b"events"),
        ("source.partition", b"1"),
        ("source.offset", b"9"),
    ]
    dead = format_record(b"oops", headers)
    assert dead.startswith("DEAD invalid_json") and "[events/1@9]" in dead and "'oops'" in dead
    assert format_record(None) == "(tombstone)"
    assert format_record(b"\xffnot json").startswith("\ufffd")
    assert format_record(b'{"a":1}') == '{"a":1}'
