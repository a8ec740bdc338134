"""Prometheus metrics, declared in one place (names carry units; prefix ``streamlearn_``)."""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

#: Seconds from an event's time to its outputs being in Kafka: live streams sit in the
#: first buckets, a replay of old events in the last ones.
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3_600, 86_400)


class Metrics:
    """One registry per worker, so several workers can live in one test process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # process_* (CPU, resident memory, open files, start time) of this worker.
        ProcessCollector(registry=self.registry)
        self.started_at = time.time()
        self.start_time = Gauge(
            "streamlearn_start_time_seconds",
            "Unix time this worker started (uptime: time() - this).",
            registry=self.registry,
        )
        self.start_time.set(self.started_at)
        self.events_in = Counter(
            "streamlearn_events_in",
            "Records consumed, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.events_out = Counter(
            "streamlearn_events_out",
            "Records produced, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "streamlearn_dead_letters",
            "Input records sent to the dead-letter topic, by reason (error code).",
            ["reason"],
            registry=self.registry,
        )
        self.replayed_skipped = Counter(
            "streamlearn_replayed_skipped",
            "Records skipped because their offset was already applied (replays after a crash).",
            ["agent"],
            registry=self.registry,
        )

        self.late_events = Counter(
            "streamlearn_late_events",
            "Events whose windows had closed when they arrived (also dead letters, reason late).",
            registry=self.registry,
        )
        self.processing_seconds = Histogram(
            "streamlearn_processing_seconds",
            "Time an agent spends on its unit of work: one record (ingest, labels) or one "
            "batch (analytics: processing, sends, and state writes after Kafka acked them).",
            ["agent"],
            buckets=(1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
            registry=self.registry,
        )
        self.end_to_end_seconds = Histogram(
            "streamlearn_end_to_end_latency_seconds",
            "Event time to the moment the outputs of the event (predictions, scores, alerts) "
            "are acknowledged by Kafka, per keyed event.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.watermark_lag = Gauge(
            "streamlearn_watermark_lag_seconds",
            "Wall-clock time minus the event-time watermark, per keyed-topic partition this "
            "worker owns (windows close this far behind real time).",
            ["partition"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "streamlearn_consumer_lag_records",
            "Records in each partition this worker consumes that the group has not "
            "committed yet (log end offset - committed offset).",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.state_bytes = Gauge(
            "streamlearn_state_bytes",
            "Size on disk of each table's local RocksDB store on this worker.",
            ["table"],
            registry=self.registry,
        )
        self.registry_production = Gauge(
            "streamlearn_registry_production_version",
            "The version at stage production in the model registry, per model name "
            "(absent while a name has none).",
            ["model"],
            registry=self.registry,
        )

        self.state_scan_seconds = Histogram(
            "streamlearn_state_scan_seconds",
            "Time to index a component's state after partitions were assigned.",
            buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 30),
            registry=self.registry,
        )

        self.windows_open = Gauge(
            "streamlearn_windows_open",
            "Open event-time windows held in state on this worker (per key x value x spec).",
            registry=self.registry,
        )

        self.anomalies = Counter(
            "streamlearn_anomalies",
            "Events scored anomalous (score >= threshold after warm-up).",
            registry=self.registry,
        )
        self.alerts = Counter(
            "streamlearn_alerts",
            "Anomaly alerts published (one per episode), by severity.",
            ["severity"],
            registry=self.registry,
        )
        self.anomaly_score_seconds = Histogram(
            "streamlearn_anomaly_score_seconds",
            "Time to score and learn one event (sampled 1 in 64).",
            buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 0.1),
            registry=self.registry,
        )
        self.checkpoint_rejected = Counter(
            "streamlearn_checkpoint_rejected",
            "Detector checkpoints that failed signature checks or could not be loaded "
            "(the key starts over).",
            registry=self.registry,
        )

        self.predict_seconds = Histogram(
            "streamlearn_predict_seconds",
            "Time to answer POST /api/v1/predict and /predict/batch on this worker.",
            buckets=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0),
            registry=self.registry,
        )
        self.model_learned = Counter(
            "streamlearn_model_learned",
            "Labelled events learned by the online model.",
            registry=self.registry,
        )
        self.model_metric = Gauge(
            "streamlearn_model_metric",
            "Prequential metric of the online model per partition (global scope), "
            "overall and over the last model_rolling_window labels (metric *_last).",
            ["model", "metric", "partition"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "streamlearn_model_champion_version",
            "Version of the champion serving each partition's model (global scope): 1, then "
            "+1 per promotion or registry version adopted.",
            ["model", "partition"],
            registry=self.registry,
        )
        self.model_challengers = Gauge(
            "streamlearn_model_challengers",
            "Challengers running in shadow per partition's model (global scope).",
            ["model", "partition"],
            registry=self.registry,
        )

        # --- drift, degradation, promotion records (deploy/prometheus/alerts.yml) ---
        self.drift_alerts = Counter(
            "streamlearn_drift_alerts",
            "Drift records published to the drift topic, by kind (data, concept).",
            ["kind"],
            registry=self.registry,
        )
        self.model_degradations = Counter(
            "streamlearn_model_degradations",
            "Degradation records published: the champion's rolling metric fell below its "
            "level at promotion by more than model_degradation_margin.",
            registry=self.registry,
        )
        self.model_promotions = Counter(
            "streamlearn_model_promotions",
            "Promotion records published: a challenger replaced the champion.",
            registry=self.registry,
        )
        self.registry_recorded = Counter(
            "streamlearn_registry_promotions_recorded",
            "Champion/challenger promotions registered and made production in the registry.",
            registry=self.registry,
        )

        # --- alert webhook (streamlearn.alerts.webhook) ---
        self.webhook_sent = Counter(
            "streamlearn_webhook_sent",
            "Alerts the webhook accepted (2xx), by alert type.",
            ["type"],
            registry=self.registry,
        )
        self.webhook_failed = Counter(
            "streamlearn_webhook_failed",
            "Alerts not delivered, by reason: rejected (a 4xx other than 429), gave_up "
            "(retries exhausted), invalid (the record is not an alert envelope).",
            ["reason"],
            registry=self.registry,
        )
        self.webhook_retries = Counter(
            "streamlearn_webhook_retries",
            "Webhook attempts retried after a connection error, timeout, 5xx or 429.",
            registry=self.registry,
        )
        self.webhook_delivery_seconds = Histogram(
            "streamlearn_webhook_delivery_seconds",
            "Time from an alert's first webhook attempt to its accepted response "
            "(retries and backoff included).",
            buckets=(0.005, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 120),
            registry=self.registry,
        )

        # --- model registry (streamlearn.web.registry_api) ---
        self.registry_changes = Counter(
            "streamlearn_registry_changes",
            "Registry changes made through this worker's HTTP API, by action (register, "
            "promote, archive, rollback).",
            ["action"],
            registry=self.registry,
        )
        self.registry_refused = Counter(
            "streamlearn_registry_refused",
            "Artifacts refused by this worker's registry API: unsigned, tampered with, "
            "another River/scikit-learn major, or naming a forbidden class.",
            registry=self.registry,
        )

        self._zero_known_labels()

    def _zero_known_labels(self) -> None:
        """Create every known label value at 0.

        A labelled series appears only when first incremented, and Prometheus' ``rate``
        and ``increase`` cannot see that first step (a worker's first critical alert
        would never fire ``StreamlearnCriticalAnomaly``). Known values start at 0.
        """
        from streamlearn.alerts.envelope import SEVERITIES, TYPES
        from streamlearn.records import ErrorCode

        for code in ErrorCode:
            self.dead_letters.labels(reason=code.value)
        for severity in SEVERITIES:
            self.alerts.labels(severity=severity)
        for kind in ("data", "concept"):
            self.drift_alerts.labels(kind=kind)
        for alert_type in TYPES:
            self.webhook_sent.labels(type=alert_type)
        for reason in ("rejected", "gave_up", "invalid"):
            self.webhook_failed.labels(reason=reason)
        for action in ("register", "promote", "archive", "rollback"):
            self.registry_changes.labels(action=action)
        for agent in ("ingest", "labels", "analytics"):
            self.processing_seconds.labels(agent=agent)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
