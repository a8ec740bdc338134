"""Drift detection: builders, window comparisons, data and concept monitors."""

from __future__ import annotations

import math
import pickle
import random
from types import SimpleNamespace

import numpy as np
import pytest
from river.datasets import synth

from streamlearn.drift import (
    ConceptDriftMonitor,
    DataDriftMonitor,
    DriftConfig,
    build_concept_detector,
    build_data_detector,
    compare,
    summary,
    validate_drift_settings,
)
from streamlearn.drift.compare import psi
from streamlearn.drift.detectors import detector_names
from streamlearn.errors import StreamlearnError
from streamlearn.models.learners import build_learner


def make_settings(**overrides):
    values = {
        "drift_detector": "adwin",
        "drift_params": {},
        "drift_concept_detector": "adwin",
        "drift_concept_params": {},
        "drift_reference_events": 1000,
        "drift_reference_from_ms": None,
        "drift_reference_to_ms": None,
        "drift_window_events": 1000,
        "drift_compare_every": 1000,
        "drift_compare_alpha": 1e-6,
        "drift_psi_threshold": 0.25,
        "drift_cooldown_events": 1000,
        "model_task": "classification",
    }
    values.update(overrides)
    return SimpleNamespace(**values)


# --- builders -----------------------------------------------------------------------


@pytest.mark.parametrize("name", detector_names("classification"))
def test_every_concept_detector_builds_pickles_and_updates(name):
    detector = build_concept_detector(name, {}, "classification")
    clone = pickle.loads(pickle.dumps(detector))
    for i in range(200):
        detector.update(i % 7 == 0)
        clone.update(i % 7 == 0)
    assert detector.drift_detected == clone.drift_detected


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: build_data_detector("nope", {}), "adwin, kswin, page-hinkley"),
        (lambda: build_data_detector("ddm", {}), "choose from"),
        (lambda: build_concept_detector("hddm-a", {}, "regression"), "needs classification"),
        (lambda: build_concept_detector("nope", {}, "classification"), "hddm-w"),
        (lambda: build_data_detector("adwin", {"deltaa": 1}), "'deltaa'"),
        (lambda: build_data_detector("page-hinkley", {"mode": "sideways"}), "page-hinkley"),
        (lambda: build_data_detector("adwin", {"delta": "x"}), "bad parameters"),
    ],
)
def test_builder_errors_name_the_choices_or_parameter(call, needle):
    with pytest.raises(StreamlearnError, match=needle):
        call()


def test_validate_drift_settings():
    validate_drift_settings(make_settings())
    with pytest.raises(StreamlearnError, match="together"):
        validate_drift_settings(make_settings(drift_reference_from_ms=5))
    with pytest.raises(StreamlearnError, match="after"):
        validate_drift_settings(make_settings(drift_reference_from_ms=5, drift_reference_to_ms=5))
    with pytest.raises(StreamlearnError, match="needs classification"):
        validate_drift_settings(
            make_settings(drift_concept_detector="ddm", model_task="regression")
        )


def test_config_from_settings():
    config = DriftConfig.from_settings(
        make_settings(drift_reference_from_ms=1, drift_reference_to_ms=2, drift_psi_threshold=0.3)
    )
    assert config.pinned and config.psi_threshold == 0.3 and config.detector == "adwin"


# --- comparisons --------------------------------------------------------------------


def test_identical_samples_compare_as_stable():
    rng = np.random.default_rng(0)
    sample = rng.normal(size=2000)
    result = compare(sample, sample.copy())
    assert result.p_value > 0.99 and result.psi < 1e-9 and result.wasserstein == 0
    assert result.jensen_shannon == 0
    other = compare(sample, rng.normal(size=2000))
    assert other.p_value > 1e-3 and other.psi < 0.05


def test_shifted_samples_compare_as_drift():
    rng = np.random.default_rng(1)
    result = compare(rng.normal(size=2000), rng.normal(1.0, 1.0, 2000))
    assert result.p_value < 1e-20 and result.psi > 0.5 and result.drifted(1e-6, 0.25)
    assert 0.8 < result.wasserstein < 1.2 and 0.2 < result.jensen_shannon <= 1


def test_constant_tiny_and_empty_samples_give_no_nan():
    cases = [([3.0] * 50, [3.0] * 50), ([3.0] * 50, [4.0] * 50), ([1.0], [2.0]), ([], [1.0])]
    for ref, cur in cases:
        values = compare(ref, cur).to_dict().values()
        assert all(math.isfinite(v) for v in values), (ref, cur)
    assert compare([3.0] * 50, [4.0] * 50).psi > 1
    assert summary([]) == {
        "n": 0,
        **dict.fromkeys(("mean", "std", "min", "p05", "p50", "p95", "max")),
    }
    assert summary([2.0])["std"] == 0.0 and summary([np.nan, 1.0])["n"] == 1


def test_new_category_raises_psi():
    ref = [0.0, 1.0, 2.0] * 300
    assert psi(ref, [0.0, 1.0, 2.0, 3.0] * 225) > 1
    assert psi(ref, ref) < 1e-9


# --- data drift monitor ---------------------------------------------------------------


def feed(monitor, state, values, start=0, key="k", name="v"):
    out = []
    for i, x in enumerate(values.tolist(), start):
        out += monitor.update(state, key, {name: x}, i)
    return out


def test_abrupt_mean_shift_is_detected_quickly():
    rng = np.random.default_rng(2)
    monitor = DataDriftMonitor()
    state = monitor.new_state()
    records = feed(monitor, state, np.r_[rng.normal(size=5000), rng.normal(1.0, 1.0, 3000)])
    assert records, "no drift record"
    first = records[0]
    assert 5000 <= first.ts < 5300
    envelope = first.to_dict()
    assert envelope["type"] == "drift" and envelope["kind"] == "data"
    assert envelope["dedup_key"] == envelope["episode"] and envelope["subject"] == "v"
    assert envelope["severity"] in ("info", "warning", "critical")
    assert envelope["current"]["mean"] > envelope["reference"]["mean"] + 0.5


def test_no_record_on_a_long_stationary_stream():
    rng = np.random.default_rng(3)
    monitor = DataDriftMonitor()
    state = monitor.new_state()
    assert feed(monitor, state, rng.normal(10.0, 2.0, 50_000)) == []


def test_one_record_per_episode_and_cooldown():
    rng = np.random.default_rng(4)
    config = DriftConfig(cooldown_events=5000)
    monitor = DataDriftMonitor(config)
    state = monitor.new_state()
    # A persistent shift: one record (the reference restarts), not one per comparison.
    values = np.r_[rng.normal(size=3000), rng.normal(3.0, 1.0, 10_000)]
    records = feed(monitor, state, values)
    assert len(records) == 1
    # Two shifts closer than the cooldown make one record; the episode ids are stable.
    state = monitor.new_state()
    values = np.r_[rng.normal(size=3000), rng.normal(3.0, 1.0, 2000), rng.normal(-3, 1, 2000)]
    records = feed(monitor, state, values)
    assert len(records) == 1 and records[0].episode == "drift:data:k:v:1"
    # With no cooldown the second shift is its own episode.
    monitor = DataDriftMonitor(DriftConfig(cooldown_events=0))
    state = monitor.new_state()
    records = feed(monitor, state, values)
    assert [r.episode for r in records][:2] == ["drift:data:k:v:1", "drift:data:k:v:2"]


def test_values_have_their_own_state_and_bad_values_are_skipped():
    rng = np.random.default_rng(5)
    monitor = DataDriftMonitor()
    state = monitor.new_state()
    records = []
    for i in range(6000):
        values = {"a": rng.normal(), "bad": float("nan"), "text": "x"}
        if i >= 2000:
            values["late"] = rng.normal() + (2.0 if i >= 4500 else 0.0)
        records += monitor.update(state, "k", values, i)
    assert set(state.values) == {"a", "late"}
    assert [r.subject for r in records] == ["late"]


def test_pinned_reference_range():
    rng = np.random.default_rng(6)
    # The reference is the events with ts in [2000, 3000): N(5, 1); before it N(0, 1).
    config = DriftConfig(reference_from_ms=2000, reference_to_ms=3000)
    monitor = DataDriftMonitor(config)
    state = monitor.new_state()
    values = np.r_[rng.normal(size=2000), rng.normal(5.0, 1.0, 3000)]
    assert feed(monitor, state, values) == []
    ref = state.values["v"].reference.values()
    assert ref.size == 1000 and abs(ref.mean() - 5.0) < 0.2
    # Back to N(0, 1) after the range: drift, and the pinned reference stays.
    records = feed(monitor, state, rng.normal(size=3000), start=5000)
    assert records and records[0].reference["mean"] > 4
    assert abs(state.values["v"].reference.values().mean() - 5.0) < 0.2


def test_reset_reference_restarts_it():
    rng = np.random.default_rng(7)
    monitor = DataDriftMonitor()
    state = monitor.new_state()
    feed(monitor, state, rng.normal(size=3000))
    monitor.reset_reference(state)
    assert not state.values["v"].ref_done
    assert feed(monitor, state, rng.normal(4.0, 1.0, 3000), start=3000) == []


def test_state_pickles_small_and_continues_exactly():
    rng = np.random.default_rng(8)
    monitor = DataDriftMonitor()
    state = monitor.new_state()
    names = [f"v{i}" for i in range(5)]
    first = rng.normal(size=(4000, 5))
    second = np.r_[rng.normal(size=(1000, 5)), rng.normal(2.0, 1.0, (3000, 5))]
    for i, row in enumerate(first.tolist()):
        monitor.update(state, "k", dict(zip(names, row, strict=True)), i)
    blob = pickle.dumps(state)
    assert len(blob) < 100_000
    clone = pickle.loads(blob)
    out_a, out_b = [], []
    for i, row in enumerate(second.tolist(), 4000):
        values = dict(zip(names, row, strict=True))
        out_a += [r.to_dict() for r in monitor.update(state, "k", values, i)]
        out_b += [r.to_dict() for r in monitor.update(clone, "k", values, i)]
    assert out_a and out_a == out_b


# --- concept drift monitor ------------------------------------------------------------


class AbruptStream(synth.ConceptDriftStream):
    """River's ConceptDriftStream with width=1 (its sigmoid overflows far from the drift)."""

    def __iter__(self):
        rng = random.Random(self.seed)
        first, second = iter(self.stream), iter(self.drift_stream)
        for i in range(1, 10**9):
            p_drift = 1.0 / (1.0 + math.exp(min(700.0, -4.0 * (i - self.position) / self.width)))
            yield next(second) if rng.random() < p_drift else next(first)


def test_concept_monitor_detects_abrupt_concept_drift():
    stream = AbruptStream(
        synth.Agrawal(classification_function=0, seed=1),
        synth.Agrawal(classification_function=2, seed=2),
        position=5000,
        width=1,
        seed=1,
    )
    model = build_learner("logreg-rbf", "classification")
    monitor = ConceptDriftMonitor(DriftConfig(), "classification")
    state = monitor.new_state()
    records = []
    for i, (x, y) in enumerate(stream.take(6500)):
        error = model.predict_one(x) != bool(y)
        model.learn_one(x, bool(y))
        record = monitor.update(state, "champion", None, error, i)
        if record is not None:
            records.append(record)
    assert records, "no concept drift record"
    assert all(r.ts >= 5000 for r in records)
    assert records[0].ts < 6000
    envelope = records[0].to_dict()
    assert envelope["kind"] == "concept" and envelope["subject"] == "champion"
    assert envelope["current"]["mean"] > envelope["reference"]["mean"]


def test_concept_monitor_regression_and_improvement_is_not_drift():
    rng = np.random.default_rng(9)
    monitor = ConceptDriftMonitor(DriftConfig(cooldown_events=0), "regression")
    state = monitor.new_state()
    errors = np.r_[rng.exponential(2.0, 4000), rng.exponential(0.5, 4000)]
    assert [monitor.update(state, "m", "k", e, i) for i, e in enumerate(errors)] == [None] * 8000
    errors = rng.exponential(3.0, 2000)
    found = [r for i, e in enumerate(errors) if (r := monitor.update(state, "m", "k", e, i))]
    assert found and found[0].severity == "critical" and found[0].key == "k"


def test_concept_state_pickles_and_continues_exactly():
    rng = np.random.default_rng(10)
    monitor = ConceptDriftMonitor(DriftConfig(concept_detector="hddm-a"), "classification")
    state = monitor.new_state()
    for i, e in enumerate((rng.random(3000) < 0.1).tolist()):
        monitor.update(state, "m", None, e, i)
    clone = pickle.loads(pickle.dumps(state))
    tail = (rng.random(2000) < 0.4).tolist()
    a = [monitor.update(state, "m", None, e, i) for i, e in enumerate(tail)]
    b = [monitor.update(clone, "m", None, e, i) for i, e in enumerate(tail)]
    assert any(a) and [r and r.to_dict() for r in a] == [r and r.to_dict() for r in b]
