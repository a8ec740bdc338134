"""The watermark: minimum over sources, waits for unheard sources, ignores idle ones."""

from __future__ import annotations

from streamlearn.tables.watermark import NO_WATERMARK, Watermark


def test_minimum_over_sources_minus_lateness() -> None:
    wm = Watermark(lateness_ms=10, idle_timeout_s=60)
    wm.observe(0, 1_000, 0.0, sources=2)
    wm.observe(1, 5_000, 0.0, sources=2)
    wm.observe(0, 900, 0.0)  # an older event never lowers the maximum
    assert wm.current(1.0) == 990


def test_unheard_sources_hold_it_back_until_their_timeout() -> None:
    wm = Watermark(lateness_ms=0, idle_timeout_s=300, started_s=100.0, unheard_timeout_s=30)
    wm.observe(2, 7_000, 100.0, sources=3)
    assert wm.current(120.0) == NO_WATERMARK  # sources 0 and 1 may still hold old events
    assert wm.current(130.0) == 7_000  # never heard from in 30 s: not waited for


def test_a_silent_source_stops_holding_it_back() -> None:
    wm = Watermark(lateness_ms=0, idle_timeout_s=60)
    wm.observe(0, 1_000, 0.0)
    wm.observe(1, 9_000, 0.0)
    wm.observe(1, 9_500, 50.0)
    assert wm.current(59.0) == 1_000
    assert wm.current(61.0) == 9_500  # source 0 silent for 61 s


def test_persisted_maxima_count_as_just_seen() -> None:
    wm = Watermark(lateness_ms=0, idle_timeout_s=60)
    wm.observe(0, 1_000, 0.0)
    wm.observe(1, 2_000, 0.0)
    restored = Watermark(lateness_ms=0, idle_timeout_s=60)
    restored.load(wm.to_bytes(), now_s=500.0)
    restored.load(None, now_s=500.0)
    assert restored.max_ts == {0: 1_000, 1: 2_000}
    assert restored.current(510.0) == 1_000
    assert Watermark(0, 60).current(0.0) == NO_WATERMARK
