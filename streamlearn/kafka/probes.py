"""Small probes LocalBroker uses: process identity, ports, metadata, the broker log."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import re
import socket
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")
# A log4j line at ERROR/FATAL, as written by broker-log4j2.properties.
_ERROR_LINE = re.compile(r"^\[[^\]]+\] (ERROR|FATAL) ")


def cmdline(pid: int) -> list[str]:
    """The argv of process ``pid``; empty if it is gone or a zombie (Linux /proc)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone, or not ours to read
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def port_answers(port: int, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_free(port: int) -> bool:
    """Whether we could listen on 127.0.0.1:``port`` now."""
    # Bind, not connect: also catches a listener on another address (e.g. 0.0.0.0).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def metadata_ok(bootstrap_servers: str, timeout_s: float) -> bool:
    """Whether a Kafka metadata request succeeds and names at least one broker."""
    from aiokafka.client import AIOKafkaClient  # imported late: only needed when probing

    timeout_s = max(1.0, min(timeout_s, 10.0))
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return bool(client.cluster.brokers())
    except Exception:  # any failure just means "not ready yet"; the caller polls
        return False
    finally:
        await client.close()


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def log_excerpt(log_file: Path, errors: int = 5, tail: int = 25) -> str:
    """The first ERROR/FATAL lines (with the exception line after each) and the tail.

    A broker that fails logs its cause early and then pages of orderly shutdown, so
    the tail alone rarely says why.
    """
    try:
        lines = log_file.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
    except FileNotFoundError:
        return f"\n(no broker log at {log_file})"
    found: list[str] = []
    for i, line in enumerate(lines):
        if len(found) >= 2 * errors:
            break
        if _ERROR_LINE.match(line):
            found.append(line)
            after = lines[i + 1] if i + 1 < len(lines) else ""
            if after and not after.startswith(("[", "\t")):
                found.append(after)  # e.g. "KafkaException: ... Address already in use"
    text = ""
    if found:
        text += f"\n--- errors in {log_file} ---\n" + "\n".join(found)
    return text + f"\n--- last {tail} lines of {log_file} ---\n" + "\n".join(lines[-tail:])


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if missing) for the ``with`` body."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
