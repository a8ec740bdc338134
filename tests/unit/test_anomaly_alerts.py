"""The alert layer: thresholds, warm-up, episodes, severity, learning protection, bad input."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from streamlearn.models.anomaly import AnomalyError, RobustZScore, build_detector
from streamlearn.models.anomaly.scorer import AlertPolicy, Explainer, KeyState, Scored, Scorer

Event = dict[str, float]


def feed(scorer: Scorer, state: KeyState, events: list[Event], key: str = "k") -> list[Scored]:
    out = []
    for x in events:
        n = state.events
        out.append(scorer.process(state, key, x, 1_000 * n, f"e{n}"))
    return out


def noise(n: int, seed: int = 1, **levels: float) -> list[Event]:
    rng = random.Random(seed)
    names = levels or {"v": 10.0}
    return [{k: rng.gauss(mu, 1.0) for k, mu in names.items()} for _ in range(n)]


def zscore_scorer(**policy: object) -> Scorer:
    return Scorer(lambda: RobustZScore(window=128, method="std"), AlertPolicy(**policy), "zscore")


def alerts(results: list[Scored]) -> list[dict]:
    return [r.alert for r in results if r.alert is not None]


def test_policy_validation_names_the_parameter() -> None:
    with pytest.raises(AnomalyError, match="threshold must be in"):
        AlertPolicy(threshold=1.5)
    with pytest.raises(AnomalyError, match="exit_threshold"):
        AlertPolicy(threshold=0.9, exit_threshold=0.95)
    with pytest.raises(AnomalyError, match="warmup must be an integer"):
        AlertPolicy(warmup=-1)
    with pytest.raises(AnomalyError, match="explain_k"):
        AlertPolicy(explain_k=0.0)


def test_severity_levels_by_decade_beyond_the_threshold() -> None:
    policy = AlertPolicy(threshold=0.999)
    assert policy.severity(0.999) == "warning"
    assert policy.severity(0.9995) == "warning"
    assert policy.severity(0.9999) == "major"
    assert policy.severity(0.99999) == "critical"
    assert policy.severity(1.0) == "critical"


def test_no_alert_during_warmup_even_for_a_huge_spike() -> None:
    scorer = zscore_scorer(warmup=300)
    state = scorer.new_state()
    feed(scorer, state, noise(100))
    spike = feed(scorer, state, [{"v": 1e6}])[0]
    assert spike.score > 0.99 and not spike.is_anomaly and spike.alert is None


def test_one_alert_per_episode_then_a_new_episode_after_cooldown() -> None:
    scorer = zscore_scorer(warmup=100, cooldown=5)
    state = scorer.new_state()
    quiet = feed(scorer, state, noise(2500))
    assert alerts(quiet) == []  # no false alert on 2,500 normal events
    burst = feed(scorer, state, [{"v": 40.0}] * 4)
    assert [r.is_anomaly for r in burst] == [True] * 4
    assert [a["episode_id"] for a in alerts(burst)] == ["k:1"]
    assert state.open
    feed(scorer, state, noise(5, seed=2))
    assert not state.open  # 5 events below the exit threshold close it
    again = feed(scorer, state, [{"v": -30.0}])
    (second,) = alerts(again)
    assert second["episode_id"] == "k:2" and second["id"] == "k:2"
    assert state.episodes == 2 and state.anomalies == 5


def test_hysteresis_keeps_the_episode_open_on_high_scores() -> None:
    scorer = zscore_scorer(warmup=100, cooldown=3, exit_threshold=0.95)
    state = scorer.new_state()
    feed(scorer, state, noise(2500))
    feed(scorer, state, [{"v": 40.0}])
    # borderline values (between exit and entry thresholds) keep it open; no new alert
    rng = random.Random(5)
    between = []
    for _ in range(20):
        x = {"v": 10.0 + rng.choice([-1, 1]) * rng.uniform(3.2, 3.5)}
        probe = scorer.probe(state, x)["score"]
        if 0.95 <= probe < 0.9999:
            between.append(x)
    assert between, "no borderline values found"
    results = feed(scorer, state, between)
    assert alerts(results) == [] and state.open


def test_anomalous_events_are_not_learned_unless_asked() -> None:
    for learn in (False, True):
        scorer = zscore_scorer(warmup=100, learn_anomalies=learn)
        state = scorer.new_state()
        feed(scorer, state, noise(2500))
        recorded = state.detector.recorded
        (spike,) = feed(scorer, state, [{"v": 50.0}])
        assert spike.is_anomaly
        assert spike.learned is learn
        assert state.detector.recorded == min(recorded + learn, 2000)
        stats_n = state.explainer.stats["v"][0]
        assert stats_n == 2500 + learn


def test_a_permanent_level_shift_gives_one_alert_and_becomes_normal() -> None:
    scorer = zscore_scorer(warmup=100, relearn_after=50)
    state = scorer.new_state()
    feed(scorer, state, noise(2500))
    shifted = feed(scorer, state, noise(1500, seed=9, v=30.0))
    assert len(alerts(shifted)) == 1
    assert not state.open  # the new level was learned and the episode closed
    assert not any(r.is_anomaly for r in shifted[-500:])


def test_alert_explains_the_anomalous_value_with_its_expected_range() -> None:
    scorer = zscore_scorer(warmup=100)
    state = scorer.new_state()
    feed(scorer, state, noise(2500, temp=20.0, load=1.0))
    (result,) = feed(scorer, state, [{"temp": 20.0, "load": 9.0}])
    alert = result.alert
    assert alert is not None
    assert alert["key"] == "k" and alert["event_id"] == "e2500" and alert["ts"] == 2_500_000
    assert alert["detector"] == "zscore" and alert["fired"] == ["zscore"]
    assert alert["severity"] in ("warning", "major", "critical")
    (value,) = alert["values"]  # temp is normal: only load is listed
    assert value["name"] == "load" and value["value"] == 9.0
    assert value["expected_low"] < 1.0 < value["expected_high"] < 9.0
    assert value["z"] > 3


def test_ensemble_alert_names_the_members_that_fired() -> None:
    scorer = Scorer(
        lambda: build_detector(
            "zscore+hst",
            {"zscore": {"method": "std"}, "hst": {"n_trees": 5, "height": 6, "window_size": 50}},
        ),
        AlertPolicy(warmup=100),
        "zscore+hst",
    )
    state = scorer.new_state()
    feed(scorer, state, noise(2500))
    (result,) = feed(scorer, state, [{"v": 60.0}])
    assert result.alert is not None
    assert set(result.alert["detectors"]) == {"zscore", "hst"}
    assert "zscore" in result.alert["fired"]


def test_explainer_reports_the_largest_deviation_when_none_exceeds_k() -> None:
    ex = Explainer(span=32)
    for x in noise(200, a=0.0, b=0.0):
        ex.learn_one(x)
    rows = ex.explain({"a": 0.5, "b": 2.0}, 10.0)
    assert [r["name"] for r in rows] == ["b"]
    assert ex.explain({"unknown": 1.0}, 3.0) == []


# --- bad input: no crash, no NaN, no alert storm ----------------------------------------
def missing(n: int) -> list[Event]:
    rng = random.Random(3)
    out = []
    for x in noise(n, a=10.0, b=50.0, c=-5.0):
        kept = {k: v for k, v in x.items() if rng.random() > 0.3}
        out.append(kept or {"a": x["a"]})
    return out


def new_names(n: int) -> list[Event]:
    events = noise(n, a=10.0, b=50.0)
    return [x if i < n // 2 else {**x, "c": 7.0 + x["a"] - 10.0} for i, x in enumerate(events)]


def constant(n: int) -> list[Event]:
    return [{"a": 5.0, "b": 0.0} for _ in range(n)]


def huge(n: int) -> list[Event]:
    return [{k: v * 1e12 for k, v in x.items()} for x in noise(n, a=10.0, b=-3.0)]


def gaps(n: int) -> list[Event]:
    return noise(n, a=10.0)


BAD_INPUT: dict[str, Callable[[int], list[Event]]] = {
    "missing-values": missing,
    "new-names": new_names,
    "constant": constant,
    "huge": huge,
    "time-gaps": gaps,
}
DETECTOR_CASES = {
    "default": ("default", {}),
    "hst": ("hst", {"n_trees": 5, "height": 6, "window_size": 100}),
    "ensemble": ("zscore+hst", {"hst": {"n_trees": 5, "height": 6, "window_size": 100}}),
}


@pytest.mark.parametrize("detector", sorted(DETECTOR_CASES))
@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_no_crash_no_nan_no_alert_storm(case: str, detector: str) -> None:
    name, params = DETECTOR_CASES[detector]
    scorer = Scorer(lambda: build_detector(name, params), AlertPolicy(warmup=200), name)
    state = scorer.new_state()
    events = BAD_INPUT[case](4000)
    results = []
    for i, x in enumerate(events):
        # time gaps: a week of silence every 500 events; the scorer is order-based
        ts = i * 1000 + (i // 500) * 7 * 86_400_000 if case == "time-gaps" else i * 1000
        results.append(scorer.process(state, "k", x, ts, str(i)))
    assert all(math.isfinite(r.score) and 0.0 <= r.score <= 1.0 for r in results)
    assert all(math.isfinite(r.raw_score) and r.raw_score >= 0.0 for r in results)
    # well under 1 alert per 1,000 normal events (4,000 here), not one per event
    assert len(alerts(results)) <= 3, alerts(results)
    probe = scorer.probe(state, events[-1])
    assert math.isfinite(probe["score"])


def test_constant_series_alerts_once_on_the_first_change() -> None:
    scorer = Scorer(lambda: build_detector("default"), AlertPolicy(warmup=200), "default")
    state = scorer.new_state()
    assert alerts(feed(scorer, state, constant(3000))) == []
    changed = feed(scorer, state, [{"a": 5.5, "b": 0.0}] * 20)
    assert len(alerts(changed)) == 1
