"""RunningStats against numpy, including merges of partial states."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from streamlearn.analytics import RunningStats

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def feed(xs: list[float]) -> RunningStats:
    stats = RunningStats()
    for x in xs:
        stats.update(x)
    return stats


def assert_matches(stats: RunningStats, xs: list[float]) -> None:
    arr = np.asarray(xs)
    assert stats.count == len(xs)
    assert stats.min == arr.min() and stats.max == arr.max()
    assert math.isclose(stats.mean, arr.mean(), rel_tol=1e-9, abs_tol=1e-6)
    if len(xs) > 1:
        assert math.isclose(stats.variance, arr.var(ddof=1), rel_tol=1e-7, abs_tol=1e-4)


@given(st.lists(finite, min_size=1, max_size=200))
def test_matches_numpy(xs: list[float]) -> None:
    assert_matches(feed(xs), xs)


@given(st.lists(finite, min_size=1, max_size=200), st.integers(0, 200))
def test_merge_equals_one_pass(xs: list[float], cut: int) -> None:
    cut = min(cut, len(xs))
    merged = feed(xs[:cut]).merge(feed(xs[cut:]))
    assert_matches(merged, xs)


@given(st.lists(finite, min_size=1, max_size=50))
def test_serialisation_round_trip(xs: list[float]) -> None:
    stats = feed(xs)
    again = RunningStats.from_list(stats.to_list())
    assert again.to_list() == stats.to_list()


def test_empty_states() -> None:
    empty = RunningStats()
    assert empty.variance == 0.0 and empty.std == 0.0
    assert empty.merge(RunningStats()).count == 0
    restored = RunningStats.from_list([0, 0.0, 0.0, None, None])
    assert restored.min == math.inf and restored.max == -math.inf
    assert "count=0" in repr(empty)
