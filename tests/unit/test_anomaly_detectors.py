"""One contract suite over every anomaly detector (River's check_estimator habit).

Each factory uses small windows/trees so the whole suite stays fast.
"""

from __future__ import annotations

import math
import pickle
import random
import statistics
from collections.abc import Callable

import pytest

from streamlearn.errors import StreamlearnError
from streamlearn.models.anomaly import (
    DETECTORS,
    AnomalyError,
    AutoencoderDetector,
    Calibrated,
    Detector,
    Ensemble,
    HalfSpaceTrees,
    IncrementalLOF,
    IsolationForestDetector,
    RobustZScore,
    SklearnLOF,
    TemporalFeatures,
    make_detector,
)

Event = dict[str, float]

FACTORIES: dict[str, Callable[[], Detector]] = {
    "zscore": lambda: RobustZScore(window=64, min_samples=8),
    "zscore-std": lambda: RobustZScore(window=64, method="std", min_samples=8),
    "zscore-season": lambda: RobustZScore(window=16, min_samples=4, season=4),
    "hst": lambda: HalfSpaceTrees(n_trees=5, height=5, window_size=50, seed=1),
    "lof": lambda: IncrementalLOF(n_neighbors=5, max_points=100),
    "iforest": lambda: IsolationForestDetector(
        reference_size=128, refit_every=128, n_estimators=20, seed=1, min_samples=64
    ),
    "sklearn-lof": lambda: SklearnLOF(
        reference_size=128, refit_every=128, n_neighbors=10, min_samples=64
    ),
    "autoencoder": lambda: AutoencoderDetector(hidden=(2,), batch_size=16, seed=1),
    "temporal": lambda: TemporalFeatures(level_window=16, window=64, min_samples=16),
    "temporal-season": lambda: TemporalFeatures(
        season=8, cycles=3, level_window=16, window=64, min_samples=16
    ),
    "calibrated": lambda: Calibrated(RobustZScore(window=64, min_samples=8), window=200),
    "ensemble": lambda: Ensemble(
        {
            "z": RobustZScore(window=64, min_samples=8),
            "hst": HalfSpaceTrees(n_trees=5, height=5, window_size=50, seed=1),
        },
        weights={"z": 2.0, "hst": 1.0},
        calibration_window=200,
    ),
}
CALIBRATED = {"calibrated"}  # scores in [0, 1]; the ensemble's raw score is surprise
names = pytest.mark.parametrize("name", sorted(FACTORIES))

MEANS = {"a": 20.0, "b": 1000.0, "c": 0.0}
SIGMAS = {"a": 2.0, "b": 50.0, "c": 0.01}


def normal_stream(n: int, seed: int = 7) -> list[Event]:
    rng = random.Random(seed)
    return [{k: rng.gauss(MEANS[k], SIGMAS[k]) for k in MEANS} for _ in range(n)]


def constant_stream(n: int) -> list[Event]:
    return [{"a": 5.0, "b": 5.0, "c": 5.0} for _ in range(n)]


def huge_stream(n: int) -> list[Event]:
    return [{k: v * 1e12 for k, v in x.items()} for x in normal_stream(n)]


def missing_stream(n: int) -> list[Event]:
    rng = random.Random(3)
    out = []
    for x in normal_stream(n):
        kept = {k: v for k, v in x.items() if rng.random() > 0.3}
        out.append(kept or {"a": x["a"]})
    return out


def new_name_stream(n: int) -> list[Event]:
    return [
        x if i >= n // 2 else {k: v for k, v in x.items() if k != "c"}
        for i, x in enumerate(normal_stream(n))
    ]


def gap_stream(n: int) -> list[Event]:
    # "c" is silent for the middle half, then comes back at a shifted level.
    out = []
    for i, x in enumerate(normal_stream(n)):
        if n // 4 <= i < 3 * n // 4:
            x = {k: v for k, v in x.items() if k != "c"}
        elif i >= 3 * n // 4:
            x = {**x, "c": x["c"] + 0.5}
        out.append(x)
    return out


STREAMS = {
    "normal": normal_stream,
    "constant": constant_stream,
    "huge": huge_stream,
    "missing": missing_stream,
    "new-name": new_name_stream,
    "gaps": gap_stream,
}


def run(det: Detector, stream: list[Event]) -> list[float]:
    """Progressive loop: score each event, then learn it."""
    scores = []
    for x in stream:
        scores.append(det.score_one(x))
        det.learn_one(x)
    return scores


def test_every_registered_detector_is_checked() -> None:
    checked = {type(f()) for f in FACTORIES.values()}
    assert set(DETECTORS.values()) <= checked
    assert {Calibrated, Ensemble} <= checked


@names
def test_repr_and_docstring(name: str) -> None:
    det = FACTORIES[name]()
    assert type(det).__name__ in repr(det)
    doc = type(det).__doc__ or ""
    assert "Examples" in doc and ">>>" in doc


@names
def test_clone_has_equal_params_and_fresh_state(name: str) -> None:
    trained = FACTORIES[name]()
    run(trained, normal_stream(300))
    clone = trained.clone()
    assert type(clone) is type(trained) and clone is not trained
    assert repr(clone) == repr(FACTORIES[name]())
    assert clone._get_params().keys() == trained._get_params().keys()
    probe = normal_stream(200, seed=11)
    assert run(clone, probe) == run(FACTORIES[name](), probe)  # fresh: same as new
    # and independent: learning the clone did not touch the original
    before = trained.score_one(probe[0])
    run(trained.clone(), probe)
    assert trained.score_one(probe[0]) == before


@names
def test_pickle_round_trip_gives_identical_scores(name: str) -> None:
    det = FACTORIES[name]()
    run(det, normal_stream(300))
    copy = pickle.loads(pickle.dumps(det))
    rest = normal_stream(100, seed=12)
    assert run(copy, rest) == run(det, rest)


@names
def test_deterministic(name: str) -> None:
    stream = normal_stream(300)
    assert run(FACTORIES[name](), stream) == run(FACTORIES[name](), stream)


@names
@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_scores_finite_and_in_range(name: str, stream: str) -> None:
    scores = run(FACTORIES[name](), STREAMS[stream](400))
    assert all(math.isfinite(s) and s >= 0.0 for s in scores), scores
    if name in CALIBRATED:
        assert all(0.0 <= s <= 1.0 for s in scores)


@names
def test_spike_scores_above_median_normal(name: str) -> None:
    det = FACTORIES[name]()
    run(det, normal_stream(400))
    normal_scores = run(det, normal_stream(100, seed=21))
    spike = {"a": MEANS["a"] + 50 * SIGMAS["a"], "b": MEANS["b"], "c": MEANS["c"]}
    assert det.score_one(spike) > statistics.median(normal_scores)


@names
def test_score_one_does_not_learn(name: str) -> None:
    det = FACTORIES[name]()
    stream = normal_stream(300)
    run(det, stream[:200])
    first = [det.score_one(x) for x in stream[200:]]
    assert [det.score_one(x) for x in stream[200:]] == first


def test_calibrated_is_a_running_ecdf() -> None:
    class Echo(Detector):
        def learn_one(self, x: Event) -> None:
            pass

        def score_one(self, x: Event) -> float:
            return x["v"]

    det = Calibrated(Echo(), window=4)
    assert det.score_one({"v": 1.0}) == 0.0  # nothing recorded yet
    for v in (1.0, 2.0, 3.0, 4.0, 5.0):  # 1.0 falls out of the window
        det.learn_one({"v": v})
    assert det.score_one({"v": 9.0}) == 4 / 5  # above all 4: rarer than 1 in 5, no more
    assert det.score_one({"v": 3.0}) == (1 + 0.5) / 4  # mid-rank tie
    assert det.score_one({"v": 1.0}) == 0.0
    assert det.score_one({"v": 0.0}) == 0.0  # raw 0 = no evidence


def test_robust_zscore_constant_series_and_floor() -> None:
    det = RobustZScore(window=16, min_samples=4)
    for _ in range(10):
        det.learn_one({"v": 3.0})
    assert det.score_one({"v": 3.0}) == 0.0
    jump = det.score_one({"v": 3.001})
    assert math.isfinite(jump) and jump > 1e3
    assert det.score_one({"v": 1e300}) == 1e12  # capped, not inf


def test_robust_zscore_season_compares_same_phase() -> None:
    det = RobustZScore(window=8, min_samples=4, season=2)
    for i in range(20):
        det.learn_one({"v": 100.0 + i % 3 if i % 2 == 0 else float(i % 3)})
    # the next event has phase 0 (the high phase)
    assert det.score_one({"v": 101.0}) < 1.0 < det.score_one({"v": 1.0})


def test_ensemble_details_and_weights() -> None:
    ens = FACTORIES["ensemble"]()
    run(ens, normal_stream(300))
    x = normal_stream(1, seed=5)[0]
    details = ens.score_details(x)
    assert set(details) == {"z", "hst"}
    surprise = {name: -math.log(max(1.0 - p, 1e-12)) for name, p in details.items()}
    assert ens.score_one(x) == pytest.approx((2 * surprise["z"] + surprise["hst"]) / 3)
    top = Ensemble(
        {"z": RobustZScore(window=64, min_samples=8), "h": RobustZScore(window=64)},
        combine="max",
    )
    run(top, normal_stream(300))
    details = top.score_details(x)
    assert top.score_one(x) == pytest.approx(max(-math.log(1.0 - p) for p in details.values()))


def test_calibrated_tail_orders_scores_beyond_the_window() -> None:
    """Above the ECDF's resolution the Pareto tail still ranks scores, continuously."""

    class Echo(Detector):
        def learn_one(self, x: Event) -> None:
            pass

        def score_one(self, x: Event) -> float:
            return x["v"]

    rng = random.Random(4)
    det = Calibrated(Echo(), window=1000, tail=0.05)
    for _ in range(1000):
        det.learn_one({"v": rng.expovariate(1.0)})
    u = det._sorted[1000 - 50 - 1]
    just_above = det.score_one({"v": u + 1e-9})
    assert just_above == pytest.approx(0.95, abs=0.002)  # continuous at the threshold
    s10, s15, s30 = (det.score_one({"v": v}) for v in (10.0, 15.0, 30.0))
    assert 0.95 < s10 < s15 < s30 <= 1.0
    # exponential data: P(X > 10) = e**-10 ~ 4.5e-5; the tail fit is within a factor ~3
    assert 1.5e-5 < 1.0 - s10 < 1.5e-4


def test_make_detector_by_name() -> None:
    assert isinstance(make_detector("hst", n_trees=3), HalfSpaceTrees)
    with pytest.raises(AnomalyError, match="unknown detector"):
        make_detector("nope")


@pytest.mark.parametrize(
    "build",
    [
        lambda: RobustZScore(window=1),
        lambda: RobustZScore(method="iqr"),
        lambda: RobustZScore(window=8, min_samples=9),
        lambda: RobustZScore(season=0),
        lambda: HalfSpaceTrees(n_trees=0),
        lambda: IncrementalLOF(max_points=1),
        lambda: IsolationForestDetector(reference_size=10, min_samples=20),
        lambda: SklearnLOF(refit_every=0),
        lambda: AutoencoderDetector(hidden=()),
        lambda: Calibrated(RobustZScore(), window=0),
        lambda: Ensemble({}),
        lambda: Ensemble({"z": RobustZScore()}, weights={"y": 1.0}),
        lambda: Ensemble({"z": RobustZScore()}, weights={"z": 0.0}),
        lambda: Ensemble({"z": RobustZScore()}, combine="median"),
        lambda: Calibrated(RobustZScore(), tail=0.7),
    ],
)
def test_bad_params_raise_anomaly_error(build: Callable[[], Detector]) -> None:
    with pytest.raises(AnomalyError) as info:
        build()
    assert isinstance(info.value, StreamlearnError)


def test_skip_one_keeps_a_seasonal_phase_through_the_wrappers() -> None:
    """An event that is not learned still advances the season (Calibrated, Ensemble)."""
    skipped = Ensemble({"z": RobustZScore(window=8, min_samples=3, season=2)})
    learned = Ensemble({"z": RobustZScore(window=8, min_samples=3, season=2)})
    for i in range(20):
        x = {"v": 100.0 + i % 3 if i % 2 == 0 else float(i % 3)}
        skipped.learn_one(x)
        learned.learn_one(x)
    skipped.skip_one({"v": 1e6})  # phase 0 passes without being learned
    high, low = {"v": 101.0}, {"v": 1.0}  # the next event has phase 1 (the low phase)
    assert skipped.score_one(low) < skipped.score_one(high)
    assert learned.score_one(high) < learned.score_one(low)  # not advanced: phase 0


def test_calibrated_constant_and_discrete_histories() -> None:
    class Echo(Detector):
        def learn_one(self, x: Event) -> None:
            pass

        def score_one(self, x: Event) -> float:
            return x["v"]

    constant = Calibrated(Echo(), window=1000)
    for _ in range(1000):
        constant.learn_one({"v": 0.5})
    # above a constant history: rarer than 1 in 1,001, not "impossible" (no alert storm)
    assert constant.score_one({"v": 0.6}) == 1000 / 1001
    discrete = Calibrated(Echo(), window=1000)
    for i in range(1000):
        discrete.learn_one({"v": float(i % 4)})  # the top 5 % all equal 3.0
    assert discrete.score_one({"v": 3.5}) < discrete.score_one({"v": 30.0})
    assert discrete.score_one({"v": 30.0}) > 0.9999
