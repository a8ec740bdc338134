"""Incremental statistics per key against numpy, including merges of partial states."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from streamlearn.analytics.running import DecayedMean, PairStats
from streamlearn.records import Event
from streamlearn.tables.keystats import OTHER_CATEGORY, KeyStats, StatsOptions

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)
stamps = st.integers(min_value=0, max_value=10**7)
points = st.lists(st.tuples(finite, stamps), min_size=1, max_size=100)
pairs = st.lists(st.tuples(finite, finite), min_size=0, max_size=100)


def ewma_numpy(points: list[tuple[float, int]], half_life_ms: float) -> float:
    xs = np.array([x for x, _ in points])
    ts = np.array([t for _, t in points], dtype=float)
    weights = np.exp2((ts - ts.max()) / half_life_ms)
    return float((weights * xs).sum() / weights.sum())


@given(points, st.floats(min_value=1.0, max_value=1e6))
def test_decayed_mean_matches_numpy_in_any_order(points, half_life_ms) -> None:
    ewma = DecayedMean(half_life_ms)
    for x, t in points:
        ewma.update(x, t)
    expected = ewma_numpy(points, half_life_ms)
    assert math.isclose(ewma.mean, expected, rel_tol=1e-9, abs_tol=1e-6)
    again = DecayedMean.from_list(half_life_ms, ewma.to_list())
    assert again.to_list() == ewma.to_list()


@given(points, st.integers(0, 100))
def test_decayed_mean_merge_equals_one_pass(points, cut) -> None:
    left, right, whole = DecayedMean(5000), DecayedMean(5000), DecayedMean(5000)
    for i, (x, t) in enumerate(points):
        (left if i < cut else right).update(x, t)
        whole.update(x, t)
    assert math.isclose(left.merge(right).mean, whole.mean, rel_tol=1e-9, abs_tol=1e-6)


def test_decayed_mean_empty() -> None:
    assert math.isnan(DecayedMean(10).mean)
    assert DecayedMean(10).merge(DecayedMean(10)).ref_ts is None


@given(pairs, st.integers(0, 100))
def test_pair_stats_match_numpy_and_merge(data, cut) -> None:
    left, right, whole = PairStats(), PairStats(), PairStats()
    for i, (x, y) in enumerate(data):
        (left if i < cut else right).update(x, y)
        whole.update(x, y)
    merged = left.merge(right)
    assert merged.n == whole.n == len(data)
    if len(data) < 2:
        assert math.isnan(merged.covariance) and math.isnan(merged.correlation)
        return
    xs, ys = np.array(data).T
    cov = np.cov(xs, ys, ddof=1)[0, 1]
    for stats in (whole, merged):
        assert math.isclose(stats.covariance, cov, rel_tol=1e-7, abs_tol=1e-6)
    if np.std(xs) > 1e-6 and np.std(ys) > 1e-6:
        r = np.corrcoef(xs, ys)[0, 1]
        assert math.isclose(merged.correlation, r, rel_tol=1e-6, abs_tol=1e-6)
        assert math.isclose(whole.correlation, r, rel_tol=1e-6, abs_tol=1e-6)
    assert PairStats.from_list(whole.to_list()).to_list() == whole.to_list()


def event(i: int, ts: int, values: dict, attrs: dict | None = None) -> Event:
    return Event("k", ts, values, f"e{i}", 0, i, attrs=attrs)


def test_key_stats_rate_correlation_ewma_and_attrs() -> None:
    state = KeyStats(StatsOptions(ewma_half_life_ms=1000, max_pair_values=3, max_categories=2))
    for i in range(11):
        state.apply(
            event(
                i,
                10_000 + i * 500,
                {"a": float(i), "b": 2.0 * i + 1, "c": float(i % 3)},
                attrs={"city": ["Oslo", "Rome", "Lima"][i % 3]},
            )
        )
    assert state.rate_per_s == 2.0  # 10 gaps of 500 ms
    assert math.isclose(state.pairs["a|b"].correlation, 1.0)
    assert set(state.pairs) == {"a|b", "a|c", "b|c"}
    assert state.attrs["city"] == {"Oslo": 4, "Rome": 4, OTHER_CATEGORY: 3}
    assert 5.0 < state.ewma["a"].mean < 10.0  # recent values weigh more
    again = KeyStats.from_bytes(state.to_bytes(), state.options)
    assert again.to_bytes() == state.to_bytes()
    assert again.rate_per_s == 2.0
    wide = KeyStats(StatsOptions(max_pair_values=2))
    wide.apply(event(0, 0, {"a": 1.0, "b": 2.0, "c": 3.0}))
    assert wide.pairs == {} and wide.rate_per_s is None
