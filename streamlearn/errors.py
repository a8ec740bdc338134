"""The root exception of streamlearn and the narrow ones every package raises."""

from __future__ import annotations


class StreamlearnError(Exception):
    """Root of every error streamlearn raises on purpose."""


class ConfigError(StreamlearnError):
    """A setting has a value that is not allowed; the message names the setting."""


class BrokerError(StreamlearnError):
    """The local Kafka broker could not be installed, started, stopped or reached."""


class MissingToolError(BrokerError):
    """A program the local broker needs (java, mvn) is not installed."""
