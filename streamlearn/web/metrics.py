"""Prometheus metrics, declared in one place (names carry units; prefix ``streamlearn_``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """One registry per worker, so several workers can live in one test process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
