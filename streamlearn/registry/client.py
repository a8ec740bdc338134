"""The model registry client: a live view of the registry topic, and every change.

One class serves the CLI (start, act, stop) and the worker (started with the app, the
view tailing the topic in the background, so every worker sees the same registry).
Writes go through the topic and return once this client's view holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from streamlearn.config import Settings
from streamlearn.registry.artifacts import ArtifactStore, is_saved_model
from streamlearn.registry.entry import ModelEntry, ModelVersion, check_name, now_iso
from streamlearn.registry.errors import (
    ConcurrentChangeError,
    ModelNotFoundError,
    RegistryError,
    RegistryInputError,
    RegistryUnavailableError,
)
from streamlearn.registry.state import RegistryState, encode
from streamlearn.registry.topic import ensure_registry_topic

__all__ = ["RegistryClient", "default_actor"]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Re-publications of the winning document after a lost race (see state.py).
REPAIR_ATTEMPTS = 5


def default_actor() -> str:
    """``user@host`` of this process: who made a change when nobody says."""
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # no user name in some containers
        return f"unknown@{socket.gethostname()}"


class RegistryClient:
    """The registry of ``settings``: metadata on its topic, artifacts in its store.

    Use as ``async with RegistryClient(settings) as client: ...`` or ``start()`` /
    ``stop()``; in a worker, :meth:`run` keeps it started for the app's lifetime.
    Reads (:meth:`get`, :meth:`entry`, :meth:`entries`) answer from the local view;
    :meth:`sync` first catches it up with the topic. Writes raise
    :class:`~streamlearn.registry.errors.ConcurrentChangeError` when another writer
    changed the same model at the same time (nothing of this write is kept: retry).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: ArtifactStore | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.topic = settings.topic("registry")
        self.timeout_s = timeout_s
        self.state = RegistryState()
        self._store = store
        self._tp = TopicPartition(self.topic, 0)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._tail_task: asyncio.Task[None] | None = None
        self._position = 0
        self._progress = asyncio.Event()
        self._ready = asyncio.Event()
        self._write_lock = asyncio.Lock()

    @property
    def store(self) -> ArtifactStore:
        if self._store is None:
            self._store = ArtifactStore(self.settings.registry_path(), self.settings.signing_key())
        return self._store

    # --- lifecycle ------------------------------------------------------------------
    async def __aenter__(self) -> RegistryClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Create the topic if needed, connect, and read the registry to its end."""
        if self._consumer is not None:
            return
        try:
            await asyncio.wait_for(self._start(), self.timeout_s)
        except RegistryError:
            await self.stop()
            raise
        except Exception as exc:  # aiokafka raises several unrelated types
            await self.stop()
            raise RegistryUnavailableError(
                f"cannot reach Kafka at {self.settings.bootstrap_servers} for the model "
                f"registry ({exc!r})"
            ) from None
        self._ready.set()

    async def _start(self) -> None:
        await ensure_registry_topic(self.settings, self.timeout_s)
        options = self.settings.kafka_client_options()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            acks="all",
            compression_type="gzip",  # a name's JSON document compresses ~10x
            **options,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            **options,
        )
        await self._consumer.start()
        self._consumer.assign([self._tp])
        await self._consumer.seek_to_beginning(self._tp)
        self._tail_task = asyncio.create_task(self._tail(), name="streamlearn.registry.tail")
        await self.sync()

    async def stop(self) -> None:
        self._ready.clear()
        task, self._tail_task = self._tail_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        for client in (consumer, producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()

    async def run(self) -> None:
        """Start (retrying while Kafka cannot be reached) and stay started until cancelled."""
        try:
            while True:
                try:
                    await self.start()
                    break
                except RegistryError as exc:
                    log.warning("model registry: %s; retrying in 5 s", exc)
                    await asyncio.sleep(5)
            await asyncio.Event().wait()
        finally:
            await self.stop()

    @property
    def ready(self) -> bool:
        """Whether the view has read the registry topic to its end once."""
        return self._ready.is_set()

    async def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Until the view has read the registry once; else RegistryUnavailableError."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            raise RegistryUnavailableError(
                f"the model registry is not ready (cannot read {self.topic} yet); retry"
            ) from None

    async def _tail(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(self._tp, timeout_ms=500)
                for record in batches.get(self._tp, []):
                    self.state.apply(record.key, record.value, record.offset)
                self._position = await consumer.position(self._tp)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("model registry: reading %s failed; retrying", self.topic)
                await asyncio.sleep(1)
                continue
            progress, self._progress = self._progress, asyncio.Event()
            progress.set()

    async def _wait_position(self, target: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while self._position < target:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RegistryUnavailableError(
                    f"the registry view did not reach offset {target} of {self.topic} "
                    f"in {self.timeout_s:g} s"
                )
            progress = self._progress
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.wait(), remaining)

    async def sync(self) -> None:
        """Catch the view up with every record written to the topic so far."""
        if self._consumer is None:
            raise RegistryUnavailableError("the registry client is not started")
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        await self._wait_position(end)

    # --- reading --------------------------------------------------------------------
    def entries(self) -> list[ModelEntry]:
        """Every model, by name (copies: changing them changes nothing)."""
        return [self.entry(name) for name in sorted(self.state.entries)]

    def entry(self, name: str) -> ModelEntry:
        found = self.state.entries.get(name)
        if found is None:
            known = ", ".join(sorted(self.state.entries)) or "none"
            raise ModelNotFoundError(f"no model named {name!r} in the registry (models: {known})")
        return ModelEntry.from_dict(found.to_dict())

    def get(self, name: str, ref: int | str = "latest") -> ModelVersion:
        """A version of ``name``: a number, ``"latest"`` or a stage (its newest version)."""
        return self.entry(name).get(ref)

    def load(self, version: ModelVersion) -> Any:
        """The object of ``version``, once its artifact passed every check."""
        return self.store.load(version.artifact)

    # --- writing --------------------------------------------------------------------
    async def register(
        self,
        name: str,
        obj: Any,
        *,
        kind: str | None = None,
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        training_data: str | None = None,
        created_by: str | None = None,
        description: str = "",
    ) -> ModelVersion:
        """Sign ``obj`` into the artifact store and register it as the next version (dev)."""
        check_name(name)
        blob = await asyncio.to_thread(self.store.seal, obj, kind)
        return await self.register_blob(
            name,
            blob,
            params=params,
            metrics=metrics,
            training_data=training_data,
            created_by=created_by,
            description=description,
        )

    async def register_blob(
        self,
        name: str,
        blob: bytes,
        *,
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        training_data: str | None = None,
        created_by: str | None = None,
        description: str = "",
    ) -> ModelVersion:
        """Register a signed envelope (e.g. a ``streamlearn train --save`` file).

        Refused (:class:`~streamlearn.registry.errors.ArtifactRefusedError`) unless it is
        signed with this app's key, by the installed River/scikit-learn majors, and loads.
        A model saved by ``streamlearn train`` lends its params and metrics by default.
        """
        check_name(name)
        for label, value in (("params", params), ("metrics", metrics)):
            if value is not None and not isinstance(value, dict):
                raise RegistryInputError(f"{label} must be a JSON object")
        artifact, header, obj = await asyncio.to_thread(self.store.put, blob)
        if is_saved_model(obj):
            params = params if params is not None else dict(obj.params)
            metrics = metrics if metrics is not None else dict(obj.metrics)
        versions = header.get("versions")

        def add(entry: ModelEntry, at: str) -> ModelVersion:
            return entry.add(
                artifact,
                at=at,
                created_by=created_by or default_actor(),
                description=description,
                params=params,
                metrics=metrics,
                training_data=training_data,
                library_versions=dict(versions) if isinstance(versions, dict) else {},
            )

        return await self._change(name, add, create=True)

    async def promote(
        self, name: str, version: int, to: str, *, by: str | None = None, why: str
    ) -> ModelVersion:
        """Move ``version`` to ``to`` (staging or production); the old production archives."""
        actor = by or default_actor()
        return await self._change(
            name, lambda e, at: e.promote(_number(version), to, by=actor, why=why, at=at)
        )

    async def archive(
        self, name: str, version: int, *, by: str | None = None, why: str = ""
    ) -> ModelVersion:
        actor = by or default_actor()
        return await self._change(
            name, lambda e, at: e.archive(_number(version), by=actor, why=why, at=at)
        )

    async def rollback(self, name: str, *, by: str | None = None, why: str) -> ModelVersion:
        """Production goes back to the version before the current one; returns it."""
        actor = by or default_actor()
        return await self._change(name, lambda e, at: e.rollback(by=actor, why=why, at=at))

    async def _change(
        self, name: str, change: Callable[[ModelEntry, str], T], *, create: bool = False
    ) -> T:
        check_name(name)
        if self._producer is None:
            raise RegistryUnavailableError("the registry client is not started")
        async with self._write_lock:
            await self.sync()
            current = self.state.entries.get(name)
            if current is None and not create:
                self.entry(name)  # raises ModelNotFoundError naming the known models
            entry = ModelEntry.from_dict(current.to_dict()) if current else ModelEntry(name)
            at = now_iso()
            result = change(entry, at)
            entry.revision = (current.revision if current else 0) + 1
            entry.updated_at = at
            offset = await self._publish(entry)
            if self.state.accepted.get(name) != offset:
                await self._repair(name, offset)
                raise ConcurrentChangeError(
                    f"concurrent change: {name} was changed by another writer at the same "
                    "time; this change was not applied, retry"
                )
            return result

    async def _publish(self, entry: ModelEntry) -> int:
        assert self._producer is not None
        key, value = encode(entry)
        metadata = await self._producer.send_and_wait(self.topic, value, key=key, partition=0)
        await self._wait_position(metadata.offset + 1)
        return int(metadata.offset)

    async def _repair(self, name: str, ours: int) -> None:
        """Make the last record of ``name`` an accepted one again, so compaction keeps it."""
        for _ in range(REPAIR_ATTEMPTS):
            winner = self.state.entries.get(name)
            if winner is None or self.state.last.get(name) == self.state.accepted.get(name):
                return
            winner = ModelEntry.from_dict(winner.to_dict())
            winner.revision += 1
            log.warning("model registry: lost a race on %s (offset %d); re-publishing", name, ours)
            await self._publish(winner)


def _number(version: int | str) -> int:
    if isinstance(version, bool) or not str(version).isdigit():
        raise RegistryInputError(f"version must be a number, got {version!r}")
    return int(version)
