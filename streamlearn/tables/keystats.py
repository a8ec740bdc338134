"""Per-key running statistics with the offset marks they have applied."""

from __future__ import annotations

import orjson

from streamlearn.analytics.running import RunningStats
from streamlearn.records import Event, StatsAggregate, ValueStats
from streamlearn.tables.marks import OffsetMarks


class KeyStats:
    """Running statistics of every value of one key, plus emission bookkeeping."""

    __slots__ = ("emitted_at_s", "emitted_events", "events", "last_ts", "marks", "values")

    def __init__(self) -> None:
        self.values: dict[str, RunningStats] = {}
        self.events = 0
        self.last_ts = 0
        self.marks = OffsetMarks()
        self.emitted_events = 0
        self.emitted_at_s = 0.0

    def apply(self, event: Event) -> bool:
        """Apply ``event`` once; False when its source offset was applied before."""
        if not self.marks.accept(event.src_partition, event.src_offset):
            return False
        values = self.values
        for name, x in event.values.items():
            stats = values.get(name)
            if stats is None:
                stats = values[name] = RunningStats()
            stats.update(x)
        self.events += 1
        if event.ts_ms > self.last_ts:
            self.last_ts = event.ts_ms
        return True

    def due(self, now_s: float, every_events: int, interval_s: float) -> bool:
        """Whether an aggregate should be emitted now."""
        pending = self.events - self.emitted_events
        if pending <= 0:
            return False
        if every_events and pending >= every_events:
            return True
        return bool(interval_s) and now_s - self.emitted_at_s >= interval_s

    def aggregate(self, key: str, now_s: float) -> StatsAggregate:
        """The aggregate record for the current state; marks it emitted."""
        self.emitted_events = self.events
        self.emitted_at_s = now_s
        return StatsAggregate(
            id=f"stats/{key}/{self.events}",
            key=key,
            ts=self.last_ts,
            events=self.events,
            values={
                name: ValueStats(s.count, s.mean, s.std, s.min, s.max)
                for name, s in self.values.items()
            },
            emitted_at=now_s,
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": {name: s.to_list() for name, s in self.values.items()},
                "n": self.events,
                "ts": self.last_ts,
                "marks": self.marks.to_pairs(),
                "emitted": [self.emitted_events, self.emitted_at_s],
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> KeyStats:
        doc = orjson.loads(raw)
        out = cls()
        out.values = {name: RunningStats.from_list(data) for name, data in doc["v"].items()}
        out.events = doc["n"]
        out.last_ts = doc["ts"]
        out.marks = OffsetMarks.from_pairs(doc["marks"])
        out.emitted_events, out.emitted_at_s = doc["emitted"]
        return out
