"""The Faust application, built from Settings; nothing else lives here."""

from __future__ import annotations

import socket

import faust

from streamlearn.config import Settings
from streamlearn.transport import transport_for


def broker_credentials(settings: Settings) -> faust.auth.Credentials | None:
    """Faust credentials for the configured security protocol (None for PLAINTEXT)."""
    protocol = settings.broker_security_protocol
    if protocol == "PLAINTEXT":
        return None
    options = settings.kafka_client_options()
    ssl_context = options.get("ssl_context")
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context)
    return faust.SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=ssl_context,
        mechanism=options["sasl_mechanism"],
    )


def advertised_host(settings: Settings) -> str:
    """How other workers reach this one (Faust routes table queries by this URL)."""
    if settings.web_advertised_host:
        return settings.web_advertised_host
    if settings.web_host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return settings.web_host


def create_app(settings: Settings) -> faust.App:
    """A configured, not yet started, faust.App for ``settings``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=settings.faust_broker,
        broker_credentials=broker_credentials(settings),
        store="rocksdb://" if settings.store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        # At-least-once delivery; exactness of state comes from offset marks (see
        # docs/architecture.md), not from Kafka transactions.
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_s / 3),
        stream_buffer_maxsize=max(4 * settings.batch_max_events, 4096),
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        web_enabled=settings.web_enabled,
        web_bind=settings.web_host,
        web_host=advertised_host(settings),
        web_port=settings.web_port,
        web_in_thread=False,
        # Faust's /table/ pages would serve every table value: off. Its stats page
        # (sensor counters at /, partition assignment at /assignment/) stays on.
        web_tables_enabled=False,
        web_stats_enabled=True,
        debug=False,
        autodiscover=False,
        loghandlers=None,
    )
    # Before anything declares a topic (that creates the default transport).
    app.transport = transport_for(app, settings.consumer_fetch_max_wait_ms)
    return app
