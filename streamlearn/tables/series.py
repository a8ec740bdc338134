"""Closed-window results by key, value, window spec and start: the time-series store.

One table entry per closed window (key ``<key>\\x1f<value>\\x1f<spec>\\x1f<start>``,
start zero-padded so byte order is time order), written under the entity key's
partition, so the worker that owns a key owns its series. With the RocksDB store a
range query is one ordered scan from the first key in range; the memory store (tests)
falls back to a sorted scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from streamlearn.analytics.windows import WindowStats
from streamlearn.tables.context import PartitionEvent, as_current_event

SEP = b"\x1f"
START_DIGITS = 15


def series_key(key: str, value_name: str, spec_name: str, start_ms: int) -> bytes:
    return SEP.join((key.encode(), value_name.encode(), spec_name.encode(), b"%015d" % start_ms))


def series_prefix(key: str, value_name: str, spec_name: str) -> bytes:
    return SEP.join((key.encode(), value_name.encode(), spec_name.encode())) + SEP


class SeriesStore:
    """Closed windows of every key this worker owns, in a Faust table (raw bytes)."""

    def __init__(self, table: Any, keyed_topic: str) -> None:
        self.table = table
        self.keyed_topic = keyed_topic

    def put(self, partition: int, record: dict[str, Any], stats: WindowStats) -> None:
        """Store a closed window record (as emitted) and its mergeable state."""
        key = series_key(record["key"], record["value"], record["window"], record["start"])
        with as_current_event(PartitionEvent(self.keyed_topic, partition)):
            self.table[key] = orjson.dumps({"record": record, "state": stats.to_list()})

    def delete(self, partition: int, raw_key: bytes) -> None:
        with as_current_event(PartitionEvent(self.keyed_topic, partition)):
            del self.table[raw_key]

    def range(
        self, key: str, value_name: str, spec_name: str, from_ms: int, to_ms: int
    ) -> list[dict[str, Any]]:
        """Stored entries ({"record", "state"}) with ``from_ms <= start < to_ms``, oldest
        first."""
        prefix = series_prefix(key, value_name, spec_name)
        first = prefix + b"%015d" % max(from_ms, 0)
        last = prefix + b"%015d" % max(to_ms, 0)
        out = []
        for raw_key, raw in self._scan(first):
            if raw_key >= last or not raw_key.startswith(prefix):
                break
            out.append(orjson.loads(raw))
        return out

    def entries(self) -> Iterator[tuple[int, bytes, bytes]]:
        """Every (partition, key, value) held here (for retention)."""
        store = self.table.data
        dbs = getattr(store, "_dbs", None)
        if dbs is not None:
            for partition, db in list(dbs.items()):
                for raw_key, raw in db.items():
                    yield partition, bytes(raw_key), bytes(raw)
            return
        for raw_key, raw in list(store.data.items()):  # memory store: partition unknown
            yield -1, raw_key, raw

    def _scan(self, first: bytes) -> Iterator[tuple[bytes, bytes]]:
        store = self.table.data
        dbs = getattr(store, "_dbs", None)
        if dbs is not None:
            # rocksdict: each partition DB is ordered; a key lives in one of them.
            for db in list(dbs.values()):
                found = False
                for raw_key, raw in db.items(from_key=first):
                    raw_key = bytes(raw_key)
                    if not raw_key.startswith(first[:-START_DIGITS]):
                        break
                    found = True
                    yield raw_key, bytes(raw)
                if found:
                    return
            return
        for raw_key in sorted(k for k in store.data if k >= first):
            yield raw_key, store.data[raw_key]
