"""Render server.properties for the local broker and read Java properties back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from string import Template

from streamlearn.errors import BrokerError

TEMPLATE = "server.properties.template"
BROKER_LOG4J = "broker-log4j2.properties"
TOOLS_LOG4J = "tools-log4j2.properties"


def package_text(name: str) -> str:
    """The text of a data file shipped inside ``streamlearn.kafka``."""
    return files("streamlearn.kafka").joinpath(name).read_text(encoding="utf-8")


def parse_properties(text: str) -> dict[str, str]:
    """Parse the simple ``key=value`` subset of Java properties that we write.

    Enough for our template and our own output: no line continuations, and only the
    escapes :func:`format_properties` produces.
    """
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise BrokerError(f"not a key=value line in properties: {raw!r}")
        result[key.strip()] = _unescape(value.strip())
    return result


def format_properties(props: Mapping[str, str]) -> str:
    """Serialise to Java properties; backslashes and newlines in values are escaped."""
    lines = ["# Written by streamlearn.kafka; edits are overwritten on the next start."]
    for key, value in props.items():
        if not key or any(c in key for c in "=:# \t\n\\"):
            raise BrokerError(f"unsupported Kafka property name {key!r}")
        lines.append(f"{key}={_escape(str(value))}")
    return "\n".join(lines) + "\n"


def render_server_properties(
    *,
    port: int,
    controller_port: int,
    log_dir: Path,
    partitions: int,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The broker's properties: the template filled in, then ``extra`` on top.

    ``extra`` wins over the template for any key, so a caller can replace
    ``listeners`` wholesale. Readiness checks and ``bootstrap_servers`` still speak
    PLAINTEXT to 127.0.0.1:``port``, so that listener must survive an override.
    """
    if port == controller_port:
        raise BrokerError(f"broker port and controller port are both {port}")
    if partitions < 1:
        raise BrokerError(f"partitions must be >= 1, got {partitions}")
    text = Template(package_text(TEMPLATE)).substitute(
        broker_port=port,
        controller_port=controller_port,
        log_dir=str(log_dir),
        partitions=partitions,
    )
    props = parse_properties(text)
    props.update({str(k): str(v) for k, v in (extra or {}).items()})
    _check_plaintext_listener(props, port)
    return props


def log_dirs(props: Mapping[str, str]) -> list[Path]:
    """The data directories Kafka will use (``log.dirs``, else ``log.dir``)."""
    value = props.get("log.dirs") or props.get("log.dir") or "/tmp/kafka-logs"
    return [Path(p.strip()) for p in value.split(",") if p.strip()]


def _check_plaintext_listener(props: Mapping[str, str], port: int) -> None:
    protocols = dict(
        item.split(":", 1)
        for item in props.get("listener.security.protocol.map", "").split(",")
        if ":" in item
    )
    for listener in props.get("listeners", "").split(","):
        match = re.fullmatch(r"\s*([A-Za-z0-9_]+)://([^,]*):(\d+)\s*", listener)
        if not match or int(match.group(3)) != port:
            continue
        name, host = match.group(1), match.group(2)
        if protocols.get(name, name) == "PLAINTEXT" and host in ("127.0.0.1", "localhost"):
            return
    raise BrokerError(
        f"the broker properties have no PLAINTEXT listener on 127.0.0.1:{port}; "
        "streamlearn needs it for readiness checks (keep it when overriding 'listeners')"
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _unescape(value: str) -> str:
    # Inverse of _escape only; real Java properties allow more escapes than we write.
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
