"""The JSON API: keys, running statistics and time series, answered by any worker.

A request about a key is forwarded to the worker that owns the key's partition
(Faust's router; tables are keyed by the raw key bytes, as on the keyed topic, so the
router's partition is the key's). ``GET /api/v1/keys`` merges every worker's keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import faust
import orjson
from faust.app.router import SameNode
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable

from streamlearn.web.params import BadRequest
from streamlearn.web.queries import LocalQueries
from streamlearn.web.routing import route_req

if TYPE_CHECKING:
    from streamlearn.worker import Worker

ROUTED_HEADER = "X-Streamlearn-Local"


def _error(view: View, status: int, message: str) -> Response:
    return view.bytes(
        orjson.dumps({"error": message, "status": status}),
        status=status,
        headers={"Content-Type": "application/json"},
    )


def _ok(view: View, body: Any) -> Response:
    return view.bytes(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        headers={"Content-Type": "application/json"},
    )


def register_api(app: faust.App, worker: Worker) -> LocalQueries:
    queries = LocalQueries(worker)

    async def answer(
        view: View, request: Request, key: str | None, local: Callable[[], Any]
    ) -> Response:
        if key is not None and request.query.get("scope") != "local":
            try:
                return await route_req(app, "stats", key, view.web, request)
            except SameNode:
                pass
            except ServiceUnavailable:
                return _error(view, 503, "the worker owning this key is not known yet; retry")
        try:
            return _ok(view, local())
        except BadRequest as exc:
            return _error(view, exc.status, exc.message)

    @app.page("/api/v1/keys")
    class KeysView(View):
        async def get(self, request: Request) -> Response:
            keys = set(queries.local_keys())
            if request.query.get("scope") != "local":
                keys.update(await _other_workers_keys(app))
            return _ok(self, {"keys": sorted(keys)})

    @app.page("/api/v1/stats/{key}")
    class StatsView(View):
        async def get(self, request: Request, key: str) -> Response:
            return await answer(self, request, key, lambda: queries.stats(key))

    @app.page("/api/v1/events/{key}")
    class RecentEventsView(View):
        async def get(self, request: Request, key: str) -> Response:
            return await answer(
                self, request, key, lambda: queries.recent_events(key, request.query)
            )

    @app.page("/api/v1/series/{key}")
    class SeriesView(View):
        async def get(self, request: Request, key: str) -> Response:
            return await answer(self, request, key, lambda: queries.series(key, request.query))

    @app.page("/api/v1/series/{key}/aggregate")
    class AggregateView(View):
        async def get(self, request: Request, key: str) -> Response:
            return await answer(self, request, key, lambda: queries.aggregate(key, request.query))

    return queries


async def _other_workers_keys(app: faust.App) -> set[str]:
    own = str(app.conf.canonical_url).rstrip("/")
    urls = {str(url).rstrip("/") for url in app.router.tables_metadata()} - {own}

    async def fetch(url: str) -> list[str]:
        async with app.http_client.get(f"{url}/api/v1/keys?scope=local", timeout=5) as reply:
            reply.raise_for_status()
            return list((await reply.json())["keys"])

    found: set[str] = set()
    for result in await asyncio.gather(*(fetch(u) for u in sorted(urls)), return_exceptions=True):
        if isinstance(result, BaseException):
            continue  # a worker that is gone: its partitions move to the others
        found.update(result)
    return found
