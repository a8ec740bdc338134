"""The one validated, frozen settings object.

Values come from, highest priority first: keyword arguments, ``STREAMLEARN_*``
environment variables, a TOML file (``STREAMLEARN_CONFIG`` or ``--config``), defaults.
"""

from __future__ import annotations

import json
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from streamlearn.errors import ConfigError, StreamlearnError

ENV_PREFIX = "STREAMLEARN_"
CONFIG_ENV = "STREAMLEARN_CONFIG"
# The --config file for the Settings being built (a contextvar, not os.environ, so a
# CLI option never leaks into later settings objects).
_config_file: ContextVar[str | None] = ContextVar("streamlearn_config_file", default=None)
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def _xdg(var: str, fallback: str) -> Path:
    base = os.environ.get(var)
    return Path(base) if base else Path.home() / fallback


def default_data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "streamlearn"


def default_cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / "streamlearn"


class Settings(BaseSettings):
    """Everything a streamlearn worker, the CLI and the local broker can be told."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    # --- application -------------------------------------------------------------
    app_id: str = Field("streamlearn", description="Faust app id = Kafka consumer group.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # --- broker connection --------------------------------------------------------
    broker_url: str | None = Field(
        None,
        description="Kafka bootstrap servers, e.g. kafka://host1:9092;host2:9092. "
        "Unset: the local broker that `streamlearn kafka start` runs.",
    )
    broker_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    broker_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    broker_sasl_username: str | None = None
    broker_sasl_password: SecretStr | None = None
    broker_ssl_cafile: Path | None = None
    broker_ssl_certfile: Path | None = None
    broker_ssl_keyfile: Path | None = None

    # --- topics -------------------------------------------------------------------
    topic_prefix: str = Field("", description="Prepended to every topic name.")
    topic_events: str = "events"
    topic_keyed: str = Field("events-keyed", description="Internal: events re-keyed by key.")
    topic_aggregates: str = "aggregates"
    topic_anomalies: str = "anomalies"
    topic_predictions: str = "predictions"
    topic_drift: str = "drift"
    topic_deadletter: str = "deadletter"
    topic_labels: str = "labels"
    topic_scores: str = Field(
        "scores", description="Every event's anomaly score (only with anomaly_emit_scores)."
    )
    topic_model_events: str = Field(
        "model-events", description="Model lifecycle events: challengers, promotions."
    )
    topic_registry: str = Field(
        "model-registry", description="Compacted: the model registry's metadata."
    )
    topic_partitions: int = Field(4, ge=1, le=10_000)
    topic_replication_factor: int = Field(1, ge=1, le=32)

    # --- processing ---------------------------------------------------------------
    max_event_bytes: int = Field(1_048_576, ge=64, le=64 * 1_048_576)
    batch_max_events: int = Field(1_000, ge=1, le=100_000)
    batch_within_s: float = Field(0.2, gt=0, le=60)
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="The worker's event loop: uvloop (libuv; about 10 % more events/s) or "
        "the standard library's asyncio.",
    )
    stats_emit_every_events: int = Field(
        1_000, ge=0, description="Emit a key's running statistics every N events (0: off)."
    )
    stats_emit_interval_s: float = Field(
        10.0, ge=0, description="...and at least every T seconds while it changes (0: off)."
    )
    stats_ewma_half_life_ms: int = Field(
        60_000, gt=0, description="Half-life (event time) of the per-value EWMA."
    )
    stats_correlation_max_values: int = Field(
        8, ge=0, le=64, description="Correlate value pairs of keys with at most this many values."
    )
    commit_interval_s: float = Field(1.0, gt=0, le=600)
    consumer_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Longest a fetch waits for data; bounds the delay of each topic hop.",
    )
    broker_session_timeout_s: float = Field(
        30.0,
        ge=6,
        le=3600,
        description="A worker that stops heartbeating (crash, kill -9) loses its partitions "
        "after this long.",
    )

    # --- event-time windows -------------------------------------------------------
    windows: Annotated[tuple[str, ...], NoDecode] = Field(
        ("tumbling:1m", "hopping:5m:1m"),
        description="Window specs: tumbling:SIZE or hopping:SIZE:STEP (units ms, s, m, h, d). "
        "Env: a JSON list or comma-separated.",
    )
    window_lateness_ms: int = Field(
        5_000, ge=0, description="Watermark = max event ts seen in a partition - this."
    )
    window_grace_ms: int = Field(
        5_000, ge=0, description="A window closes when the watermark passes its end + this."
    )
    window_idle_timeout_s: float = Field(
        30.0, gt=0, description="A partition without events this long closes its open windows."
    )
    window_source_idle_timeout_s: float = Field(
        300.0,
        gt=0,
        description="An events-topic partition silent this long stops holding the watermark "
        "back. Long on purpose: during catch-up after a restart one partition can be read "
        "later than another, and its events must not turn late.",
    )

    # --- anomaly detection --------------------------------------------------------
    anomaly_enabled: bool = Field(True, description="Score every event for anomalies.")
    anomaly_detector: str = Field(
        "default",
        description="Detector name (default, zscore, hst, lof, iforest, sklearn-lof, "
        "autoencoder) or several joined by '+' for an ensemble.",
    )
    anomaly_params: dict[str, Any] = Field(
        default_factory=dict,
        description='Detector parameters as JSON, e.g. {"window": 512}; per member for '
        'an ensemble: {"hst": {"n_trees": 10}, "weights": {...}}.',
    )
    anomaly_threshold: float = Field(
        0.9999,
        gt=0,
        le=1,
        description="Calibrated score at which an event is anomalous (0.9999: a score this "
        "key reaches about once in 10,000 events).",
    )
    anomaly_exit_threshold: float = Field(
        0.99, ge=0, le=1, description="An open episode continues while scores stay above this."
    )
    anomaly_warmup_events: int = Field(
        500, ge=0, description="Events of a key before any of its events can be anomalous."
    )
    anomaly_cooldown_events: int = Field(
        10, ge=0, description="Events below the exit threshold that close an episode."
    )
    anomaly_learn_anomalies: bool = Field(
        False, description="Learn anomalous events too (default: the detector is protected)."
    )
    anomaly_relearn_after: int = Field(
        200, ge=0, description="Events into an episode after which its events are learned."
    )
    anomaly_explain_k: float = Field(
        3.0, gt=0, description="Alerts list values beyond mean +- k std as anomalous."
    )
    anomaly_emit_scores: bool = Field(
        False, description="Publish every event's score to the scores topic (one record each)."
    )

    # --- online models --------------------------------------------------------------
    model_enabled: bool = Field(True, description="Predict on every event, learn from labels.")
    model_task: Literal["classification", "regression"] = "classification"
    model_learner: str = Field(
        "logreg-rbf",
        description="River learner: logreg-rbf, logreg, tree, arf, naive-bayes "
        "(classification); linear, tree, arf (regression).",
    )
    model_params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the learner's main estimator (JSON)."
    )
    model_classes: list[bool | int | str] = Field(
        default_factory=lambda: [False, True],
        description="Classes a classifier learns, as a JSON list; the second of two is the "
        "positive class. Labels outside it are dead-lettered (invalid_label).",
    )
    model_scope: Literal["global", "key"] = Field(
        "global",
        description="global: one model per keyed partition, learning from all its keys; "
        "key: one model per key.",
    )
    model_features: dict[str, Any] = Field(
        default_factory=dict, description="Feature pipeline configuration (JSON); see docs."
    )
    model_label_ttl_ms: int = Field(
        600_000, gt=0, description="A prediction waits this long (event time) for its label."
    )
    model_delayed_labels: bool = Field(
        True,
        description="Keep each unlabelled event's prediction for a delayed label (labels "
        "topic); off when labels only come inline.",
    )
    model_pending_max: int = Field(
        2_000,
        ge=1,
        description="Predictions waiting for a label, per model, at most (they are "
        "checkpointed with the model, which must stay under 900 kB).",
    )
    model_rolling_window: int = Field(
        1_000, ge=1, description="Labels in the 'last N' prequential metrics."
    )
    model_select_k: int = Field(
        0,
        ge=0,
        description="Online feature selection: learn from the k features most correlated "
        "with the label (|Pearson r|); 0: every feature.",
    )
    model_serve_path: Path | None = Field(
        None,
        description="A model saved by `streamlearn train --save`, served by POST "
        "/api/v1/predict?model=offline on the event's raw values (signed with this "
        "app's secret key).",
    )
    model_predict_cache_s: float = Field(
        1.0, ge=0, description="POST /api/v1/predict answers are cached this long (0: off)."
    )

    model_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="The stream model's name in records, the report endpoint and the "
        "registry (default: the learner's name, e.g. logreg-rbf).",
    )
    model_monitor_metric: str | None = Field(
        None,
        description="Rolling metric watched for degradation and compared between champion "
        "and challengers (default: accuracy for classification, mae for regression).",
    )
    model_degradation_margin: float = Field(
        0.05,
        gt=0,
        description="Alert when the rolling metric is worse than at promotion by more "
        "than this (absolute).",
    )
    model_degradation_events: int = Field(
        500, ge=1, description="...for this many consecutive labels."
    )
    model_challengers: bool = Field(
        True,
        description="Start a challenger when concept drift fires on the champion's errors "
        "and promote it when it is better.",
    )
    model_challenger_window: int = Field(
        500, ge=30, description="Labels in the champion/challenger comparison window."
    )
    model_promote_margin: float = Field(
        0.02,
        ge=0,
        description="A challenger must beat the champion's rolling metric by this much.",
    )
    model_promote_alpha: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="Significance of the promotion guard (McNemar for classification, "
        "Wilcoxon signed-rank on absolute errors for regression).",
    )
    model_challenger_max_labels: int = Field(
        20_000, ge=100, description="A challenger not promoted after this many labels retires."
    )

    # --- drift ----------------------------------------------------------------------
    drift_enabled: bool = Field(True, description="Detect data and concept drift.")
    drift_detector: str = Field(
        "adwin",
        description="Online data drift detector per key x value: adwin, kswin, page-hinkley.",
    )
    drift_params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of drift_detector (JSON)."
    )
    drift_concept_detector: str = Field(
        "adwin",
        description="Detector on each model's error stream: adwin, page-hinkley, kswin; for "
        "classification also ddm, eddm, hddm-a, hddm-w.",
    )
    drift_concept_params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of drift_concept_detector (JSON)."
    )
    drift_reference_events: int = Field(
        1_000,
        ge=30,
        description="Reference window: the first N events of a key (or after a model "
        "version starts).",
    )
    drift_reference_from_ms: int | None = Field(
        None, description="Pin the reference to events with ts in [from, to) instead."
    )
    drift_reference_to_ms: int | None = None
    drift_window_events: int = Field(
        1_000, ge=30, description="Current window compared against the reference."
    )
    drift_compare_every: int = Field(
        1_000, ge=1, description="Compare reference and current windows every N events."
    )
    drift_compare_alpha: float = Field(
        1e-6,
        gt=0,
        lt=1,
        description="Kolmogorov-Smirnov p-value below which a comparison is drift.",
    )
    drift_psi_threshold: float = Field(
        0.25, gt=0, description="Population stability index above which a comparison is drift."
    )
    drift_cooldown_events: int = Field(
        1_000, ge=0, description="Events after a drift record before the same subject re-alerts."
    )

    # --- registry and alerting ----------------------------------------------------------
    registry_dir: Path | None = Field(
        None,
        description="Artifact store of the model registry (default data_dir/registry); "
        "shared storage when workers run on several machines.",
    )
    alert_webhook_url: str | None = Field(
        None, description="POST every alert (JSON) to this URL, with retries."
    )
    alert_webhook_timeout_s: float = Field(5.0, gt=0, le=300)
    alert_webhook_retries: int = Field(5, ge=0, le=100)
    alert_webhook_backoff_s: float = Field(0.5, gt=0, le=60)

    secret_key: SecretStr | None = Field(
        None,
        description="Hex key that signs detector and model checkpoints (HMAC-SHA256). Every "
        "worker of an app needs the same key; unset, each worker keeps a random one in "
        "data_dir/secret.key.",
    )

    store: Literal["rocksdb", "memory"] = "rocksdb"
    data_dir: Path = Field(default_factory=default_data_dir)

    # --- web ----------------------------------------------------------------------
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    web_advertised_host: str | None = Field(
        None,
        description="Host name other workers use to reach this one (default: web_host, "
        "or the machine's host name when web_host is a wildcard address).",
    )
    recent_events_per_key: int = Field(
        500,
        ge=0,
        le=100_000,
        description="Raw events kept in memory per key for the dashboard (0: none).",
    )
    recent_events_keys: int = Field(
        500, ge=1, le=1_000_000, description="Keys whose recent raw events are kept (LRU)."
    )
    alert_feed_max: int = Field(
        5_000, ge=10, le=1_000_000, description="Recent alerts each worker keeps for the dashboard."
    )
    alert_feed_lookback_s: float = Field(
        86_400.0,
        ge=0,
        description="At start, the alert feed reads the alert topics from this long ago.",
    )
    overview_sample_s: float = Field(
        5.0, gt=0, le=300, description="Sampling interval of the overview's charts and lag."
    )
    overview_history_s: float = Field(
        3_600.0, gt=0, le=86_400, description="How far back the overview's charts go."
    )
    api_max_range_ms: int = Field(
        31 * 86_400_000, gt=0, description="Longest from..to range a series query may ask for."
    )
    series_retention_ms: int = Field(
        7 * 86_400_000, gt=0, description="Closed windows are kept this long (event time)."
    )
    series_retention_check_s: float = Field(
        300.0, gt=0, description="How often expired closed windows are deleted."
    )
    api_token: SecretStr | None = Field(None, description="Bearer token for mutating endpoints.")

    # --- local broker (streamlearn kafka ...) ------------------------------------
    kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    kafka_home: Path | None = Field(None, description="Use this Kafka install's jars.")
    kafka_cache_dir: Path = Field(default_factory=lambda: default_cache_dir() / "kafka")
    kafka_heap_mb: int = Field(512, ge=128, le=16_384)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _config_file.get() or os.environ.get(CONFIG_ENV)
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)

    @field_validator(
        "topic_events",
        "topic_keyed",
        "topic_aggregates",
        "topic_anomalies",
        "topic_predictions",
        "topic_drift",
        "topic_deadletter",
        "topic_labels",
        "topic_scores",
        "topic_model_events",
        "topic_registry",
        "app_id",
    )
    @classmethod
    def _topic_name(cls, value: str) -> str:
        if not _TOPIC_NAME.match(value) or len(value) > 200:
            raise ValueError("must be 1-200 characters of letters, digits, '.', '_' or '-'")
        return value

    @field_validator("windows", mode="before")
    @classmethod
    def _split_windows(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return tuple(part.strip() for part in text.split(",") if part.strip())
        return value

    @field_validator("windows")
    @classmethod
    def _parse_windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from streamlearn.analytics.windows import WindowSpec

        names = set()
        for text in value:
            spec = WindowSpec.parse(text)  # ValueError names what is wrong
            if spec.name in names:
                raise ValueError(f"window {text!r} is listed twice")
            names.add(spec.name)
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not _TOPIC_NAME.match(value):
            raise ValueError("may only hold letters, digits, '.', '_' or '-'")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for part in value.replace(",", ";").split(";"):
            hostport = part.strip().removeprefix("kafka://")
            host, sep, port = hostport.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{part.strip()!r} is not host:port (e.g. kafka://127.0.0.1:9092)")
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        from streamlearn.alerts.webhook import validate_webhook_url

        try:
            return validate_webhook_url(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        text = value.get_secret_value()
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError("must be hex (e.g. the output of: openssl rand -hex 32)") from None
        if len(raw) < 16:
            raise ValueError("must be at least 16 bytes (32 hex digits)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.anomaly_enabled:
            from streamlearn.models.anomaly.defaults import build_detector

            try:
                build_detector(self.anomaly_detector, self.anomaly_params)
            except StreamlearnError as exc:
                raise ValueError(
                    f"anomaly_detector / anomaly_params ({ENV_PREFIX}ANOMALY_DETECTOR, "
                    f"{ENV_PREFIX}ANOMALY_PARAMS): {exc}"
                ) from None
            try:
                self.alert_policy()
            except StreamlearnError as exc:
                raise ValueError(f"anomaly_* settings: {exc}") from None
        if self.model_enabled:
            from streamlearn.models.features import FeaturePipeline
            from streamlearn.models.online import OnlineModel

            try:
                OnlineModel(self.online_model_config())
            except StreamlearnError as exc:
                raise ValueError(f"model_* settings: {exc}") from None
            try:
                FeaturePipeline(self.model_features)
            except StreamlearnError as exc:
                raise ValueError(f"model_features ({ENV_PREFIX}MODEL_FEATURES): {exc}") from None
        if self.drift_enabled:
            from streamlearn.drift import validate_drift_settings

            try:
                validate_drift_settings(self)
            except StreamlearnError as exc:
                raise ValueError(f"drift_* settings: {exc}") from None
        if self.model_enabled:
            from streamlearn.models.champion import Lifecycle

            try:
                Lifecycle(self.champion_config(), self.model_task, self.model_name)
            except StreamlearnError as exc:
                raise ValueError(f"model_* settings: {exc}") from None
        if self.kafka_port == self.kafka_controller_port:
            raise ValueError("kafka_port and kafka_controller_port must differ")
        if self.broker_security_protocol.startswith("SASL") and not (
            self.broker_sasl_username and self.broker_sasl_password
        ):
            raise ValueError(
                f"broker_security_protocol={self.broker_security_protocol} needs "
                "broker_sasl_username and broker_sasl_password"
            )
        return self

    # --- derived ------------------------------------------------------------------
    def alert_policy(self) -> Any:
        """The :class:`~streamlearn.models.anomaly.scorer.AlertPolicy` of these settings."""
        from streamlearn.models.anomaly.scorer import AlertPolicy

        return AlertPolicy(
            threshold=self.anomaly_threshold,
            exit_threshold=self.anomaly_exit_threshold,
            warmup=self.anomaly_warmup_events,
            cooldown=self.anomaly_cooldown_events,
            learn_anomalies=self.anomaly_learn_anomalies,
            relearn_after=self.anomaly_relearn_after,
            explain_k=self.anomaly_explain_k,
        )

    def online_model_config(self) -> Any:
        """The :class:`~streamlearn.models.online.ModelConfig` of these settings."""
        from streamlearn.models.online import ModelConfig

        return ModelConfig(
            task=self.model_task,
            learner=self.model_learner,
            params=dict(self.model_params),
            classes=tuple(self.model_classes),
            label_ttl_ms=self.model_label_ttl_ms,
            pending_max=self.model_pending_max,
            rolling_window=self.model_rolling_window,
            select_k=self.model_select_k,
            champion=self.champion_config(),
            drift=self.drift_config() if self.drift_enabled else None,
            model_name=self.model_name,
        )

    def champion_config(self) -> Any:
        """The :class:`~streamlearn.models.champion.ChampionConfig` of these settings."""
        from streamlearn.models.champion import ChampionConfig

        return ChampionConfig(
            challengers=self.model_challengers,
            window=self.model_challenger_window,
            margin=self.model_promote_margin,
            alpha=self.model_promote_alpha,
            max_labels=self.model_challenger_max_labels,
            monitor_metric=self.model_monitor_metric,
            degradation_margin=self.model_degradation_margin,
            degradation_events=self.model_degradation_events,
        )

    def drift_config(self) -> Any:
        """The :class:`~streamlearn.drift.DriftConfig` of these settings."""
        from streamlearn.drift import DriftConfig

        return DriftConfig.from_settings(self)

    def signing_key(self) -> bytes:
        """The checkpoint signing key: ``secret_key``, else data_dir/secret.key."""
        from streamlearn.models.envelope import load_or_create_key

        if self.secret_key is not None:
            return bytes.fromhex(self.secret_key.get_secret_value())
        return load_or_create_key(self.data_dir / "secret.key")

    def registry_path(self) -> Path:
        """The model registry's artifact store directory."""
        return self.registry_dir if self.registry_dir is not None else self.data_dir / "registry"

    def window_specs(self) -> list[Any]:
        """The parsed :class:`~streamlearn.analytics.windows.WindowSpec` list."""
        from streamlearn.analytics.windows import WindowSpec

        return [WindowSpec.parse(text) for text in self.windows]

    def topic(self, name: str) -> str:
        """Full topic name for a logical one (``events``, ``aggregates``...)."""
        return self.topic_prefix + getattr(self, f"topic_{name}")

    @property
    def bootstrap_servers(self) -> str:
        """Comma-separated host:port list for aiokafka clients."""
        url = self.broker_url or f"kafka://127.0.0.1:{self.kafka_port}"
        parts = url.replace(",", ";").split(";")
        return ",".join(p.strip().removeprefix("kafka://") for p in parts)

    @property
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{hp}" for hp in self.bootstrap_servers.split(","))

    @property
    def uses_local_broker(self) -> bool:
        return self.broker_url is None

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options in aiokafka's keyword form (for our own producers/consumers)."""
        options: dict[str, Any] = {"security_protocol": self.broker_security_protocol}
        if self.broker_security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(
                cafile=str(self.broker_ssl_cafile) if self.broker_ssl_cafile else None,
                certfile=str(self.broker_ssl_certfile) if self.broker_ssl_certfile else None,
                keyfile=str(self.broker_ssl_keyfile) if self.broker_ssl_keyfile else None,
            )
        if self.broker_security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.broker_sasl_mechanism
            options["sasl_plain_username"] = self.broker_sasl_username
            assert self.broker_sasl_password is not None
            options["sasl_plain_password"] = self.broker_sasl_password.get_secret_value()
        return options

    def masked(self) -> dict[str, Any]:
        """All values as JSON-friendly data with secrets masked (for logs and `config`)."""
        values = self.model_dump(mode="json")
        if self.alert_webhook_url:
            from streamlearn.alerts.webhook import mask_url

            values["alert_webhook_url"] = mask_url(self.alert_webhook_url)
        return values


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings; a bad value raises ConfigError naming each setting and the rule."""
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
    else:
        path_env = os.environ.get(CONFIG_ENV)
        if path_env and not Path(path_env).is_file():
            raise ConfigError(f"{CONFIG_ENV}={path_env}: file does not exist")
    token = _config_file.set(str(config_file) if config_file is not None else None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except (ValueError, OSError) as exc:  # e.g. a TOML syntax error
        raise ConfigError(f"cannot read settings: {exc}") from None
    finally:
        _config_file.reset(token)


def format_validation_error(exc: ValidationError) -> str:
    lines = ["invalid settings:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        env = f"{ENV_PREFIX}{loc.upper()}" if err["loc"] else ""
        name = f"{loc} ({env})" if env else loc
        given = err.get("input")
        secret = any(word in loc for word in ("password", "secret", "token", "url"))
        shown = "" if isinstance(given, dict) or given is None or secret else f"; got {given!r}"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "is not a setting (see `streamlearn config --help`)"
        lines.append(f"  {name}: {message}{shown}")
    return "\n".join(lines)
