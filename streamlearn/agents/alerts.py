"""Alert delivery: every alert on the anomalies, drift and model-events topics, POSTed.

Anomalies are on the anomalies topic, drift and degradation records on the drift
topic, promotions on the model-events topic (next to lifecycle events that are not
alerts, which are skipped). Registered only when ``alert_webhook_url`` is set. One
agent per topic, each with
``concurrency=1``, sharing one :class:`~streamlearn.alerts.webhook.WebhookSink`. A
record's offset is committed after its delivery finished (accepted, refused or given
up), so a crash mid-delivery re-delivers it after the restart: at-least-once, with the
dedup key for receivers to drop repeats. The webhook's trouble stays here: the sink
never raises, and these topics are read by no other agent, so a slow or dead webhook
holds back only these two agents.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson

from streamlearn.alerts.envelope import TYPES, Alert, AlertError
from streamlearn.alerts.webhook import WebhookSink
from streamlearn.config import Settings
from streamlearn.topics import Topics
from streamlearn.web.metrics import Metrics

logger = logging.getLogger(__name__)


def _claims_alert_type(raw: bytes | None) -> bool:
    """Whether a record says it is an alert (``type`` one of the alert types)."""
    try:
        doc = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        return True  # let validation say what is wrong with it
    return not isinstance(doc, dict) or doc.get("type") in TYPES


def register_alerts(
    app: faust.App, settings: Settings, topics: Topics, metrics: Metrics
) -> WebhookSink | None:
    """The webhook agents, when ``settings.alert_webhook_url`` is set (else None).

    Raises :class:`~streamlearn.errors.ConfigError` for a URL that is not http(s).
    """
    if not settings.alert_webhook_url:
        return None
    sink = WebhookSink.from_settings(settings, metrics)
    invalid = metrics.webhook_failed.labels(reason="invalid")

    async def deliver(stream: faust.StreamT) -> None:
        # Logged here, not at registration: the worker's logging is set up by then.
        topics_read = ", ".join(sorted(stream.channel.topics))
        logger.info("alerts on %s are POSTed to %s", topics_read, sink.masked_url)
        async for event in stream.events():
            message = event.message
            if message.topic in mixed_topics and not _claims_alert_type(message.value):
                continue  # a lifecycle event that is not an alert (a challenger started)
            try:
                alert = Alert.from_json(message.value)
            except (AlertError, TypeError, ValueError) as exc:
                # Not ours to fix, and not a reason to stop: skip it, say where it is.
                logger.warning(
                    "not an alert envelope, not posted (topic %s, partition %s, offset %s): %s",
                    message.topic,
                    message.partition,
                    message.offset,
                    exc,
                )
                invalid.inc()
                continue
            await sink.post(message.value, alert.dedup_key, alert.type)

    # Promotions share the model-events topic with lifecycle events that are not alerts.
    mixed_topics = set(topics.model_events.topics)
    sources = (
        (topics.anomalies, "anomalies"),
        (topics.drift, "drift"),
        (topics.model_events, "model_events"),
    )
    for topic, suffix in sources:
        # concurrency=1: see streamlearn.agents.ingest (faust-streaming #606).
        app.agent(topic, name=f"streamlearn.alerts.{suffix}", concurrency=1)(deliver)

    async def close_sink(sender: Any, **kwargs: Any) -> None:
        await sink.close()

    app.on_before_shutdown.connect(close_sink)
    return sink
