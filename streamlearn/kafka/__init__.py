"""A local single-node Apache Kafka broker (KRaft mode) run from Maven Central jars."""

from __future__ import annotations

from streamlearn.kafka.broker import BrokerStatus, LocalBroker, free_port
from streamlearn.kafka.jars import DEFAULT_KAFKA_VERSION
from streamlearn.kafka.properties import SaslSslListener

__all__ = ["DEFAULT_KAFKA_VERSION", "BrokerStatus", "LocalBroker", "SaslSslListener", "free_port"]
