"""Fast detector paths equal their reference definitions; the synthetic benchmark data.

* ``RobustZScore``: incremental center/scale (exact integer sums for ``std``, the
  two-sorted-sequences MAD for ``mad``) against a recompute from the window.
* ``IsolationForestDetector`` / ``SklearnLOF`` / ``AutoencoderDetector``: scoring
  without scikit-learn's per-call path against ``score_samples`` / ``predict``.
* ``TemporalFeatures``: the contract of a detector, and what its tests are for.
* :mod:`streamlearn.models.anomaly.synthetic`: determinism and labels.

No wall-clock assertions: costs are measured by ``benchmarks/anomaly_quality.py``.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import pickle
import random
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import IsolationForest

from streamlearn.models.anomaly.autoencoder import AutoencoderDetector, _forward
from streamlearn.models.anomaly.base import AnomalyError
from streamlearn.models.anomaly.sklearn_batch import (
    IsolationForestDetector,
    SklearnLOF,
    compile_forest,
    forest_scores,
)
from streamlearn.models.anomaly.synthetic import KINDS, LENGTHS, VALUES, generate
from streamlearn.models.anomaly.temporal import TemporalFeatures, log_two_sided
from streamlearn.models.anomaly.zscore import (
    MAD_TO_STD,
    SCALE_FLOOR,
    RobustZScore,
    _Buffer,
    _kth_deviations,
)

Event = dict[str, float]


# -- RobustZScore -------------------------------------------------------------------------


def naive_center_scale(values: list[float], mad: bool) -> tuple[float, float]:
    """The definitions, recomputed from the window (the previous implementation)."""
    s = sorted(values)
    n = len(s)
    if mad:
        center = (s[(n - 1) // 2] + s[n // 2]) / 2
        dev = sorted(abs(v - center) for v in s)
        spread = MAD_TO_STD * (dev[(n - 1) // 2] + dev[n // 2]) / 2
    else:
        center = math.fsum(s) / n
        spread = math.sqrt(math.fsum([(v - center) ** 2 for v in s]) / (n - 1))
    return center, max(spread, SCALE_FLOOR * (abs(center) + 1.0))


def awkward_stream(seed: int, n: int) -> list[float]:
    """Ties, integers, huge and tiny outliers, a level shift of 1e6, a tiny-noise stretch."""
    rng = random.Random(seed)
    out = []
    for t in range(n):
        kind = rng.random()
        base = 1e6 if t > n // 2 else 0.0
        if kind < 0.1:
            out.append(float(rng.randint(0, 3)))
        elif kind < 0.12:
            out.append(rng.gauss(0.0, 1.0) * 1e9)
        elif kind < 0.13:
            out.append(rng.gauss(0.0, 1.0) * 1e-200)
        else:
            out.append(base + rng.gauss(0.0, 1e-3 if t > 5 * n // 6 else 1.0))
    return out


@pytest.mark.parametrize("method", ["mad", "std"])
@pytest.mark.parametrize("window", [2, 3, 16, 257])
def test_zscore_matches_recompute_after_every_event(method: str, window: int) -> None:
    det = RobustZScore(window=window, method=method, min_samples=2)
    seen: list[float] = []
    for seed in range(3):
        for v in awkward_stream(seed, 700):
            det.learn_one({"a": v})
            seen.append(v)
            fit = det.center_scale("a")
            if fit is None:
                continue
            center, scale = naive_center_scale(seen[-window:], method == "mad")
            if method == "mad":  # the same floats, compared in the same order
                assert fit == (center, scale)
            else:  # exact sums: correctly rounded, the recompute is within a few ulps
                assert abs(fit[0] - center) <= 1e-12 * (abs(center) + scale)
                assert fit[1] == pytest.approx(scale, rel=1e-12)


def test_zscore_std_sums_never_drift() -> None:
    """A million-fold level shift and back: a float running sum would be left with noise."""
    det = RobustZScore(window=32, method="std", min_samples=2)
    rng = random.Random(5)
    values = [1e12 + rng.gauss(0, 1) for _ in range(5000)] + [rng.gauss(0, 1e-6) for _ in range(64)]
    for v in values:
        det.learn_one({"v": v})
    center, scale = det.center_scale("v")  # type: ignore[misc]
    expected = naive_center_scale(values[-32:], mad=False)
    assert center == pytest.approx(expected[0], abs=1e-18)
    assert scale == pytest.approx(expected[1], rel=1e-12)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-20, 20), min_size=1, max_size=40),
    st.integers(-25, 25),
    st.data(),
)
def test_kth_deviations_is_the_kth_smallest(values: list[int], center: int, data) -> None:
    s = sorted(v / 4 for v in values)
    c = center / 4
    k = data.draw(st.integers(0, len(s) - 1))
    dev = [*sorted(abs(v - c) for v in s), math.inf]
    assert _kth_deviations(s, c, k) == (dev[k], dev[k + 1])


def test_zscore_state_pickles_and_skip_one_advances_the_phase() -> None:
    det = RobustZScore(window=8, min_samples=2, method="std", season=2)
    for i in range(20):
        det.learn_one({"v": 100.0 + i % 3 if i % 2 == 0 else 1e-300 * i})
    copy = pickle.loads(pickle.dumps(det))
    assert copy.score_one({"v": 101.0}) == det.score_one({"v": 101.0})
    high = det.score_one({"v": 101.0})  # phase 0: the high phase
    det.skip_one({"v": 5e9})
    assert det.score_one({"v": 101.0}) > 1e3 * max(high, 1.0)  # phase 1 now


def test_zscore_restores_a_buffer_pickled_without_sums() -> None:
    """A checkpoint of the sorted-list-only buffer: the std sums are rebuilt on use."""
    det = RobustZScore(window=16, method="std", min_samples=4)
    rng = random.Random(0)
    for _ in range(40):
        det.learn_one({"a": rng.gauss(0, 1)})
    before = det.score_one({"a": 2.0})
    buf = det._buffers["a"][0]
    old = _Buffer.__new__(_Buffer)
    fields = {"values": buf.values, "sorted": sorted(buf.values), "fresh": False}
    old.__setstate__((None, {**fields, "center": 0.0, "scale": 1.0}))
    det._buffers["a"][0] = old
    assert det.score_one({"a": 2.0}) == before
    window = [*list(buf.values)[1:], 0.5]
    det.learn_one({"a": 0.5})
    center, scale = naive_center_scale(window, mad=False)
    assert det.center_scale("a") == pytest.approx((center, scale), rel=1e-12)


# -- scikit-learn and autoencoder fast paths ------------------------------------------------


@pytest.mark.parametrize(
    ("n", "d", "max_features", "seed"),
    [(512, 9, 1.0, 0), (300, 5, 0.6, 1), (100, 2, 1.0, 2), (2, 3, 1.0, 3), (1000, 4, 2, 4)],
)
def test_forest_scores_equal_score_samples(n: int, d: int, max_features: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.01, 1e4, d)
    X[: n // 3, 0] = 3.0  # ties, constant stretches
    model = IsolationForest(n_estimators=30, random_state=seed, max_features=max_features)
    model.fit(X)
    queries = np.vstack([X, rng.normal(size=(200, d)) * 1e4, np.full((1, d), 1e30)])
    fast = forest_scores(compile_forest(model), queries)
    np.testing.assert_allclose(fast, model.score_samples(queries), rtol=0, atol=1e-9)


def shuttle_like(n: int, seed: int) -> list[Event]:
    """Integer-valued rows with many duplicates (ties in distances and in trees)."""
    rng = random.Random(seed)
    return [{f"f{j}": float(rng.randint(0, 4) * (j + 1)) for j in range(4)} for _ in range(n)]


def continuous(n: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    return [
        {"a": rng.gauss(0, 1), "b": rng.gauss(5, 2), "c": rng.expovariate(1.0)} for _ in range(n)
    ]


@pytest.mark.parametrize("make", [shuttle_like, continuous])
@pytest.mark.parametrize(
    "build",
    [
        lambda: IsolationForestDetector(
            reference_size=128, refit_every=100, n_estimators=25, min_samples=64
        ),
        lambda: SklearnLOF(reference_size=128, refit_every=100, min_samples=64),
    ],
    ids=["iforest", "sklearn-lof"],
)
def test_batch_detectors_score_as_score_samples(build, make) -> None:
    det = build()
    checked = 0
    for x in [*make(600, 3), {"f0": 1000000.0, "a": -1000000.0}]:
        score = det.score_one(x)
        if det._model is not None:
            row = np.array([det._vector(x)], dtype=float)
            reference = max(0.0, -float(det._model.score_samples(row)[0]))
            assert score == pytest.approx(reference, rel=1e-9, abs=1e-12)
            checked += 1
        det.learn_one(x)
    assert checked > 500


def test_autoencoder_forward_equals_predict() -> None:
    det = AutoencoderDetector(hidden=(4, 2), batch_size=16, seed=3)
    for x in continuous(400, 1):
        det.learn_one(x)
    X = np.random.default_rng(0).normal(size=(50, 3))
    np.testing.assert_array_equal(_forward(det._net, X), det._net.predict(X))


# -- TemporalFeatures ---------------------------------------------------------------------


def seasonal(n: int, seed: int = 0, period: int = 24, start: int = 0) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        cycle = 5.0 * math.sin(2 * math.pi * i / period)
        out.append(
            {
                "t": round(20.0 + cycle + rng.gauss(0.0, 0.2), 3),
                "p": round(3.0 - 0.1 * cycle + rng.gauss(0.0, 0.01), 4),
            }
        )
    return out


def small_temporal() -> TemporalFeatures:
    return TemporalFeatures(season=24, cycles=3, level_window=16, window=64, min_samples=16)


def run(det, events: list[Event]) -> list[float]:
    scores = []
    for x in events:
        scores.append(det.score_one(x))
        det.learn_one(x)
    return scores


def test_temporal_contract() -> None:
    events = seasonal(600)
    det = small_temporal()
    scores = run(det, events)
    assert all(math.isfinite(s) and s >= 0.0 for s in scores)
    assert run(small_temporal(), events) == scores  # deterministic
    copy = pickle.loads(pickle.dumps(det))
    rest = seasonal(100, seed=1, start=600)
    assert [det.score_one(x) for x in rest] == [copy.score_one(x) for x in rest]  # no learning
    assert run(copy, rest) == run(det, rest)
    assert repr(det.clone()) == repr(small_temporal())
    assert run(det.clone(), events[:300]) == scores[:300]


@pytest.mark.parametrize(
    "events",
    [
        [{"v": 5.0}] * 400,  # constant
        [{"v": 1e12 * x["t"]} for x in seasonal(400)],  # huge
        [{"v": math.nan}, {"v": math.inf}] * 100 + [{"v": 1.0}] * 100,  # non-finite
        [x if i % 3 else {"t": x["t"]} for i, x in enumerate(seasonal(400))],  # missing
    ],
)
def test_temporal_scores_stay_finite(events: list[Event]) -> None:
    scores = run(small_temporal(), events)
    assert all(math.isfinite(s) and s >= 0.0 for s in scores)
    scores = run(TemporalFeatures(window=64, min_samples=16), events)
    assert all(math.isfinite(s) and s >= 0.0 for s in scores)


PERIOD = 96


def trained() -> TemporalFeatures:
    det = TemporalFeatures(season=PERIOD, cycles=3)
    run(det, seasonal(PERIOD * 12, period=PERIOD))
    return det


def protected(det: TemporalFeatures, events: list[Event], limit: float = 12.0) -> list[float]:
    """As the alert layer: an event scored above ``limit`` is skipped, not learned."""
    scores = []
    for x in events:
        scores.append(det.score_one(x))
        (det.learn_one if scores[-1] < limit else det.skip_one)(x)
    return scores


@pytest.mark.parametrize("seed", [9, 10, 11])
def test_temporal_sees_what_a_value_zscore_misses(seed: int) -> None:
    """A shift of 1/5 of the cycle, a frozen reading, more noise: on a seasonal series."""
    base = seasonal(300, seed=seed, start=PERIOD * 12, period=PERIOD)
    assert max(protected(trained(), base)) < 12.0

    shifted = [{**x, "t": x["t"] + 1.0} for x in base[:30]]  # 5 noise sigma, cycle +-5
    assert max(protected(trained(), shifted)) > 15.0

    frozen = [{**x, "p": base[0]["p"]} for x in base[:6]]
    assert max(protected(trained(), frozen)) > 15.0

    rng = random.Random(seed)
    noisy = [{**x, "t": x["t"] + rng.gauss(0.0, 0.4)} for x in base[:150]]  # sigma x2.2
    assert max(protected(trained(), noisy)) > 15.0


def test_temporal_skip_one_keeps_the_phase() -> None:
    events = seasonal(PERIOD * 4, seed=4, start=PERIOD * 12, period=PERIOD)
    kept, drifted = trained(), trained()
    for x in events[:40]:  # 40 events the alert layer does not learn
        kept.skip_one(x)
    rest = events[40:]
    assert max(run(kept, rest)) < 12.0 < max(run(drifted, rest))


def test_temporal_bad_params() -> None:
    for params in ({"season": 1}, {"shift": 0.0}, {"noise": 1.0}, {"gate": -1.0}):
        with pytest.raises(AnomalyError):
            TemporalFeatures(**params)


def test_log_two_sided_is_continuous_and_monotone() -> None:
    zs = [0.0, 1.0, 5.0, 29.999, 30.0, 30.001, 100.0, 1e6]
    logs = [log_two_sided(z) for z in zs]
    assert logs == sorted(logs, reverse=True)
    assert log_two_sided(29.999999) == pytest.approx(log_two_sided(30.0), rel=1e-6)
    assert log_two_sided(-3.0) == log_two_sided(3.0)


# -- synthetic data -----------------------------------------------------------------------


def test_generator_is_deterministic_and_seeded() -> None:
    a = generate(keys=2, per_kind=1, slot=600, clean=300, seed=7)
    b = generate(keys=2, per_kind=1, slot=600, clean=300, seed=7)
    c = generate(keys=2, per_kind=1, slot=600, clean=300, seed=8)
    assert a.events == b.events and a.segments == b.segments
    assert a.events != c.events


def test_generator_labels_and_segments() -> None:
    data = generate(keys=3, per_kind=2, slot=800, clean=400, seed=1)
    n = data.params["events_per_key"]
    assert n == 400 + 10 * 800 and len(data.events) == 3 * n
    by_key: dict[str, list] = {}
    for e in data.events:
        by_key.setdefault(e.key, []).append(e)
    for key, events in by_key.items():
        assert [e.index for e in events] == list(range(n))
        assert all(e.ts_ms == e.index * 300_000 for e in events)
        segments = sorted((s for s in data.segments if s.key == key), key=lambda s: s.start)
        assert sorted(s.kind for s in segments) == sorted(KINDS * 2)
        labelled = {e.index: e.kind for e in events if e.kind is not None}
        expected = {i: s.kind for s in segments for i in range(s.start, s.end + 1)}
        assert labelled == expected
        assert segments[0].start >= 400
        for before, after in itertools.pairwise(segments):
            assert after.start - before.end > 100  # apart
        for s in segments:
            lo, hi = LENGTHS[s.kind]
            assert lo <= s.end - s.start + 1 <= hi
            _check_segment(events, s)


def _check_segment(events: list, s) -> None:
    sigma = VALUES[s.value][2]
    inside = [e.values[s.value] for e in events[s.start : s.end + 1]]
    if s.kind == "stuck":
        assert set(inside) == {events[s.start - 1].values[s.value]}
    elif s.kind == "spike":
        around = [e.values[s.value] for e in events[s.start - 3 : s.start + 4]]
        neighbours = statistics.mean(around[:3] + around[4:])
        assert abs(inside[0] - neighbours) > 3 * sigma
    elif s.kind == "variance":
        diffs = np.diff(inside)
        before = np.diff([e.values[s.value] for e in events[s.start - 300 : s.start]])
        assert diffs.std() > 1.4 * before.std()


def test_generator_rejects_slots_too_short() -> None:
    with pytest.raises(AnomalyError):
        generate(keys=1, per_kind=1, slot=100)


# -- the benchmark's alert matching --------------------------------------------------------


def load_benchmark():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "anomaly_quality.py"
    spec = importlib.util.spec_from_file_location("anomaly_quality", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("anomaly_quality", module)
    spec.loader.exec_module(module)
    return module


def test_benchmark_matches_alerts_to_segments() -> None:
    bench = load_benchmark()
    data = generate(keys=1, per_kind=1, slot=600, clean=300, seed=2)
    segments = data.segments
    spike = next(s for s in segments if s.kind == "spike")
    drift = next(s for s in segments if s.kind == "drift")
    alerts = [
        ("device-0", spike.start),
        ("device-0", drift.end + 5),  # within the tolerance
        ("device-0", drift.end + 50),  # after the segment: false
        ("device-0", 310),  # before any segment: false
    ]
    out = bench.match_alerts(alerts, segments, {"device-0": 3300}, 300, 10)
    assert out["recall"]["spike"] == 1.0 and out["recall"]["drift"] == 1.0
    assert out["recall"]["stuck"] == 0.0 and out["detected"] == 2 and out["segments"] == 5
    assert out["false_alerts"] == 2 and out["false_after_segment"] == 1
    covered = sum(s.end - s.start + 1 + 10 for s in segments)
    assert out["normal_events"] == 3300 - 300 - covered
