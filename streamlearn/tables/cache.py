"""Write-back cache in front of a Faust table.

Per-event table writes each produce a changelog record; this cache keeps decoded
state in memory, marks keys dirty, and writes each dirty key once per batch, so
changelog traffic grows with keys, not events. Writes happen before the batch's
offsets are acked, and Faust flushes the producer before it commits offsets, so a
committed offset never runs ahead of the state it produced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from faust.types import EventT

from streamlearn.tables.context import as_current_event

logger = logging.getLogger(__name__)

#: Largest state value written: a changelog record must fit Kafka's default message
#: size limit (1 MB for the producer, the broker and the topic).
MAX_STATE_BYTES = 900_000

StateT = TypeVar("StateT")


class StateCache(Generic[StateT]):
    """Decoded per-key state backed by ``table`` (raw bytes keys and values).

    Keys are raw UTF-8 bytes, exactly as on the keyed topic, so a table partition holds
    the keys of the same topic partition and Faust's router finds the owning worker.
    """

    def __init__(
        self,
        table: Any,
        *,
        decode: Callable[[bytes], StateT],
        encode: Callable[[StateT], bytes],
        factory: Callable[[], StateT],
    ) -> None:
        self.table = table
        self._decode = decode
        self._encode = encode
        self._factory = factory
        self._states: dict[str, StateT] = {}
        self._dirty: dict[str, EventT] = {}
        #: states not written because they were over MAX_STATE_BYTES
        self.oversized = 0

    def get(self, key: str, event: EventT) -> StateT:
        """The state of ``key``, loaded from the table under ``event``'s partition."""
        state = self._states.get(key)
        if state is None:
            with as_current_event(event):
                raw = self.table.get(key.encode())
            state = self._decode(raw) if raw is not None else self._factory()
            self._states[key] = state
        return state

    def peek(self, key: str) -> StateT | None:
        """The cached state of ``key``, without loading it."""
        return self._states.get(key)

    def lookup(self, key: str) -> StateT | None:
        """The state of ``key`` if this worker holds it: cached, else read from the table
        (not cached: a query must not change what the next batch writes)."""
        state = self._states.get(key)
        if state is None:
            raw = self.table.get(key.encode())
            state = self._decode(raw) if raw is not None else None
        return state

    def put(self, key: str, state: StateT) -> None:
        """Cache ``state`` (read elsewhere, e.g. by a state scan) without writing it."""
        self._states[key] = state

    def mark_dirty(self, key: str, event: EventT) -> None:
        self._dirty[key] = event

    def flush(self) -> int:
        """Write every dirty key once; returns how many were written."""
        written = 0
        for key, event in self._dirty.items():
            raw = self._encode(self._states[key])
            if len(raw) > MAX_STATE_BYTES:
                # Sending it would crash the producer (and the worker): keep the last
                # checkpoint that fit, and say so.
                self.oversized += 1
                logger.error(
                    "state of key %r is %d bytes, over the %d-byte limit of a changelog "
                    "record: not checkpointed (a crash would fall back to its last checkpoint)",
                    key,
                    len(raw),
                    MAX_STATE_BYTES,
                )
                continue
            with as_current_event(event):
                self.table[key.encode()] = raw
            written += 1
        self._dirty.clear()
        return written

    def clear(self) -> None:
        """Forget cached state (on rebalance: partitions may have moved)."""
        self._states.clear()
        self._dirty.clear()

    def items(self) -> Iterator[tuple[str, StateT]]:
        return iter(self._states.items())

    def __len__(self) -> int:
        return len(self._states)
