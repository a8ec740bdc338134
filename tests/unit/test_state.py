"""Offset marks and per-key running statistics: replays are skipped, state round-trips."""

from __future__ import annotations

import orjson

from streamlearn.records import Event
from streamlearn.tables import KeyStats, OffsetMarks


def event(offset: int, partition: int = 0, x: float = 1.0, ts: int = 1000) -> Event:
    return Event(
        key="k",
        ts_ms=ts,
        values={"x": x, "y": 2 * x},
        id=f"e{offset}",
        src_partition=partition,
        src_offset=offset,
    )


def test_marks_are_per_partition() -> None:
    marks = OffsetMarks()
    assert marks.accept(0, 5)
    assert marks.seen(0, 5) and marks.seen(0, 4) and not marks.seen(0, 6)
    assert not marks.seen(1, 0)
    assert marks.accept(1, 0)
    assert not marks.accept(0, 3)
    assert repr(marks) == "OffsetMarks({0: 5, 1: 0})"
    assert marks != {0: 5}


def test_replayed_events_are_not_applied_twice() -> None:
    state = KeyStats()
    for offset in range(10):
        assert state.apply(event(offset, x=float(offset)))
    for offset in range(10):  # the replay after a crash
        assert not state.apply(event(offset, x=100.0))
    assert state.events == 10
    assert state.values["x"].count == 10
    assert state.values["x"].mean == 4.5
    assert state.values["x"].max == 9.0


def test_state_round_trips_through_bytes() -> None:
    state = KeyStats()
    for offset in range(5):
        state.apply(event(offset, partition=offset % 2, x=offset * 1.5, ts=offset))
    again = KeyStats.from_bytes(state.to_bytes())
    assert again.events == state.events
    assert again.last_ts == 4
    assert again.marks == state.marks
    assert {k: v.to_list() for k, v in again.values.items()} == {
        k: v.to_list() for k, v in state.values.items()
    }


def test_emission_by_count_and_interval() -> None:
    state = KeyStats()
    assert not state.due(0.0, 3, 10.0)  # nothing pending
    state.apply(event(0))
    state.apply(event(1))
    assert not state.due(5.0, 3, 10.0)
    assert state.due(10.0, 3, 10.0)  # interval elapsed since emitted_at=0
    state.apply(event(2))
    assert state.due(5.0, 3, 0.0)  # three pending
    record = state.aggregate("k", 5.0)
    assert record.id == "stats/k/3" and record.events == 3
    assert record.values["y"].mean == 2.0 and record.values["y"].std == 0.0
    assert not state.due(6.0, 3, 10.0)
    assert b'"kind":"stats"' in record.to_bytes()


def test_count_based_emission_continues_after_a_reload() -> None:
    # A key that moves to another worker (or a restart) keeps publishing at the same
    # counts: 3, 6, ... not 3 + whatever arrived since the reload.
    state = KeyStats()
    for offset in range(4):
        state.apply(event(offset))
    assert state.due(1.0, 3, 0.0)
    assert state.aggregate("k", 1.0).id == "stats/k/4"
    again = KeyStats.from_bytes(state.to_bytes())
    assert again.emitted_events == 4
    again.apply(event(4))
    again.apply(event(5))
    assert not again.due(2.0, 3, 0.0)  # 2 pending since the last emission
    again.apply(event(6))
    assert again.due(2.0, 3, 0.0)
    legacy = orjson.loads(state.to_bytes())
    del legacy["m"]  # state written before the count was kept
    assert KeyStats.from_bytes(orjson.dumps(legacy)).emitted_events == 0
