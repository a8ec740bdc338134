"""The event-time watermark of one keyed-topic partition.

Events reach a keyed partition from every partition of the events topic, interleaved
however the ingest agent happened to read them; after a restart one source partition
can run far ahead of another. So the watermark is the *minimum* over source
partitions of the highest event time each has delivered, minus the allowed lateness,
and a source that has sent nothing for the idle timeout stops holding it back.
"""

from __future__ import annotations

import orjson

NO_WATERMARK = -(2**62)


class Watermark:
    """Per-source maxima and the watermark they imply.

    Examples
    --------
    >>> wm = Watermark(lateness_ms=100, idle_timeout_s=30)
    >>> wm.observe(1, 5_000, now_s=0.0, sources=2)
    >>> wm.current(now_s=1.0) < 0  # source 0 not heard from yet
    True
    >>> wm.observe(0, 1_000, now_s=0.0)
    >>> wm.current(now_s=1.0)   # held back by source 0
    900
    >>> wm.current(now_s=31.0)  # ... until both are idle: then the highest counts
    4900
    """

    __slots__ = (
        "idle_timeout_s",
        "last_seen_s",
        "lateness_ms",
        "max_ts",
        "sources",
        "started_s",
        "unheard_timeout_s",
    )

    def __init__(
        self,
        lateness_ms: int,
        idle_timeout_s: float,
        started_s: float = 0.0,
        unheard_timeout_s: float | None = None,
    ) -> None:
        self.lateness_ms = lateness_ms
        self.idle_timeout_s = idle_timeout_s
        #: how long a source never heard from holds the watermark (default: idle timeout)
        self.unheard_timeout_s = idle_timeout_s if unheard_timeout_s is None else unheard_timeout_s
        self.max_ts: dict[int, int] = {}
        self.last_seen_s: dict[int, float] = {}
        #: how many source partitions exist (0: unknown); unheard ones hold the watermark
        self.sources = 0
        self.started_s = started_s

    def observe(self, source_partition: int, ts_ms: int, now_s: float, sources: int = 0) -> None:
        if ts_ms > self.max_ts.get(source_partition, NO_WATERMARK):
            self.max_ts[source_partition] = ts_ms
        self.last_seen_s[source_partition] = now_s
        if sources > self.sources:
            self.sources = sources

    def current(self, now_s: float) -> int:
        if not self.max_ts:
            return NO_WATERMARK
        # A backlog is read one partition ahead of another: until every source has been
        # heard from (or the idle timeout passed), an unheard one may still hold old events.
        if len(self.max_ts) < self.sources and now_s - self.started_s < self.unheard_timeout_s:
            return NO_WATERMARK
        active = [
            ts
            for source, ts in self.max_ts.items()
            if now_s - self.last_seen_s.get(source, now_s) < self.idle_timeout_s
        ]
        low = min(active) if active else max(self.max_ts.values())
        return low - self.lateness_ms

    def to_bytes(self) -> bytes:
        return orjson.dumps([[p, ts] for p, ts in sorted(self.max_ts.items())])

    def load(self, raw: bytes | None, now_s: float) -> None:
        """Merge persisted maxima (sources count as just seen, not idle)."""
        if raw is None:
            return
        for partition, ts in orjson.loads(raw):
            self.observe(int(partition), int(ts), now_s)
