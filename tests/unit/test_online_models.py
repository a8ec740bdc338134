"""Online models, pure layer: predict, hold, join delayed labels, learn, metrics, bad labels."""

from __future__ import annotations

import math
import pickle

import pytest
from river import datasets, evaluate, metrics

from streamlearn.models.learners import build_learner
from streamlearn.models.online import LabelError, ModelConfig, OnlineModel
from streamlearn.records import LabelRecord, parse_keyed
from streamlearn.validation import InvalidEvent, parse_label


def phishing() -> list[tuple[dict[str, float], bool]]:
    return [({k: float(v) for k, v in x.items()}, bool(y)) for x, y in datasets.Phishing()]


def test_inline_labels_are_prequential_and_match_river() -> None:
    data = phishing()
    model = OnlineModel(ModelConfig(learner="logreg"))
    state = model.new_state()
    for i, (x, y) in enumerate(data):
        prediction, error = model.predict_event(state, "k", f"e{i}", i, x, label=y)
        assert error is None and prediction.model_version == i
    reference = evaluate.progressive_val_score(
        datasets.Phishing(), build_learner("logreg", "classification"), metrics.Accuracy()
    )
    assert model.metrics(state)["accuracy"] == pytest.approx(reference.get(), abs=1e-12)
    assert state.learned == len(data) and not state.pending


def test_delayed_labels_join_the_pending_prediction() -> None:
    model = OnlineModel(ModelConfig(learner="logreg", label_ttl_ms=10_000))
    state = model.new_state()
    predictions = {}
    for i in range(50):
        x = {"v": float(i % 10)}
        predictions[f"e{i}"], _ = model.predict_event(state, "k", f"e{i}", i * 100, x)
    assert len(state.pending) == 50 and state.learned == 0
    for i in range(50):
        model.apply_label(state, f"e{i}", (i % 10) >= 5, i * 100 + 50)
    assert state.learned == 50 and not state.pending
    # metrics use the prediction made before the label, not a new one
    assert model.metrics(state)["accuracy"] is not None


def test_unknown_expired_and_invalid_labels_are_refused_without_learning() -> None:
    model = OnlineModel(ModelConfig(learner="logreg", label_ttl_ms=1_000))
    state = model.new_state()
    model.predict_event(state, "k", "old", 0, {"v": 1.0})
    model.predict_event(state, "k", "late", 500, {"v": 1.0})
    model.predict_event(state, "k", "fresh", 2_000, {"v": 2.0})  # expires "old" (ts 0)
    with pytest.raises(LabelError) as info:
        model.apply_label(state, "nope", True, 2_000)
    assert info.value.code == "unknown_id"
    with pytest.raises(LabelError) as info:
        model.apply_label(state, "old", True, 2_000)
    assert info.value.code == "expired" and "expired" in str(info.value)
    with pytest.raises(LabelError) as info:
        model.apply_label(state, "late", True, 2_600)  # 2,100 ms after its event
    assert info.value.code == "expired"
    with pytest.raises(LabelError) as info:
        model.apply_label(state, "fresh", "maybe", 2_100)
    assert info.value.code == "invalid_label" and "not one of the classes" in str(info.value)
    assert "fresh" in state.pending  # still waiting for a usable label
    assert state.learned == 0
    assert (state.labels_unknown, state.labels_expired, state.labels_invalid) == (1, 2, 1)
    model.apply_label(state, "fresh", 1, 2_100)
    assert state.learned == 1


def test_inline_label_of_a_class_never_seen_keeps_the_prediction() -> None:
    model = OnlineModel(ModelConfig(learner="logreg"))
    state = model.new_state()
    before = pickle.dumps(state.learner)
    prediction, error = model.predict_event(state, "k", "e1", 0, {"v": 1.0}, label="cat")
    assert prediction.prediction in (False, True)
    assert isinstance(error, LabelError) and error.code == "invalid_label"
    assert pickle.dumps(state.learner) == before  # the model is untouched


def test_regression_refuses_string_labels_and_learns_numbers() -> None:
    model = OnlineModel(ModelConfig(task="regression", learner="linear"))
    state = model.new_state()
    _, error = model.predict_event(state, "k", "e", 0, {"v": 1.0}, label="12.5")
    assert error is not None and "must be a number" in str(error)
    for i in range(300):
        model.predict_event(state, "k", f"e{i}", i, {"v": float(i % 7)}, label=2.0 * (i % 7) + 1)
    y, proba = model.predict_one(state, {"v": 3.0})
    assert proba is None and y == pytest.approx(7.0, abs=0.5)
    m = model.metrics(state)
    assert set(m) >= {"mae", "rmse", "r2", "mae_last"} and m["r2"] > 0.5  # prequential


def test_multiclass_with_declared_classes() -> None:
    model = OnlineModel(ModelConfig(learner="logreg", classes=("low", "mid", "high")))
    state = model.new_state()
    for i in range(600):
        v = float(i % 3)
        model.predict_event(state, "k", f"e{i}", i, {"v": v}, label=["low", "mid", "high"][i % 3])
    assert model.predict_one(state, {"v": 2.0})[0] == "high"
    assert model.metrics(state)["accuracy"] > 0.6


def test_pending_is_bounded_and_state_pickles_to_identical_predictions() -> None:
    model = OnlineModel(ModelConfig(learner="logreg", pending_max=10))
    state = model.new_state()
    for i in range(200):
        model.predict_event(state, "k", f"e{i}", i, {"v": float(i % 5)}, label=i % 5 > 2)
    for i in range(25):
        model.predict_event(state, "k", f"p{i}", 200 + i, {"v": 1.0})
    assert len(state.pending) == 10
    with pytest.raises(LabelError) as info:
        model.apply_label(state, "p0", True, 230)
    assert info.value.code == "expired"  # pushed out by the bound
    copy = pickle.loads(pickle.dumps(state))
    for v in (0.0, 2.5, 4.0):
        assert model.predict_one(copy, {"v": v}) == model.predict_one(state, {"v": v})


def test_bad_model_config_is_refused() -> None:
    with pytest.raises(Exception, match="regression learner"):
        OnlineModel(ModelConfig(learner="linear"))
    with pytest.raises(Exception, match="at least two classes"):
        OnlineModel(ModelConfig(classes=("only",)))


def test_label_records_parse_and_travel_on_the_keyed_topic() -> None:
    label = parse_label(
        b'{"id": "e1", "key": "k", "label": 3, "ts": 10}',
        partition=2,
        offset=7,
        timestamp_ms=99,
        max_bytes=1024,
    )
    assert label == LabelRecord("e1", "k", 3, 10, 2, 7)
    assert parse_keyed(label.to_keyed()) == label
    for raw, code in [
        (b"[]", "not_object"),
        (b'{"id": "e1", "label": 1}', "missing_key"),
        (b'{"id": "e1", "key": "k"}', "invalid_field"),
        (b'{"id": "e1", "key": "k", "label": {"a": 1}}', "invalid_field"),
        (b'{"id": "e1", "key": "k", "label": NaN}', "non_finite"),
        (b'{"id": "e1", "key": "k", "label": 1, "ts": "yesterday"}', "invalid_ts"),
    ]:
        with pytest.raises(InvalidEvent) as info:
            parse_label(raw, partition=0, offset=0, timestamp_ms=0, max_bytes=1024)
        assert info.value.code.value == code, raw
    assert math.isfinite(label.ts_ms)


def test_online_feature_selection_keeps_the_informative_features() -> None:
    rows = phishing()
    model = OnlineModel(ModelConfig(learner="logreg", select_k=3))
    state = model.new_state()
    for i, (x, y) in enumerate(rows):
        model.predict_event(state, "k", f"e{i}", i, {**x, "noise": float(i * 7919 % 13)}, label=y)
    selected = state.learner["OnlineSelectKBest"].selected
    assert len(selected) == 3 and "noise" not in selected
    assert model.metrics(state)["accuracy"] > 0.85
    with pytest.raises(Exception, match="select_k"):
        OnlineModel(ModelConfig(select_k=2, classes=("a", "b", "c")))
