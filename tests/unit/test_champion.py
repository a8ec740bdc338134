"""Champion/challenger promotion and model monitoring (pure logic, real River models)."""

from __future__ import annotations

import pickle
import random

import pytest
from river.datasets import synth

from streamlearn.drift import DriftConfig
from streamlearn.errors import StreamlearnError
from streamlearn.models.champion import Challenger, ChampionConfig, Lifecycle
from streamlearn.models.online import ModelConfig, ModelState, OnlineModel

DRIFT_AT = 5_000
POST = 10_000


def _sea_drift(seed: int) -> synth.ConceptDriftStream:
    # SEA's concept 0 (threshold 8) -> concept 3 (threshold 9.5), abrupt (width 50).
    return synth.ConceptDriftStream(
        synth.SEA(variant=0, seed=seed),
        synth.SEA(variant=3, seed=seed + 1),
        position=DRIFT_AT,
        width=50,
        seed=seed,
    )


def test_challenger_is_promoted_after_concept_drift_and_accuracy_recovers() -> None:
    # Naive Bayes never forgets: after the drift the champion keeps the old concept's
    # statistics, so only a challenger trained after the drift recovers.
    config = ModelConfig(learner="naive-bayes", champion=ChampionConfig(), drift=DriftConfig())
    model = OnlineModel(config, name="sea")
    state = model.new_state()
    plain = OnlineModel(ModelConfig(learner="naive-bayes"))
    plain_state = plain.new_state()
    post_only = OnlineModel(ModelConfig(learner="naive-bayes"))
    post_state = post_only.new_state()
    records = []
    hits = {"champion": 0, "plain": 0, "post_only": 0}
    tail_from = DRIFT_AT + POST // 2
    for i, (x, y) in enumerate(_sea_drift(7).take(DRIFT_AT + POST)):
        served, _ = model.predict_event(state, "k", f"e{i}", i, x, y)
        records += [(i, r) for r in model.drain(state)]
        kept, _ = plain.predict_event(plain_state, "k", f"e{i}", i, x, y)
        if i >= DRIFT_AT:
            fresh, _ = post_only.predict_event(post_state, "k", f"e{i}", i, x, y)
            if i >= tail_from:
                hits["champion"] += served.prediction == y
                hits["plain"] += kept.prediction == y
                hits["post_only"] += fresh.prediction == y
    promotions = [(i, r) for i, r in records if r.get("event") == "promotion"]
    assert promotions, [r.get("event", r["type"]) for _, r in records]
    first, promotion = promotions[0]
    assert DRIFT_AT < first < DRIFT_AT + 2_000
    assert promotion["type"] == "promotion" and promotion["version"] == 2
    assert promotion["evidence"]["test"] == "mcnemar-exact"
    assert promotion["evidence"]["p_value"] < 0.01
    gain = promotion["evidence"]["challenger_accuracy"] - promotion["evidence"]["champion_accuracy"]
    assert gain >= 0.02
    drift = [r for i, r in records if r["type"] == "drift" and i < first]
    assert drift and drift[-1]["kind"] == "concept" and drift[-1]["subject"] == "sea"
    n = DRIFT_AT + POST - tail_from
    accuracy = {name: count / n for name, count in hits.items()}
    # Recovers to within 2 points of a model trained on post-drift data only...
    assert accuracy["champion"] >= accuracy["post_only"] - 0.02, accuracy
    # ...which the champion alone does not.
    assert accuracy["plain"] < accuracy["post_only"] - 0.02, accuracy
    report = model.report(state)
    assert [v["version"] for v in report["versions"]] == [2]
    assert report["champion"]["origin"] == "drift"
    assert report["drift"] and report["metrics_over_time"]


def _lifecycle_model(task: str = "classification", **champion: object) -> OnlineModel:
    config = ModelConfig(
        task=task,  # type: ignore[arg-type]
        learner="logreg" if task == "classification" else "linear",
        champion=ChampionConfig(**champion),  # type: ignore[arg-type]
    )
    return OnlineModel(config, name="m")


def test_an_equally_good_challenger_is_never_promoted() -> None:
    model = _lifecycle_model(window=200, margin=0.02)
    state = model.new_state()
    state.challengers.append(Challenger(model.new_learner(), "candidate:1", 0, 200))
    rng = random.Random(3)
    for i in range(4_000):
        v = rng.gauss(0, 1)
        model.predict_event(state, "k", f"e{i}", i, {"v": v}, v + rng.gauss(0, 0.5) > 0)
    assert state.champion.version == 1
    assert not [r for r in model.drain(state) if r.get("event") == "promotion"]
    summary = state.challengers[0].summary(True)
    assert summary["window"] == 200
    assert abs(summary["champion_accuracy"] - summary["challenger_accuracy"]) < 0.05


def test_mcnemar_guard_needs_significance_not_only_the_margin() -> None:
    lifecycle = Lifecycle(ChampionConfig(window=40, margin=0.02, alpha=0.01), "classification", "m")
    lucky = Challenger(None, "drift", 0, 40)
    for i in range(40):  # 3 discordant pairs for the challenger, none against it
        lucky.add(1.0 if i < 3 else 0.0, 0.0)
    assert lucky.sum_champion / 40 - lucky.sum_challenger / 40 >= 0.02
    assert lifecycle.compare(lucky) is None  # p = 1/8: not significant
    clear = Challenger(None, "drift", 0, 40)
    for i in range(40):
        clear.add(1.0 if i < 12 else 0.0, 0.0)
    verdict = lifecycle.compare(clear)
    assert verdict is not None and verdict["p_value"] < 0.01
    assert verdict["discordant"] == {"champion_only_wrong": 12, "challenger_only_wrong": 0}


def test_window_counts_slide() -> None:
    c = Challenger(None, "drift", 0, 3)
    for pair in [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0), (0.0, 1.0)]:
        c.add(*pair)
    kept = list(c.pairs)
    assert kept == [(1.0, 1.0), (0.0, 0.0), (0.0, 1.0)]
    assert c.sum_champion == sum(p[0] for p in kept)
    assert c.sum_challenger == sum(p[1] for p in kept)
    assert (c.champion_only_wrong, c.challenger_only_wrong) == (0, 1)


def test_regression_challenger_promoted_by_wilcoxon() -> None:
    model = _lifecycle_model("regression", window=300, margin=0.05, check_every=10)
    state = model.new_state()
    rng = random.Random(5)
    events = 0

    def feed(n: int, slope: float) -> None:
        nonlocal events
        for _ in range(n):
            v = rng.uniform(-1, 1)
            model.predict_event(state, "k", f"e{events}", events, {"v": v}, slope * v)
            events += 1

    feed(3_000, 2.0)
    assert state.champion.version == 1
    # A registered candidate that already knows the new relation challenges the champion.
    candidate = model.new_learner()
    for _ in range(2_000):
        v = rng.uniform(-1, 1)
        candidate.learn_one({"v": v}, -3.0 * v)
    state.challengers.append(Challenger(candidate, "candidate:7", events, 300))
    feed(400, -3.0)
    promotions = [r for r in model.drain(state) if r.get("event") == "promotion"]
    assert len(promotions) == 1
    evidence = promotions[0]["evidence"]
    assert evidence["test"] == "wilcoxon-signed-rank" and evidence["p_value"] < 0.01
    assert evidence["challenger_mae"] < evidence["champion_mae"] * 0.95
    assert state.champion.origin == "candidate:7" and state.champion.version == 2
    assert state.learner is candidate


def test_degradation_alert_once_per_episode() -> None:
    model = _lifecycle_model(
        window=100, degradation_margin=0.1, degradation_events=50, monitor_metric="accuracy"
    )
    state = model.new_state()
    rng = random.Random(11)
    for i in range(1_500):
        v = rng.gauss(0, 1)
        model.predict_event(state, "k", f"a{i}", i, {"v": v}, v > 0)
    assert state.champion.baseline is not None and state.champion.baseline > 0.9
    assert not [r for r in model.drain(state) if r["type"] == "degradation"]
    for i in range(1_500):  # labels become coin flips: the rolling accuracy collapses
        v = rng.gauss(0, 1)
        model.predict_event(state, "k", f"b{i}", 1_500 + i, {"v": v}, rng.random() < 0.5)
    alerts = [r for r in model.drain(state) if r["type"] == "degradation"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["severity"] in ("warning", "critical") and alert["subject"] == "m"
    assert alert["evidence"]["baseline"] - alert["evidence"]["value"] > 0.1
    assert alert["evidence"]["labels"] == 50
    assert state.degraded


def test_state_with_challengers_survives_pickle_and_continues_identically() -> None:
    model = _lifecycle_model(window=50)
    state = model.new_state()
    state.challengers.append(Challenger(model.new_learner(), "drift", 0, 50))
    rng = random.Random(2)
    data = [(rng.gauss(0, 1), rng.random()) for _ in range(600)]
    for i, (v, u) in enumerate(data[:300]):
        model.predict_event(state, "k", f"e{i}", i, {"v": v}, v > 0 or u < 0.1)
    copy = pickle.loads(pickle.dumps(state))
    out = []
    for s in (state, copy):
        for i, (v, u) in enumerate(data[300:], start=300):
            model.predict_event(s, "k", f"e{i}", i, {"v": v}, v > 0 or u < 0.1)
        out.append((s.challengers[0].sum_challenger, model.metrics(s)["accuracy"], s.learned))
    assert out[0] == out[1]


def test_checkpoint_from_before_champion_challenger_loads_with_defaults() -> None:
    model = _lifecycle_model()
    state = model.new_state()
    old = dict(state.__dict__)
    for name in ("champion", "challengers", "concept", "history", "lifecycle", "outbox"):
        old.pop(name)
    legacy = ModelState.__new__(ModelState)
    legacy.__setstate__(old)
    assert legacy.champion.version == 1 and legacy.challengers == [] and legacy.outbox == []
    model.predict_event(legacy, "k", "e", 1, {"v": 1.0}, True)
    assert legacy.learned == 1


def test_report_filters_by_event_time() -> None:
    model = _lifecycle_model(window=50, history_every=10)
    state = model.new_state()
    for i in range(200):
        model.predict_event(state, "k", f"e{i}", i * 1000, {"v": float(i % 7)}, i % 7 > 3)
    report = model.report(state, from_ts=50_000, to_ts=100_000)
    times = [p["ts"] for p in report["metrics_over_time"]]
    assert times and all(50_000 <= t < 100_000 for t in times)
    assert len(model.report(state)["metrics_over_time"]) == 20


def test_monitor_metric_must_be_a_rolling_metric_of_the_task() -> None:
    with pytest.raises(StreamlearnError, match="roc_auc"):
        Lifecycle(ChampionConfig(monitor_metric="roc_auc"), "classification", "m")
    with pytest.raises(StreamlearnError, match="accuracy"):
        Lifecycle(ChampionConfig(monitor_metric="accuracy"), "regression", "m")
