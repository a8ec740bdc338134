"""Render server.properties for the local broker and read Java properties back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from string import Template

from streamlearn.errors import BrokerError

TEMPLATE = "server.properties.template"
BROKER_LOG4J = "broker-log4j2.properties"
TOOLS_LOG4J = "tools-log4j2.properties"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@dataclass(frozen=True)
class SaslSslListener:
    """A second client listener on 127.0.0.1: TLS, then SASL/SCRAM with ``users``.

    ``keystore`` holds the broker's key and certificate chain (``keystore_type``
    PKCS12 or JKS, one password for the store and the key). ``users`` (name ->
    password) become SCRAM credentials when the broker's storage is formatted, that is
    on its first start only.
    """

    port: int
    keystore: Path
    keystore_password: str
    keystore_type: str = "PKCS12"
    mechanism: str = "SCRAM-SHA-512"
    users: Mapping[str, str] = field(default_factory=dict)
    name: str = "SASL_SSL"

    def __post_init__(self) -> None:
        if self.keystore_type not in ("PKCS12", "JKS"):
            raise BrokerError(f"keystore_type must be PKCS12 or JKS, got {self.keystore_type!r}")
        if self.mechanism not in SCRAM_MECHANISMS:
            raise BrokerError(f"SASL mechanism must be one of {SCRAM_MECHANISMS}")
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", self.name):
            raise BrokerError(f"listener name must be upper-case letters/digits/_: {self.name!r}")
        if self.name in ("PLAINTEXT", "CONTROLLER"):
            raise BrokerError(f"listener name {self.name} is taken by the broker's own listeners")
        for user, password in self.users.items():
            # The storage tool splits its argument on ',' and strips one pair of quotes.
            if not user or not password or any(c in user + password for c in ',"[]\n'):
                raise BrokerError(
                    f"SCRAM user {user!r}: name and password must be non-empty and "
                    'hold none of , " [ ] or a newline'
                )

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def properties(self) -> dict[str, str]:
        """The listener's own keys: ``listener.name.<name>.*``."""
        prefix = f"listener.name.{self.name.lower()}."
        return {
            f"{prefix}sasl.enabled.mechanisms": self.mechanism,
            f"{prefix}{self.mechanism.lower()}.sasl.jaas.config": _SCRAM_LOGIN,
            f"{prefix}ssl.keystore.type": self.keystore_type,
            f"{prefix}ssl.keystore.location": str(self.keystore),
            f"{prefix}ssl.keystore.password": self.keystore_password,
            # openssl and keytool write PKCS12 stores with one password for store and key.
            f"{prefix}ssl.key.password": self.keystore_password,
        }

    def scram_arguments(self) -> list[str]:
        """``--add-scram`` arguments of ``kafka-storage format`` for ``users``."""
        args = []
        for user, password in self.users.items():
            args += ["--add-scram", f'{self.mechanism}=[name="{user}",password="{password}"]']
        return args


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
    sasl_ssl: SaslSslListener | None = None,
) -> dict[str, str]:
    """The broker's properties: the template filled in, ``sasl_ssl`` added, then
    ``extra`` on top.

    ``extra`` wins over the template for any key, so a caller can replace
    ``listeners`` wholesale. Readiness checks and ``bootstrap_servers`` still speak
    PLAINTEXT to 127.0.0.1:``port``, so that listener must survive an override.
    Inter-broker and controller traffic stay PLAINTEXT on loopback either way.
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
    if sasl_ssl is not None:
        if sasl_ssl.port in (port, controller_port):
            raise BrokerError(f"the SASL_SSL listener's port {sasl_ssl.port} is already used")
        endpoint = f"{sasl_ssl.name}://127.0.0.1:{sasl_ssl.port}"
        props["listeners"] += "," + endpoint
        props["advertised.listeners"] += "," + endpoint
        props["listener.security.protocol.map"] += f",{sasl_ssl.name}:SASL_SSL"
        props.update(sasl_ssl.properties())
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
