"""LocalBroker without a JVM: properties, pid files, tool discovery, jar resolution."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streamlearn.errors import BrokerError, MissingToolError
from streamlearn.kafka import DEFAULT_KAFKA_VERSION, BrokerStatus, LocalBroker, free_port
from streamlearn.kafka.broker import new_cluster_id
from streamlearn.kafka.jars import MARKER, ensure_maven_jars, resolve_kafka_home
from streamlearn.kafka.properties import format_properties, parse_properties


def _broker(tmp_path: Path, **kwargs: object) -> LocalBroker:
    return LocalBroker(data_dir=tmp_path / "kafka", cache_dir=tmp_path / "cache", **kwargs)  # type: ignore[arg-type]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped, so the pid names no process (until the kernel recycles it)
    return proc.pid


# --- properties ---------------------------------------------------------------------


def test_default_properties(tmp_path: Path) -> None:
    props = _broker(tmp_path, port=19092, controller_port=19093, partitions=6).render_properties()
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["log.dirs"] == str((tmp_path / "kafka" / "kraft").resolve())
    assert props["num.partitions"] == "6"
    assert props["auto.create.topics.enable"] == "true"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert int(props["num.io.threads"]) <= 2
    assert not any("$" in v for v in props.values())


def test_extra_properties_override_listeners(tmp_path: Path) -> None:
    extra = {
        "listeners": "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,"
        "SASL_SSL://127.0.0.1:19094",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
        "SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
    }
    broker = _broker(tmp_path, port=19092, controller_port=19093, extra_properties=extra)
    props = broker.render_properties()
    assert props["listeners"].endswith("SASL_SSL://127.0.0.1:19094")
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["num.partitions"] == "4"  # untouched keys keep the template value


def test_override_must_keep_plaintext_listener(tmp_path: Path) -> None:
    extra = {"listeners": "SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"}
    broker = _broker(tmp_path, port=19092, controller_port=19093, extra_properties=extra)
    with pytest.raises(BrokerError, match=r"no PLAINTEXT listener on 127\.0\.0\.1:19092"):
        broker.render_properties()


def test_same_ports_rejected(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="both 9999"):
        _broker(tmp_path, port=9999, controller_port=9999).render_properties()


def test_properties_round_trip() -> None:
    props = {"a.b": "x=y:z", "path": "C:\\kafka\\data", "jaas": 'a required user="u";\nb'}
    assert parse_properties(format_properties(props)) == props
    with pytest.raises(BrokerError, match="property name"):
        format_properties({"bad key": "v"})


def test_cluster_id_is_kafka_uuid_text() -> None:
    cluster_id = new_cluster_id()
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


# --- pid files and status -------------------------------------------------------------


def test_status_without_pid_file(tmp_path: Path) -> None:
    broker = _broker(tmp_path, port=free_port())
    status = broker.status()
    assert status == BrokerStatus(
        False, None, broker.bootstrap_servers, broker.log_file, "not running"
    )
    assert broker.stop() is False


@pytest.mark.parametrize("pid_kind", ["dead", "not-java", "garbage"])
def test_stale_pid_file_is_dropped(tmp_path: Path, pid_kind: str) -> None:
    broker = _broker(tmp_path, port=free_port())
    broker.data_dir.mkdir(parents=True)
    # A live python process (this one) must never be taken for the broker, nor killed.
    pid = {"dead": str(_dead_pid()), "not-java": str(os.getpid()), "garbage": "x"}[pid_kind]
    broker.pid_file.write_text(pid + "\n")
    status = broker.status()
    assert not status.running and status.pid is None
    assert not broker.pid_file.exists() or pid_kind == "garbage"
    broker.pid_file.write_text(pid + "\n")
    assert broker.stop() is False  # nothing of ours to stop; and we are still alive


def test_wait_ready_without_process_fails_fast(tmp_path: Path) -> None:
    broker = _broker(tmp_path, port=free_port())
    with pytest.raises(BrokerError, match="not running"):
        broker.wait_ready(timeout_s=60)


def test_start_refuses_a_port_used_by_someone_else(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        broker = _broker(tmp_path, port=port, controller_port=free_port())
        with pytest.raises(BrokerError, match=f"port {port} .* already in use"):
            broker.start(timeout_s=5)


# --- tools ----------------------------------------------------------------------------


def test_missing_java_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    broker = _broker(tmp_path, port=free_port(), controller_port=free_port())
    with pytest.raises(MissingToolError, match=r"java not found on PATH: install OpenJDK 17\+"):
        broker.start(timeout_s=5)


def test_missing_mvn_only_matters_without_cached_jars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    broker = _broker(tmp_path)
    with pytest.raises(MissingToolError, match="mvn not found on PATH: install Apache Maven"):
        broker.ensure_jars()
    # With the marker and the broker jar in place no tool is needed at all.
    base = tmp_path / "cache" / f"kafka-{DEFAULT_KAFKA_VERSION}"
    (base / "lib").mkdir(parents=True)
    (base / "lib" / f"kafka_2.13-{DEFAULT_KAFKA_VERSION}.jar").touch()
    (base / MARKER).touch()
    assert broker.ensure_jars() == (base / "lib").resolve()


def test_versions_checked_before_any_download(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="look like"):
        ensure_maven_jars("../../etc", tmp_path)
    with pytest.raises(BrokerError, match="KAFKA_HOME"):
        ensure_maven_jars("3.9.1", tmp_path)


# --- KAFKA_HOME -----------------------------------------------------------------------


def _fake_home(path: Path) -> Path:
    (path / "libs").mkdir(parents=True)
    (path / "libs" / "kafka_2.13-4.4.0.jar").touch()
    return path


def test_kafka_home_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, from_env = _fake_home(tmp_path / "explicit"), _fake_home(tmp_path / "env")
    env = {"KAFKA_HOME": str(from_env)}
    assert resolve_kafka_home(explicit, env) == explicit.resolve()  # argument wins
    assert resolve_kafka_home(None, env) == from_env.resolve()
    assert resolve_kafka_home(None, {"KAFKA_HOME": str(tmp_path / "missing")}) is None
    assert resolve_kafka_home(None, {}) is None
    with pytest.raises(BrokerError, match="not a Kafka release"):
        resolve_kafka_home(tmp_path / "explicit" / "libs", {})
    with pytest.raises(BrokerError, match=r"\$KAFKA_HOME"):
        resolve_kafka_home(None, {"KAFKA_HOME": str(tmp_path)})

    monkeypatch.setenv("KAFKA_HOME", str(from_env))
    assert _broker(tmp_path).ensure_jars() == from_env.resolve() / "libs"
    assert _broker(tmp_path, kafka_home=explicit).ensure_jars() == explicit.resolve() / "libs"


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
