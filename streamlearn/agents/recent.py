"""The last raw events of each key, in memory, for the dashboard's key explorer.

Windows summarise; an operator looking at an anomaly also wants the readings around
it. Each worker keeps, for the ``recent_events_keys`` most recently active keys of the
partitions it owns, the newest ``recent_events_per_key`` events (event time and values)
in a ring: no table, no changelog, nothing written per event, and a bounded amount of
memory (about 300 bytes per event held: 500 x 500 by default, some 75 MB at most). A
restart or a rebalance starts the rings empty (``GET /api/v1/events/{key}`` says how
many it holds), and a replayed record is recognised by its offset and not kept twice.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from faust.types import EventT

from streamlearn.records import Event


class KeyRing:
    """One key's newest events, oldest first, and the offset of the last one kept."""

    __slots__ = ("events", "last_offset")

    def __init__(self, capacity: int) -> None:
        self.events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=capacity)
        self.last_offset = -1


class RecentEvents:
    """A pipeline component (see :class:`streamlearn.agents.pipeline.Component`)."""

    def __init__(self, capacity: int, max_keys: int) -> None:
        self.capacity = capacity
        self.max_keys = max_keys
        self.rings: OrderedDict[str, KeyRing] = OrderedDict()  # least recently active first

    def on_event(self, event: Event, source: EventT, now_s: float) -> None:
        rings = self.rings
        ring = rings.get(event.key)
        if ring is None:
            ring = rings[event.key] = KeyRing(self.capacity)
            if len(rings) > self.max_keys:
                rings.popitem(last=False)
        else:
            rings.move_to_end(event.key)
        offset = source.message.offset
        if offset <= ring.last_offset:
            return  # a replay of a record this ring already holds
        ring.last_offset = offset
        ring.events.append((event.ts_ms, event.values))

    def on_batch_end(self, now_s: float) -> None:
        pass

    def flush_state(self) -> None:
        pass

    def on_timer(self, now_s: float) -> None:
        pass

    def on_rebalance(self) -> None:
        # Offsets restart from the committed position: a kept ring would see the
        # records again as replays. Start over with what this worker now owns.
        self.rings.clear()

    def query(self, key: str, value: str, from_ms: int, to_ms: int, limit: int) -> dict[str, Any]:
        """The kept events of ``key`` in ``[from_ms, to_ms)`` that carry ``value``."""
        ring = self.rings.get(key)
        held = list(ring.events) if ring is not None else []
        points = [
            {"ts": ts, "value": values[value]}
            for ts, values in held
            if from_ms <= ts < to_ms and value in values
        ]
        points.sort(key=lambda p: p["ts"])  # arrival order is not event-time order
        return {
            "key": key,
            "value": value,
            "from": from_ms,
            "to": to_ms,
            "events": points[-limit:],
            "matched": len(points),
            "held": len(held),
            "capacity": self.capacity,
            "oldest_ts": min((ts for ts, _ in held), default=None),
        }
