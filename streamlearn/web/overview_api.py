"""``GET /api/v1/overview`` (throughput, lag, dead letters, uptime) and ``/api/v1/alerts``.

The overview merges every worker's answer (``?scope=local`` for this worker only); the
alert feed is the same on every worker (each tails the alert topics in full).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import faust
from faust.web import Request, Response, View

from streamlearn.agents.observe import AlertFeed, Observer, counter_total
from streamlearn.alerts.envelope import SEVERITIES, TYPES
from streamlearn.web.api import _error, _ok
from streamlearn.web.params import BadRequest, one_of, parse_time_ms

if TYPE_CHECKING:
    from streamlearn.worker import Worker

MAX_ALERTS = 1_000
#: What the feed holds: the alert types, and ``model`` lifecycle records of the
#: model-events topic (challenger started or retired, a version adopted).
FEED_TYPES = (*TYPES, "model")


def _labelled(counter: Any, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                value = sample.labels[label]
                out[value] = out.get(value, 0.0) + sample.value
    return out


def local_overview(worker: Worker, observer: Observer) -> dict[str, Any]:
    """This worker's part of the overview."""
    metrics = worker.metrics
    app = worker.app
    now = time.time()
    out_by_topic = _labelled(metrics.events_out, "topic")
    totals = {
        "events_in": counter_total(metrics.events_in),
        "events_out": counter_total(metrics.events_out),
        "dead_letters": counter_total(metrics.dead_letters),
        "late_events": counter_total(metrics.late_events),
        "alerts": counter_total(metrics.alerts),
        "predictions": out_by_topic.get(worker.topics.predictions.get_topic_name(), 0.0),
        "drift_alerts": counter_total(metrics.drift_alerts),
    }
    try:
        partitions = sorted(f"{tp.topic}:{tp.partition}" for tp in app.assignor.assigned_actives())
    except Exception:  # before the first assignment
        partitions = []
    uptime = round(now - metrics.started_at, 1)
    return {
        "now_ms": int(now * 1000),
        "uptime_s": uptime,
        "workers": [
            {
                "url": str(app.conf.canonical_url).rstrip("/"),
                "uptime_s": uptime,
                "partitions": partitions,
            }
        ],
        "totals": {k: int(v) for k, v in totals.items()},
        "dead_letters_by_reason": {
            k: int(v) for k, v in sorted(_labelled(metrics.dead_letters, "reason").items())
        },
        "events_out_by_topic": {k: int(v) for k, v in sorted(out_by_topic.items())},
        "lag": {
            "total": sum(observer.lag.values()),
            "partitions": [
                {"topic": topic, "partition": partition, "lag": lag}
                for (topic, partition), lag in sorted(observer.lag.items())
            ],
        },
        "state_bytes": dict(sorted(observer.sizes.items())),
        "history": observer.history.series(),
        "sample_s": worker.settings.overview_sample_s,
    }


def merge_overviews(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One overview for the app: sums, concatenations, and history summed per sample slot.

    Workers sample at their own moments: samples are put in slots of ``sample_s``.
    """
    first = docs[0]
    merged = {
        "now_ms": first["now_ms"],
        "uptime_s": first["uptime_s"],
        "workers": [w for doc in docs for w in doc["workers"]],
        "totals": _sum_maps(doc["totals"] for doc in docs),
        "dead_letters_by_reason": _sum_maps(doc["dead_letters_by_reason"] for doc in docs),
        "events_out_by_topic": _sum_maps(doc.get("events_out_by_topic", {}) for doc in docs),
        "lag": {
            "total": sum(doc["lag"]["total"] for doc in docs),
            "partitions": sorted(
                (p for doc in docs for p in doc["lag"]["partitions"]),
                key=lambda p: (p["topic"], p["partition"]),
            ),
        },
        "state_bytes": _sum_maps(doc.get("state_bytes", {}) for doc in docs),
        "sample_s": first["sample_s"],
    }
    slot_ms = max(1, int(first["sample_s"] * 1000))
    slots: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for doc in docs:
        history = doc["history"]
        for i, ts in enumerate(history["ts_ms"]):
            slot = slots[ts // slot_ms * slot_ms]
            for name, values in history.items():
                if name != "ts_ms":
                    slot[name] += values[i]
    names = [n for n in first["history"] if n != "ts_ms"]
    ordered = sorted(slots)
    merged["history"] = {
        "ts_ms": ordered,
        **{n: [round(slots[s][n], 3) for s in ordered] for n in names},
    }
    return merged


def _sum_maps(maps: Any) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for found in maps:
        for k, v in found.items():
            out[k] += v
    return dict(sorted(out.items()))


def _csv(query: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> list[str]:
    raw = query.get(name, "").strip()
    if not raw:
        return []
    return [one_of(name, part.strip(), allowed) for part in raw.split(",") if part.strip()]


def alerts_query(feed: AlertFeed, query: Mapping[str, str]) -> dict[str, Any]:
    """Answer ``GET /api/v1/alerts``; BadRequest names a wrong parameter."""
    known = {"type", "severity", "min_severity", "key", "since", "until", "q", "limit"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise BadRequest(f"unknown query parameter {unknown[0]!r}; use {', '.join(sorted(known))}")
    limit_text = query.get("limit", "200")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_ALERTS:
        raise BadRequest(f"limit={limit_text!r} must be a whole number from 1 to {MAX_ALERTS}")
    min_severity = query.get("min_severity") or None
    if min_severity is not None:
        one_of("min_severity", min_severity, SEVERITIES)
    since = parse_time_ms("since", query["since"]) if query.get("since") else None
    until = parse_time_ms("until", query["until"]) if query.get("until") else None
    if since is not None and until is not None and since >= until:
        raise BadRequest(f"since ({since}) must be before until ({until})")
    limit = int(limit_text)
    found, matched = feed.buffer.query(
        types=_csv(query, "type", FEED_TYPES),
        severities=_csv(query, "severity", SEVERITIES),
        min_severity=min_severity,
        key=query.get("key") or None,
        since_ms=since,
        until_ms=until,
        text=query.get("q") or None,
        limit=limit,
    )
    return {
        "alerts": found,
        "count": matched,
        "truncated": matched > len(found),
        "ready": feed.ready.is_set(),
        "kept": len(feed.buffer),
    }


def register_overview_api(
    app: faust.App, worker: Worker, observer: Observer, feed: AlertFeed
) -> None:
    async def others(request: Request) -> list[dict[str, Any]]:
        own = str(app.conf.canonical_url).rstrip("/")
        urls = {str(url).rstrip("/") for url in app.router.tables_metadata()} - {own}
        query = urlencode({"scope": "local"})

        async def fetch(url: str) -> dict[str, Any]:
            async with app.http_client.get(f"{url}/api/v1/overview?{query}", timeout=5) as r:
                r.raise_for_status()
                return dict(await r.json())

        found = await asyncio.gather(*(fetch(u) for u in sorted(urls)), return_exceptions=True)
        return [doc for doc in found if isinstance(doc, dict)]  # gone workers: skipped

    @app.page("/api/v1/overview")
    class OverviewView(View):
        async def get(self, request: Request) -> Response:
            scope = request.query.get("scope", "app")
            if scope not in ("app", "local"):
                return _error(self, 400, f"scope={scope!r} is not one of app, local")
            own = local_overview(worker, observer)
            if scope == "local":
                return _ok(self, own)
            return _ok(self, merge_overviews([own, *await others(request)]))

    @app.page("/api/v1/alerts")
    class AlertsView(View):
        async def get(self, request: Request) -> Response:
            try:
                return _ok(self, alerts_query(feed, request.query))
            except BadRequest as exc:
                return _error(self, exc.status, exc.message)
