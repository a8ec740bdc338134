"""Feature extraction: every family against hand-computed values, the pipeline's rules
(history omitted, never NaN/inf, read-only transform, picklable state), configuration
errors, and feature selection (offline mutual information, online River selector)."""

from __future__ import annotations

import math
import pickle
import random
import zlib
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamlearn.errors import StreamlearnError
from streamlearn.models.features import (
    FeatureConfig,
    FeatureError,
    FeaturePipeline,
    KeyFeatures,
    Observation,
    OnlineSelectKBest,
    mutual_info_scores,
    select_by_mutual_info,
)
from streamlearn.models.features.geo import EARTH_RADIUS_M, haversine_m
from streamlearn.models.features.stats import FEATURE_MAX, WindowState
from streamlearn.records import Event

T0 = int(datetime(2026, 1, 5, 0, 0, tzinfo=UTC).timestamp() * 1000)  # a Monday
ONE_DEGREE_M = EARTH_RADIUS_M * math.pi / 180.0

#: Every family on, small sizes.
FULL: dict[str, Any] = {
    "values": ["a", "b", "c"],
    "temporal": {
        "cyclical": ["hour", "weekday", "yearday"],
        "lags": 2,
        "ewma_alphas": [0.3],
        "ewma_half_lives": [4, "10s"],
    },
    "window": {
        "size": 16,
        "duration": "20s",
        "stats": ["count", "mean", "std", "min", "max", "z"],
        "quantiles": [0.1, 0.5, 0.9],
    },
    "frequency": {"size": 8, "values": ["a", "b"]},
    "spatial": {"references": {"hq": [48.8566, 2.3522]}},
    "categorical": {"one_hot": {"mode": ["idle", "run"]}, "hash_buckets": 4},
}


def obs(ts_ms: int, attrs: dict[str, str] | None = None, **values: float) -> Observation:
    return Observation("k", ts_ms, dict(values), attrs)


def feed(pipe: FeaturePipeline, events: list[Observation]) -> tuple[KeyFeatures, list[dict]]:
    """Extract every event in order on one fresh state; the features of each."""
    state = pipe.new_state()
    return state, [pipe.extract(e, state) for e in events]


def random_events(n: int, seed: int = 0, step_ms: int = 1000) -> list[Observation]:
    rng = random.Random(seed)
    return [
        obs(
            T0 + i * step_ms + rng.randrange(0, 500),
            attrs={"mode": rng.choice(["idle", "run", "off"]), "site": f"s{i % 3}"},
            a=rng.gauss(10.0, 2.0),
            b=rng.gauss(0.0, 1.0) * 1000.0,
            c=float(i % 5),
            lat=45.0 + rng.random() * 0.01,
            lon=5.0 + rng.random() * 0.01,
        )
        for i in range(n)
    ]


def assert_finite(features: dict[str, float]) -> None:
    bad = {k: v for k, v in features.items() if not math.isfinite(v)}
    assert not bad, bad


# --- configuration ------------------------------------------------------------------


def test_empty_config_is_raw_plus_a_few_temporal_features() -> None:
    cfg = FeatureConfig.from_dict({})
    assert cfg == FeatureConfig() == FeatureConfig.from_dict(None)
    assert cfg.raw is not None and cfg.temporal is not None
    assert (cfg.window, cfg.frequency, cfg.spatial, cfg.categorical) == (None,) * 4
    _, feats = feed(FeaturePipeline(), [obs(T0, x=1.0), obs(T0 + 1000, x=3.0)])
    assert set(feats[1]) == {
        "x",
        "hour_sin",
        "hour_cos",
        "weekday_sin",
        "weekday_cos",
        "since_last_s",
        "x_delta",
    }


def test_config_round_trips_through_its_dict_and_json() -> None:
    cfg = FeatureConfig.from_dict(FULL)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    import json

    assert FeatureConfig.from_json(json.dumps(cfg.to_dict())) == cfg
    assert cfg.fingerprint() == FeatureConfig.from_dict(cfg.to_dict()).fingerprint()
    assert cfg.fingerprint() != FeatureConfig().fingerprint()


def test_families_are_switched_by_true_false_and_null() -> None:
    cfg = FeatureConfig.from_dict({"temporal": False, "raw": None, "window": True})
    assert cfg.temporal is None and cfg.raw is None
    assert cfg.window == FeatureConfig.from_dict({"window": {}}).window


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ([1, 2], "features"),
        ({"bogus": 1}, "bogus"),
        ({"values": "temp"}, "values"),
        ({"values": ["a", "a"]}, "values"),
        ({"max_values": 0}, "max_values"),
        ({"raw": 3}, "raw"),
        ({"raw": {"prefix": 3}}, "raw.prefix"),
        ({"temporal": {"cyclical": "hour"}}, "temporal.cyclical"),
        ({"temporal": {"cyclical": ["minute"]}}, "temporal.cyclical[0]"),
        ({"temporal": {"lags": -1}}, "temporal.lags"),
        ({"temporal": {"delta": "yes"}}, "temporal.delta"),
        ({"temporal": {"ewma_alphas": [0.5, 0]}}, "temporal.ewma_alphas[1]"),
        ({"temporal": {"ewma_alphas": [0.5, 0.5]}}, "temporal.ewma_alphas"),
        ({"temporal": {"ewma_half_lives": ["soon"]}}, "temporal.ewma_half_lives[0]"),
        ({"temporal": {"ewma_half_lives": [-3]}}, "temporal.ewma_half_lives[0]"),
        ({"window": {"sise": 3}}, "window.sise"),
        ({"window": {"size": 1}}, "window.size"),
        ({"window": {"size": True}}, "window.size"),
        ({"window": {"duration": "5 min"}}, "window.duration"),
        ({"window": {"duration": "0s"}}, "window.duration"),
        ({"window": {"stats": ["mean", "median"]}}, "window.stats[1]"),
        ({"window": {"quantiles": [0.5, 2]}}, "window.quantiles[1]"),
        ({"window": {"quantiles": [0.5, 0.5]}}, "window.quantiles"),
        ({"window": {"min_count": 1}}, "window.min_count"),
        ({"frequency": {"size": 2}}, "frequency.size"),
        ({"frequency": {"bands": {"x": [0.3, 0.1]}}}, "frequency.bands.x"),
        ({"frequency": {"bands": [[0.0, 0.1]]}}, "frequency.bands"),
        ({"frequency": {"unit": "rad"}}, "frequency.unit"),
        ({"values": ["a"], "frequency": {"values": ["b"]}}, "frequency.values[0]"),
        ({"spatial": {"lat": ""}}, "spatial.lat"),
        ({"spatial": {"lat": "x", "lon": "x"}}, "spatial.lon"),
        ({"spatial": {"references": {"x": [0, 200]}}}, "spatial.references.x"),
        ({"categorical": {"hash_buckets": -1}}, "categorical.hash_buckets"),
        ({"categorical": {"one_hot": {"c": "red"}}}, "categorical.one_hot.c"),
        ({"categorical": {"one_hot": {"c": ["_other"]}}}, "categorical.one_hot.c"),
        ({"categorical": {"hash_attrs": [1]}}, "categorical.hash_attrs[0]"),
    ],
)
def test_config_errors_name_the_field(doc: Any, path: str) -> None:
    with pytest.raises(FeatureError) as info:
        FeatureConfig.from_dict(doc)
    assert str(info.value).startswith(f"{path}: "), str(info.value)
    assert isinstance(info.value, StreamlearnError)


def test_invalid_json_is_a_feature_error() -> None:
    with pytest.raises(FeatureError, match=r"^features: not valid JSON"):
        FeatureConfig.from_json("{")


# --- raw ----------------------------------------------------------------------------


def test_raw_values_pass_through_with_prefix_and_value_filter() -> None:
    pipe = FeaturePipeline({"values": ["a", "b"], "raw": {"prefix": "v_"}, "temporal": False})
    state = pipe.new_state()
    assert pipe.transform(obs(T0, a=1.5, b=-2.0, z=9.0), state) == {"v_a": 1.5, "v_b": -2.0}


def test_first_event_has_no_history_features() -> None:
    pipe = FeaturePipeline(FULL)
    feats = pipe.transform(random_events(1)[0], pipe.new_state())
    assert not [n for n in feats if "_lag" in n or "_delta" in n or "_win_" in n]
    assert not [n for n in feats if "_ewma_" in n or "_fft_" in n or n.startswith("since")]
    assert "geo_dist_m" not in feats and "geo_dist_hq_m" in feats
    assert_finite(feats)


# --- temporal -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "hour", "weekday"),
    [
        (datetime(2026, 1, 5, 0, 0, tzinfo=UTC), (0.0, 1.0), (0.0, 1.0)),  # Monday 00:00
        (datetime(2026, 1, 5, 6, 0, tzinfo=UTC), (1.0, 0.0), None),
        (datetime(2026, 1, 7, 18, 0, tzinfo=UTC), (-1.0, 0.0), None),
        (datetime(2026, 1, 8, 12, 0, tzinfo=UTC), (0.0, -1.0), (0.0, -1.0)),  # Thursday noon
        (datetime(1970, 1, 1, 0, 0, tzinfo=UTC), (0.0, 1.0), (math.sin(6 / 7 * math.pi), None)),
    ],
)
def test_cyclical_hour_and_weekday_of_known_times(
    when: datetime, hour: tuple[float, float], weekday: tuple[float, float | None] | None
) -> None:
    pipe = FeaturePipeline({"temporal": {"cyclical": ["hour", "weekday", "yearday"]}})
    feats = pipe.transform(obs(int(when.timestamp() * 1000), x=1.0), pipe.new_state())
    assert feats["hour_sin"] == pytest.approx(hour[0], abs=1e-12)
    assert feats["hour_cos"] == pytest.approx(hour[1], abs=1e-12)
    if weekday is not None:
        # Thursday 00:00 is 3/7 of the week after Monday 00:00
        assert feats["weekday_sin"] == pytest.approx(weekday[0], abs=1e-12)
        if weekday[1] is not None:
            assert feats["weekday_cos"] == pytest.approx(weekday[1], abs=1e-12)
    if when.year == 1970:
        assert (feats["yearday_sin"], feats["yearday_cos"]) == (0.0, 1.0)


def test_since_last_lags_delta_and_ewma_sequences() -> None:
    pipe = FeaturePipeline(
        {
            "temporal": {
                "cyclical": [],
                "lags": 2,
                "ewma_alphas": [0.5],
                "ewma_half_lives": [1, "1s"],
            }
        }
    )
    times = [0, 1000, 2000, 4000]
    _, feats = feed(
        pipe, [obs(T0 + t, x=v) for t, v in zip(times, [1.0, 2.0, 4.0, 8.0], strict=True)]
    )
    assert feats[0] == {"x": 1.0}
    assert feats[1] == {
        "x": 2.0,
        "since_last_s": 1.0,
        "x_delta": 1.0,
        "x_lag1": 1.0,
        "x_ewma_0.5": 1.0,
        "x_ewma_hl1": 1.0,
        "x_ewma_hl1s": 1.0,
    }
    assert feats[2]["x_lag2"] == 1.0 and feats[2]["x_lag1"] == 2.0
    # EWMA (alpha 0.5) of the past values 1, 2, 4: 1 -> 1.5 -> 2.75
    assert feats[3]["x_ewma_0.5"] == 2.75
    assert feats[3]["x_ewma_hl1"] == 2.75  # a half-life of 1 value is alpha 0.5
    assert feats[3]["x_ewma_hl1s"] == 2.75  # values 1 s apart, half-life 1 s
    assert feats[3]["x_delta"] == 4.0 and feats[3]["since_last_s"] == 2.0
    assert (feats[3]["x_lag1"], feats[3]["x_lag2"]) == (4.0, 2.0)
    state, _ = feed(
        pipe, [obs(T0 + t, x=v) for t, v in zip(times, [1.0, 2.0, 4.0, 8.0], strict=True)]
    )
    # 2 s after the last value, its weight is 1 - 2**-2 = 0.75: 2.75 * 0.25 + 8 * 0.75
    assert state.history["x"].ewma == [5.375, 5.375, 6.6875]


def test_since_last_is_zero_for_an_older_event() -> None:
    pipe = FeaturePipeline()
    state, _ = feed(pipe, [obs(T0 + 5000, x=1.0)])
    assert pipe.transform(obs(T0, x=1.0), state)["since_last_s"] == 0.0
    pipe.update(obs(T0, x=1.0), state)
    assert state.last_ts_ms == T0 + 5000


# --- window -------------------------------------------------------------------------


def _numpy_stats(past: list[float], x: float) -> dict[str, float]:
    arr = np.array(past)
    std = arr.std(ddof=1)
    return {
        "x_win_count": float(len(arr)),
        "x_win_mean": arr.mean(),
        "x_win_std": std,
        "x_win_min": arr.min(),
        "x_win_max": arr.max(),
        "x_win_p10": np.quantile(arr, 0.1),
        "x_win_p50": np.quantile(arr, 0.5),
        "x_win_p90": np.quantile(arr, 0.9),
        "x_win_z": (x - arr.mean()) / std,
    }


WINDOW = {
    "temporal": False,
    "raw": False,
    "window": {
        "size": 16,
        "stats": ["count", "mean", "std", "min", "max", "z"],
        "quantiles": [0.1, 0.5, 0.9],
    },
}


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_count_window_matches_numpy(offset: float) -> None:
    rng = random.Random(3)
    xs = [offset + rng.gauss(0.0, 1.0) for _ in range(120)]  # many refreshes of size 16
    _, feats = feed(FeaturePipeline(WINDOW), [obs(T0 + i, x=v) for i, v in enumerate(xs)])
    assert feats[0] == {} and feats[1] == {}  # min_count 2
    for i in range(2, len(xs)):
        expected = _numpy_stats(xs[max(0, i - 16) : i], xs[i])
        assert feats[i] == pytest.approx(expected, rel=1e-7, abs=1e-9), i


def test_time_window_matches_numpy_and_empties_after_a_gap() -> None:
    rng = random.Random(5)
    doc = {**WINDOW, "window": {**WINDOW["window"], "duration": "10s"}}
    times, t = [], 0
    for _ in range(150):
        t += rng.choice([200, 700, 1500, 4000]) if rng.random() > 0.02 else 30_000
        times.append(t)
    xs = [rng.uniform(-5, 5) for _ in times]
    events = [obs(T0 + t, x=v) for t, v in zip(times, xs, strict=True)]
    _, feats = feed(FeaturePipeline(doc), events)
    omitted = 0
    for i, (t, x) in enumerate(zip(times, xs, strict=True)):
        past = [v for tt, v in zip(times[:i], xs[:i], strict=True) if tt > t - 10_000][-16:]
        if len(past) < 2:
            assert feats[i] == {}
            omitted += 1
            continue
        assert feats[i] == pytest.approx(_numpy_stats(past, x), rel=1e-7, abs=1e-9), i
    assert omitted > 2  # the gaps emptied the window


def test_window_z_of_a_constant_window_is_capped() -> None:
    pipe = FeaturePipeline({"window": {"stats": ["z"], "quantiles": []}, "temporal": False})
    state, _ = feed(pipe, [obs(T0 + i, x=5.0) for i in range(10)])
    assert pipe.transform(obs(T0 + 10, x=5.0), state)["x_win_z"] == 0.0
    # std 0 is floored at 1e-9 * (|mean| + 1)
    assert pipe.transform(obs(T0 + 10, x=6.0), state)["x_win_z"] == pytest.approx(1 / 6e-9)
    assert pipe.transform(obs(T0 + 10, x=1e300), state)["x_win_z"] == 1e12


def test_window_recovers_exact_statistics_after_huge_values_leave() -> None:
    xs = [1.0, 2.0, 1e300, -1e308, 1.7e308, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    doc = {**WINDOW, "window": {**WINDOW["window"], "size": 4}}
    _, feats = feed(FeaturePipeline(doc), [obs(T0 + i, x=v) for i, v in enumerate(xs)])
    for f in feats:
        assert_finite(f)
    assert feats[6]["x_win_max"] == 1.7e308
    assert feats[-1] == pytest.approx(_numpy_stats([4.0, 5.0, 6.0, 7.0], 8.0), rel=1e-12)


def test_window_state_summary_leaves_out_expired_values_without_changing() -> None:
    w = WindowState()
    for v in [5.0, 1.0, 5.0, 3.0, 2.0]:
        w.add(v)
    before = (list(w.sorted), w.n, w.mean, w.m2)
    got = w.summary([0.5], expired=[5.0, 1.0])
    assert got == pytest.approx(
        {"count": 3.0, "mean": 10 / 3, "std": np.std([5, 3, 2], ddof=1), "min": 2.0}
        | {"max": 5.0, "q0": 3.0}
    )
    assert (list(w.sorted), w.n, w.mean, w.m2) == before


# --- frequency ----------------------------------------------------------------------


def _sine_events(n: int, period: float, step_ms: int = 1000, amp: float = 1.0) -> list:
    return [obs(T0 + i * step_ms, x=amp * math.sin(2 * math.pi * i / period)) for i in range(n)]


FREQ = {"raw": False, "temporal": False}


def test_fft_dominant_frequency_bands_and_entropy_of_a_pure_sine() -> None:
    doc = {**FREQ, "frequency": {"size": 32, "bands": {"slow": [0, 0.1], "fast": [0.1, 0.5]}}}
    _, feats = feed(FeaturePipeline(doc), _sine_events(40, period=8))
    assert all(f == {} for f in feats[:32])  # omitted until 32 past values
    last = feats[-1]
    assert last["x_fft_dominant"] == 0.125
    assert last["x_fft_fast"] == pytest.approx(1.0) and last["x_fft_slow"] == pytest.approx(0.0)
    assert last["x_fft_entropy"] == pytest.approx(0.0, abs=1e-9)


def test_fft_in_hz_uses_the_event_times() -> None:
    doc = {**FREQ, "frequency": {"size": 32, "unit": "hz", "bands": {"b": [0.2, 0.3]}}}
    _, feats = feed(FeaturePipeline(doc), _sine_events(33, period=8, step_ms=500))
    assert feats[-1]["x_fft_dominant"] == pytest.approx(0.25)  # 1/8 per value, 2 values/s
    assert feats[-1]["x_fft_b"] == pytest.approx(1.0)


def test_fft_nyquist_constant_noise_and_scale_invariance() -> None:
    doc = {**FREQ, "frequency": {"size": 16}}
    pipe = FeaturePipeline(doc)
    alt = [obs(T0 + i, x=(-1.0) ** i) for i in range(17)]
    assert feed(pipe, alt)[1][-1] == pytest.approx(
        {"x_fft_dominant": 0.5, "x_fft_low": 0.0, "x_fft_mid": 0.0, "x_fft_high": 1.0}
        | {"x_fft_entropy": 0.0},
        abs=1e-9,
    )
    flat = feed(pipe, [obs(T0 + i, x=3.0) for i in range(17)])[1][-1]
    assert set(flat.values()) == {0.0}
    rng = random.Random(1)
    noise = [rng.gauss(0, 1) for _ in range(17)]
    small = feed(pipe, [obs(T0 + i, x=v) for i, v in enumerate(noise)])[1][-1]
    for scale in (1e6, 1e300):
        big = feed(pipe, [obs(T0 + i, x=v * scale) for i, v in enumerate(noise)])[1][-1]
        assert big == pytest.approx(small, rel=1e-9, abs=1e-12)
    assert small["x_fft_entropy"] > 0.5  # noise spreads its energy


def test_fft_only_for_configured_values() -> None:
    doc = {**FREQ, "frequency": {"size": 4, "values": ["x"]}}
    events = [obs(T0 + i, x=float(i % 2), y=float(i % 3)) for i in range(6)]
    names = set(feed(FeaturePipeline(doc), events)[1][-1])
    assert names == {"x_fft_dominant", "x_fft_low", "x_fft_mid", "x_fft_high", "x_fft_entropy"}


# --- spatial ------------------------------------------------------------------------

SPATIAL = {"raw": False, "temporal": False, "spatial": {"references": {"paris": [48.8566, 2.3522]}}}


def test_haversine_between_known_places() -> None:
    assert haversine_m(0, 0, 1, 0) == pytest.approx(ONE_DEGREE_M, rel=1e-12)
    assert haversine_m(0, 0, 0, 90) == pytest.approx(EARTH_RADIUS_M * math.pi / 2, rel=1e-12)
    # Paris - London: 343.5 km (great circle, mean radius)
    assert haversine_m(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343_560, abs=300)
    assert haversine_m(10.0, 20.0, 10.0, 20.0) == 0.0


def test_distance_speed_bearing_and_reference_distance() -> None:
    pipe = FeaturePipeline(SPATIAL)
    events = [
        obs(T0, lat=0.0, lon=0.0),
        obs(T0 + 1_000_000, lat=1.0, lon=0.0),  # 1 degree north in 1000 s
        obs(T0 + 2_000_000, lat=1.0, lon=1.0),  # then east
        obs(T0 + 2_000_000, lat=1.0, lon=1.0),  # same place, same time
    ]
    _, feats = feed(pipe, events)
    assert set(feats[0]) == {"geo_dist_paris_m"}
    assert feats[0]["geo_dist_paris_m"] == pytest.approx(haversine_m(0, 0, 48.8566, 2.3522))
    assert feats[1]["geo_dist_m"] == pytest.approx(ONE_DEGREE_M, rel=1e-12)
    assert feats[1]["geo_speed_mps"] == pytest.approx(ONE_DEGREE_M / 1000, rel=1e-12)
    assert feats[1]["geo_bearing_sin"] == pytest.approx(0.0, abs=1e-12)
    assert feats[1]["geo_bearing_cos"] == pytest.approx(1.0)
    assert feats[2]["geo_bearing_sin"] == pytest.approx(1.0, abs=1e-4)  # east, at 1 deg N
    assert feats[2]["geo_bearing_cos"] == pytest.approx(0.0, abs=2e-2)
    assert feats[3]["geo_dist_m"] == 0.0
    assert "geo_speed_mps" not in feats[3] and "geo_bearing_sin" not in feats[3]


def test_invalid_or_missing_positions_are_skipped() -> None:
    pipe = FeaturePipeline(SPATIAL)
    state, _ = feed(pipe, [obs(T0, lat=10.0, lon=10.0)])
    for bad in (obs(T0 + 1, lat=95.0, lon=0.0), obs(T0 + 1, lat=10.0), obs(T0 + 1, lon=3.0)):
        assert pipe.extract(bad, state) == {}
    assert state.geo == (10.0, 10.0, T0)


# --- categorical --------------------------------------------------------------------


def test_one_hot_vocabulary_other_and_missing() -> None:
    doc = {"raw": False, "temporal": False}
    doc["categorical"] = {"one_hot": {"color": ["red", "green"]}, "hash_buckets": 0}
    pipe = FeaturePipeline(doc)
    state = pipe.new_state()
    keys = ["attr_color=red", "attr_color=green", "attr_color=_other"]

    def row(attrs: dict[str, str] | None) -> list[float]:
        feats = pipe.transform(Observation("k", T0, {}, attrs), state)
        assert list(feats) == keys
        return list(feats.values())

    assert row({"color": "green"}) == [0.0, 1.0, 0.0]
    assert row({"color": "blue"}) == [0.0, 0.0, 1.0]
    assert row({"size": "L"}) == [0.0, 0.0, 0.0]
    assert row(None) == [0.0, 0.0, 0.0]


def test_feature_hashing_is_stable_and_counts_attributes() -> None:
    doc = {"raw": False, "temporal": False}
    doc["categorical"] = {"one_hot": {"color": ["red"]}, "hash_buckets": 8}
    pipe = FeaturePipeline(doc)
    attrs = {"color": "red", "city": "Paris", "site": "s1"}
    feats = pipe.transform(Observation("k", T0, {}, attrs), pipe.new_state())
    expected = [0.0] * 8
    for text in (b"city=Paris", b"site=s1"):  # color is one-hot encoded, not hashed
        expected[zlib.crc32(text) % 8] += 1.0
    assert [feats[f"attr_hash{i}"] for i in range(8)] == expected
    only = FeaturePipeline({**doc, "categorical": {"hash_attrs": ["site"], "hash_buckets": 8}})
    feats = only.transform(Observation("k", T0, {}, attrs), only.new_state())
    assert sum(feats.values()) == 1.0 and feats[f"attr_hash{zlib.crc32(b'site=s1') % 8}"] == 1


# --- rules of the pipeline ----------------------------------------------------------


def test_missing_values_and_new_value_names() -> None:
    pipe = FeaturePipeline({"temporal": {"cyclical": [], "since_last": False, "lags": 1}})
    state, feats = feed(pipe, [obs(T0, a=1.0), obs(T0 + 1, a=2.0, b=10.0), obs(T0 + 2, b=11.0)])
    assert feats[1] == {"a": 2.0, "a_delta": 1.0, "a_lag1": 1.0, "b": 10.0}  # b is new
    assert feats[2] == {"b": 11.0, "b_delta": 1.0, "b_lag1": 10.0}  # a is missing
    assert list(state.history["a"].values) == [2.0]  # a missing: not learned
    assert pipe.transform(obs(T0 + 3, a=5.0), state)["a_delta"] == 3.0


def test_non_finite_values_count_as_missing() -> None:
    pipe = FeaturePipeline({"temporal": {"cyclical": [], "since_last": False}})
    state, _ = feed(pipe, [obs(T0, x=1.0)])
    assert pipe.extract(obs(T0 + 1, x=math.nan, y=math.inf), state) == {}
    assert pipe.transform(obs(T0 + 2, x=4.0), state) == {"x": 4.0, "x_delta": 3.0}


def test_max_values_bounds_the_tracked_names() -> None:
    pipe = FeaturePipeline({"max_values": 2, "temporal": {"cyclical": [], "since_last": False}})
    state, feats = feed(pipe, [obs(T0 + i, a=1.0, b=2.0, c=3.0) for i in range(3)])
    assert sorted(state.history) == ["a", "b"]
    assert feats[-1] == {"a": 1.0, "b": 2.0, "c": 3.0, "a_delta": 0.0, "b_delta": 0.0}


def test_huge_magnitudes_give_finite_features() -> None:
    pipe = FeaturePipeline(FULL)
    rng = random.Random(2)
    state = pipe.new_state()
    for i in range(60):
        sign = 1.0 if i % 2 else -1.0
        values = {n: sign * rng.choice([1.7e308, 1e300, 1e-300, 0.0, 1.0]) for n in "abc"}
        feats = pipe.extract(obs(T0 + i * 100, lat=0.0, lon=0.0, **values), state)
        assert_finite(feats)
    pipe = FeaturePipeline()
    state, _ = feed(pipe, [obs(T0, x=-1.7e308)])
    assert pipe.transform(obs(T0 + 1, x=1.7e308), state)["x_delta"] == FEATURE_MAX


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=5_000),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_features_are_always_finite(steps: list[tuple[int, float]]) -> None:
    pipe = FeaturePipeline({**FULL, "values": ["a"], "frequency": {"size": 4}})
    state, t = pipe.new_state(), T0
    for gap, v in steps:
        t += gap
        assert_finite(pipe.extract(obs(t, a=v, lat=v % 90, lon=0.0), state))


def test_state_pickles_and_gives_the_same_features_after() -> None:
    pipe = FeaturePipeline(FULL)
    events = random_events(80)
    state, _ = feed(pipe, events[:50])
    copy = pickle.loads(pickle.dumps(state))
    assert isinstance(copy, KeyFeatures) and copy.summary() == state.summary()
    for e in events[50:]:
        assert pipe.extract(e, copy) == pipe.extract(e, state)
    assert pickle.dumps(copy) == pickle.dumps(state)


def test_transform_does_not_change_the_state() -> None:
    pipe = FeaturePipeline(FULL)
    events = random_events(40)
    state, _ = feed(pipe, events)
    before = pickle.dumps(state)
    later = Observation("k", events[-1].ts_ms + 15_000, events[-1].values, events[-1].attrs)
    first = pipe.transform(later, state)  # 15 s later: part of the time window expired
    assert pipe.transform(later, state) == first
    assert pickle.dumps(state) == before
    assert first["a_win_count"] < 16


def test_feature_names_lists_what_a_warm_key_gives_in_order() -> None:
    pipe = FeaturePipeline(FULL)
    _, feats = feed(pipe, random_events(40))
    assert list(feats[-1]) == pipe.feature_names(["a", "b", "c"])


def test_a_state_of_another_config_is_refused() -> None:
    state = FeaturePipeline({"temporal": {"lags": 3}}).new_state()
    pipe = FeaturePipeline()
    with pytest.raises(FeatureError, match=r"^state: "):
        pipe.transform(obs(T0, x=1.0), state)
    with pytest.raises(FeatureError, match=r"^state: "):
        pipe.update(obs(T0, x=1.0), state)
    assert pipe.state_for(state) is not state
    fresh = pipe.new_state()
    assert pipe.state_for(pickle.loads(pickle.dumps(fresh))).config_id == fresh.config_id


def test_accepts_the_stream_event_type() -> None:
    pipe = FeaturePipeline({"categorical": {"one_hot": {"m": ["x"]}, "hash_buckets": 0}})
    event = Event(key="k", ts_ms=T0, values={"v": 1.0}, id="e1", src_partition=0, src_offset=0)
    event.attrs = {"m": "x"}
    feats = pipe.extract(event, pipe.new_state())
    assert feats["v"] == 1.0 and feats["attr_m=x"] == 1.0


# --- selection ----------------------------------------------------------------------


def _synthetic(n: int = 300, seed: int = 11) -> tuple[list[dict[str, float]], list[bool]]:
    rng = random.Random(seed)
    rows = [
        {"signal": rng.gauss(0, 1), "noise1": rng.gauss(0, 1), "noise2": rng.random()}
        for _ in range(n)
    ]
    return rows, [r["signal"] + rng.gauss(0, 0.3) > 0 for r in rows]


def test_mutual_info_selection_is_deterministic_and_finds_the_signal() -> None:
    rows, y = _synthetic()
    first = mutual_info_scores(rows, y, random_state=0)
    assert first == mutual_info_scores(rows, y, random_state=0)
    assert next(iter(first)) == "signal" and first["signal"] > 3 * first["noise1"]
    assert select_by_mutual_info(rows, y, k=1) == ["signal"]
    assert select_by_mutual_info(pd.DataFrame(rows), y, k=2) == select_by_mutual_info(rows, y, 2)
    assert len(select_by_mutual_info(rows, y, k=10)) == 3
    reg = [r["signal"] * 3.0 for r in rows]
    assert select_by_mutual_info(rows, reg, k=1, task="regression") == ["signal"]


def test_mutual_info_reads_missing_features_as_zero_and_one_hot_as_discrete() -> None:
    rng = random.Random(4)
    y = [i % 2 == 1 for i in range(100)]
    rows = [{"x": rng.random(), **({"attr_c=a": 1.0} if label else {})} for label in y]
    assert select_by_mutual_info(rows, y, k=1) == ["attr_c=a"]


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"k": 0}, "k"),
        ({"k": 1, "task": "ranking"}, "task"),
        ({"k": 1, "y": [True]}, "y"),
        ({"k": 1, "n_neighbors": 0}, "n_neighbors"),
        ({"k": 1, "task": "regression", "y": ["a"] * 300}, "y"),
    ],
)
def test_mutual_info_errors_name_the_argument(kwargs: dict[str, Any], path: str) -> None:
    rows, y = _synthetic()
    kwargs = {"X": rows, "y": y, **kwargs}
    with pytest.raises(FeatureError, match=rf"^{path}: "):
        select_by_mutual_info(**kwargs)


def test_online_selection_picks_the_informative_feature() -> None:
    rng = random.Random(8)
    selector = OnlineSelectKBest(k=1, warmup=50)
    x0 = {"noise": 0.5, "signal": 0.5, "other": 0.5}
    for i in range(400):
        x = {"noise": rng.gauss(0, 1), "signal": rng.gauss(0, 1), "other": rng.random()}
        if i < 49:
            assert selector.transform_one(x0) == x0  # warming up: everything passes
        selector.learn_one(x, -2.0 * x["signal"] + rng.gauss(0, 0.5) > 0)  # negative r
    assert selector.selected == ["signal"]
    assert selector.transform_one(x0) == {"signal": 0.5}
    copy = pickle.loads(pickle.dumps(selector))
    assert copy.selected == ["signal"] and copy.clone().selected == []
    with pytest.raises(FeatureError, match=r"^y: "):
        selector.learn_one(x0, "spam")
    with pytest.raises(FeatureError, match=r"^k: "):
        OnlineSelectKBest(k=0)
