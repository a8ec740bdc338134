"""A real single-node Kafka broker (KRaft, broker+controller in one JVM) on 127.0.0.1.

Linux only: process identity is read from /proc.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from streamlearn.errors import BrokerError
from streamlearn.kafka.jars import (
    DEFAULT_KAFKA_VERSION,
    ensure_maven_jars,
    require_tool,
    resolve_kafka_home,
)
from streamlearn.kafka.probes import (
    cmdline,
    file_lock,
    log_excerpt,
    metadata_ok,
    port_answers,
    port_free,
    run_sync,
)
from streamlearn.kafka.properties import (
    BROKER_LOG4J,
    TOOLS_LOG4J,
    SaslSslListener,
    format_properties,
    log_dirs,
    package_text,
    render_server_properties,
)

_POLL_S = 0.2
# Written by KafkaRaftServer once every listener is bound and the broker is unfenced.
_STARTED_LINE = "Kafka Server started"
# Starts java in the background and prints its pid, then exits: the broker is never
# our child, so it outlives the CLI that started it and never lingers as our zombie.
_LAUNCH = '"$@" </dev/null >>"$0" 2>&1 & echo $!'


@dataclass(frozen=True)
class BrokerStatus:
    """What :meth:`LocalBroker.status` found."""

    running: bool
    pid: int | None
    bootstrap_servers: str
    log_file: Path
    detail: str


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalBroker:
    """Install (jars), format, start, probe and stop one broker whose files are in data_dir.

    Layout of ``data_dir``: ``server.properties``, ``kraft/`` (Kafka's log dir),
    ``broker.pid``, ``broker.log`` (previous run in ``broker.log.1``), ``cluster.id``
    and the two log4j2 files the JVMs are given.

    ``sasl_ssl`` adds a second client listener (TLS + SASL/SCRAM, its users created
    when the storage is first formatted) next to the PLAINTEXT one, which stays.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int = 9092,
        controller_port: int = 9093,
        cache_dir: Path | None = None,
        kafka_home: str | Path | None = None,
        heap_mb: int = 512,
        partitions: int = 4,
        kafka_version: str = DEFAULT_KAFKA_VERSION,
        extra_properties: Mapping[str, str] | None = None,
        sasl_ssl: SaslSslListener | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port
        self.controller_port = controller_port
        self.cache_dir = cache_dir
        self.kafka_home = kafka_home
        self.heap_mb = heap_mb
        self.partitions = partitions
        self.kafka_version = kafka_version
        self.extra_properties = dict(extra_properties or {})
        self.sasl_ssl = sasl_ssl
        self.properties_file = self.data_dir / "server.properties"
        self.log_dir = self.data_dir / "kraft"
        self.pid_file = self.data_dir / "broker.pid"
        self.log_file = self.data_dir / "broker.log"
        self.cluster_id_file = self.data_dir / "cluster.id"

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>``, the PLAINTEXT listener clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str | None:
        """``127.0.0.1:<port>`` of the SASL_SSL listener, None without one."""
        return None if self.sasl_ssl is None else self.sasl_ssl.bootstrap_servers

    def render_properties(self) -> dict[str, str]:
        """The broker properties this object would start with (template + extras)."""
        return render_server_properties(
            port=self.port,
            controller_port=self.controller_port,
            log_dir=self.log_dir,
            partitions=self.partitions,
            extra=self.extra_properties,
            sasl_ssl=self.sasl_ssl,
        )

    def ensure_jars(self) -> Path:
        """The directory whose ``*`` is the classpath, fetching jars with Maven if needed."""
        home = resolve_kafka_home(self.kafka_home)
        if home is not None:
            return home / "libs"
        return ensure_maven_jars(self.kafka_version, self.cache_dir)

    # --- lifecycle -----------------------------------------------------------------

    def start(self, timeout_s: float = 120) -> BrokerStatus:
        """Start the broker and wait until it serves metadata; no-op if it already runs.

        A broker launched here that does not become ready in time is stopped again,
        and BrokerError carries the tail of its log.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Two concurrent starters (say, two CLI calls) must not launch two JVMs.
        with file_lock(self.data_dir / ".start.lock"):
            launching = self._live_pid() is None  # else ours, running or still starting
            if launching:
                self._launch(*self._prepare())
            try:
                self.wait_ready(timeout_s)
            except BrokerError:
                if launching:
                    self.stop(timeout_s=10)
                raise
        return self.status()

    def _prepare(self) -> tuple[str, Path]:
        """Check ports and tools, fetch jars, write properties, format: (java, lib)."""
        ports = [self.port, self.controller_port]
        if self.sasl_ssl is not None:
            ports.append(self.sasl_ssl.port)
        for port in ports:
            if not port_free(port):
                raise BrokerError(
                    f"port {port} on 127.0.0.1 is already in use by something that is not "
                    f"the broker of {self.data_dir}; stop it or choose another port"
                )
        java = require_tool("java")
        lib = self.ensure_jars()
        props = self.render_properties()
        self.properties_file.write_text(format_properties(props), encoding="utf-8")
        self._format_storage(java, lib, props)
        return java, lib

    def stop(self, timeout_s: float = 30) -> bool:
        """SIGTERM the broker, SIGKILL it after ``timeout_s``; True if one was running."""
        pid = self._live_pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout_s):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not self._wait_gone(pid, 10):
                raise BrokerError(f"broker pid {pid} survived SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> BrokerStatus:
        """Running means: the pid file names a live ``java ... kafka.Kafka`` for this
        data_dir AND the broker port accepts connections. Stale pid files are removed."""
        pid = self._read_pid()
        if pid is None:
            return self._status(False, None, "not running")
        if not self._is_our_broker(pid):
            self.pid_file.unlink(missing_ok=True)
            return self._status(False, None, f"not running (removed stale pid file: {pid})")
        if port_answers(self.port):
            return self._status(True, pid, f"running, pid {pid}, on {self.bootstrap_servers}")
        return self._status(
            False, pid, f"pid {pid} is alive but {self.bootstrap_servers} does not answer yet"
        )

    def wait_ready(self, timeout_s: float) -> None:
        """Poll until the broker has finished starting and answers metadata requests.

        "Finished" is the log line Kafka writes after every listener is bound: the
        first listener can answer metadata while a later one fails to bind and the
        broker shuts down again, so an answer alone is not enough.

        Raises BrokerError with the log tail if the process is not running or dies,
        or on timeout.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            pid = self._read_pid()
            if pid is None or not self._is_our_broker(pid):
                raise BrokerError(
                    f"the broker of {self.data_dir} is not running"
                    + ("" if pid is None else f" (pid {pid} exited)")
                    + self._log_tail()
                )
            left = deadline - time.monotonic()
            if (
                self._startup_logged()
                and port_answers(self.port)
                and run_sync(metadata_ok(self.bootstrap_servers, left))
            ):
                return
            if time.monotonic() + _POLL_S > deadline:
                raise BrokerError(
                    f"the broker (pid {pid}) did not answer metadata requests on "
                    f"{self.bootstrap_servers} within {timeout_s:.0f} s" + self._log_tail()
                )
            time.sleep(_POLL_S)

    # --- internals -----------------------------------------------------------------

    def _startup_logged(self) -> bool:
        # The log is rotated at launch, so the line belongs to the running process.
        try:
            return _STARTED_LINE in self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return False

    def _status(self, running: bool, pid: int | None, detail: str) -> BrokerStatus:
        return BrokerStatus(running, pid, self.bootstrap_servers, self.log_file, detail)

    def _cluster_id(self) -> str:
        if self.cluster_id_file.exists():
            return self.cluster_id_file.read_text(encoding="utf-8").strip()
        cluster_id = new_cluster_id()
        self.cluster_id_file.write_text(cluster_id + "\n", encoding="utf-8")
        return cluster_id

    def _log4j_file(self, name: str) -> Path:
        # A real file for -Dlog4j2.configurationFile, even if the package is zipped.
        path = self.data_dir / name
        path.write_text(package_text(name), encoding="utf-8")
        return path

    def _format_storage(self, java: str, lib: Path, props: Mapping[str, str]) -> None:
        if all((d / "meta.properties").exists() for d in log_dirs(props)):
            return  # formatted before; skipping saves a JVM start
        cmd = [
            java,
            "-Xmx256m",
            f"-Dlog4j2.configurationFile={self._log4j_file(TOOLS_LOG4J)}",
            "-cp",
            f"{lib}/*",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self._cluster_id(),
            "-c",
            str(self.properties_file),
            "--ignore-formatted",
            *(self.sasl_ssl.scram_arguments() if self.sasl_ssl is not None else []),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BrokerError("kafka.tools.StorageTool format took over 180 s") from exc
        if done.returncode != 0:
            out = (done.stdout + done.stderr).strip().splitlines()[-20:]
            for password in self.sasl_ssl.users.values() if self.sasl_ssl else ():
                out = [line.replace(password, "***") for line in out]
            raise BrokerError(
                f"formatting {self.log_dir} failed (exit {done.returncode}):\n" + "\n".join(out)
            )

    def _java_command(self, java: str, lib: Path) -> list[str]:
        cmd = [
            java,
            f"-Xms{self.heap_mb}m",
            f"-Xmx{self.heap_mb}m",
            # GC flags as in Kafka's own kafka-server-start.sh / kafka-run-class.sh.
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._log4j_file(BROKER_LOG4J)}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
        ]
        reload4j = lib.parent / "config" / "log4j.properties"
        if reload4j.exists():  # a 3.x $KAFKA_HOME logs through reload4j, not log4j2
            cmd.append(f"-Dlog4j.configuration=file:{reload4j}")
        return [*cmd, "-cp", f"{lib}/*", "kafka.Kafka", str(self.properties_file)]

    def _launch(self, java: str, lib: Path) -> int:
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))
        launcher = subprocess.run(
            ["/bin/sh", "-c", _LAUNCH, str(self.log_file), *self._java_command(java, lib)],
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            start_new_session=True,  # no terminal signals, outlives our session
        )
        out = launcher.stdout.strip()
        if launcher.returncode != 0 or not out.isdigit():
            raise BrokerError(f"could not launch java: {launcher.stderr.strip() or out}")
        pid = int(out)
        # $! is known before the child has exec'd java; until it has, its cmdline is
        # still sh's and _is_our_broker() would call a healthy start "exited".
        deadline = time.monotonic() + 10
        while cmdline(pid) and not self._is_our_broker(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.pid_file.write_text(f"{pid}\n", encoding="utf-8")
        return pid

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            return None

    def _live_pid(self) -> int | None:
        """The pid of our broker process if it is alive; drops a stale pid file."""
        pid = self._read_pid()
        if pid is not None and not self._is_our_broker(pid):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def _is_our_broker(self, pid: int) -> bool:
        # Match java + kafka.Kafka + our properties file, so a recycled pid or another
        # data_dir's broker is never mistaken for ours. Zombies have an empty cmdline.
        argv = cmdline(pid)
        return bool(argv) and (
            Path(argv[0]).name.startswith("java")
            and "kafka.Kafka" in argv
            and str(self.properties_file) in argv
        )

    def _wait_gone(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._is_our_broker(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _log_tail(self) -> str:
        return log_excerpt(self.log_file)


def new_cluster_id() -> str:
    """A random cluster id in Kafka's Uuid text form (22 chars of url-safe base64)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka's Uuid.randomUuid() avoids these too
            return text
