"""Per-key event-time windows: open accumulators, what has closed, offset marks.

Pure state (no Faust): the windows agent feeds it events in order and asks it to
close what the watermark has passed. A window closes for every value of the key at
once; after it closes, an event that would fall into it is late.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from streamlearn.analytics.windows import WindowSpec, WindowStats, window_id
from streamlearn.records import Event
from streamlearn.tables.marks import OffsetMarks

APPLIED = 0
REPLAYED = 1
LATE = 2


class KeyWindows:
    """Open windows of one key, per spec and value, and the end of the last closed one."""

    __slots__ = ("closed_end", "marks", "open")

    def __init__(self) -> None:
        #: spec name -> value name -> window start (ms) -> accumulator
        self.open: dict[str, dict[str, dict[int, WindowStats]]] = {}
        #: spec name -> end (ms) of the latest window closed for this key
        self.closed_end: dict[str, int] = {}
        self.marks = OffsetMarks()

    def apply(
        self, event: Event, specs: Sequence[WindowSpec], watermark_ms: int, grace_ms: int
    ) -> int:
        """Apply ``event`` to every window it falls in; APPLIED, REPLAYED or LATE.

        Late: one of its windows has closed for this key, or the partition's watermark
        is past that window's end + grace. A late event changes nothing (not even the
        offset marks), so its dead letter is sent again if it is replayed.
        """
        if self.marks.seen(event.src_partition, event.src_offset):
            return REPLAYED
        ts = event.ts_ms
        windows = []
        for spec in specs:
            starts = spec.windows_for(ts)
            first_end = min(starts) + spec.size_ms
            if first_end <= self.closed_end.get(spec.name, -1) or (
                first_end + grace_ms <= watermark_ms
            ):
                return LATE
            windows.append((spec, starts))
        self.marks.accept(event.src_partition, event.src_offset)
        for spec, starts in windows:
            per_value = self.open.get(spec.name)
            if per_value is None:
                per_value = self.open[spec.name] = {}
            for name, x in event.values.items():
                per_start = per_value.get(name)
                if per_start is None:
                    per_start = per_value[name] = {}
                for start in starts:
                    stats = per_start.get(start)
                    if stats is None:
                        stats = per_start[start] = WindowStats()
                    stats.update(x, ts)
        return APPLIED

    def next_close_ms(self, specs: Sequence[WindowSpec], grace_ms: int) -> int | None:
        """The watermark at which the earliest open window closes (None: nothing open)."""
        best: int | None = None
        for spec in specs:
            for per_start in self.open.get(spec.name, {}).values():
                if per_start:
                    due = min(per_start) + spec.size_ms + grace_ms
                    if best is None or due < best:
                        best = due
        return best

    def close(
        self, key: str, specs: Sequence[WindowSpec], grace_ms: int, watermark_ms: int | None
    ) -> list[tuple[dict[str, Any], WindowStats]]:
        """Close every window whose end + grace <= watermark (all of them when None).

        Returns (final record, accumulator) pairs, oldest first, and forgets them.
        """
        records: list[tuple[dict[str, Any], WindowStats]] = []
        for spec in specs:
            per_value = self.open.get(spec.name)
            if not per_value:
                continue
            for value_name in list(per_value):
                per_start = per_value[value_name]
                for start in sorted(per_start):
                    end = start + spec.size_ms
                    if watermark_ms is not None and end + grace_ms > watermark_ms:
                        break
                    stats = per_start.pop(start)
                    records.append((window_record(key, value_name, spec, start, stats), stats))
                    if end > self.closed_end.get(spec.name, -1):
                        self.closed_end[spec.name] = end
                if not per_start:
                    del per_value[value_name]
            if not per_value:
                del self.open[spec.name]
        records.sort(key=lambda pair: (pair[0]["end"], pair[0]["window"], pair[0]["value"]))
        return records

    def open_windows(self) -> int:
        return sum(len(s) for per_value in self.open.values() for s in per_value.values())

    def open_results(self, spec_name: str, value_name: str) -> Iterable[tuple[int, WindowStats]]:
        return sorted(self.open.get(spec_name, {}).get(value_name, {}).items())

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "open": {
                    spec: {
                        name: {str(start): s.to_list() for start, s in per_start.items()}
                        for name, per_start in per_value.items()
                    }
                    for spec, per_value in self.open.items()
                },
                "closed": self.closed_end,
                "marks": self.marks.to_pairs(),
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> KeyWindows:
        doc = orjson.loads(raw)
        out = cls()
        out.open = {
            spec: {
                name: {int(start): WindowStats.from_list(data) for start, data in per_start.items()}
                for name, per_start in per_value.items()
            }
            for spec, per_value in doc["open"].items()
        }
        out.closed_end = {spec: int(end) for spec, end in doc["closed"].items()}
        out.marks = OffsetMarks.from_pairs(doc["marks"])
        return out


def window_record(
    key: str, value_name: str, spec: WindowSpec, start: int, stats: WindowStats
) -> dict[str, Any]:
    return {
        "kind": "window",
        "id": window_id(key, value_name, spec.name, start),
        "key": key,
        "value": value_name,
        "window": spec.name,
        "start": start,
        "end": start + spec.size_ms,
        "stats": stats.result(),
        "closed": True,
    }
