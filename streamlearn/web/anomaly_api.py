"""Anomaly API: a key's detector state, and scoring probe values without learning them.

``GET /api/v1/anomaly/{key}`` describes the key's detector state; ``POST
/api/v1/anomaly/{key}/score`` with ``{"values": {"name": number, ...}}`` scores those
values against it (nothing is learned, no alert is sent). Both are answered by the
worker that owns the key, forwarded there by any worker.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import faust
import orjson
from faust.app.router import SameNode
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable

from streamlearn.web.api import _error, _ok
from streamlearn.web.params import BadRequest, NotFound
from streamlearn.web.routing import route_req

if TYPE_CHECKING:
    from streamlearn.worker import Worker

#: Probe values per request at most.
MAX_PROBE_VALUES = 1_000


def parse_probe(body: bytes) -> dict[str, float]:
    """The ``values`` object of a probe request; :class:`BadRequest` naming what is wrong.

    >>> parse_probe(b'{"values": {"temp": 21.5, "load": 1}}')
    {'temp': 21.5, 'load': 1.0}
    >>> parse_probe(b'{"values": {"temp": "hot"}}')
    Traceback (most recent call last):
    ...
    streamlearn.web.params.BadRequest: values.temp must be a finite number, got 'hot'
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("values"), dict):
        raise BadRequest('the body must be {"values": {"name": number, ...}}')
    values = doc["values"]
    if not values or len(values) > MAX_PROBE_VALUES:
        raise BadRequest(f"values must hold 1 to {MAX_PROBE_VALUES} numbers")
    out = {}
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise BadRequest(f"values.{name} must be a finite number, got {v!r}")
        out[name] = float(v)
    return out


def register_anomaly_api(app: faust.App, worker: Worker) -> None:
    component = worker.anomaly

    def state(key: str) -> Any:
        found = component.state_of(key) if component is not None else None
        if found is None:
            raise NotFound(f"no anomaly state for key {key!r}")
        return found

    async def answer(view: View, request: Request, key: str, local: Any) -> Response:
        if component is None:
            return _error(view, 404, "anomaly detection is off (anomaly_enabled = false)")
        if request.query.get("scope") != "local":
            try:
                return await route_req(app, "anomaly", key, view.web, request)
            except SameNode:
                pass
            except ServiceUnavailable:
                return _error(view, 503, "the worker owning this key is not known yet; retry")
        try:
            return _ok(view, await local())
        except BadRequest as exc:
            return _error(view, exc.status, exc.message)

    @app.page("/api/v1/anomaly/{key}")
    class AnomalyStateView(View):
        async def get(self, request: Request, key: str) -> Response:
            async def local() -> Any:
                s = state(key)
                return {"key": key, "policy": _policy(component), **s.summary()}

            return await answer(self, request, key, local)

    @app.page("/api/v1/anomaly/{key}/score")
    class AnomalyScoreView(View):
        async def post(self, request: Request, key: str) -> Response:
            async def local() -> Any:
                values = parse_probe(await self.web.read_request_content(request))
                s = state(key)
                return {"key": key, **component.scorer.probe(s, values)}

            return await answer(self, request, key, local)


def _policy(component: Any) -> dict[str, Any]:
    policy = component.scorer.policy
    return {name: getattr(policy, name) for name in policy.__dataclass_fields__}
