"""``streamlearn report`` without a broker: times, the report data, the HTML, arguments."""

from __future__ import annotations

import math
import os
import re
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from streamlearn.cli import main
from streamlearn.config import load_settings
from streamlearn.errors import StreamlearnError
from streamlearn.kafka.broker import free_port
from streamlearn.models.online import LabelError, ModelConfig, OnlineModel
from streamlearn.records import DeadLetter, ErrorCode
from streamlearn.report import RawRecord, ReportBuilder, ReportOptions, label_target, parse_time
from streamlearn.report.command import ArgumentError, _write, resolve_range, summary_line
from streamlearn.report.data import _thin, default_output_name
from streamlearn.report.render import render_html

T0 = 1_700_000_040_000  # a whole minute
MIN = 60_000
OPTIONS = ReportOptions(
    from_ms=T0,
    to_ms=T0 + 10 * MIN,
    window_specs=("hopping-5m-1m", "tumbling-1m"),
    events_topic="events",
    labels_topic="labels",
)


def rec(kind: str, doc: Any, **extra: Any) -> RawRecord:
    value = doc if isinstance(doc, bytes) or doc is None else orjson.dumps(doc)
    return RawRecord(kind, value, **extra)


def window(key: str, value: str, start: int, mean: float, spec: str = "tumbling-1m") -> RawRecord:
    size = MIN if spec.startswith("tumbling") else 5 * MIN
    stats = {"count": 3, "mean": mean, "std": 0.5, "min": mean - 1, "max": mean + 1, "p50": mean}
    return rec(
        "aggregates",
        {
            "kind": "window",
            "id": f"{key}:{value}:{spec}:{start}",
            "key": key,
            "value": value,
            "window": spec,
            "start": start,
            "end": start + size,
            "stats": stats,
            "closed": True,
        },
    )


def anomaly(key: Any, ts: int, n: int = 1, message: str = "spike", value: float = 9.0) -> RawRecord:
    return rec(
        "anomalies",
        {
            "type": "anomaly",
            "severity": "critical",
            "key": key,
            "subject": "a",
            "message": message,
            "evidence": {},
            "ts": ts,
            "dedup_key": f"{key}:{n}",
            "event_id": f"{key}-e{n}",
            "score": 0.99999,
            "grade": "critical",
            "values": [{"name": "a", "value": value, "expected_low": 1.0, "expected_high": 2.0}],
        },
    )


def event(key: str, i: int, ts: int | None, label: Any = None, **extra: Any) -> RawRecord:
    doc: dict[str, Any] = {"key": key, "id": f"{key}-{i}", "values": {"a": float(i)}}
    if ts is not None:
        doc["ts"] = ts
    if label is not None:
        doc["label"] = label
    return rec("events", doc, topic="events", partition=0, offset=i, **extra)


def prediction(key: str, i: int, ts: int, value: Any, model: str = "logreg") -> RawRecord:
    return rec(
        "predictions",
        {
            "key": key,
            "event_id": f"{key}-{i}",
            "ts": ts,
            "prediction": value,
            "probability": None,
            "model": model,
            "model_version": i,
            "latency_us": 1.0,
        },
    )


def dead(
    code: str, source: tuple[str, int, int], value: Any, *, key: bytes | None = None, at: int = 0
) -> RawRecord:
    letter = DeadLetter(ErrorCode(code), f"reason {code}", *source)
    return rec("deadletter", value, key=key, headers=tuple(letter.headers()), timestamp_ms=at)


def build(records: list[RawRecord], options: ReportOptions = OPTIONS) -> Any:
    return ReportBuilder(options).add_all(records).build()


# --- times and arguments ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-14T22:14:00Z", T0),
        ("2023-11-14T23:14:00+01:00", T0),
        (str(T0), T0),
        ("now", T0 + 5 * MIN),
        (" NOW ", T0 + 5 * MIN),
        ("-1h", T0 + 5 * MIN - 3_600_000),
        ("now-30m", T0 + 5 * MIN - 30 * MIN),
        ("-500ms", T0 + 5 * MIN - 500),
        ("-2d", T0 + 5 * MIN - 2 * 86_400_000),
    ],
)
def test_parse_time_forms(text: str, expected: int) -> None:
    assert parse_time(text, T0 + 5 * MIN) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2023-11-14T22:14:00", "needs a time zone"),
        ("yesterday", "is not epoch milliseconds or ISO-8601"),
        ("-1x", "is not epoch milliseconds or ISO-8601"),
        ("", "is not epoch milliseconds"),
    ],
)
def test_parse_time_errors_name_the_option(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        parse_time(text, T0, "--from")
    assert str(caught.value).startswith("--from=")


def test_resolve_range() -> None:
    now = T0 + 2 * 3_600_000
    assert resolve_range(None, "now", now) == (now - 3_600_000, now)
    assert resolve_range(None, str(T0), now) == (T0 - 3_600_000, T0)
    assert resolve_range("-2h", "-1h", now) == (T0, T0 + 3_600_000)
    with pytest.raises(ArgumentError, match=r"--from \(.*\) must be before --to"):
        resolve_range(str(T0), str(T0), now)
    with pytest.raises(ArgumentError, match="--to='soon'"):
        resolve_range(None, "soon", now)
    with pytest.raises(ValueError, match="range is empty"):
        ReportOptions(from_ms=T0, to_ms=T0 - 1)


def test_default_output_name_is_compact_utc() -> None:
    assert default_output_name(T0, T0 + MIN) == (
        "streamlearn-report-20231114T221400Z-20231114T221500Z.html"
    )


LABELS = [True, False, 1, 0, 1.0, 2, "ok", "fault", "other", -3.5, 7, float("inf"), None]


@pytest.mark.parametrize(
    ("task", "classes"),
    [
        ("classification", (False, True)),
        ("classification", ("ok", "fault")),
        ("classification", ("a", "b", "c")),
        ("classification", (0, 1, 2)),
        ("regression", (False, True)),
    ],
)
def test_label_target_is_the_models_target(task: str, classes: tuple[Any, ...]) -> None:
    learner = "linear" if task == "regression" else "logreg"
    model = OnlineModel(ModelConfig(task=task, learner=learner, classes=classes))  # type: ignore[arg-type]
    for label in [*LABELS, *classes]:
        try:
            expected: Any = model.target(label)
        except (LabelError, TypeError):
            expected = LabelError
        try:
            got: Any = label_target(label, task, classes)
        except ValueError:
            got = LabelError
        assert got == expected and type(got) is type(expected), (label, got, expected)


# --- records to report ------------------------------------------------------------------


def test_windows_by_start_in_range_deduplicated_one_spec_charted() -> None:
    records = [
        window("k", "a", T0 - MIN, 1.0),  # starts before: out
        window("k", "a", T0, 2.0),  # starts at from: in
        window("k", "a", T0, 2.0),  # a repeat delivery
        window("k", "a", T0 + 9 * MIN, 3.0),
        window("k", "a", T0 + 10 * MIN, 4.0),  # starts at to: out
        window("k", "b", T0 + MIN, 5.0),
        window("k", "a", T0, 6.0, spec="hopping-5m-1m"),
    ]
    report = build(records)
    assert report.counts["windows"] == 4
    assert report.windows_by_spec == {"hopping-5m-1m": 1, "tumbling-1m": 3}
    assert report.duplicates == {"windows": 1}
    # The first tumbling spec of the settings, though hopping comes first there.
    assert report.window_spec == "tumbling-1m"
    assert [p.mean for p in report.series["k"]["a"]] == [2.0, 3.0]
    assert [p.start for p in report.series["k"]["b"]] == [T0 + MIN]
    point = report.series["k"]["b"][0]
    assert (point.count, point.std, point.min, point.max, point.end) == (
        3,
        0.5,
        4.0,
        6.0,
        T0 + 2 * MIN,
    )
    assert report.key_rows[0].windows == 4

    chosen = ReportOptions(from_ms=T0, to_ms=T0 + 10 * MIN, window="hopping-5m-1m")
    assert build(records, chosen).series["k"]["a"][0].mean == 6.0
    missing = ReportOptions(from_ms=T0, to_ms=T0 + 10 * MIN, window="tumbling-1h")
    report = build(records, missing)
    assert report.series == {} and report.window_spec == "tumbling-1h"
    assert any("No tumbling-1h windows" in note and "tumbling-1m" in note for note in report.notes)


def test_events_by_event_time_with_the_kafka_timestamp_as_fallback() -> None:
    records = [
        event("k", 0, T0),
        event("k", 1, T0 + 10 * MIN),  # at to: out
        event("k", 2, None, timestamp_ms=T0 + MIN),  # no ts: its Kafka timestamp
        event("k", 3, None, timestamp_ms=T0 - 1),
        rec("events", b"{broken", topic="events"),  # the worker refused it
        event("other", 4, T0 + 2 * MIN),
    ]
    report = build(records)
    assert report.counts["events"] == 3
    rows = {r.key: r for r in report.key_rows}
    assert rows["k"].events == 2 and rows["k"].first_ts == T0 and rows["k"].last_ts == T0 + MIN
    one = ReportOptions(from_ms=T0, to_ms=T0 + 10 * MIN, keys=frozenset({"other", "ghost"}))
    report = build(records, one)
    assert report.counts["events"] == 1 and report.keys == ["other"]
    assert report.missing_keys == ["ghost"]


def test_alerts_and_lifecycle_records_in_range_deduplicated_and_counted() -> None:
    drift = {"type": "drift", "kind": "data", "key": "k", "subject": "a", "severity": "warning"}
    concept = {"type": "drift", "kind": "concept", "key": None, "subject": "m", "severity": "info"}
    degradation = {"type": "degradation", "key": "k", "subject": "m", "severity": "critical"}
    promotion = {"type": "promotion", "event": "promotion", "key": "k", "model": "m", "version": 2}
    started = {"type": "model", "event": "challenger_started", "key": None, "model": "m"}
    records = [
        anomaly("k", T0 + MIN),
        anomaly("k", T0 + MIN),  # repeat
        anomaly("k", T0 + 11 * MIN, n=2),  # out of range
        rec("anomalies", b"not json"),
        rec("drift", {**drift, "ts": T0, "dedup_key": "drift:data:k:a:1"}),
        rec("drift", {**drift, "ts": T0, "dedup_key": "drift:data:k:a:1"}),
        rec("drift", {**concept, "ts": T0 + 2 * MIN, "dedup_key": "drift:concept::m:1"}),
        rec("drift", {**degradation, "ts": T0 + 3 * MIN, "dedup_key": "degradation:m:k:v1:9"}),
        rec("model_events", {**promotion, "ts": T0 + 4 * MIN, "dedup_key": "promotion:m:k:v2"}),
        rec("model_events", {**started, "ts": T0 + 5 * MIN, "dedup_key": "started:m::1"}),
        rec("model_events", {**started, "ts": T0 - 5, "dedup_key": "started:m::0"}),
    ]
    report = build(records)
    c = report.counts
    assert (c["anomalies"], c["data_drift"], c["concept_drift"], c["degradations"]) == (1, 1, 1, 1)
    assert (c["promotions"], c["model_events"]) == (1, 2)
    assert report.duplicates == {"anomalies": 1, "drift": 1}
    assert report.unreadable == {"anomalies": 1}
    assert [d["ts"] for d in report.drift] == [T0, T0 + 2 * MIN, T0 + 3 * MIN]
    assert report.key_rows[0].drift == 2 and report.key_rows[0].anomalies == 1
    # A key filter drops model-wide records (no key) and other keys' records.
    only = build(records, ReportOptions(from_ms=T0, to_ms=T0 + 10 * MIN, keys=frozenset({"k"})))
    assert (only.counts["concept_drift"], only.counts["model_events"]) == (0, 1)
    assert only.counts["degradations"] == 1


def test_running_statistics_keep_the_last_record_of_each_key_in_range() -> None:
    def stats(events: int, ts: int) -> RawRecord:
        values = {"a": {"count": events, "mean": 1.0, "std": 0.1, "min": 0, "max": 2, "ewma": 1}}
        return rec(
            "aggregates",
            {"kind": "stats", "id": f"stats/k/{events}", "key": "k", "ts": ts, "events": events,
             "values": values},
        )  # fmt: skip

    report = build([stats(10, T0), stats(30, T0 + MIN), stats(20, T0 + 2 * MIN), stats(40, T0 - 1)])
    assert report.counts["stats_records"] == 3
    assert report.running_stats["k"]["events"] == 30


def test_dead_letters_by_event_time_key_and_reason() -> None:
    records = [
        # A refused event with a ts: its event time; the key from the record.
        dead("invalid_values", ("events", 0, 1), {"key": "k", "ts": T0 + MIN, "values": {}}),
        dead("invalid_values", ("events", 0, 1), {"key": "k", "ts": T0 + MIN, "values": {}}),
        # No usable ts: when it was refused; no key in the record: the Kafka key.
        dead("invalid_json", ("events", 1, 7), b"{oops", key=b"k2", at=T0 + 2 * MIN),
        dead(
            "invalid_ts",
            ("events", 1, 8),
            {"key": "k", "ts": "soon", "values": {"a": 1}},
            at=T0 + 3 * MIN,
        ),
        dead("late", ("events", 0, 9), {"key": "k", "ts": T0 - MIN, "values": {"a": 1}}),
        rec("deadletter", b"x", headers=(("other", b"1"),)),
        rec("deadletter", b"x", headers=(("error.code", b"brand_new"), ("source.offset", b"zz"))),
    ]
    report = build(records)
    assert report.dead_letter_reasons == {"invalid_values": 1, "invalid_json": 1, "invalid_ts": 1}
    assert report.unreadable == {"deadletter": 1}
    assert report.duplicates == {"dead_letters": 1}
    rows = {r.code: r for r in report.dead_letters}
    assert rows["invalid_values"].ts == T0 + MIN and not rows["invalid_values"].refused_at
    assert rows["invalid_json"].key == "k2" and rows["invalid_json"].refused_at
    assert rows["invalid_ts"].ts == T0 + 3 * MIN and rows["invalid_ts"].source == "events/1@8"
    # An unknown code (a newer worker) still counts, when its time is in range.
    newer = build(
        [rec("deadletter", b"x", headers=(("error.code", b"brand_new"),), timestamp_ms=T0)]
    )
    assert newer.dead_letter_reasons == {"brand_new": 1}


def test_accuracy_is_prequential_over_labelled_predictions_in_event_time_order() -> None:
    options = ReportOptions(from_ms=T0, to_ms=T0 + 10 * MIN, rolling_window=2)
    truth = [True, False, True, True, False]
    guess = [True, True, True, False, False]
    records = []
    for i, (y, y_hat) in enumerate(zip(truth, guess, strict=True)):
        ts = T0 + (4 - i) * 1000  # produced newest first: order is by event time
        records.append(event("k", i, ts, label=int(y)))
        records.append(prediction("k", i, ts, y_hat))
    records.append(prediction("k", 0, T0 + 4000, True))  # a repeat delivery
    (metrics,) = build(records, options).models
    # Event-time order is i = 4, 3, 2, 1, 0: right, wrong, right, wrong, right.
    assert (metrics.predictions, metrics.labelled, metrics.metric) == (5, 5, "accuracy")
    assert [c for _, c, _ in metrics.points] == pytest.approx([1, 1 / 2, 2 / 3, 2 / 4, 3 / 5])
    assert [r for _, _, r in metrics.points] == pytest.approx([1, 1 / 2, 1 / 2, 1 / 2, 1 / 2])
    assert metrics.overall == pytest.approx({"accuracy": 0.6, "accuracy_last": 0.5})


def test_labels_the_model_refused_score_nothing() -> None:
    records = [
        # 0: inline label refused by the model (invalid_label): not scored.
        event("k", 0, T0, label="maybe"),
        prediction("k", 0, T0, False),
        dead("invalid_label", ("events", 0, 0), {"key": "k", "ts": T0, "label": "maybe"}),
        # 1: a delayed label that came too late (expired), then none: not scored.
        event("k", 1, T0 + 1000),
        prediction("k", 1, T0 + 1000, True),
        rec("labels", {"id": "k-1", "key": "k", "label": True}, topic="labels", offset=5),
        dead("expired", ("labels", 0, 5), {"id": "k-1", "key": "k", "label": True}),
        # 2: a refused delayed label (unknown id), then a good one: scored with the good one.
        event("k", 2, T0 + 2000),
        prediction("k", 2, T0 + 2000, True),
        rec("labels", {"id": "k-2", "key": "k", "label": False}, topic="labels", offset=6),
        dead("unknown_id", ("labels", 0, 6), {"id": "k-2", "key": "k", "label": False}),
        rec("labels", {"id": "k-2", "key": "k", "label": True}, topic="labels", offset=7),
        # 3: no label at all.
        event("k", 3, T0 + 3000),
        prediction("k", 3, T0 + 3000, True),
        # 4: an inline label, and a later (refused) delayed one: the inline one counts.
        event("k", 4, T0 + 4000, label=False),
        prediction("k", 4, T0 + 4000, True),
        rec("labels", {"id": "k-4", "key": "k", "label": True}, topic="labels", offset=8),
        # A label of an unknown record shape, and one for another key.
        rec("labels", b"[]", topic="labels", offset=9),
        rec("labels", {"id": "x-1", "key": "x", "label": True}, topic="labels", offset=10),
    ]
    report = build(records)
    (metrics,) = report.models
    assert (metrics.predictions, metrics.labelled) == (5, 2)
    assert metrics.overall["accuracy"] == pytest.approx(0.5)  # 2 right, 4 wrong
    assert report.counts["labelled"] == 2 and report.key_rows[0].labelled == 2


def test_named_classes_and_several_models() -> None:
    options = ReportOptions(from_ms=T0, to_ms=T0 + MIN, classes=("ok", "fault"))
    records = [
        event("k", 0, T0, label="fault"),
        prediction("k", 0, T0, "fault", model="a"),
        event("k", 1, T0 + 1, label="ok"),
        prediction("k", 1, T0 + 1, "fault", model="b"),
        prediction("k", 2, T0 + 2, "ok", model="b"),
    ]
    report = build(records, options)
    assert [(m.model, m.labelled, m.overall["accuracy"]) for m in report.models] == [
        ("a", 1, 1.0),
        ("b", 1, 0.0),
    ]
    assert report.counts["predictions"] == 3


def test_regression_mae_and_rmse() -> None:
    options = ReportOptions(from_ms=T0, to_ms=T0 + MIN, task="regression", rolling_window=10)
    records = []
    for i, (y, y_hat) in enumerate([(1.0, 2.0), (5.0, 2.0), (0.0, 0.0)]):
        records += [event("k", i, T0 + i, label=y), prediction("k", i, T0 + i, y_hat)]
    records += [event("k", 3, T0 + 3, label=True), prediction("k", 3, T0 + 3, 1.0)]  # not a number
    (metrics,) = build(records, options).models
    assert (metrics.metric, metrics.labelled) == ("mae", 3)
    assert metrics.overall == pytest.approx(
        {"mae": 4 / 3, "rmse": math.sqrt(10 / 3), "mae_last": 4 / 3}
    )
    assert [c for _, c, _ in metrics.points] == pytest.approx([1.0, 2.0, 4 / 3])


def test_no_predictions_is_said_and_unknown_kinds_are_refused() -> None:
    report = build([])
    assert report.models == [] and report.empty
    assert any("No predictions in range" in note for note in report.notes)
    with pytest.raises(ValueError, match="unknown topic kind"):
        ReportBuilder(OPTIONS).add(rec("scores", {}))
    rows = build([rec("predictions", {"ts": T0, "key": 3})])
    assert rows.unreadable == {"predictions": 1}


def test_thin_keeps_the_last_point() -> None:
    assert _thin(list(range(10)), 20) == list(range(10))
    thinned = _thin(list(range(1001)), 100)
    assert len(thinned) <= 102 and thinned[0] == 0 and thinned[-1] == 1000


# --- HTML -------------------------------------------------------------------------------

EVIL_KEY = '<script>alert("k")</script>'
EVIL_MESSAGE = "<img src=x onerror=alert(1)> & more"


def rich_report() -> Any:
    records = [window(EVIL_KEY, "<b>a</b>", T0 + i * MIN, float(i)) for i in range(3)]
    records += [window("calm", "a", T0 + i * MIN, 1.0) for i in range(3)]
    records.append(anomaly(EVIL_KEY, T0 + MIN + 5, message=EVIL_MESSAGE, value=1.0))
    records[-1] = rec(
        "anomalies",
        {
            **orjson.loads(records[-1].value or b"{}"),
            "values": [{"name": "<b>a</b>", "value": 1.0}],
        },
    )
    records.append(
        rec(
            "drift",
            {"type": "drift", "kind": "data", "key": EVIL_KEY, "subject": "<b>a</b>", "ts": T0,
             "severity": "warning", "message": EVIL_MESSAGE, "dedup_key": "d1",
             "current": {"mean": 2.0}},
        )
    )  # fmt: skip
    records.append(
        rec(
            "model_events",
            {"type": "promotion", "event": "promotion", "key": EVIL_KEY, "model": "logreg",
             "version": 2, "ts": T0 + 2000, "severity": "warning", "message": EVIL_MESSAGE,
             "dedup_key": "p1"},
        )
    )  # fmt: skip
    records += [event(EVIL_KEY, 0, T0, label=True), prediction(EVIL_KEY, 0, T0, True)]
    records.append(dead("invalid_values", ("events", 0, 3), {"key": EVIL_KEY, "ts": T0}))
    return build(records)


def test_html_escapes_every_text_from_the_records() -> None:
    page = render_html(rich_report(), include_plotlyjs=False)
    assert EVIL_KEY not in page and "<img src=x" not in page and "<b>a</b>" not in page
    assert "&lt;script&gt;alert(&quot;k&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; more" in page
    # In the charts' JSON the text is escaped for plotly.js, and "<" never appears raw.
    charts = re.findall(r"Plotly\.newPlot\((.*?)\)\s*};", page, flags=re.S)
    assert charts and all("<" not in chart for chart in charts)
    # (plotly.js shows the entities as the characters, and renders no tag)
    assert any("&lt;b&gt;a&lt;\\u002fb&gt;" in c for c in charts)


def test_html_sections_and_plotlyjs_inlined_once() -> None:
    report = rich_report()
    page = render_html(report, include_plotlyjs=True)
    assert page.count("window.PlotlyConfig") == 1 and "plotly.js v" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)
    # One chart per key, the model's accuracy, the timeline.
    assert page.count("Plotly.newPlot(") == 4
    assert page.index("plotly.js v") < page.index("Plotly.newPlot(")
    for section in ("summary", "aggregates", "anomalies", "models", "drift", "dead-letters"):
        assert f'<section id="{section}">' in page
    counts = dict(
        re.findall(r'data-count="(\w+)"><th>[^<]*</th><td class="num" data-value="(\d+)"', page)
    )
    assert counts["windows"] == "6" and counts["promotions"] == "1" and counts["anomalies"] == "1"
    assert counts["dead_letters"] == "1" and counts["labelled"] == "1"


def test_empty_report_says_nothing_was_found() -> None:
    options = ReportOptions(from_ms=T0, to_ms=T0 + MIN, keys=frozenset({"ghost"}))
    report = build([], options)
    page = render_html(report, include_plotlyjs=True)
    assert 'id="nothing-found"' in page and "for key &#x27;ghost&#x27;" in page
    assert "No records for key &#x27;ghost&#x27; in range." in page
    assert "Plotly.newPlot" not in page and "plotly.js v" not in page
    assert set(re.findall(r'data-value="(\d+)"', page)) == {"0"}
    assert summary_line(report).startswith("nothing found between 2023-11-14 22:14:00")


def test_unlabelled_predictions_say_the_metric_cannot_be_computed() -> None:
    report = build([prediction("k", 0, T0, True), prediction("k", 1, T0 + 1, False)])
    page = render_html(report, include_plotlyjs=False)
    assert "none of its 2 predictions in range has a label" in page
    assert "accuracy cannot be computed" in page
    assert "Plotly.newPlot" not in page


def test_limits_on_charted_keys_and_table_rows() -> None:
    records = [window(f"k{i:02d}", "a", T0, 1.0) for i in range(5)]
    records += [anomaly(f"k{i:02d}", T0 + i, n=i) for i in range(3)]
    report = build(records)
    page = render_html(report, include_plotlyjs=False, max_keys=2, max_rows=2)
    assert page.count("Plotly.newPlot(") == 3  # two keys and the timeline
    assert "Charts for 2 of 5 keys" in page and "The first 2 of 3 anomalies." in page
    # The keys with anomalies come first.
    assert re.findall(r'<h3 class="key-chart">(\w+)</h3>', page) == ["k00", "k01"]


# --- the command ------------------------------------------------------------------------


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("STREAMLEARN_"):
            monkeypatch.delenv(name)
    return CliRunner()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--from", "2024-01-02T00:00:00Z", "--to", "2024-01-01T00:00:00Z"], "must be before --to"),
        (["--from", "yesterday"], "--from='yesterday' is not epoch milliseconds"),
        (["--to", "2024-01-01T00:00:00"], "--to='2024-01-01T00:00:00' needs a time zone"),
        (["--slack", "5x"], "--slack '5x' is not a duration"),
        (["--max-delay", "-1h"], "--max-delay '-1h' is not a duration"),
        (["--key", ""], "--key must not be empty"),
        (["--max-keys", "0"], "--max-keys"),
        (["--window", "tumbling:1x"], "--window: 'tumbling:1x': '1x' is not a duration"),
    ],
)
def test_bad_arguments_are_usage_errors(runner: CliRunner, args: list[str], says: str) -> None:
    result = runner.invoke(main, ["report", *args])
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output


def test_help(runner: CliRunner) -> None:
    result = runner.invoke(main, ["report", "--help"])
    assert result.exit_code == 0
    for option in ("--from", "--to", "--key", "--output", "--window", "--slack", "--max-delay"):
        assert option in result.output


def test_unwritable_output_is_a_clear_error(runner: CliRunner, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StreamlearnError, match=r"cannot write .*report\.html"):
        _write(blocker / "report.html", "<html></html>")
    assert list(tmp_path.iterdir()) == [blocker]


def test_unreachable_broker_is_a_clear_error(runner: CliRunner, tmp_path) -> None:
    port = free_port()  # nothing listens there
    out = tmp_path / "r.html"
    result = runner.invoke(
        main,
        ["report", "-o", str(out)],
        env={"STREAMLEARN_BROKER_URL": f"kafka://127.0.0.1:{port}"},
    )
    assert result.exit_code == 1, result.output
    assert f"cannot reach Kafka at 127.0.0.1:{port}" in result.output
    assert "STREAMLEARN_BROKER_URL" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_options_follow_the_settings() -> None:
    settings = load_settings(
        topic_prefix="p.",
        windows=["hopping:5m:1m", "tumbling:1m"],
        model_task="regression",
        model_learner="linear",
        model_rolling_window=50,
    )
    options = ReportOptions.from_settings(settings, T0, T0 + MIN, keys=["k"], window="x")
    assert options.window_specs == ("hopping-5m-1m", "tumbling-1m")
    assert (options.events_topic, options.labels_topic) == ("p.events", "p.labels")
    assert (options.task, options.rolling_window, options.keys) == (
        "regression",
        50,
        frozenset({"k"}),
    )


def test_html_running_statistics_regression_metrics_and_source_notes() -> None:
    options = ReportOptions(from_ms=T0, to_ms=T0 + 10 * MIN, task="regression")
    stats = {"a": {"count": 7, "mean": 1.5, "std": 0.25, "min": 1, "max": 2, "ewma": 1.4}}
    records = [
        rec("aggregates", {"kind": "stats", "id": "stats/k/7", "key": "k", "ts": T0, "events": 7,
                           "values": stats}),
        rec("aggregates", {"kind": "something-else", "key": "k"}),
        event("k", 0, T0, label=2.0),
        prediction("k", 0, T0, 3.5),
        prediction("k", 0, T0, 3.5),
    ]  # fmt: skip
    records += [window("k", f"v{i}", T0, 1.0) for i in range(3)]
    report = build(records, options)
    report.source = {
        "broker": "b:9092",
        "app_id": "app",
        "topic_prefix": "",
        "seek_ms": T0 - 3_600_000,
        "slack_ms": 3_600_000,
        "stop_after_ms": T0 + 11 * MIN,
        "seconds": 0.5,
        "topics": [
            {"kind": "events", "topic": "events", "exists": True, "partitions": 4, "records": 1,
             "stopped_early": 2},
            {"kind": "labels", "topic": "labels", "exists": False, "partitions": 0, "records": 0,
             "stopped_early": 0},
        ],
    }  # fmt: skip
    page = render_html(report, include_plotlyjs=False, max_values=2)
    assert re.search(
        r"<td>k</td><td>a</td><td class=\"num\">7</td><td class=\"num\">1.5</td>", page
    )
    assert "2 of 3 values charted." in page
    assert '<td>mae</td><td class="num">1.5</td>' in page and "prequential MAE" in page
    assert "Duplicate deliveries dropped (outputs are at-least-once): predictions 1." in page
    assert "Records that are not streamlearn output, skipped: aggregates 1." in page
    assert "2 partitions stopped early" in page and "does not exist" in page
    assert "the first record published after 2023-11-14 22:25:00 UTC" in page
    assert "(--from minus a slack of 3600 s)" in page
    line = summary_line(report)
    assert line == (
        "1 event, 1 key, 3 windows, 0 anomalies, 0 drift records, 0 promotions, "
        "1 prediction (1 labelled), 0 dead letters"
    )
