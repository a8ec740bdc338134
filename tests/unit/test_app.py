"""The Faust app built from Settings: security, web binding, advertised host."""

from __future__ import annotations

import socket
from pathlib import Path

import faust

from streamlearn.app import advertised_host, broker_credentials, create_app
from streamlearn.config import load_settings


def test_app_follows_settings(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, app_id="x1", web_port=7001, topic_partitions=6, store="memory"
    )
    app = create_app(settings)
    assert app.conf.id == "x1"
    assert app.conf.web_port == 7001
    assert app.conf.web_bind == "127.0.0.1"
    assert app.conf.topic_partitions == 6
    assert app.conf.web_tables_enabled is False  # table values are never served
    assert app.conf.web_stats_enabled is True
    assert str(app.conf.store) == "memory:"
    assert broker_credentials(settings) is None


def test_advertised_host() -> None:
    assert advertised_host(load_settings()) == "127.0.0.1"
    assert advertised_host(load_settings(web_host="0.0.0.0")) == socket.gethostname()
    assert advertised_host(load_settings(web_host="0.0.0.0", web_advertised_host="w1")) == "w1"


def test_sasl_and_ssl_credentials() -> None:
    sasl = broker_credentials(
        load_settings(
            broker_security_protocol="SASL_PLAINTEXT",
            broker_sasl_mechanism="SCRAM-SHA-256",
            broker_sasl_username="u",
            broker_sasl_password="p",
        )
    )
    assert isinstance(sasl, faust.SASLCredentials)
    assert sasl.username == "u" and sasl.password == "p"
    assert sasl.mechanism.value == "SCRAM-SHA-256"
    assert sasl.ssl_context is None
    ssl = broker_credentials(load_settings(broker_security_protocol="SSL"))
    assert isinstance(ssl, faust.SSLCredentials)
    sasl_ssl = broker_credentials(
        load_settings(
            broker_security_protocol="SASL_SSL", broker_sasl_username="u", broker_sasl_password="p"
        )
    )
    assert sasl_ssl.ssl_context is not None


def test_consumer_fetch_wait_is_configurable(tmp_path: Path, monkeypatch) -> None:
    from types import SimpleNamespace

    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    from streamlearn.transport import _ConsumerThread

    app = create_app(load_settings(data_dir=tmp_path, consumer_fetch_max_wait_ms=42))
    assert app.transport.Consumer.fetch_max_wait_ms == 42
    # Faust builds its aiokafka consumer with 1500 ms; ours overrides it afterwards.
    built = SimpleNamespace(_fetch_max_wait_ms=1500)
    monkeypatch.setattr(
        AIOKafkaConsumerThread, "_create_worker_consumer", lambda self, transport: built
    )
    thread = _ConsumerThread.__new__(_ConsumerThread)
    thread.fetch_max_wait_ms = 42
    assert thread._create_worker_consumer(None)._fetch_max_wait_ms == 42
