"""HTTP views on the worker's Faust web server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

import streamlearn

if TYPE_CHECKING:
    from streamlearn.worker import Worker


def register_views(app: faust.App, worker: Worker) -> None:
    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            # aiohttp refuses a charset inside content_type: pass the header whole.
            return self.bytes(
                worker.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

    @app.page("/api/v1/health")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            body: dict[str, Any] = {
                "status": "ok",
                "version": streamlearn.__version__,
                "app_id": worker.settings.app_id,
                "assigned_partitions": sorted(
                    f"{tp.topic}:{tp.partition}" for tp in app.assignor.assigned_actives()
                ),
            }
            return self.json(body)
