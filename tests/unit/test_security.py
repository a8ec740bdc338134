"""Issue 9, security, without a broker: no pickle codec on any channel, no side-effecting
pickle ever runs unless signed with our key, every mutating endpoint needs the token, and
the local broker's SASL_SSL listener is rendered and formatted as documented."""

from __future__ import annotations

import hashlib
import hmac
import pickle
import re
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.serializers import codecs

from streamlearn.agents.checkpoint import open_checkpoint
from streamlearn.app import create_app
from streamlearn.config import Settings, load_settings
from streamlearn.errors import BrokerError
from streamlearn.kafka import LocalBroker, SaslSslListener
from streamlearn.kafka import broker as broker_module
from streamlearn.models import envelope
from streamlearn.models.envelope import (
    EnvelopeError,
    SignatureError,
    UnsignedError,
    open_envelope,
    open_strict,
    seal,
    verify,
)
from streamlearn.models.offline import load_model
from streamlearn.registry import Artifact, ArtifactRefusedError, ArtifactStore
from streamlearn.topics import Topics
from streamlearn.web.metrics import Metrics
from streamlearn.worker import build_worker

KEY = bytes(range(32))
ATTACKER_KEY = b"attacker key 0123456789abcdef000"


# --- no channel of the built worker uses a pickle codec ------------------------------------


def pickle_codecs(serializer: Any) -> list[str]:
    """The pickle-based nodes of a Faust serializer (a codec name, chain or Codec)."""
    if serializer is None:
        return []
    codec = codecs.get_codec(serializer)
    nodes = getattr(codec, "nodes", (codec,))
    return [type(n).__name__ for n in nodes if "pickle" in type(n).__name__.lower()]


def channel_codecs(channel: Any, app: faust.App) -> list[str]:
    """Every serializer ``channel`` decodes with: its own, the app default it falls back
    to, and a Record type's own serializer."""
    found = []
    for side in ("key", "value"):
        serializer = getattr(channel, f"{side}_serializer", None)
        found += pickle_codecs(serializer or getattr(app.conf, f"{side}_serializer"))
        typ = getattr(channel, f"{side}_type", None)
        options = getattr(typ, "_options", None)
        found += pickle_codecs(getattr(options, "serializer", None))
    return found


@pytest.fixture
def full_worker(tmp_path: Path) -> Any:
    """A worker with every optional agent on: anomaly, models, drift, alert webhook."""
    settings = load_settings(
        data_dir=tmp_path,
        store="memory",
        anomaly_enabled=True,
        model_enabled=True,
        drift_enabled=True,
        alert_webhook_url="https://hooks.example.com/alerts",
    )
    return build_worker(settings)


# Faust warns when a pickle codec is configured: building the worker must not.
@pytest.mark.filterwarnings("error::faust.exceptions.SecurityWarning")
def test_no_topic_table_or_agent_channel_uses_a_pickle_codec(full_worker: Any) -> None:
    app = full_worker.app
    channels: dict[str, Any] = {}
    for name, agent in app.agents.items():
        channels[f"agent {name}"] = agent.channel
    for name, table in app.tables.items():
        channels[f"table {name} changelog"] = table.changelog_topic
    for name in Topics.__dataclass_fields__:
        channels[f"topic {name}"] = getattr(full_worker.topics, name)
    for topic in app.topics:  # whatever else subscribed so far
        channels[f"conductor {topic}"] = topic
    # the walk is not vacuous: inputs, state and outputs are all in it
    assert {"agent streamlearn.ingest", "agent streamlearn.labels"} <= set(channels)
    assert {"table anomaly changelog", "table models changelog", "table drift changelog"} <= set(
        channels
    )
    assert any(name.startswith("agent streamlearn.alerts.") for name in channels)
    offenders = {name: found for name, c in channels.items() if (found := channel_codecs(c, app))}
    assert offenders == {}
    assert pickle_codecs(app.conf.key_serializer) == pickle_codecs(app.conf.value_serializer) == []


@pytest.mark.filterwarnings("ignore::faust.exceptions.SecurityWarning")
def test_the_codec_walk_would_catch_a_pickle_topic(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path, store="memory"))
    for serializer in ("pickle", "pickle_restricted", "binary|pickle", codecs.pickle()):
        topic = app.topic("x", value_serializer=serializer)
        assert channel_codecs(topic, app), serializer

    class Pickled(faust.Record, serializer="pickle"):
        x: int

    assert "raw_pickle" in channel_codecs(app.topic("y", value_type=Pickled), app)
    assert channel_codecs(app.topic("z", key_type=bytes, value_type=bytes), app) == []


# --- a side-effecting pickle never runs unless signed with our key --------------------------


class Evil:
    """Unpickling this creates ``marker``: a stand-in for any code an attacker could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def framed(payload: bytes, key: bytes, kind: str = "model") -> bytes:
    """``payload`` in a well-formed envelope (magic, HMAC, header) signed with ``key``."""
    header = orjson.dumps({"kind": kind, "versions": envelope._VERSIONS, "zlib": False})
    body = struct.pack(">I", len(header)) + header + payload
    return envelope.MAGIC + hmac.digest(key, body, hashlib.sha256) + body


def forgeries(marker: Path) -> dict[str, bytes]:
    payload = pickle.dumps(Evil(marker), protocol=5)
    ours = framed(payload, KEY)
    unsigned = envelope.MAGIC + bytes(32) + ours[36:]  # right frame, no signature at all
    tampered = bytearray(seal({"w": [0.5]}, KEY, "model"))
    header_end = 40 + struct.unpack(">I", tampered[36:40])[0]
    tampered[header_end:] = payload  # signed state, its pickle swapped for ours
    return {
        "bare pickle": payload,
        "framed, zero signature": unsigned,
        "framed, signed with another key": framed(payload, ATTACKER_KEY),
        "framed, signature of other bytes": bytes(tampered),
        "framed, our signature with one bit flipped": ours[:4] + bytes([ours[4] ^ 1]) + ours[5:],
        "framed, payload bit flipped after signing": ours[:-2] + bytes([ours[-2] ^ 1]) + ours[-1:],
    }


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "side-effect-ran"
    yield path
    assert not path.exists(), "a forged pickle was executed"


def test_the_evil_pickle_is_live(tmp_path: Path) -> None:
    """The control: loaded with plain pickle, the payload does run."""
    path = tmp_path / "control"
    pickle.loads(pickle.dumps(Evil(path)))
    assert path.exists()


@pytest.mark.parametrize("forgery", list(forgeries(Path("x"))))
def test_forged_pickles_are_refused_without_running(
    forgery: str, marker: Path, tmp_path: Path
) -> None:
    blob = forgeries(marker)[forgery]
    # checkpoints (the anomaly, models and drift tables)
    with pytest.raises(EnvelopeError):
        open_envelope(blob, KEY)
    metrics = Metrics()
    fresh = open_checkpoint(blob, KEY, dict, lambda: {"fresh": True}, metrics, "test state")
    assert fresh == {"fresh": True}
    # the registry and its artifact store
    with pytest.raises((UnsignedError, SignatureError)):
        verify(blob, KEY)
    with pytest.raises(EnvelopeError):
        open_strict(blob, KEY)
    store = ArtifactStore(tmp_path / "store", KEY)
    with pytest.raises(ArtifactRefusedError, match=r"unsigned|signature mismatch"):
        store.put(blob)
    assert not store.root.exists() or not any(store.root.iterdir())
    # swapped on shared storage together with its recorded sha256: still refused
    sha = hashlib.sha256(blob).hexdigest()
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / sha).write_bytes(blob)
    with pytest.raises(ArtifactRefusedError, match=r"unsigned|signature mismatch"):
        store.load(Artifact(sha, len(blob), "river"))
    # a model file served with model_serve_path
    path = tmp_path / "model.sle"
    path.write_bytes(blob)
    with pytest.raises(EnvelopeError):
        load_model(path, KEY)


def test_even_our_signature_does_not_let_the_registry_run_exec(marker: Path) -> None:
    blob = framed(pickle.dumps(Evil(marker), protocol=5), KEY)
    assert verify(blob, KEY)["kind"] == "model"  # a valid signature...
    with pytest.raises(EnvelopeError, match=r"refused to load builtins\.exec"):
        open_strict(blob, KEY)  # ...and still the allowlist refuses the call


# --- every mutating HTTP endpoint answers 401 without the token -----------------------------

#: POST endpoints that only compute an answer and change nothing (no token needed).
READ_ONLY_POSTS = {
    "/api/v1/predict",
    "/api/v1/predict/batch",
    "/api/v1/anomaly/{key}/score",
}
REGISTRY_WRITES = {
    "/api/v1/registry/models/{name}/versions",
    "/api/v1/registry/models/{name}/versions/{version}/promote",
    "/api/v1/registry/models/{name}/versions/{version}/archive",
    "/api/v1/registry/models/{name}/rollback",
}


def mutating_routes(settings: Settings) -> tuple[Any, list[tuple[str, str]]]:
    worker = build_worker(settings)
    worker.app.web.init_server()  # Faust's own blueprints too (stats, router)
    routes = sorted(
        {
            (route.method, route.resource.canonical)
            for route in worker.app.web.web_app.router.routes()
            if route.method not in ("GET", "HEAD", "OPTIONS") and route.resource is not None
        }
    )
    return worker, routes


def concrete(path: str) -> str:
    return path.replace("{version}", "1").replace("{", "").replace("}", "")


@pytest.mark.parametrize("token", ["t0ken-123", None])
async def test_every_mutating_endpoint_needs_the_token(tmp_path: Path, token: str | None) -> None:
    settings = load_settings(data_dir=tmp_path, store="memory", api_token=token)
    worker, routes = mutating_routes(settings)
    assert worker.app.conf.web_bind == "127.0.0.1"  # and loopback only by default
    mutating = [(m, p) for m, p in routes if p not in READ_ONLY_POSTS]
    assert {p for _, p in mutating} >= REGISTRY_WRITES
    attempts: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer guess"},
        {"Authorization": "t0ken-123"},  # no scheme
    ]
    if token is None:  # no token configured: HTTP writes are off, whatever is sent
        attempts.append({"Authorization": "Bearer t0ken-123"})
    async with TestClient(TestServer(worker.app.web.web_app)) as client:
        for method, path in mutating:
            for headers in attempts:
                reply = await client.request(
                    method, concrete(path), data=b'{"why": "x", "to": "production"}',
                    headers={"Content-Type": "application/json", **headers},
                )  # fmt: skip
                assert reply.status == 401, (method, path, headers, await reply.text())


# --- the local broker's SASL_SSL listener ---------------------------------------------------


def listener(tmp_path: Path, **kwargs: Any) -> SaslSslListener:
    values: dict[str, Any] = {
        "port": 19094,
        "keystore": tmp_path / "broker.p12",
        "keystore_password": "store-pw",
        "users": {"alice": "alice-secret"},
    }
    return SaslSslListener(**{**values, **kwargs})


def secure_broker(tmp_path: Path, **kwargs: Any) -> LocalBroker:
    return LocalBroker(
        data_dir=tmp_path / "kafka",
        cache_dir=tmp_path / "cache",
        port=19092,
        controller_port=19093,
        sasl_ssl=listener(tmp_path),
        **kwargs,
    )


def test_sasl_ssl_listener_is_added_next_to_plaintext(tmp_path: Path) -> None:
    broker = secure_broker(tmp_path)
    props = broker.render_properties()
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,SASL_SSL://127.0.0.1:19094"
    )
    assert props["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19094"
    )
    assert props["listener.security.protocol.map"] == (
        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL"
    )
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    prefix = "listener.name.sasl_ssl."
    assert props[prefix + "sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props[prefix + "scram-sha-512.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    )
    assert props[prefix + "ssl.keystore.location"] == str(tmp_path / "broker.p12")
    assert props[prefix + "ssl.keystore.type"] == "PKCS12"
    assert props[prefix + "ssl.keystore.password"] == props[prefix + "ssl.key.password"]
    assert broker.bootstrap_servers == "127.0.0.1:19092"
    assert broker.sasl_ssl_bootstrap_servers == "127.0.0.1:19094"
    assert LocalBroker(data_dir=tmp_path / "plain").sasl_ssl_bootstrap_servers is None
    # extra_properties still win over everything
    extra = {prefix + "sasl.enabled.mechanisms": "SCRAM-SHA-256"}
    props = secure_broker(tmp_path, extra_properties=extra).render_properties()
    assert props[prefix + "sasl.enabled.mechanisms"] == "SCRAM-SHA-256"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 19092}, "port 19092 is already used"),
        ({"mechanism": "PLAIN"}, "SASL mechanism must be one of"),
        ({"keystore_type": "PEM"}, "keystore_type must be PKCS12 or JKS"),
        ({"name": "PLAINTEXT"}, "taken by the broker's own listeners"),
        ({"name": "sasl"}, "upper-case"),
        ({"users": {"bob": "a,b"}}, "SCRAM user 'bob'"),
        ({"users": {"bob": ""}}, "SCRAM user 'bob'"),
        ({"users": {'b"ob': "x"}}, "SCRAM user"),
    ],
)
def test_sasl_ssl_listener_is_checked(tmp_path: Path, kwargs: Any, message: str) -> None:
    with pytest.raises(BrokerError, match=message):
        LocalBroker(
            data_dir=tmp_path / "kafka", port=19092, controller_port=19093,
            sasl_ssl=listener(tmp_path, **kwargs),
        ).render_properties()  # fmt: skip


def test_scram_users_are_created_when_storage_is_formatted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = secure_broker(tmp_path)
    broker.data_dir.mkdir(parents=True)
    commands: list[list[str]] = []

    def run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(cmd)
        # the storage tool echoes its arguments when it fails: the password must not leak
        return subprocess.CompletedProcess(cmd, 1, "", f"bad argument {cmd[-1]}")

    monkeypatch.setattr(broker_module.subprocess, "run", run)
    with pytest.raises(BrokerError) as failed:
        broker._format_storage("java", tmp_path / "lib", broker.render_properties())
    (cmd,) = commands
    assert cmd[cmd.index("format") :][-2:] == [
        "--add-scram",
        'SCRAM-SHA-512=[name="alice",password="alice-secret"]',
    ]
    assert "alice-secret" not in str(failed.value) and "***" in str(failed.value)
    plain = LocalBroker(data_dir=tmp_path / "plain", cache_dir=tmp_path / "cache")
    plain.data_dir.mkdir()
    commands.clear()
    with pytest.raises(BrokerError):
        plain._format_storage("java", tmp_path / "lib", plain.render_properties())
    assert "--add-scram" not in commands[0]


# --- docs/security.md names real settings ---------------------------------------------------


def test_the_settings_in_the_security_doc_exist() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    section = doc.split("## Settings", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)?", section, re.M))
    names = {n for pair in named for n in pair if n}
    assert len(names) >= 12
    for name in names:
        assert name.lower() in Settings.model_fields, f"docs/security.md names {name}"
    for name in ("BROKER_SECURITY_PROTOCOL", "BROKER_SSL_CAFILE", "API_TOKEN", "SECRET_KEY"):
        assert name in names
