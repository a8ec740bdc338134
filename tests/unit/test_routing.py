"""Which worker owns a key: computed without producer metadata, equal to Kafka's."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from faust.web.exceptions import ServiceUnavailable

from streamlearn.app import create_app
from streamlearn.config import load_settings
from streamlearn.tables.context import bytes_table
from streamlearn.web.routing import is_local, owner_url

KEYS = [f"sensor-{i}" for i in range(40)] + ["", "ü-ключ", "a/b c"]


def make_app(tmp_path: Path):
    settings = load_settings(
        data_dir=tmp_path, app_id="route", web_port=7001, topic_partitions=8, store="memory"
    )
    app = create_app(settings)
    table = bytes_table(app, "stats", 8, "test table")
    return app, table.changelog_topic.get_topic_name()


def test_owner_is_the_worker_holding_the_keys_kafka_partition(tmp_path: Path) -> None:
    app, topic = make_app(tmp_path)
    # Before any assignment nobody is known to own anything: "retry", not a crash.
    with pytest.raises(ServiceUnavailable):
        owner_url(app, "stats", "sensor-1")

    me, other = "http://127.0.0.1:7001", "http://127.0.0.1:7002"
    app.assignor.changelog_distribution = {
        me: {topic: [0, 2, 4, 6]},
        other: {topic: [1, 3, 5, 7]},
    }
    kafka = DefaultPartitioner()
    for key in KEYS:
        partition = kafka(key.encode(), list(range(8)), list(range(8)))
        want = me if partition % 2 == 0 else other
        got = owner_url(app, "stats", key)
        assert str(got) == want, key
        assert is_local(app, got) == (want == me)

    # A partition nobody holds (mid-rebalance): "retry".
    app.assignor.changelog_distribution = {me: {topic: [0]}}
    orphan = next(k for k in KEYS if kafka(k.encode(), list(range(8)), list(range(8))) != 0)
    with pytest.raises(ServiceUnavailable):
        owner_url(app, "stats", orphan)
