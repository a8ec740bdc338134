"""The real broker: start, idempotence, aiokafka round trip, crash reporting, stop."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamlearn.config import load_settings
from streamlearn.errors import BrokerError
from streamlearn.kafka import LocalBroker, free_port

pytestmark = pytest.mark.integration


def _ports() -> tuple[int, int]:
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    return port, controller_port


def _jar_source() -> dict[str, Any]:
    """Where the CLI and the session fixture take jars from, so nothing is fetched twice."""
    settings = load_settings()
    return {"cache_dir": settings.kafka_cache_dir, "kafka_home": settings.kafka_home}


def _new_broker(data_dir: Path, **kwargs: Any) -> LocalBroker:
    port, controller_port = _ports()
    return LocalBroker(
        data_dir=data_dir, port=port, controller_port=controller_port, **_jar_source(), **kwargs
    )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker of this module's own, since these tests start and stop brokers."""
    own = _new_broker(tmp_path_factory.mktemp("broker"))
    own.start(timeout_s=180)
    try:
        yield own
    finally:
        own.stop()


def test_running_and_start_is_idempotent(broker: LocalBroker) -> None:
    first = broker.status()
    assert first.running and first.pid is not None
    assert first.bootstrap_servers == broker.bootstrap_servers
    began = time.monotonic()
    again = broker.start(timeout_s=30)
    assert again.running and again.pid == first.pid
    assert time.monotonic() - began < 5  # no second JVM, no format


def test_aiokafka_round_trip_on_four_partitions(broker: LocalBroker) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(12)}

    async def round_trip() -> tuple[int, dict[bytes, bytes], set[int]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for i, (key, value) in enumerate(sent.items()):
                await producer.send_and_wait(topic, value, key=key, partition=i % 4)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap_servers,
            group_id=f"group-{topic}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        received: dict[bytes, bytes] = {}
        partitions: set[int] = set()
        try:
            deadline = time.monotonic() + 60
            while len(received) < len(sent) and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    partitions.add(tp.partition)
                    received.update((r.key, r.value) for r in records if r.key is not None)
        finally:
            await consumer.stop()
        return len(described["partitions"]), received, partitions

    n_partitions, received, partitions = asyncio.run(round_trip())
    assert n_partitions == 4
    assert received == sent
    assert partitions == {0, 1, 2, 3}


def test_port_in_use_by_another_process_is_refused(broker: LocalBroker, tmp_path: Path) -> None:
    other = LocalBroker(
        data_dir=tmp_path / "other", port=broker.port, controller_port=free_port(), **_jar_source()
    )
    with pytest.raises(BrokerError, match="already in use"):
        other.start(timeout_s=30)


def test_broker_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    # An extra listener on a port that is taken: formatting succeeds, the broker exits.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port, controller_port = _ports()
        extra = {
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port},"
            f"EXTRA://127.0.0.1:{taken.getsockname()[1]}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "EXTRA:PLAINTEXT",
        }
        doomed = LocalBroker(
            data_dir=tmp_path / "doomed",
            port=port,
            controller_port=controller_port,
            extra_properties=extra,
            **_jar_source(),
        )
        with pytest.raises(BrokerError, match="exited") as info:
            doomed.start(timeout_s=120)
    assert "Address already in use" in str(info.value)  # the cause, quoted from the log
    assert not doomed.status().running


def test_broker_outlives_its_starter_and_stops(tmp_path: Path) -> None:
    broker = _new_broker(tmp_path / "detached")
    starter = (
        "import sys; from pathlib import Path; from streamlearn.kafka import LocalBroker; "
        "b = LocalBroker(data_dir=Path(sys.argv[1]), port=int(sys.argv[2]), "
        "controller_port=int(sys.argv[3]), cache_dir=Path(sys.argv[4]), "
        "kafka_home=sys.argv[5] or None); print(b.start(timeout_s=180).pid)"
    )
    done = subprocess.run(
        [sys.executable, "-c", starter, str(broker.data_dir), str(broker.port),
         str(broker.controller_port), str(broker.cache_dir), str(broker.kafka_home or "")],
        cwd=Path(__file__).resolve().parents[2],  # the repo root, so the package imports
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.strip())
    try:
        status = broker.status()  # another LocalBroker object, another process
        assert status.running and status.pid == pid
    finally:
        assert broker.stop() is True
    assert not broker.status().running
    assert (
        not Path(f"/proc/{pid}/cmdline").exists()
        or b"kafka.Kafka" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    assert not broker.pid_file.exists()
    assert broker.stop() is False


def test_concurrent_starts_launch_one_broker(tmp_path: Path) -> None:
    broker = _new_broker(tmp_path / "raced")
    twin = LocalBroker(
        data_dir=broker.data_dir,
        port=broker.port,
        controller_port=broker.controller_port,
        cache_dir=broker.cache_dir,
        kafka_home=broker.kafka_home,
    )
    try:
        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(lambda b: b.start(timeout_s=180), [broker, twin]))
        assert all(s.running for s in statuses)
        assert statuses[0].pid == statuses[1].pid
    finally:
        assert broker.stop() is True
    assert twin.stop() is False
