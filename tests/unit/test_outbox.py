"""The outbox's sending logic, against a stand-in for Faust's producer (pure logic)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from streamlearn.outbox import Outbox, OutboxTopic
from streamlearn.topics import TOPIC_NAMES, Topics


class FakeProducer:
    """Acknowledges records, except the failures scripted per value (in order)."""

    def __init__(self, failures: dict[bytes, list[BaseException]] | None = None) -> None:
        self.failures = failures or {}
        self.sent: list[tuple[Any, ...]] = []
        self.acked: list[bytes] = []

    async def send(self, topic, key, value, partition, timestamp, headers):
        self.sent.append((topic, key, value, partition, headers))
        future = asyncio.get_running_loop().create_future()
        queued = self.failures.get(value)
        if queued:
            future.set_exception(queued.pop(0))
        else:
            self.acked.append(value)
            future.set_result(None)
        return future


class FakeTopic:
    def __init__(self, name: str) -> None:
        self.name = name
        self.partitions = 4

    def get_topic_name(self) -> str:
        return self.name


def outbox(producer: FakeProducer) -> Outbox:
    return Outbox(SimpleNamespace(producer=producer), retry_backoff_s=0.0)  # type: ignore[arg-type]


def test_flush_sends_in_order_and_empties() -> None:
    producer = FakeProducer()
    box = outbox(producer)
    for i in range(5):
        box.add("t", b"k", b"v%d" % i, headers=[("h", b"x")] if i == 2 else None)
    assert len(box) == 5
    asyncio.run(box.flush())
    assert producer.acked == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    assert producer.sent[2] == ("t", b"k", b"v2", None, [("h", b"x")])
    assert len(box) == 0
    asyncio.run(box.flush())  # nothing pending: nothing sent
    assert len(producer.sent) == 5


def test_retriable_failures_are_sent_again_until_acknowledged() -> None:
    producer = FakeProducer({b"b": [KafkaTimeoutError(), KafkaTimeoutError()]})
    box = outbox(producer)
    for value in (b"a", b"b", b"c"):
        box.add("t", None, value)
    asyncio.run(box.flush())
    assert sorted(producer.acked) == [b"a", b"b", b"c"]
    assert [s[2] for s in producer.sent].count(b"b") == 3
    assert box.dropped == 0


def test_a_record_refused_for_good_is_dropped_not_retried_forever() -> None:
    producer = FakeProducer({b"huge": [MessageSizeTooLargeError()]})
    box = outbox(producer)
    box.add("t", None, b"huge")
    box.add("t", None, b"fine")
    asyncio.run(box.flush())
    assert producer.acked == [b"fine"]
    assert box.dropped == 1
    assert [s[2] for s in producer.sent].count(b"huge") == 1


def test_topics_wrapper_collects_send_soon_and_keeps_the_rest() -> None:
    producer = FakeProducer()
    box = outbox(producer)
    topics = Topics(**{name: FakeTopic(f"p.{name}") for name in TOPIC_NAMES})  # type: ignore[arg-type]
    sends = box.topics(topics)
    assert isinstance(sends.predictions, OutboxTopic)
    assert sends.predictions.get_topic_name() == "p.predictions"
    assert sends.predictions.partitions == 4  # everything but sending is the topic's
    sends.predictions.send_soon(key=b"k", value=b"p")
    sends.deadletter.send_soon(key=b"k", value=b"d", partition=2, headers=[("e", b"1")])
    assert len(box) == 2 and producer.sent == []
    asyncio.run(box.flush())
    assert producer.sent == [
        ("p.predictions", b"k", b"p", None, None),
        ("p.deadletter", b"k", b"d", 2, [("e", b"1")]),
    ]


def test_a_send_that_raises_at_once_is_retried_too() -> None:
    class RaisingOnce(FakeProducer):
        raised = False

        async def send(self, topic, key, value, partition, timestamp, headers):
            if not self.raised:
                self.raised = True
                raise KafkaTimeoutError()  # e.g. metadata not available while the broker is down
            return await super().send(topic, key, value, partition, timestamp, headers)

    producer = RaisingOnce()
    box = outbox(producer)
    box.add("t", None, b"x")
    asyncio.run(box.flush())
    assert producer.acked == [b"x"]
