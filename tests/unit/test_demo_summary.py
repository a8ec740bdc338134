"""The demo's live summary (pure: fed records as the output topics deliver them)."""

from __future__ import annotations

import orjson

from streamlearn.demo import Summary


def test_summary_counts_and_shows_drift_and_model_records() -> None:
    summary = Summary()
    drift = {
        "type": "drift",
        "severity": "warning",
        "ts": 86_400_000,
        "message": "Value 'return' of key 'AAPL' drifted (KS p=1e-9, PSI 0.4).",
    }
    challenger = {"type": "model", "severity": "info", "ts": 0, "message": "challenger started"}
    promotion = {**drift, "type": "promotion", "message": "challenger promoted to champion v2"}
    summary.on_output("drift", orjson.dumps(drift))
    summary.on_output("model_events", orjson.dumps(challenger))  # not shown: no alert type
    summary.on_output("model_events", orjson.dumps(promotion))
    summary.on_output("deadletter", None)
    text = summary.render("http://127.0.0.1:6066/")
    assert "drift/model records 2" in text and "dead letters 1" in text
    assert "1970-01-02 drift (warning): Value 'return' of key 'AAPL' drifted" in text
    assert "promotion (warning): challenger promoted to champion v2" in text
    assert "challenger started" not in text
