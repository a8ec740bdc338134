"""Assemble a worker: the app, its topics, tables, agents and web views."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streamlearn.agents import StatsComponent, register_ingest, register_pipeline
from streamlearn.agents.alerts import register_alerts
from streamlearn.agents.anomaly import AnomalyComponent
from streamlearn.agents.drift import DriftComponent
from streamlearn.agents.models import ModelComponent
from streamlearn.agents.observe import AlertFeed, Observer, register_observer
from streamlearn.agents.recent import RecentEvents
from streamlearn.agents.windows import WindowsComponent
from streamlearn.app import create_app
from streamlearn.config import Settings
from streamlearn.outbox import Outbox
from streamlearn.registry import RegistryClient
from streamlearn.topics import Topics, declare_topics
from streamlearn.web.metrics import Metrics


@dataclass
class Worker:
    settings: Settings
    app: faust.App
    topics: Topics
    metrics: Metrics
    stats: StatsComponent
    windows: WindowsComponent
    anomaly: AnomalyComponent | None = None
    models: ModelComponent | None = None
    drift: DriftComponent | None = None
    registry: RegistryClient | None = None  # the model registry (metadata topic view)
    observer: Observer | None = None  # lag, throughput history, table sizes
    alert_feed: AlertFeed | None = None  # the recent alerts of the whole app
    recent: RecentEvents | None = None  # the last raw events of each key (dashboard)


def build_worker(settings: Settings) -> Worker:
    """A fully wired, not yet started, worker for ``settings``."""
    from streamlearn.web.analysis_api import register_analysis_api
    from streamlearn.web.anomaly_api import register_anomaly_api
    from streamlearn.web.api import register_api
    from streamlearn.web.dashboard import register_dashboard
    from streamlearn.web.models_api import register_models_api
    from streamlearn.web.overview_api import register_overview_api
    from streamlearn.web.registry_api import register_registry_api
    from streamlearn.web.views import register_views

    app = create_app(settings)
    topics = declare_topics(app, settings)
    metrics = Metrics()
    registry = RegistryClient(settings)
    app.task(registry.run)  # the registry view tails its topic while the app runs
    register_ingest(app, settings, topics, metrics)
    # The analytics components send through one outbox, flushed per batch (outbox.py).
    outbox = Outbox(app)
    sends = outbox.topics(topics)
    stats = StatsComponent(app, settings, sends, metrics)
    windows = WindowsComponent(app, settings, sends, metrics)
    anomaly = AnomalyComponent(app, settings, sends, metrics) if settings.anomaly_enabled else None
    models = ModelComponent(app, settings, sends, metrics) if settings.model_enabled else None
    if models is not None:
        models.registry = registry  # promotions recorded, candidates and production loaded
    drift = (
        DriftComponent(app, settings, sends, metrics, models) if settings.drift_enabled else None
    )
    recent = (
        RecentEvents(settings.recent_events_per_key, settings.recent_events_keys)
        if settings.recent_events_per_key
        else None
    )
    components = [c for c in (stats, windows, anomaly, models, drift, recent) if c is not None]
    register_pipeline(app, settings, topics, components, metrics, outbox)
    register_alerts(app, settings, topics, metrics)  # only with alert_webhook_url
    alert_topics = [
        t.get_topic_name() for t in (topics.anomalies, topics.drift, topics.model_events)
    ]
    observer, feed = register_observer(app, settings, metrics, registry, alert_topics)
    worker = Worker(
        settings=settings,
        app=app,
        topics=topics,
        metrics=metrics,
        stats=stats,
        windows=windows,
        anomaly=anomaly,
        models=models,
        drift=drift,
        registry=registry,
        observer=observer,
        alert_feed=feed,
        recent=recent,
    )
    register_views(app, worker)
    queries = register_api(app, worker)
    register_analysis_api(app, worker, queries)
    register_anomaly_api(app, worker)
    register_models_api(app, worker)
    register_registry_api(app, worker)
    register_overview_api(app, worker, observer, feed)
    register_dashboard(app, worker)
    return worker
