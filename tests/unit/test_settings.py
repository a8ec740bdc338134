"""Settings: env, TOML file, validation messages that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamlearn.config import load_settings
from streamlearn.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("STREAMLEARN_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.web_host == "127.0.0.1" and settings.web_port == 6066
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.uses_local_broker
    assert settings.topic("events") == "events"


def test_env_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_TOPIC_PREFIX", "t1.")
    monkeypatch.setenv("STREAMLEARN_BROKER_URL", "kafka://a:1;kafka://b:2")
    settings = load_settings()
    assert settings.topic("deadletter") == "t1.deadletter"
    assert settings.bootstrap_servers == "a:1,b:2"
    assert settings.faust_broker == "kafka://a:1;kafka://b:2"
    assert not settings.uses_local_broker


def test_toml_file_and_env_priority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "streamlearn.toml"
    config.write_text('web_port = 7000\ntopic_prefix = "from-file."\n')
    assert load_settings(config).web_port == 7000
    monkeypatch.setenv("STREAMLEARN_WEB_PORT", "7001")
    settings = load_settings(config)
    assert settings.web_port == 7001  # env beats the file
    assert settings.topic_prefix == "from-file."
    assert load_settings().web_port == 7001  # the file does not leak into later loads
    assert load_settings().topic_prefix == ""


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("WEB_PORT", "70000", "web_port (STREAMLEARN_WEB_PORT): Input should be less than"),
        ("WEB_PORT", "abc", "web_port (STREAMLEARN_WEB_PORT)"),
        ("TOPIC_EVENTS", "bad name", "topic_events (STREAMLEARN_TOPIC_EVENTS): must be"),
        ("BROKER_URL", "kafka://nohost", "is not host:port"),
        ("STORE", "redis", "store (STREAMLEARN_STORE): Input should be 'rocksdb' or 'memory'"),
        ("BATCH_MAX_EVENTS", "0", "batch_max_events"),
        ("BROKER_SECURITY_PROTOCOL", "SASL_SSL", "needs broker_sasl_username"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"STREAMLEARN_{env}", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert message in str(info.value)


def test_unknown_key_in_file_and_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("no_such_setting = 1\n")
    with pytest.raises(ConfigError, match=r"no_such_setting.*is not a setting"):
        load_settings(config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    config.write_text("web_port = = 3\n")
    with pytest.raises(ConfigError, match="cannot read settings"):
        load_settings(config)


def test_secrets_are_masked_and_sasl_options(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(
        broker_security_protocol="SASL_PLAINTEXT",
        broker_sasl_username="u",
        broker_sasl_password="hunter2",
    )
    assert "hunter2" not in str(settings.masked())
    options = settings.kafka_client_options()
    assert options["sasl_plain_password"] == "hunter2"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"


def test_webhook_url_is_checked_and_never_echoed_with_its_secret() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(alert_webhook_url="ftp://bot:hunter2@hooks.example.com/x")
    assert "alert_webhook_url" in str(info.value) and "hunter2" not in str(info.value)
    settings = load_settings(alert_webhook_url="https://bot:hunter2@hooks.example.com/x?t=9")
    assert settings.alert_webhook_url == "https://bot:hunter2@hooks.example.com/x?t=9"
    shown = settings.masked()["alert_webhook_url"]
    assert "hunter2" not in shown and "t=9" not in shown and "hooks.example.com" in shown


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"drift_detector": "cusum"}, "adwin, kswin, page-hinkley"),
        (
            {
                "drift_concept_detector": "ddm",
                "model_task": "regression",
                "model_learner": "linear",
            },
            "ddm",
        ),
        ({"drift_reference_from_ms": 5}, "drift_reference_to_ms"),
        ({"model_monitor_metric": "mae"}, "accuracy"),
    ],
)
def test_drift_and_monitoring_settings_are_checked(
    overrides: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(**overrides)  # type: ignore[arg-type]
    assert load_settings(**{**overrides, "drift_enabled": False, "model_enabled": False})
