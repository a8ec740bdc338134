"""The pure window layer: specs and window starts, window ids, the quantile sketch and
WindowStats, checked against brute force and numpy.

Tolerances: count, min, max, first, last and the sketch's buckets are compared
exactly. ``sum`` is a left-to-right float sum, compared with the exactly rounded
``math.fsum`` within the classic bound ``(n - 1) * 2**-53 * sum(|x|)``. Mean and
variance: relative 1e-9, plus an absolute term for cancellation (Welford's rounding
error scales with ``max|x| * (max - min)``, not with the variance itself).
"""

from __future__ import annotations

import json
import math
import random
import re
import sys
from urllib.parse import unquote

import numpy as np
import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streamlearn.analytics import RunningStats
from streamlearn.analytics.windows import (
    QUANTILES,
    QuantileSketch,
    WindowSpec,
    WindowStats,
    parse_duration_ms,
    window_id,
    window_starts,
)

U = 2.0**-53  # unit round-off of a float64
TINY = 2.0**-1074  # smallest subnormal
EPOCH_MS = 1_700_000_000_000

# ---------------------------------------------------------------------------------------
# window_starts / WindowSpec


def brute_force_starts(ts: int, size: int, step: int) -> list[int]:
    """Every start s >= 0, s % step == 0 with s <= ts < s + size, by enumeration."""
    return [s for s in range(0, ts + size + step, step) if s <= ts < s + size]


@st.composite
def size_step(draw: st.DrawFn, max_size: int = 3_000) -> tuple[int, int]:
    size = draw(st.integers(1, max_size))
    return size, draw(st.integers(1, size))


@given(size_step(), st.integers(0, 20_000))
def test_window_starts_are_exactly_the_windows_containing_ts(
    sizes: tuple[int, int], ts: int
) -> None:
    size, step = sizes
    starts = window_starts(ts, size, step)
    assert starts == brute_force_starts(ts, size, step)
    assert starts  # every ts >= 0 is covered, since step <= size


@given(size_step(), st.integers(0, 10**9))
def test_window_starts_far_from_the_epoch(sizes: tuple[int, int], offset: int) -> None:
    size, step = sizes
    ts = EPOCH_MS + offset
    starts = window_starts(ts, size, step)
    # Brute force over every aligned start in a range wider than any window reaches.
    first = (ts - size - 2 * step) // step * step
    expected = [s for s in range(first, ts + 2 * step, step) if s <= ts < s + size]
    assert starts == expected
    assert all(s % step == 0 for s in starts)
    lo, hi = size // step, -(-size // step)  # floor and ceil of size / step
    assert lo <= len(starts) <= hi


@given(st.integers(1, 2_000), st.integers(1, 12), st.integers(0, 10**12))
def test_window_count_is_size_over_step_when_it_divides(step: int, m: int, offset: int) -> None:
    size = step * m
    ts = size - step + offset  # past the epoch's partial windows
    starts = window_starts(ts, size, step)
    assert len(starts) == math.ceil(size / step) == m
    assert starts == list(range(starts[0], starts[0] + m * step, step))


@given(st.integers(1, 2_000), st.integers(2, 12), st.data())
def test_no_negative_starts_near_the_epoch(step: int, m: int, data: st.DataObject) -> None:
    size = step * m
    ts = data.draw(st.integers(0, size - step - 1))
    starts = window_starts(ts, size, step)
    assert starts[0] == 0
    assert len(starts) == ts // step + 1 < m


def test_window_starts_examples_and_errors() -> None:
    assert window_starts(0, 300_000, 60_000) == [0]
    assert window_starts(299_999, 300_000, 60_000) == [0, 60_000, 120_000, 180_000, 240_000]
    assert window_starts(300_000, 300_000, 60_000) == [60_000, 120_000, 180_000, 240_000, 300_000]
    assert window_starts(59_999, 60_000, 60_000) == [0]
    assert window_starts(60_000, 60_000, 60_000) == [60_000]
    # size not a multiple of step: 5m every 2m, 2 or 3 windows
    assert window_starts(600_000, 300_000, 120_000) == [360_000, 480_000, 600_000]
    assert window_starts(500_000, 300_000, 120_000) == [240_000, 360_000, 480_000]
    assert window_starts(470_000, 300_000, 120_000) == [240_000, 360_000]
    for args in [(-1, 10, 10), (5, 10, 20), (5, 10, 0), (5, 0, 0), (5, -10, -5)]:
        with pytest.raises(ValueError):
            window_starts(*args)


def test_parse_examples() -> None:
    assert WindowSpec.parse("tumbling:1m") == WindowSpec("tumbling-1m", 60_000, 60_000)
    assert WindowSpec.parse("hopping:5m:1m") == WindowSpec("hopping-5m-1m", 300_000, 60_000)
    assert WindowSpec.parse("  hopping:1h:90s ").name == "hopping-1h-90s"
    assert WindowSpec.parse("tumbling:60s").name == "tumbling-1m"
    assert WindowSpec.parse("tumbling:1500ms").name == "tumbling-1500ms"
    assert WindowSpec.parse("tumbling:1d").size_ms == 86_400_000
    assert WindowSpec.parse("hopping:2m:2m") == WindowSpec.parse("tumbling:120s")
    assert WindowSpec.parse("hopping:5m:1m", name="five").name == "five"
    spec = WindowSpec.parse("hopping:5m:1m")
    assert (spec.kind, spec.text, WindowSpec.parse("tumbling:1h").kind) == (
        "hopping",
        "hopping:5m:1m",
        "tumbling",
    )
    assert spec.windows_for(425_000) == window_starts(425_000, 300_000, 60_000)
    with pytest.raises(AttributeError):
        spec.size_ms = 1  # type: ignore[misc]  # frozen
    assert parse_duration_ms("250ms") == 250


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tumbling", "one duration"),
        ("tumbling:1m:1m", "one duration"),
        ("hopping:5m", "size and a step"),
        ("sliding:5m:1m", "unknown window kind"),
        ("Tumbling:1m", "unknown window kind"),
        ("tumbling:0m", "must be > 0"),
        ("hopping:1m:0s", "must be > 0"),
        ("hopping:1m:2m", "larger than the size"),
        ("tumbling:1.5m", "not a duration"),
        ("tumbling:-1m", "not a duration"),
        ("tumbling:1", "not a duration"),
        ("tumbling:1M", "not a duration"),
        ("tumbling:1 m", "not a duration"),
        ("", "unknown window kind"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WindowSpec.parse(text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x", 0, 0), "size_ms must be > 0"),
        (("x", 10, 0), "step_ms must be > 0"),
        (("x", 10, 20), "larger than size"),
        (("x", 10.0, 10), "must be an int"),
        (("x", True, True), "must be an int"),
        (("", 10, 10), "window name"),
        (("a b", 10, 10), "window name"),
        (("a:b", 10, 10), "window name"),
        (("x" * 101, 10, 10), "window name"),
    ],
)
def test_spec_validation(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WindowSpec(*args)


UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


@given(
    st.integers(1, 500),
    st.sampled_from(sorted(UNITS)),
    st.integers(1, 500),
    st.sampled_from(sorted(UNITS)),
)
def test_parse_round_trips_and_names_are_canonical(
    size_n: int, size_unit: str, step_n: int, step_unit: str
) -> None:
    size, step = size_n * UNITS[size_unit], step_n * UNITS[step_unit]
    assume(step <= size)
    text = (
        f"tumbling:{size_n}{size_unit}"
        if step == size
        else f"hopping:{size_n}{size_unit}:{step_n}{step_unit}"
    )
    spec = WindowSpec.parse(text)
    assert (spec.size_ms, spec.step_ms) == (size, step)
    assert WindowSpec.parse(spec.text) == spec
    assert re.fullmatch(r"(tumbling-\d+(ms|s|m|h|d)|hopping(-\d+(ms|s|m|h|d)){2})", spec.name)
    # Same windows, same name: the hopping spelling of a tumbling window included.
    assert WindowSpec.parse(f"hopping:{size}ms:{step}ms").name == spec.name


# ---------------------------------------------------------------------------------------
# window_id

id_text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", ":", "%", "%3A", "a:b", "a%3Ab", "~", " ", "/", "ü"]
)


@given(id_text, id_text, id_text, st.integers(0, 10**13))
def test_window_id_is_url_safe_and_decodes_back(
    key: str, value: str, spec: str, start: int
) -> None:
    wid = window_id(key, value, spec, start)
    assert wid == window_id(key, value, spec, start)
    assert re.fullmatch(r"[A-Za-z0-9._~%:-]*", wid)
    parts = wid.split(":")
    assert len(parts) == 4
    assert [unquote(p) for p in parts[:3]] == [key, value, spec]
    assert int(parts[3]) == start


@given(
    st.tuples(id_text, id_text, id_text, st.integers(0, 99)),
    st.tuples(id_text, id_text, id_text, st.integers(0, 99)),
)
def test_window_id_is_injective(a: tuple, b: tuple) -> None:
    assert (window_id(*a) == window_id(*b)) == (a == b)


def test_window_id_example() -> None:
    assert window_id("k", "v", "tumbling-1m", 60_000) == "k:v:tumbling-1m:60000"


# ---------------------------------------------------------------------------------------
# QuantileSketch

any_finite = st.floats(allow_nan=False, allow_infinity=False)
mixed_values = st.one_of(
    any_finite,
    st.sampled_from([0.0, -0.0, 1.0, -1.0, TINY, -TINY, sys.float_info.max]),
    st.floats(-1e3, 1e3),
)
accuracies = st.sampled_from([0.001, 0.01, 0.02, 0.05, 0.2])


def feed_sketch(xs: list[float], a: float = 0.01, max_buckets: int = 2048) -> QuantileSketch:
    sketch = QuantileSketch(a, max_buckets)
    for x in xs:
        sketch.add(x)
    return sketch


def assert_within_bound(estimate: float | None, exact: float, a: float) -> None:
    """|v - x_q| <= a |x_q|, up to float rounding (1e-9 relative, one subnormal step)."""
    assert estimate is not None
    assert abs(estimate - exact) <= a * abs(exact) * (1 + 1e-9) + TINY, (estimate, exact)


def exact_quantile(arr: np.ndarray, q: float) -> float:
    """The documented definition, x_floor(q (n-1)), which is numpy's method="lower"."""
    by_rank = float(np.sort(arr)[math.floor(q * (len(arr) - 1))])
    assert by_rank == float(np.quantile(arr, q, method="lower"))
    return by_rank


@settings(max_examples=300)
@given(
    st.lists(mixed_values, min_size=1, max_size=300),
    st.lists(st.floats(0.0, 1.0), max_size=5),
    accuracies,
)
def test_sketch_error_bound_against_numpy(xs: list[float], qs: list[float], a: float) -> None:
    # The bound holds as long as no bucket collapsed: with 10**6 buckets none can (all
    # non-zero floats of one sign span about 727 / a keys: 7.3e5 at a = 0.001).
    sketch = feed_sketch(xs, a, max_buckets=10**6)
    arr = np.asarray(xs)
    qs = [0.0, 0.5, 0.95, 0.99, 1.0, *qs]
    for q, estimate in zip(qs, sketch.quantiles(qs), strict=True):
        assert_within_bound(estimate, exact_quantile(arr, q), a)
        assert estimate == sketch.quantile(q)
    assert sketch.count == len(xs)


@given(
    st.lists(
        st.floats(1e-6, 1e6) | st.floats(-1e6, -1e-6) | st.sampled_from([0.0, -0.0]),
        min_size=1,
        max_size=300,
    ),
    st.floats(0.0, 1.0),
)
def test_sketch_error_bound_at_the_defaults(xs: list[float], q: float) -> None:
    # |x| within a ratio of 1e12 (< 6e17): the default 2048 buckets never collapse.
    sketch = feed_sketch(xs)
    assert len(sketch.pos) <= 2048 and len(sketch.neg) <= 2048
    arr = np.asarray(xs)
    for q_ in (q, 0.5, 0.95, 0.99):
        assert_within_bound(sketch.quantile(q_), exact_quantile(arr, q_), 0.01)


@given(st.lists(st.floats(0.5, 2.0), min_size=2, max_size=50))
def test_sketch_bound_is_tight_enough_to_detect_a_wrong_bucket(xs: list[float]) -> None:
    # The bound at a = 0.01 holds; at a far tighter claimed accuracy it would not in
    # general: the estimates really are bucket representatives, not the exact values.
    sketch = feed_sketch(xs, 0.01)
    arr = np.asarray(xs)
    for q in (0.0, 0.5, 1.0):
        assert_within_bound(sketch.quantile(q), exact_quantile(arr, q), 0.01)
    assume(len(set(xs)) > 5)
    errors = [abs(sketch.quantile(q) - exact_quantile(arr, q)) for q in (0.0, 0.5, 1.0)]
    assert max(errors) > 0.0


@given(
    st.lists(mixed_values, max_size=200),
    st.integers(0, 200),
    st.sampled_from([1, 3, 16, 2048]),
    accuracies,
)
def test_sketch_merge_equals_one_pass_exactly(
    xs: list[float], cut: int, max_buckets: int, a: float
) -> None:
    cut = min(cut, len(xs))
    left, right = feed_sketch(xs[:cut], a, max_buckets), feed_sketch(xs[cut:], a, max_buckets)
    left_before, right_before = left.to_list(), right.to_list()
    merged = left.merge(right)
    one_pass = feed_sketch(xs, a, max_buckets)
    assert merged == one_pass
    assert merged.to_list() == one_pass.to_list()
    assert merged.count == one_pass.count == len(xs)
    assert right.merge(left) == one_pass
    assert (left.to_list(), right.to_list()) == (left_before, right_before)  # unchanged
    # ... and the merged sketch keeps accepting values like the one-pass one.
    for x in xs[:20]:
        merged.add(x / 3.0)
        one_pass.add(x / 3.0)
    assert merged == one_pass


@given(st.lists(mixed_values, max_size=200), st.randoms(), st.sampled_from([2, 8, 2048]))
def test_sketch_state_does_not_depend_on_order(
    xs: list[float], rnd: random.Random, max_buckets: int
) -> None:
    shuffled = list(xs)
    rnd.shuffle(shuffled)
    assert feed_sketch(xs, max_buckets=max_buckets) == feed_sketch(
        shuffled, max_buckets=max_buckets
    )


@given(st.lists(mixed_values, max_size=200), st.sampled_from([1, 4, 2048]))
def test_sketch_serialisation_round_trip(xs: list[float], max_buckets: int) -> None:
    sketch = feed_sketch(xs, max_buckets=max_buckets)
    data = sketch.to_list()
    text = json.dumps(data, allow_nan=False)  # strict JSON
    again = QuantileSketch.from_list(json.loads(text))
    assert again == sketch and again.to_list() == data and again.count == sketch.count
    assert QuantileSketch.from_list(orjson.loads(orjson.dumps(data))).to_list() == data
    assert sketch.copy() == sketch
    # The restored sketch continues exactly like the original (collapse bounds restored).
    for x in [*xs[:30], 1e300, 1e-300, -1e300]:
        again.add(x)
        sketch.add(x)
    assert again == sketch


@given(st.lists(st.floats(1e-300, 1e300), min_size=1, max_size=200), st.integers(1, 64))
def test_sketch_collapse_bounds_buckets_and_keeps_the_top(
    xs: list[float], max_buckets: int
) -> None:
    sketch = feed_sketch(xs, 0.01, max_buckets)
    assert len(sketch.pos) <= max_buckets and not sketch.neg
    assert max(sketch.pos) - min(sketch.pos) < max_buckets
    assert sketch.count == sum(sketch.pos.values()) == len(xs)
    # The highest bucket never collapses: the maximum keeps the bound.
    assert_within_bound(sketch.quantile(1.0), max(xs), 0.01)
    negated = feed_sketch([-x for x in xs], 0.01, max_buckets)
    assert negated.neg == sketch.pos
    assert_within_bound(negated.quantile(0.0), -max(xs), 0.01)


def test_sketch_collapse_folds_the_lowest_buckets() -> None:
    sketch = feed_sketch([1.0, 2.0, 4.0, 8.0], 0.01, max_buckets=2)
    assert sketch.count == 4 and len(sketch.pos) == 2
    keys = sorted(sketch.pos)
    assert sketch.pos[keys[0]] == 3 and sketch.pos[keys[1]] == 1
    assert keys[1] - keys[0] == 1
    # Quantiles inside the collapsed range over-estimate |x|.
    assert sketch.quantile(0.0) > 4.0


def test_sketch_edges() -> None:
    empty = QuantileSketch()
    assert empty.quantile(0.5) is None and empty.quantiles([0.1, 0.9]) == [None, None]
    assert empty.to_list() == [0.01, 2048, 0, [], []]
    assert QuantileSketch.from_list(empty.to_list()) == empty
    for q in (-0.01, 1.01, math.nan):
        with pytest.raises(ValueError, match="must be in"):
            empty.quantile(q)
    zeros = feed_sketch([0.0, -0.0, 0.0])
    assert zeros.quantiles([0.0, 1.0]) == [0.0, 0.0] and zeros.zero == 3
    big = sys.float_info.max
    for a in (0.01, 0.02):  # at 0.02 the top bucket's representative overflows
        huge = feed_sketch([big, -big, TINY, -TINY], a, max_buckets=10**6)  # no collapse
        low, high = huge.quantiles([0.0, 1.0])
        assert low == -high and math.isfinite(high)
        assert_within_bound(high, big, a)
        assert huge.quantile(1 / 3) == -TINY and huge.quantile(2 / 3) == TINY
    assert huge.quantile(1.0) == big  # clamped overflow
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises((ValueError, OverflowError)):
            huge.add(bad)
        stats = WindowStats()
        with pytest.raises((ValueError, OverflowError)):
            stats.update(bad, 0)
        assert stats.to_list() == WindowStats().to_list()
    assert huge == feed_sketch([big, -big, TINY, -TINY], 0.02, max_buckets=10**6)
    for bad in [{"relative_accuracy": 0.0}, {"relative_accuracy": 1.0}, {"max_buckets": 0}]:
        with pytest.raises(ValueError):
            QuantileSketch(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot merge"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))
    with pytest.raises(ValueError, match="cannot merge"):
        QuantileSketch(0.01, 10).merge(QuantileSketch(0.01, 20))
    assert QuantileSketch() != "sketch"
    assert "count=3" in repr(zeros)


# ---------------------------------------------------------------------------------------
# WindowStats

values = st.floats(-1e6, 1e6, allow_nan=False)
events = st.lists(st.tuples(values, st.integers(0, 30)), max_size=200)


def feed_stats(evs: list[tuple[float, int]]) -> WindowStats:
    stats = WindowStats()
    for x, ts in evs:
        stats.update(x, EPOCH_MS + ts)
    return stats


def reference_first_last(evs: list[tuple[float, int]]) -> tuple[float, float]:
    """first: value of the earliest-applied event with the smallest ts; last: the
    latest-applied one with the largest ts."""
    lo = min(ts for _, ts in evs)
    hi = max(ts for _, ts in evs)
    first = next(x for x, ts in evs if ts == lo)
    last = next(x for x, ts in reversed(evs) if ts == hi)
    return first, last


def may_collapse(xs: list[float], a: float = 0.01, max_buckets: int = 2048) -> bool:
    """Whether the |x| of one sign span more than max_buckets keys (with a margin)."""
    limit = math.exp(2 * a * (max_buckets - 2))  # < gamma**(max_buckets - 1)
    for side in ([x for x in xs if x > 0], [-x for x in xs if x < 0]):
        if side and max(side) / min(side) >= limit:
            return True
    return False


def assert_stats_match(stats: WindowStats, evs: list[tuple[float, int]]) -> None:
    xs = [x for x, _ in evs]
    result = stats.result()
    assert stats.count == result["count"] == len(xs)
    if not xs:
        assert result["sum"] == 0.0
        assert all(result[k] is None for k in result if k not in ("count", "sum"))
        return
    arr = np.asarray(xs)
    amax, span = float(np.abs(arr).max()), float(arr.max() - arr.min())
    assert result["min"] == arr.min() and result["max"] == arr.max()
    assert (result["first"], result["last"]) == reference_first_last(evs)
    assert abs(result["sum"] - math.fsum(xs)) <= (len(xs) - 1) * U * math.fsum(map(abs, xs))
    assert math.isclose(result["mean"], arr.mean(), rel_tol=1e-9, abs_tol=1e-12 * amax + 1e-300)
    # Welford's rounding error ~ max|x| * span * u; numpy's two-pass one on (near-)equal
    # values ~ (n u max|x|)**2 (its mean is off by ~n u max|x|).
    # Below 1e-300 results are subnormal-range noise.
    var_tol = 1e-12 * amax * span + 4 * (len(xs) * U * amax) ** 2 + 1e-300
    if len(xs) > 1:
        assert math.isclose(result["variance"], arr.var(ddof=1), rel_tol=1e-9, abs_tol=var_tol)
        assert math.isclose(
            result["std"], arr.std(ddof=1), rel_tol=1e-9, abs_tol=math.sqrt(var_tol)
        )
    else:
        assert result["variance"] == result["std"] == 0.0
    for name, q in QUANTILES.items():
        assert arr.min() <= result[name] <= arr.max()
        if not may_collapse(xs):
            assert_within_bound(result[name], exact_quantile(arr, q), 0.01)


@settings(max_examples=200)
@given(events)
def test_window_stats_matches_numpy(evs: list[tuple[float, int]]) -> None:
    assert_stats_match(feed_stats(evs), evs)


@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.just(0)), min_size=2, max_size=100))
def test_variance_is_sample_variance(evs: list[tuple[float, int]]) -> None:
    xs = [x for x, _ in evs]
    assume(np.var(xs) > 1e-6 * max(map(abs, xs)) ** 2 > 1e-300)  # well conditioned
    got = feed_stats(evs).result()["variance"]
    assert math.isclose(got, np.var(xs, ddof=1), rel_tol=1e-9)
    assert not math.isclose(got, np.var(xs, ddof=0), rel_tol=1e-9)


@settings(max_examples=200)
@given(events, st.integers(0, 200))
def test_merge_of_partial_states_equals_one_pass(evs: list[tuple[float, int]], cut: int) -> None:
    cut = min(cut, len(evs))  # empty left and/or right parts included
    left, right = feed_stats(evs[:cut]), feed_stats(evs[cut:])
    before = (left.to_list(), right.to_list())
    merged = left.merge(right)
    assert (left.to_list(), right.to_list()) == before  # inputs unchanged
    assert_stats_match(merged, evs)
    one_pass = feed_stats(evs)
    assert merged.sketch == one_pass.sketch
    assert merged.to_list()[6:10] == one_pass.to_list()[6:10]  # first/last and their ts
    # Through a JSON round trip of both parts, as the agent does.
    restored = WindowStats.from_list(orjson.loads(orjson.dumps(left.to_list()))).merge(
        WindowStats.from_list(orjson.loads(orjson.dumps(right.to_list())))
    )
    assert restored.to_list() == merged.to_list()


@given(events, events)
def test_merge_is_order_independent_except_ties(
    a_evs: list[tuple[float, int]], b_evs: list[tuple[float, int]]
) -> None:
    a, b = feed_stats(a_evs), feed_stats(b_evs)
    ab, ba = a.merge(b).result(), b.merge(a).result()
    for name in ("count", "min", "max", "p50", "p95", "p99"):
        assert ab[name] == ba[name]
    assert a.merge(b).sketch == b.merge(a).sketch
    for name in ("sum", "mean", "variance"):
        assert ab[name] is ba[name] is None or math.isclose(
            ab[name], ba[name], rel_tol=1e-9, abs_tol=1e-6
        )
    ts_a, ts_b = [t for _, t in a_evs], [t for _, t in b_evs]
    if ts_a and ts_b and min(ts_a) != min(ts_b):
        assert ab["first"] == ba["first"]
    if ts_a and ts_b and max(ts_a) != max(ts_b):
        assert ab["last"] == ba["last"]


def test_first_last_ties() -> None:
    stats = WindowStats()
    for x in (1.0, 2.0, 3.0):
        stats.update(x, 100)  # all at the same ts
    assert (stats.first, stats.last) == (1.0, 3.0)
    stats.update(0.0, 50)
    stats.update(9.0, 200)
    stats.update(8.0, 150)
    assert (stats.first, stats.last) == (0.0, 9.0)
    a, b = WindowStats(), WindowStats()
    a.update(1.0, 10)
    b.update(2.0, 10)
    assert (a.merge(b).first, a.merge(b).last) == (1.0, 2.0)
    assert (b.merge(a).first, b.merge(a).last) == (2.0, 1.0)


@given(events)
def test_window_stats_serialisation_round_trip(evs: list[tuple[float, int]]) -> None:
    stats = feed_stats(evs)
    data = stats.to_list()
    text = json.dumps(data, allow_nan=False)  # strict JSON: no inf, no NaN
    again = WindowStats.from_list(json.loads(text))
    assert again.to_list() == data
    assert again.result() == stats.result()
    assert WindowStats.from_list(orjson.loads(orjson.dumps(data))).to_list() == data
    # ... and it goes on exactly like the original.
    for x, ts in [(1.5, 0), (-2.0, 31), (0.0, 15)]:
        again.update(x, EPOCH_MS + ts)
        stats.update(x, EPOCH_MS + ts)
    assert again.to_list() == stats.to_list()


def test_window_stats_empty_and_raw_running_stats_bounds() -> None:
    empty = WindowStats()
    assert empty.to_list() == [
        0,
        0.0,
        0.0,
        None,
        None,
        0.0,
        None,
        None,
        None,
        None,
        [0.01, 2048, 0, [], []],
    ]
    assert empty.result() == {
        "count": 0,
        "sum": 0.0,
        "mean": None,
        "std": None,
        "variance": None,
        "min": None,
        "max": None,
        "first": None,
        "last": None,
        "p50": None,
        "p95": None,
        "p99": None,
    }
    # RunningStats.to_list() writes inf bounds; from_list takes them as well as null.
    raw = [*RunningStats().to_list(), 0.0, None, None, None, None, [0.01, 2048, 0, [], []]]
    restored = WindowStats.from_list(raw)
    assert restored.to_list() == empty.to_list()
    merged = empty.merge(WindowStats())
    assert merged.count == 0 and merged.to_list() == empty.to_list()
    one = WindowStats()
    one.update(4.0, 7)
    assert empty.merge(one).to_list() == one.to_list() == one.merge(empty).to_list()
    assert one.result()["p99"] == 4.0  # clipped to [min, max]
    assert "'count': 1" in repr(one)


def test_window_stats_custom_accuracy() -> None:
    stats = WindowStats(relative_accuracy=0.05, max_buckets=64)
    for x in range(1, 1001):
        stats.update(float(x), x)
    assert stats.to_list()[10][:2] == [0.05, 64]
    assert abs(stats.result()["p50"] - 500.0) <= 0.05 * 500.0
