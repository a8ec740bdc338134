"""Alerts: the envelope, anomaly alerts in it, backoff, URL masking, the Prometheus rules."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from streamlearn.alerts import (
    ENVELOPE_FIELDS,
    SEVERITIES,
    Alert,
    AlertError,
    at_least,
    dedup_key,
    max_severity,
    severity_rank,
)
from streamlearn.alerts.webhook import (
    MAX_BACKOFF_S,
    WebhookSink,
    backoff_delay_s,
    backoff_schedule,
    mask_url,
    parse_retry_after,
    validate_webhook_url,
)
from streamlearn.config import load_settings
from streamlearn.errors import ConfigError
from streamlearn.models.anomaly.scorer import AlertPolicy, Scorer
from streamlearn.models.anomaly.zscore import RobustZScore
from streamlearn.web.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "deploy" / "prometheus" / "alerts.yml"


def drift_doc(**changes: Any) -> dict[str, Any]:
    doc = {
        "type": "drift",
        "severity": "warning",
        "key": "pump-7",
        "subject": "temp",
        "message": "Data drift on pump-7: temp moved.",
        "evidence": {"psi": 0.31, "ks_p": 1e-9},
        "ts": 1_767_607_200_000,
        "dedup_key": "drift:pump-7:temp:1",
        "kind": "data",
    }
    doc.update(changes)
    return doc


# --- envelope -------------------------------------------------------------------------


def test_round_trip_keeps_every_field_and_the_order() -> None:
    doc = drift_doc()
    alert = Alert.from_dict(doc)
    assert alert.extra == {"kind": "data"}
    assert alert.to_dict() == doc
    assert list(alert.to_dict())[: len(ENVELOPE_FIELDS)] == list(ENVELOPE_FIELDS)
    assert Alert.from_json(alert.to_json()) == alert
    assert orjson.loads(alert.to_json()) == doc


def test_key_may_be_null_for_model_wide_alerts() -> None:
    alert = Alert.from_dict(drift_doc(type="promotion", key=None, severity="info"))
    assert alert.key is None and alert.to_dict()["key"] is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"type": "outage"}, "type must be one of anomaly, drift, degradation, promotion"),
        ({"severity": "major"}, "severity must be info, warning or critical; got 'major'"),
        ({"severity": None}, "severity must be"),
        ({"subject": ""}, "'subject' must be a non-empty string"),
        ({"subject": 3}, "'subject' must be a non-empty string"),
        ({"message": "  "}, "'message' must be a non-empty string"),
        ({"message": "Line one.\nLine two."}, "'message' must be one sentence on one line"),
        ({"dedup_key": None}, "'dedup_key' must be a non-empty string"),
        ({"key": 7}, "'key' must be a string or null"),
        ({"ts": 1.5}, "'ts' must be epoch milliseconds"),
        ({"ts": True}, "'ts' must be epoch milliseconds"),
        ({"ts": -1}, "'ts' must be epoch milliseconds"),
        ({"ts": "2026-01-01"}, "'ts' must be epoch milliseconds"),
        ({"evidence": [1, 2]}, "'evidence' must be an object"),
    ],
)
def test_invalid_envelopes_are_refused_naming_the_field(
    changes: dict[str, Any], error: str
) -> None:
    with pytest.raises(AlertError, match=re.escape(error)):
        Alert.from_dict(drift_doc(**changes))


def test_missing_fields_are_listed() -> None:
    doc = drift_doc()
    del doc["dedup_key"], doc["evidence"]
    with pytest.raises(AlertError, match="missing envelope fields: evidence, dedup_key"):
        Alert.from_dict(doc)


@pytest.mark.parametrize("raw", [b"{nope", b"[1, 2]", b"null", b'"text"'])
def test_from_json_refuses_what_is_not_an_object(raw: bytes) -> None:
    with pytest.raises(AlertError):
        Alert.from_json(raw)


def test_extra_fields_cannot_replace_envelope_fields() -> None:
    with pytest.raises(AlertError, match="may not replace envelope fields: severity"):
        Alert("drift", "info", "s", "m.", 0, "d", extra={"severity": "critical"})


def test_severity_order_and_helpers() -> None:
    assert SEVERITIES == ("info", "warning", "critical")
    assert [severity_rank(s) for s in SEVERITIES] == [0, 1, 2]
    assert at_least("warning", "warning") and at_least("critical", "info")
    assert not at_least("info", "warning")
    assert Alert.from_dict(drift_doc(severity="critical")).at_least("warning")
    assert max_severity() == "info" and max_severity("info", "critical", "warning") == "critical"
    assert sorted(["critical", "info", "warning"], key=severity_rank) == list(SEVERITIES)
    assert dedup_key("anomaly", "k", 3) == "anomaly:k:3"
    with pytest.raises(AlertError):
        dedup_key()


# --- anomaly alerts carry the envelope ----------------------------------------------------


def scored_alerts(values_of: Any, n: int = 800, warmup: int = 100) -> list[dict[str, Any]]:
    scorer = Scorer(lambda: RobustZScore(window=64), AlertPolicy(warmup=warmup), "zscore")
    state = scorer.new_state()
    out = []
    for i in range(n):
        result = scorer.process(state, "pump-1", values_of(i), 1_000 * i, f"e{i}")
        if result.alert is not None:
            out.append(result.alert)
    return out


def test_anomaly_alert_is_a_valid_envelope_with_its_old_fields() -> None:
    rng = random.Random(3)

    def values_of(i: int) -> dict[str, float]:
        temp = 35.0 if i == 700 else 20.0 + rng.gauss(0.0, 0.3)
        return {"temp": temp, "load": 1.0 + rng.gauss(0.0, 0.05)}

    (doc,) = scored_alerts(values_of)
    alert = Alert.from_dict(doc)
    assert alert.type == "anomaly" and alert.key == "pump-1" and alert.ts == 700_000
    assert alert.dedup_key == doc["episode_id"] == doc["id"] == "pump-1:1"
    assert alert.subject == "temp"
    assert alert.message.startswith("Anomaly on pump-1: temp is 35, expected ")
    assert alert.message.endswith(" for this key).")
    assert doc["grade"] in ("warning", "major", "critical")
    assert alert.severity == {"warning": "warning"}.get(doc["grade"], "critical")
    evidence = alert.evidence
    assert evidence["score"] == doc["score"] and evidence["raw_score"] == doc["raw_score"]
    assert evidence["threshold"] == 0.9999 and evidence["detectors"] == {"zscore": doc["score"]}
    (row,) = evidence["values"]
    assert row["name"] == "temp" and row["expected_low"] < 20.0 < row["expected_high"] < 35.0
    # The fields anomaly consumers already read are all still there.
    for name in ("id", "episode_id", "event_id", "score", "raw_score", "threshold", "detector"):
        assert name in doc
    assert doc["fired"] == ["zscore"] and doc["values"] == evidence["values"]
    assert doc["event_id"] == "e700" and doc["key_events"] == 700
    orjson.dumps(doc)  # JSON-ready


def test_severity_follows_the_grade() -> None:
    from streamlearn.models.anomaly import scorer

    mapping = scorer.ENVELOPE_SEVERITY
    assert set(mapping) == set(scorer.SEVERITIES)  # every grade has a severity
    assert set(mapping.values()) <= set(SEVERITIES)
    assert mapping["warning"] == "warning" and mapping["critical"] == "critical"


def test_a_multivariate_anomaly_has_subject_event() -> None:
    # Each value within its usual range, but never together: the explainer flags none.
    rng = random.Random(5)

    def values_of(i: int) -> dict[str, float]:
        if i == 700:
            return {"a": 0.0, "b": 0.0}
        x = rng.choice((0.0, 1.0))
        return {"a": x, "b": 1.0 - x}

    # 700 scores of 0, then one above all: calibrated 700/701 until the tail is fitted.
    policy = AlertPolicy(threshold=0.99, exit_threshold=0.9, warmup=100)
    scorer = Scorer(lambda: _PairDetector(), policy, "pair")
    state = scorer.new_state()
    alert = None
    for i in range(701):
        alert = scorer.process(state, "k", values_of(i), i, f"e{i}").alert or alert
    assert alert is not None
    assert alert["subject"] == "event"
    assert "an unusual combination of values" in alert["message"]
    Alert.from_dict(alert)


class _PairDetector(RobustZScore):
    """Scores ``a + b`` far from 1 as anomalous (a joint, not a per-value, anomaly)."""

    def score_one(self, x: dict[str, float]) -> float:
        return abs(x["a"] + x["b"] - 1.0) * 100.0

    def learn_one(self, x: dict[str, float]) -> None:
        pass


# --- backoff, Retry-After, URLs -------------------------------------------------------------


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    assert backoff_schedule(5, 0.5) == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert backoff_schedule(4, 1.0, cap_s=5.0) == [1.0, 2.0, 4.0, 5.0]
    assert backoff_delay_s(10_000, 0.5) == MAX_BACKOFF_S  # no float overflow
    assert backoff_schedule(0, 0.5) == []


def test_backoff_jitter_only_shortens_and_varies() -> None:
    full = backoff_schedule(6, 0.5)
    runs = [backoff_schedule(6, 0.5, rng=random.Random(seed)) for seed in range(50)]
    for run in runs:
        assert all(f * 0.5 < d <= f for d, f in zip(run, full, strict=True))
    assert len({run[0] for run in runs}) > 40  # workers failing together spread out
    assert backoff_delay_s(3, 0.5, jitter=0.0, rand=0.9) == 4.0
    assert backoff_delay_s(3, 0.5, jitter=1.0, rand=0.75) == 1.0


@pytest.mark.parametrize("args", [(-1, 0.5), (0, 0.5, 30.0, 0.5, 1.0), (0, 0.5, 30.0, 1.5, 0.1)])
def test_backoff_refuses_bad_arguments(args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError):
        backoff_delay_s(*args)


def test_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now_s=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now_s=1445412490.0) == 0.0
    for bad in (None, "", "-5", "1.5", "later", "Wed, 99 Foo 2015"):
        assert parse_retry_after(bad) is None


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "https://bot:s3cret@hooks.example.com/a/b?token=t0k3n&x=1",
            "https://***@hooks.example.com/a/b?***",
        ),
        ("http://only-user@h:8080/p", "http://***@h:8080/p"),
        ("https://h.example.com/p#frag-secret", "https://h.example.com/p"),
        ("http://[::1]:9000/hook?k=v", "http://[::1]:9000/hook?***"),
        ("http://127.0.0.1:9000/hook", "http://127.0.0.1:9000/hook"),
        ("http://h:notaport/", "<unparseable URL>"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    for secret in ("s3cret", "t0k3n", "frag-secret", "only-user", "bot"):
        assert secret not in mask_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "hooks.example.com/alerts",
        "ftp://user:s3cret@hooks.example.com/alerts",
        "https:///alerts?token=s3cret",
        "http://h:99999/",
        "",
        "mailto:ops@example.com",
    ],
)
def test_bad_webhook_urls_are_refused_without_their_secrets(url: str) -> None:
    with pytest.raises(ConfigError, match="alert_webhook_url must be an http") as caught:
        validate_webhook_url(url)
    assert "s3cret" not in str(caught.value)


def test_good_webhook_urls() -> None:
    for url in ("http://127.0.0.1:9000/hook", "https://u:p@hooks.example.com/x?t=1"):
        assert validate_webhook_url(url) == url


def test_sink_from_settings_and_its_repr_hide_the_secrets() -> None:
    settings = load_settings(
        alert_webhook_url="https://u:pw123@hooks.example.com/x?token=tk456",
        alert_webhook_timeout_s=2.0,
        alert_webhook_retries=3,
        alert_webhook_backoff_s=0.25,
    )
    sink = WebhookSink.from_settings(settings)
    assert (sink.timeout_s, sink.retries, sink.backoff_s) == (2.0, 3, 0.25)
    assert "pw123" not in repr(sink) and "tk456" not in repr(sink)
    with pytest.raises(ConfigError, match="not set"):
        WebhookSink.from_settings(load_settings())


def test_worker_registers_the_webhook_agents_only_when_configured(tmp_path: Path) -> None:
    from streamlearn.worker import build_worker

    def agents(**overrides: Any) -> dict[str, set[str]]:
        settings = load_settings(data_dir=tmp_path, store="memory", **overrides)
        worker = build_worker(settings)
        return {
            name: set(agent.channel.topics)
            for name, agent in worker.app.agents.items()
            if name.startswith("streamlearn.alerts.")
        }

    assert agents() == {}
    registered = agents(alert_webhook_url="https://u:pw123@hooks.example.com/x", topic_prefix="p.")
    assert registered == {
        "streamlearn.alerts.anomalies": {"p.anomalies"},
        "streamlearn.alerts.drift": {"p.drift"},
        "streamlearn.alerts.model_events": {"p.model-events"},
    }
    with pytest.raises(ConfigError, match="alert_webhook_url"):
        agents(alert_webhook_url="hooks.example.com/x")


# --- Prometheus rules ----------------------------------------------------------------------

#: Metrics Prometheus itself attaches to every target.
STANDARD_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

#: PromQL words that look like metric names: functions, aggregations, keywords.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "topk", "bottomk", "quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "rate", "irate", "increase", "delta", "idelta",
    "absent", "absent_over_time", "histogram_quantile", "clamp_min", "clamp_max",
    "abs", "changes", "resets", "time", "vector", "scalar", "label_replace",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time",
}  # fmt: skip


def exported_metric_names(metrics: Metrics) -> set[str]:
    """Every sample name a worker's /metrics can show, labelled children or not."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }
    names = set()
    for family in metrics.registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (regexes, label values)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    words = re.findall(r"(?<![\w.])[A-Za-z_:][\w:]*", text)
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+\w*", w)}


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES_FILE.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_metric_names_in_parses_promql() -> None:
    expr = (
        'sum by (instance) (increase(streamlearn_alerts_total{severity="critical"}[5m])) > 0'
        ' and on() absent(up{job="x"} == 1) unless foo_bar offset 5m'
    )
    assert metric_names_in(expr) == {"streamlearn_alerts_total", "up", "foo_bar"}


def test_every_rule_reads_metrics_streamlearn_exports() -> None:
    exported = exported_metric_names(Metrics()) | STANDARD_METRICS
    assert "streamlearn_webhook_failed_total" in exported  # labelled, without children yet
    seen = set()
    for rule in rules():
        names = metric_names_in(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], sorted(names - exported))
        seen |= names
    for name in (
        "up",
        "streamlearn_dead_letters_total",
        "streamlearn_alerts_total",
        "streamlearn_drift_alerts_total",
        "streamlearn_model_degradations_total",
        "streamlearn_model_promotions_total",
        "streamlearn_checkpoint_rejected_total",
        "streamlearn_webhook_failed_total",
    ):
        assert name in seen, f"no rule watches {name}"


def test_a_rule_on_a_metric_that_does_not_exist_would_fail() -> None:
    exported = exported_metric_names(Metrics())
    assert not metric_names_in("rate(streamlearn_alerts[5m]) > 0") <= exported  # no _total
    assert not metric_names_in("streamlearn_no_such_thing_total > 0") <= exported


def test_promtool_accepts_the_rules_and_the_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    for args in (["check", "rules", str(RULES_FILE)], ["check", "config", "prometheus.yml"]):
        done = subprocess.run(
            [promtool, *args], cwd=ROOT / "deploy", capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_has_a_severity_and_explains_itself() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)) >= 10
    for rule in rules():
        assert re.fullmatch(r"Streamlearn[A-Z]\w+", rule["alert"])
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip()
        assert "\n" not in annotations["summary"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        # Template braces balance (a stray {{ breaks the whole rule file).
        for text in annotations.values():
            assert text.count("{{") == text.count("}}"), rule["alert"]


# --- docs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", ["alerting.md", "anomaly.md"])
def test_the_documented_alert_records_are_valid_envelopes(doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    records = [orjson.loads(block) for block in blocks if '"dedup_key"' in block]
    assert len(records) >= (4 if doc == "alerting.md" else 1)
    for record in records:
        Alert.from_dict(record)
    if doc == "alerting.md":
        assert {r["type"] for r in records} == {"anomaly", "drift", "degradation", "promotion"}
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        assert yaml.safe_load(block)
