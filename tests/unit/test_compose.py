"""The container files agree with the code: Dockerfile, docker-compose.yml, Prometheus.

Nothing here runs Docker. The files are parsed and checked against what the worker
really accepts (``Settings``) and against each other (ports, names, data dir), so a
typo in a STREAMLEARN_* variable or a port that drifted fails here instead of in a
container that silently ignores it.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from streamlearn.config import CONFIG_ENV, ENV_PREFIX, Settings, load_settings
from streamlearn.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
POM = ROOT / "streamlearn" / "kafka" / "pom.xml"
PROMETHEUS_CONFIG_IN_CONTAINER = "/etc/prometheus/prometheus.yml"
LOOPBACK = "127.0.0.1"


# --- parsing -----------------------------------------------------------------------


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR-default} / ${VAR} / $$, with no VAR set."""
    value = re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)
    return value.replace("$$", "$")


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):  # YAML true/false; compose wants them quoted anyway
        return str(value).lower()
    return _interpolate(str(value))


def _service_env(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's `environment` (mapping or list form); None = taken from the shell."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {key: _as_str(value) for key, value in pairs}
    return {key: _as_str(value) for key, value in env.items()}


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # a comment line inside a continuation is dropped too, as Docker does
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    if pending:
        keyword, _, args = pending.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def _env_pairs(args: str) -> dict[str, str]:
    """ENV arguments: `k=v k2="v 2"` or the legacy `k v`."""
    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens)


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _exec_or_shell(args: str) -> list[str]:
    """CMD/ENTRYPOINT/HEALTHCHECK CMD arguments as a list (JSON or shell form)."""
    args = args.strip()
    if args.startswith("["):
        return yaml.safe_load(args)  # a JSON array is YAML too
    return ["/bin/sh", "-c", args]


def _parse_port(entry: Any) -> dict[str, str | None]:
    """A compose `ports` entry (short or long syntax) as host_ip/published/target."""
    if isinstance(entry, dict):
        published = entry.get("published")
        return {
            "host_ip": entry.get("host_ip"),
            "published": str(published) if published not in (None, "") else None,
            "target": str(entry.get("target")),
        }
    spec = str(entry).rsplit("/", 1)[0]  # drop /tcp, /udp
    host_ip = None
    if spec.startswith("["):  # [::1]:8080:80
        host_ip, _, spec = spec[1:].partition("]:")
    parts = spec.split(":")
    if len(parts) == 3:
        host_ip, published, target = parts
    elif len(parts) == 2:
        published, target = parts
    else:
        published, target = None, parts[0]
    return {"host_ip": host_ip or None, "published": published or None, "target": target}


def _parse_volume(entry: Any) -> dict[str, str | None]:
    """A compose `volumes` entry as type/source/target."""
    if isinstance(entry, dict):
        return {
            "type": entry.get("type", "volume"),
            "source": entry.get("source"),
            "target": entry.get("target"),
        }
    parts = str(entry).split(":")
    if len(parts) == 1:
        return {"type": "volume", "source": None, "target": parts[0]}
    source, target = parts[0], parts[1]
    kind = "bind" if source.startswith((".", "/", "~", "$")) else "volume"
    return {"type": kind, "source": source, "target": target}


def _kafka_version_from_pom(pom: Path) -> str:
    """The version of org.apache.kafka:kafka_2.13, resolving a ${property}."""
    root = ET.parse(pom).getroot()
    ns = {"m": root.tag[1:].split("}")[0]} if root.tag.startswith("{") else {}
    p = "m:" if ns else ""
    version = None
    for dep in root.iterfind(f".//{p}dependencies/{p}dependency", ns):
        if dep.findtext(f"{p}artifactId", namespaces=ns) == "kafka_2.13":
            version = (dep.findtext(f"{p}version", namespaces=ns) or "").strip()
    if not version:
        version = (root.findtext(f"{p}properties/{p}kafka.version", namespaces=ns) or "").strip()
    ref = re.fullmatch(r"\$\{([^}]+)\}", version or "")
    if ref:
        version = (root.findtext(f"{p}properties/{p}{ref.group(1)}", namespaces=ns) or "").strip()
    assert version and re.fullmatch(r"\d+\.\d+\.\d+\S*", version), (
        f"{pom}: no literal kafka_2.13 version (got {version!r})"
    )
    return version


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the files under test may supply STREAMLEARN_* values."""
    for key in list(os.environ):
        if key.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return _dockerfile_instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def image_env(dockerfile: list[tuple[str, str]]) -> dict[str, str]:
    """ENV of the final (runtime) stage: what a container starts with."""
    env: dict[str, str] = {}
    for keyword, args in _final_stage(dockerfile):
        if keyword == "ENV":
            env.update(_env_pairs(args))
    return env


@pytest.fixture(scope="module")
def worker_env(image_env: dict[str, str], services: dict[str, Any]) -> dict[str, str]:
    """The worker container's STREAMLEARN_* environment: image ENV, then compose's."""
    env = {k: v for k, v in image_env.items() if k.startswith(ENV_PREFIX)}
    for key, value in _service_env(services["worker"]).items():
        if key.startswith(ENV_PREFIX) and value is not None:
            env[key] = value
    return env


@pytest.fixture
def worker_settings(worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings exactly as the worker builds them: from its environment variables."""
    for key, value in worker_env.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def _declared_streamlearn_vars() -> list[tuple[str, str, str | None]]:
    """(where, NAME, value) for every STREAMLEARN_* set in the compose file or Dockerfile."""
    found: list[tuple[str, str, str | None]] = []
    for keyword, args in _dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "ENV":
            found += [("Dockerfile", k, v) for k, v in _env_pairs(args).items()]
    for name, service in yaml.safe_load(COMPOSE_FILE.read_text())["services"].items():
        found += [(f"compose:{name}", k, v) for k, v in _service_env(service).items()]
    return [item for item in found if item[1].upper().startswith(ENV_PREFIX)]


# --- compose: services and images ----------------------------------------------------


def test_services_exist(services: dict[str, Any]) -> None:
    assert {"kafka", "worker", "prometheus"} <= set(services)


def test_kafka_image_matches_the_local_broker_major_version(services: dict[str, Any]) -> None:
    image = services["kafka"]["image"]
    repo, _, tag = image.rpartition(":")
    assert repo == "apache/kafka", f"kafka image {image!r} is not the official apache/kafka"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"pin a full version, not {tag!r}"
    pom_version = _kafka_version_from_pom(POM)
    assert tag.split(".")[0] == pom_version.split(".")[0], (
        f"compose runs Kafka {tag}, the local broker (pom.xml) Kafka {pom_version}"
    )


def test_pom_version_parsing(tmp_path: Path) -> None:
    """Both pom styles the real one may take: a property, or a literal version."""
    ns = 'xmlns="http://maven.apache.org/POM/4.0.0"'
    dep = "<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>"
    (tmp_path / "a.xml").write_text(
        f"<project {ns}><properties><kafka.version>4.2.1</kafka.version></properties>"
        f"<dependencies>{dep}<version>${{kafka.version}}</version></dependency>"
        "</dependencies></project>"
    )
    (tmp_path / "b.xml").write_text(
        f"<project><dependencies>{dep}<version>3.9.1</version></dependency></dependencies>"
        "</project>"
    )
    (tmp_path / "c.xml").write_text(f"<project {ns}><dependencies/></project>")
    assert _kafka_version_from_pom(tmp_path / "a.xml") == "4.2.1"
    assert _kafka_version_from_pom(tmp_path / "b.xml") == "3.9.1"
    with pytest.raises(AssertionError):
        _kafka_version_from_pom(tmp_path / "c.xml")


# --- STREAMLEARN_* variables are real settings with valid values -------------------------


def test_streamlearn_variables_are_declared() -> None:
    where = {w for w, _, _ in _declared_streamlearn_vars()}
    assert {"Dockerfile", "compose:worker"} <= where


@pytest.mark.parametrize(
    ("where", "name", "value"),
    _declared_streamlearn_vars(),
    ids=lambda item: str(item),
)
def test_streamlearn_variable_is_a_valid_setting(where: str, name: str, value: str | None) -> None:
    if name.upper() == CONFIG_ENV:
        return  # the settings file's path, not a setting
    field = name[len(ENV_PREFIX) :].lower()
    assert field in Settings.model_fields, (
        f"{where}: {name} is not a setting; the worker would silently ignore it"
    )
    if value is not None:
        try:
            load_settings(**{field: value})
        except ConfigError as exc:
            pytest.fail(f"{where}: {name}={value!r} is rejected:\n{exc}")


def test_worker_environment_as_a_whole(worker_settings: Settings) -> None:
    """The combined worker environment passes the cross-field checks too."""
    assert not worker_settings.uses_local_broker
    # Prometheus and the other containers reach the worker from outside its loopback.
    assert worker_settings.web_host == "0.0.0.0"
    assert worker_settings.web_enabled


def test_worker_reaches_kafka_on_its_advertised_listener(
    services: dict[str, Any], worker_settings: Settings
) -> None:
    advertised = _service_env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"] or ""
    endpoints = {item.split("://", 1)[1] for item in advertised.split(",")}
    for hostport in worker_settings.bootstrap_servers.split(","):
        assert hostport in endpoints, f"worker uses {hostport}, kafka advertises {advertised}"


def test_topic_partitions_allow_scaling(worker_settings: Settings) -> None:
    assert worker_settings.topic_partitions >= 3


# --- ports and volumes: loopback only, and --scale worker=N works ------------------------


def test_every_published_port_binds_loopback(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for entry in service.get("ports", []):
            port = _parse_port(entry)
            assert port["host_ip"] == LOOPBACK, f"{name}: {entry!r} is published beyond {LOOPBACK}"


def test_kafka_host_listener_is_published(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    advertised = _service_env(kafka)["KAFKA_ADVERTISED_LISTENERS"] or ""
    host_ports = {
        item.rsplit(":", 1)[1] for item in advertised.split(",") if "://localhost:" in item
    }
    assert host_ports, f"no listener advertised for host clients (localhost) in {advertised}"
    published = {(p["published"], p["target"]) for p in map(_parse_port, kafka.get("ports", []))}
    for port in host_ports:
        # The advertised port is what clients dial back, so host and container port match.
        assert (port, port) in published, f"localhost:{port} is advertised but not published"


def test_worker_can_be_scaled(services: dict[str, Any], worker_settings: Settings) -> None:
    worker = services["worker"]
    assert "container_name" not in worker, "a fixed container_name breaks --scale"
    for entry in worker.get("ports", []):
        assert _parse_port(entry)["published"] is None, (
            f"worker publishes the fixed host port {entry!r}: a second replica cannot bind it"
        )
    data_dir = PurePosixPath(worker_settings.data_dir)
    for entry in worker.get("volumes", []):
        volume = _parse_volume(entry)
        target = PurePosixPath(str(volume["target"]))
        overlaps = target == data_dir or target in data_dir.parents or data_dir in target.parents
        if overlaps:
            assert volume["type"] in ("volume", "tmpfs") and not volume["source"], (
                f"worker mounts {entry!r} over its data dir {data_dir}: replicas would share "
                "one RocksDB directory; use an anonymous volume"
            )


def test_worker_waits_for_a_healthy_kafka(services: dict[str, Any]) -> None:
    depends = services["worker"].get("depends_on")
    assert isinstance(depends, dict), "worker.depends_on needs the long form with a condition"
    assert depends["kafka"]["condition"] == "service_healthy"
    assert services["kafka"].get("healthcheck", {}).get("test"), "kafka has no healthcheck"


# --- Prometheus -------------------------------------------------------------------------


def _prometheus_config(services: dict[str, Any]) -> dict[str, Any]:
    for entry in services["prometheus"].get("volumes", []):
        volume = _parse_volume(entry)
        if volume["target"] == PROMETHEUS_CONFIG_IN_CONTAINER:
            assert volume["type"] == "bind", f"{entry!r} is not a file from the repository"
            source = (COMPOSE_FILE.parent / str(volume["source"])).resolve()
            assert source.is_file(), f"{source} is mounted into prometheus but does not exist"
            return yaml.safe_load(source.read_text())
    pytest.fail(f"prometheus mounts nothing at {PROMETHEUS_CONFIG_IN_CONTAINER}")


def test_prometheus_is_an_official_image(services: dict[str, Any]) -> None:
    assert services["prometheus"]["image"].split(":")[0] == "prom/prometheus"


def test_prometheus_scrapes_every_worker(
    services: dict[str, Any], worker_settings: Settings
) -> None:
    config = _prometheus_config(services)
    default_interval = config.get("global", {}).get("scrape_interval", "1m")
    jobs = []
    for job in config.get("scrape_configs", []):
        if job.get("metrics_path", "/metrics") != "/metrics":
            continue
        dns = [
            sd
            for sd in job.get("dns_sd_configs", [])
            if sd.get("type") in ("A", "AAAA")
            and sd.get("port") == worker_settings.web_port
            and set(sd.get("names", [])) & {"worker", "tasks.worker"}
        ]
        static = [
            target
            for sc in job.get("static_configs", [])
            for target in sc.get("targets", [])
            if target == f"worker:{worker_settings.web_port}"
        ]
        if dns or static:
            jobs.append(job)
    assert jobs, f"no scrape job targets the worker service on port {worker_settings.web_port}"
    for job in jobs:
        assert job.get("metrics_path") == "/metrics"
        assert job.get("scrape_interval", default_interval) == "5s"


def test_prometheus_rule_files_are_mounted(services: dict[str, Any]) -> None:
    """Each rule file resolves, next to the mounted config, to a mounted repository file."""
    config = _prometheus_config(services)
    rule_files = config.get("rule_files") or []
    assert rule_files, "prometheus.yml loads no alerting rules"
    mounts = {
        volume["target"]: volume
        for volume in map(_parse_volume, services["prometheus"].get("volumes", []))
    }
    config_dir = PurePosixPath(PROMETHEUS_CONFIG_IN_CONTAINER).parent
    for rule_file in rule_files:
        target = str(config_dir / rule_file)
        assert target in mounts, f"{rule_file} ({target}) is not mounted into prometheus"
        source = (COMPOSE_FILE.parent / str(mounts[target]["source"])).resolve()
        assert mounts[target]["type"] == "bind" and source.is_file(), source
        # The same relative path from the repository's config file, for promtool.
        assert source == (ROOT / "deploy" / rule_file).resolve()
        assert yaml.safe_load(source.read_text())["groups"], f"{source} has no rule groups"


# --- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_healthcheck_hits_the_health_endpoint(
    dockerfile: list[tuple[str, str]], worker_settings: Settings
) -> None:
    checks = [args for keyword, args in _final_stage(dockerfile) if keyword == "HEALTHCHECK"]
    assert len(checks) == 1, "the runtime stage needs exactly one HEALTHCHECK"
    command = re.split(r"\bCMD\b", checks[0], maxsplit=1)
    assert len(command) == 2, f"HEALTHCHECK without CMD: {checks[0]!r}"
    argv = _exec_or_shell(command[1])
    url = f"http://127.0.0.1:{worker_settings.web_port}/api/v1/health"
    assert any(url in arg for arg in argv), f"HEALTHCHECK does not request {url}: {argv}"


def test_dockerfile_runs_the_worker_unprivileged(dockerfile: list[tuple[str, str]]) -> None:
    stage = _final_stage(dockerfile)
    base = stage[0][1].split()[0]
    build_args = dict(
        rest.split("=", 1) for keyword, rest in dockerfile if keyword == "ARG" and "=" in rest
    )
    base = re.sub(r"\$\{?(\w+)\}?", lambda m: build_args.get(m.group(1), m.group(0)), base)
    assert base.startswith("python:3.11-slim"), f"runtime image is {base}"

    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the worker runs as root"

    entrypoints = [_exec_or_shell(rest) for keyword, rest in stage if keyword == "ENTRYPOINT"]
    cmds = [_exec_or_shell(rest) for keyword, rest in stage if keyword == "CMD"]
    assert entrypoints[-1:] == [["streamlearn"]] and cmds[-1:] == [["worker"]]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "streamlearn" in scripts, "ENTRYPOINT names a console script pyproject lacks"


def test_dockerfile_exposes_the_web_port_and_data_volume(
    dockerfile: list[tuple[str, str]], worker_settings: Settings
) -> None:
    stage = _final_stage(dockerfile)
    exposed = {p.split("/")[0] for k, a in stage if k == "EXPOSE" for p in a.split()}
    assert str(worker_settings.web_port) in exposed

    volumes: set[str] = set()
    for keyword, rest in stage:
        if keyword == "VOLUME":
            volumes |= set(_exec_or_shell(rest) if rest.startswith("[") else rest.split())
    assert str(worker_settings.data_dir) in volumes, "the data dir is not a VOLUME"


# --- the parsers themselves (so a parser bug cannot make the checks above vacuous) ------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("127.0.0.1:9090:9090", {"host_ip": "127.0.0.1", "published": "9090", "target": "9090"}),
        ("9090:9090", {"host_ip": None, "published": "9090", "target": "9090"}),
        ("6066", {"host_ip": None, "published": None, "target": "6066"}),
        ("127.0.0.1::6066/tcp", {"host_ip": "127.0.0.1", "published": None, "target": "6066"}),
        ("[::1]:80:8080", {"host_ip": "::1", "published": "80", "target": "8080"}),
        (
            {"target": 80, "published": "8080"},
            {"host_ip": None, "published": "8080", "target": "80"},
        ),
    ],
)
def test_parse_port(entry: Any, expected: dict[str, str | None]) -> None:
    assert _parse_port(entry) == expected


@pytest.mark.parametrize(
    ("entry", "kind", "source"),
    [
        ("/data", "volume", None),
        ("state:/data", "volume", "state"),
        ("./data:/data", "bind", "./data"),
        ("/srv/x:/data:ro", "bind", "/srv/x"),
        ({"type": "volume", "target": "/data"}, "volume", None),
        ({"type": "bind", "source": "./d", "target": "/data"}, "bind", "./d"),
    ],
)
def test_parse_volume(entry: Any, kind: str, source: str | None) -> None:
    volume = _parse_volume(entry)
    assert (volume["type"], volume["source"]) == (kind, source)


def test_parse_dockerfile() -> None:
    text = (
        "# syntax=docker/dockerfile:1\nFROM python:3.11-slim AS build\nFROM python:3.11-slim\n"
        'ENV A=1 \\\n    # a comment\n    STREAMLEARN_X="a b"\nENV LEGACY value with spaces\n'
    )
    stage = _final_stage(_dockerfile_instructions(text))
    envs = [_env_pairs(a) for k, a in stage if k == "ENV"]
    assert envs == [{"A": "1", "STREAMLEARN_X": "a b"}, {"LEGACY": "value with spaces"}]
    assert _interpolate("${N:-12}/${M}/$$") == "12//$"
