"""Find the Kafka jars: an installed release ($KAFKA_HOME/libs) or a Maven-fetched cache."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from streamlearn.errors import BrokerError, MissingToolError
from streamlearn.kafka.probes import file_lock
from streamlearn.kafka.properties import package_text

# Newest release on Maven Central when this was written that starts here (OpenJDK 17)
# and serves aiokafka 0.14; see the comment at the top of pom.xml.
DEFAULT_KAFKA_VERSION = "4.4.0"
MARKER = ".complete"
_VERSION = re.compile(r"\d+\.\d+\.\d+")
_INSTALL_HINTS = {
    "java": "install OpenJDK 17+ (apt-get install openjdk-17-jre-headless)",
    "mvn": "install Apache Maven (apt-get install maven) to fetch the Kafka jars, "
    "or set KAFKA_HOME to an unpacked Kafka release",
}


def require_tool(name: str) -> str:
    """The absolute path of ``name`` on PATH, or MissingToolError saying what to install."""
    found = shutil.which(name)
    if found is None:
        hint = _INSTALL_HINTS.get(name, f"install {name}")
        raise MissingToolError(f"{name} not found on PATH: {hint}")
    return found


def default_cache_root() -> Path:
    """``$XDG_CACHE_HOME/streamlearn``, else ``~/.cache/streamlearn``."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "streamlearn"


def resolve_kafka_home(
    kafka_home: str | Path | None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The Kafka installation to take jars from, or None to use the Maven cache.

    An explicit ``kafka_home`` must be a Kafka release (a ``libs`` dir with the broker
    jar). ``$KAFKA_HOME`` is used only if it exists, so a stale variable does not break
    the Maven path; if it exists but is not a Kafka release that is an error.
    """
    env = os.environ if environ is None else environ
    if kafka_home is not None and str(kafka_home) != "":
        home, source = Path(kafka_home).expanduser(), "kafka_home"
    elif env.get("KAFKA_HOME") and Path(env["KAFKA_HOME"]).expanduser().exists():
        home, source = Path(env["KAFKA_HOME"]).expanduser(), "$KAFKA_HOME"
    else:
        return None
    libs = home / "libs"
    if not any(libs.glob("kafka_2.1*.jar")):
        raise BrokerError(f"{source}={home} is not a Kafka release: no {libs}/kafka_2.13-*.jar")
    return home.resolve()


def cache_dir_for(version: str, cache_root: Path | None = None) -> Path:
    """The per-version directory holding ``lib/``, the pom and the marker file."""
    if not _VERSION.fullmatch(version):
        raise BrokerError(f"Kafka version must look like 4.4.0, got {version!r}")
    return (cache_root or default_cache_root()).expanduser().resolve() / f"kafka-{version}"


def ensure_maven_jars(
    version: str = DEFAULT_KAFKA_VERSION,
    cache_root: Path | None = None,
    *,
    timeout_s: float = 1800,
) -> Path:
    """Fetch Kafka ``version`` and its logging backend with Maven once; return ``lib/``.

    Later calls see the marker file and return at once. The copy goes to a scratch
    directory renamed into place, and a file lock serialises concurrent callers, so an
    interrupted or parallel fetch never leaves a half-filled ``lib/`` that looks done.
    """
    base = cache_dir_for(version, cache_root)  # validates the version string first
    if int(version.split(".")[0]) < 4:
        # pom.xml carries the log4j2 backend of 4.x; 3.x would need reload4j instead.
        raise BrokerError(
            f"Kafka {version} is not supported from Maven (4.x only); "
            "set KAFKA_HOME to an unpacked 3.x release instead"
        )
    lib = base / "lib"
    if _complete(base, lib, version):
        return lib
    mvn = require_tool("mvn")
    base.mkdir(parents=True, exist_ok=True)
    with file_lock(base / ".lock"):
        if _complete(base, lib, version):  # another process finished while we waited
            return lib
        pom = base / "pom.xml"
        pom.write_text(package_text("pom.xml"), encoding="utf-8")
        scratch = base / "lib.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        cmd = [mvn, "-B", "-q", "-Dstyle.color=never", "dependency:copy-dependencies"]
        cmd += [f"-DoutputDirectory={scratch}", "-DincludeScope=runtime"]
        cmd += [f"-Dkafka.version={version}", "-f", str(pom)]
        started = time.monotonic()
        try:
            done = subprocess.run(
                cmd, cwd=base, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            msg = f"mvn did not fetch Kafka {version} within {timeout_s:.0f} s"
            raise BrokerError(msg) from exc
        if done.returncode != 0 or not (scratch / f"kafka_2.13-{version}.jar").exists():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
            raise BrokerError(
                f"mvn could not fetch Kafka {version} (exit {done.returncode}) with {pom}:\n{tail}"
            )
        shutil.rmtree(lib, ignore_errors=True)
        scratch.rename(lib)
        jars = sorted(p.name for p in lib.glob("*.jar"))
        info = {"version": version, "seconds": round(time.monotonic() - started, 1), "jars": jars}
        (base / MARKER).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return lib


def _complete(base: Path, lib: Path, version: str) -> bool:
    return (base / MARKER).exists() and (lib / f"kafka_2.13-{version}.jar").exists()
