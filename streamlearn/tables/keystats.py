"""Per-key running statistics with the offset marks they have applied."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import orjson

from streamlearn.analytics.running import DecayedMean, PairStats, RunningStats
from streamlearn.records import Event, StatsAggregate, ValueStats
from streamlearn.tables.marks import OffsetMarks

OTHER_CATEGORY = "__other__"


@dataclass(frozen=True, slots=True)
class StatsOptions:
    """What KeyStats tracks besides count/mean/variance/min/max (from Settings)."""

    ewma_half_life_ms: float = 60_000.0
    #: correlations are kept for every pair of a key's values up to this many values
    max_pair_values: int = 8
    #: distinct categories counted per attribute; the rest count as ``__other__``
    max_categories: int = 50


def pair_name(a: str, b: str) -> str:
    return f"{a}|{b}"


class KeyStats:
    """Running statistics of every value of one key, plus emission bookkeeping.

    Per value: count, mean, variance, min, max and an event-time EWMA; per pair of
    values: covariance and correlation; per attribute: category counts; per key: the
    event rate over its event-time span.
    """

    __slots__ = (
        "attrs",
        "emitted_at_s",
        "emitted_events",
        "events",
        "ewma",
        "first_ts",
        "last_ts",
        "marks",
        "options",
        "pairs",
        "values",
    )

    def __init__(self, options: StatsOptions | None = None) -> None:
        self.options = options or StatsOptions()
        self.values: dict[str, RunningStats] = {}
        self.ewma: dict[str, DecayedMean] = {}
        self.pairs: dict[str, PairStats] = {}
        self.attrs: dict[str, dict[str, int]] = {}
        self.events = 0
        self.first_ts = 0
        self.last_ts = 0
        self.marks = OffsetMarks()
        self.emitted_events = 0
        self.emitted_at_s = 0.0

    def apply(self, event: Event) -> bool:
        """Apply ``event`` once; False when its source offset was applied before."""
        if not self.marks.accept(event.src_partition, event.src_offset):
            return False
        values, ewma, ts = self.values, self.ewma, event.ts_ms
        for name, x in event.values.items():
            stats = values.get(name)
            if stats is None:
                stats = values[name] = RunningStats()
                ewma[name] = DecayedMean(self.options.ewma_half_life_ms)
            stats.update(x)
            ewma[name].update(x, ts)
        if 1 < len(event.values) <= self.options.max_pair_values:
            for a, b in combinations(sorted(event.values), 2):
                name = pair_name(a, b)
                pair = self.pairs.get(name)
                if pair is None:
                    pair = self.pairs[name] = PairStats()
                pair.update(event.values[a], event.values[b])
        if event.attrs:
            self._count_attrs(event.attrs)
        if self.events == 0 or ts < self.first_ts:
            self.first_ts = ts
        if ts > self.last_ts:
            self.last_ts = ts
        self.events += 1
        return True

    def _count_attrs(self, attrs: dict[str, str]) -> None:
        for name, category in attrs.items():
            counts = self.attrs.get(name)
            if counts is None:
                counts = self.attrs[name] = {}
            if category not in counts and len(counts) >= self.options.max_categories:
                category = OTHER_CATEGORY
            counts[category] = counts.get(category, 0) + 1

    @property
    def rate_per_s(self) -> float | None:
        """Events per second of event time between the key's first and last event."""
        span_ms = self.last_ts - self.first_ts
        return (self.events - 1) * 1000.0 / span_ms if self.events > 1 and span_ms > 0 else None

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
                name: ValueStats(s.count, s.mean, s.std, s.min, s.max, self.ewma[name].mean)
                for name, s in self.values.items()
            },
            emitted_at=now_s,
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": {name: s.to_list() for name, s in self.values.items()},
                "e": {name: m.to_list() for name, m in self.ewma.items()},
                "p": {name: p.to_list() for name, p in self.pairs.items()},
                "a": self.attrs,
                "n": self.events,
                # Where "every N events" counts from: a key that moves to another
                # worker (or restarts) publishes at the same counts as it would have.
                "m": self.emitted_events,
                "ts": [self.first_ts, self.last_ts],
                "marks": self.marks.to_pairs(),
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes, options: StatsOptions | None = None) -> KeyStats:
        doc = orjson.loads(raw)
        out = cls(options)
        half_life = out.options.ewma_half_life_ms
        out.values = {name: RunningStats.from_list(data) for name, data in doc["v"].items()}
        out.ewma = {name: DecayedMean.from_list(half_life, d) for name, d in doc["e"].items()}
        out.pairs = {name: PairStats.from_list(data) for name, data in doc["p"].items()}
        out.attrs = doc["a"]
        out.events = doc["n"]
        out.emitted_events = doc.get("m", 0)  # absent in state written before it was kept
        out.first_ts, out.last_ts = doc["ts"]
        out.marks = OffsetMarks.from_pairs(doc["marks"])
        return out
