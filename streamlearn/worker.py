"""Assemble a worker: the app, its topics, tables, agents and web views."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streamlearn.agents import register_ingest, register_stats
from streamlearn.app import create_app
from streamlearn.config import Settings
from streamlearn.tables import KeyStats, StateCache
from streamlearn.topics import Topics, declare_topics
from streamlearn.web.metrics import Metrics


@dataclass
class Worker:
    settings: Settings
    app: faust.App
    topics: Topics
    metrics: Metrics
    stats: StateCache[KeyStats]


def build_worker(settings: Settings) -> Worker:
    """A fully wired, not yet started, worker for ``settings``."""
    from streamlearn.web.views import register_views

    app = create_app(settings)
    topics = declare_topics(app, settings)
    metrics = Metrics()
    register_ingest(app, settings, topics, metrics)
    stats = register_stats(app, settings, topics, metrics)
    worker = Worker(settings=settings, app=app, topics=topics, metrics=metrics, stats=stats)
    register_views(app, worker)
    return worker
