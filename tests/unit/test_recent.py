"""The raw-events rings behind GET /api/v1/events/{key}."""

from __future__ import annotations

from types import SimpleNamespace

from streamlearn.agents.recent import RecentEvents
from streamlearn.records import Event


def _event(key: str, ts: int, **values: float) -> Event:
    return Event(key=key, ts_ms=ts, values=values, id=f"{key}-{ts}", src_partition=0, src_offset=0)


def _source(offset: int) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(offset=offset, partition=0))


def test_keeps_the_newest_per_key_once_each_in_event_time_order() -> None:
    recent = RecentEvents(capacity=3, max_keys=10)
    for offset, ts in enumerate([10, 30, 20, 40]):
        recent.on_event(_event("a", ts, x=ts / 10), _source(offset), 0.0)
    recent.on_event(_event("a", 40, x=4.0), _source(3), 0.0)  # replayed after a crash
    answer = recent.query("a", "x", 0, 100, limit=10)
    assert [p["ts"] for p in answer["events"]] == [20, 30, 40]  # sorted, oldest dropped
    assert answer["held"] == 3 and answer["matched"] == 3 and answer["capacity"] == 3
    assert answer["oldest_ts"] == 20


def test_range_value_and_limit() -> None:
    recent = RecentEvents(capacity=10, max_keys=10)
    for i in range(6):
        values = {"x": float(i)} if i % 2 else {"y": float(i)}
        recent.on_event(_event("a", i * 100, **values), _source(i), 0.0)
    answer = recent.query("a", "x", 100, 500, limit=1)
    assert answer["matched"] == 2  # ts 100 and 300 carry x; 500 is outside
    assert answer["events"] == [{"ts": 300, "value": 3.0}]  # the newest within the limit
    assert recent.query("nobody", "x", 0, 10, limit=5)["events"] == []


def test_least_recently_active_key_goes_first_and_rebalance_forgets() -> None:
    recent = RecentEvents(capacity=5, max_keys=2)
    recent.on_event(_event("a", 1, x=1), _source(0), 0.0)
    recent.on_event(_event("b", 1, x=1), _source(0), 0.0)
    recent.on_event(_event("a", 2, x=2), _source(1), 0.0)  # a is now the most recent
    recent.on_event(_event("c", 1, x=1), _source(0), 0.0)
    assert list(recent.rings) == ["a", "c"]
    recent.on_rebalance()
    assert recent.rings == {}
