"""Issue 9, security: a worker runs through a SASL_SSL (SCRAM-SHA-512 over TLS) listener.

The test starts its own broker (not the session one): a PLAINTEXT listener as always plus
a SASL_SSL one whose certificate is signed by a CA made here, and a SCRAM user created
when the broker's storage is formatted. Clients verify the broker's certificate against
that CA (host name 127.0.0.1 in its subjectAltName) and log in with the user.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import ConsumerRecord

from streamlearn.config import Settings, load_settings
from streamlearn.kafka import LocalBroker, SaslSslListener, free_port
from streamlearn.kafka.probes import metadata_ok, run_sync
from tests.integration.workers import (
    LEAN,
    WorkerProcess,
    agent_trouble,
    latest_stats,
    settings_env,
    unique_settings,
)

pytestmark = pytest.mark.integration

USER, PASSWORD = "alice", "alice-secret-0b5d"
KEYSTORE_PASSWORD = "keystore-pass-7c1e"
N_EVENTS = 300
KEYS = ("sensor-a", "sensor-b", "sensor-c")


@dataclass(frozen=True)
class Certificates:
    ca_pem: Path  # what clients trust
    keystore: Path  # the broker's key and certificate chain, PKCS12


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"openssl {' '.join(args[:2])}: {done.stderr}"


def make_certificates(directory: Path) -> Certificates:
    """A self-signed CA and a broker certificate for 127.0.0.1/localhost that it signs."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=streamlearn test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec, "-keyout", "broker.key", "-out", "broker.csr",
        "-subj", "/CN=localhost",
        cwd=directory,
    )  # fmt: skip
    (directory / "broker.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyAgreement\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "broker.pem", "-days", "2", "-extfile", "broker.ext",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key",
        "-certfile", "ca.pem", "-name", "broker", "-out", "broker.p12",
        "-passout", f"pass:{KEYSTORE_PASSWORD}",
        cwd=directory,
    )  # fmt: skip
    return Certificates(directory / "ca.pem", directory / "broker.p12")


@dataclass(frozen=True)
class SecureBroker:
    broker: LocalBroker
    certificates: Certificates

    @property
    def bootstrap_servers(self) -> str:
        assert self.broker.sasl_ssl_bootstrap_servers is not None
        return self.broker.sasl_ssl_bootstrap_servers


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """Our own broker with a SASL_SSL listener on free ports; stopped afterwards."""
    base = tmp_path_factory.mktemp("sasl-ssl-broker")
    certificates = make_certificates(base / "tls")
    ports = set()
    while len(ports) < 3:
        ports.add(free_port())
    port, controller_port, sasl_port = sorted(ports)
    settings = load_settings()
    broker = LocalBroker(
        data_dir=base / "kafka",
        port=port,
        controller_port=controller_port,
        cache_dir=settings.kafka_cache_dir,
        kafka_home=settings.kafka_home,
        heap_mb=384,
        partitions=2,
        sasl_ssl=SaslSslListener(
            port=sasl_port,
            keystore=certificates.keystore,
            keystore_password=KEYSTORE_PASSWORD,
            users={USER: PASSWORD},
        ),
    )
    try:
        broker.start(timeout_s=120)
        yield SecureBroker(broker, certificates)
    finally:
        broker.stop()


def secure_settings(secure: SecureBroker, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **LEAN,
        "broker_security_protocol": "SASL_SSL",
        "broker_sasl_mechanism": "SCRAM-SHA-512",
        "broker_sasl_username": USER,
        "broker_sasl_password": PASSWORD,
        "broker_ssl_cafile": secure.certificates.ca_pem,
        "topic_partitions": 2,
        "stats_emit_every_events": 50,
        "model_enabled": False,
        "drift_enabled": False,
        **overrides,
    }
    return unique_settings(secure.bootstrap_servers, tmp_path, **values)


async def produce_secure(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=5,
        **settings.kafka_client_options(),
    )
    await producer.start()
    try:
        sends = [await producer.send(topic, value) for value in values]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def consume_secure(
    settings: Settings, topic: str, done: Any, timeout_s: float
) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not done(records):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def test_a_worker_processes_events_through_sasl_ssl(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    settings = secure_settings(secure_broker, tmp_path)
    assert settings.bootstrap_servers == secure_broker.bootstrap_servers
    worker = WorkerProcess(settings, tmp_path / "worker.log").start(timeout_s=90)
    try:
        events = [
            orjson.dumps({"key": KEYS[i % 3], "ts": 1_700_000_000_000 + i, "values": {"x": i}})
            for i in range(N_EVENTS)
        ]
        asyncio.run(produce_secure(settings, settings.topic("events"), events))
        per_key = N_EVENTS // len(KEYS)

        def complete(records: list[ConsumerRecord]) -> bool:
            stats = latest_stats(records)
            return all(stats.get(k, {}).get("events") == per_key for k in KEYS)

        records = asyncio.run(
            consume_secure(settings, settings.topic("aggregates"), complete, timeout_s=60)
        )
        stats = latest_stats(records)
        assert {k: stats.get(k, {}).get("events") for k in KEYS} == dict.fromkeys(KEYS, per_key)
    finally:
        worker.stop()
    assert agent_trouble(worker.log()) == []


def test_a_wrong_password_is_refused_promptly(
    secure_broker: SecureBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = secure_settings(secure_broker, tmp_path, broker_sasl_password="not-" + PASSWORD)

    async def start_consumer(settings: Settings) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            request_timeout_ms=10_000,
            **settings.kafka_client_options(),
        )
        try:
            await consumer.start()
        finally:
            await consumer.stop()

    started = time.monotonic()
    with pytest.raises(KafkaConnectionError):
        asyncio.run(start_consumer(wrong))
    assert time.monotonic() - started < 20
    assert "SaslAuthenticationFailed" in caplog.text
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in caplog.text
    caplog.clear()

    # nor does a client that does not trust our CA get as far as logging in
    untrusting = secure_settings(secure_broker, tmp_path, broker_ssl_cafile=None)
    with pytest.raises(KafkaConnectionError):
        asyncio.run(start_consumer(untrusting))
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text

    # the worker command stops at once with a message naming the broker, not a hang
    done = subprocess.run(
        [sys.executable, "-m", "streamlearn", "worker"],
        env=settings_env(wrong),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot reach Kafka at {secure_broker.bootstrap_servers}" in done.stderr
    assert "the broker's security settings" in done.stderr
    assert "Authentication failed" in done.stderr  # aiokafka's log line says why
    assert PASSWORD not in done.stderr and "not-" + PASSWORD not in done.stderr


def test_plaintext_stays_on_its_own_port(secure_broker: SecureBroker) -> None:
    broker = secure_broker.broker
    assert broker.status().running  # readiness still speaks PLAINTEXT to its port
    assert run_sync(metadata_ok(broker.bootstrap_servers, 10))
    # a PLAINTEXT client on the SASL_SSL port gets no metadata: there is no way around TLS
    assert not run_sync(metadata_ok(secure_broker.bootstrap_servers, 5))
