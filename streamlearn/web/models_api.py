"""Model API: prequential metrics, and predictions over HTTP through the stream's features.

* ``GET /api/v1/models``: every model state (per partition, or per key) with its
  counters and metrics, from every worker.
* ``GET /api/v1/models/{name}/metrics``: the prequential metrics of model ``name``.
* ``POST /api/v1/predict`` ``{"key", "values", "ts"?, "attrs"?}``: a prediction for one
  event, by the worker owning the key, with the key's feature state (read, not changed)
  and the live model; nothing is learned.
* ``POST /api/v1/predict/batch`` ``{"events": [...]}``: the same for a list (at most
  ``MAX_BATCH``), answered in order.

Answers are cached for ``model_predict_cache_s`` seconds per identical request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import faust
import orjson
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable

from streamlearn.records import Event
from streamlearn.web import routing
from streamlearn.web.api import _error, _ok
from streamlearn.web.params import BadRequest, NotFound, parse_time_ms

if TYPE_CHECKING:
    from streamlearn.worker import Worker

MAX_BATCH = 1_000
MAX_VALUES = 1_000


def parse_predict_event(doc: Any, where: str = "body") -> Event:
    """An event to predict from a request object; :class:`BadRequest` naming the field.

    >>> parse_predict_event({"key": "k", "values": {"v": 1}, "ts": 5}).values
    {'v': 1.0}
    >>> parse_predict_event({"key": "k", "values": {"v": "x"}})
    Traceback (most recent call last):
    ...
    streamlearn.web.params.BadRequest: body.values.v must be a finite number, got 'x'
    """
    if not isinstance(doc, dict):
        raise BadRequest(f"{where} must be an object with key and values")
    key = doc.get("key")
    if not isinstance(key, str) or not key:
        raise BadRequest(f"{where}.key must be a non-empty string")
    values = doc.get("values")
    if not isinstance(values, dict) or not values or len(values) > MAX_VALUES:
        raise BadRequest(f"{where}.values must be an object of 1 to {MAX_VALUES} numbers")
    clean = {}
    for name, v in values.items():
        if not name:
            raise BadRequest(f"{where}.values: a value name is empty")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise BadRequest(f"{where}.values.{name} must be a finite number, got {v!r}")
        clean[name] = float(v)
    ts = doc.get("ts", int(time.time() * 1000))
    if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
        raise BadRequest(f"{where}.ts must be epoch milliseconds, got {ts!r}")
    attrs = doc.get("attrs")
    if attrs is not None and (
        not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values())
    ):
        raise BadRequest(f"{where}.attrs must be an object of strings")
    return Event(key, ts, clean, str(doc.get("id", "")), -1, -1, None, attrs or None)


class TTLCache:
    """A small LRU cache whose entries expire after ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float, size: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._data: OrderedDict[bytes, tuple[float, Any]] = OrderedDict()

    def get(self, key: bytes) -> Any:
        if self.ttl_s <= 0:
            return None
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        self._data.move_to_end(key)
        return hit[1]

    def put(self, key: bytes, value: Any) -> None:
        if self.ttl_s <= 0:
            return
        self._data[key] = (time.monotonic() + self.ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


def register_models_api(app: faust.App, worker: Worker) -> None:
    component = worker.models
    metrics = worker.metrics
    cache = TTLCache(worker.settings.model_predict_cache_s)

    def predict_offline(event: Event) -> dict[str, Any]:
        """The saved scikit-learn model on the event's raw values (no stream state)."""
        assert component is not None and component.offline is not None
        from streamlearn.models.offline import MissingFeaturesError

        saved = component.offline
        started = time.perf_counter()
        try:
            y = saved.predict_one(event.values)
            classifier = saved.task == "classification"
            proba = saved.predict_proba_one(event.values) if classifier else None
        except MissingFeaturesError as exc:
            raise BadRequest(f"values: {exc}") from None
        p = None if not proba else float(max(proba.values()))
        return {
            "key": event.key,
            "prediction": y.item() if hasattr(y, "item") else y,
            "probability": p,
            "model": f"offline:{saved.model}",
            "model_version": None,
            "latency_us": round((time.perf_counter() - started) * 1e6, 1),
        }

    def predict_local(event: Event, which: str = "live") -> dict[str, Any]:
        assert component is not None
        if which == "offline":
            return predict_offline(event)
        from streamlearn.agents.windows import partition_for_key

        partition = partition_for_key(event.key, worker.settings.topic_partitions)
        state = component.state_of(component.state_key(event.key, partition))
        if state is None:
            state = component.model.new_state()  # untrained: the learner's default answer
        key_features = component.features.state_for(state.features.get(event.key))
        started = time.perf_counter()
        x = component.features.transform(event, key_features)
        y, proba = component.model.predict_one(state, x)
        return {
            "key": event.key,
            "prediction": y,
            "probability": proba,
            "model": component.model.name,
            "model_version": state.learned,
            "latency_us": round((time.perf_counter() - started) * 1e6, 1),
        }

    async def forward(url: str, path: str, body: Any) -> Any:
        async with app.http_client.post(
            f"{url.rstrip('/')}{path}?scope=local", data=orjson.dumps(body), timeout=10
        ) as reply:
            payload = await reply.json(content_type=None)
            if reply.status >= 400:
                raise BadRequest(payload.get("error", "forwarded request failed"), reply.status)
            return payload

    def owner_url(key: str) -> str | None:
        url = routing.owner_url(app, "models", key)
        return None if routing.is_local(app, url) else str(url).rstrip("/")

    def model_choice(request: Request) -> str:
        which = request.query.get("model", "live")
        if which not in ("live", "offline"):
            raise BadRequest(f"model must be live or offline, got {which!r}")
        if which == "offline" and (component is None or component.offline is None):
            raise BadRequest("no offline model is served: set model_serve_path", 404)
        return which

    async def read_json(view: View, request: Request) -> Any:
        try:
            return orjson.loads(await view.web.read_request_content(request))
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None

    def off(view: View) -> Response:
        return _error(view, 404, "online models are off (model_enabled = false)")

    @app.page("/api/v1/predict")
    class PredictView(View):
        async def post(self, request: Request) -> Response:
            if component is None:
                return off(self)
            started = time.perf_counter()
            try:
                body = await self.web.read_request_content(request)
                hit = cache.get(request.query.get("model", "live").encode() + b"\0" + body)
                if hit is not None:
                    return _ok(self, hit)
                try:
                    doc = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    raise BadRequest(f"the body is not JSON: {exc}") from None
                event = parse_predict_event(doc)
                which = model_choice(request)
                # the offline model has no per-key state: any worker answers
                local = request.query.get("scope") == "local" or which == "offline"
                url = None if local else owner_url(event.key)
                answer = (
                    await forward(url, "/api/v1/predict", doc)
                    if url
                    else predict_local(event, which)
                )
                cache.put(request.query.get("model", "live").encode() + b"\0" + body, answer)
                return _ok(self, answer)
            except BadRequest as exc:
                return _error(self, exc.status, exc.message)
            except ServiceUnavailable:
                return _error(self, 503, "the worker owning this key is not known yet; retry")
            finally:
                metrics.predict_seconds.observe(time.perf_counter() - started)

    @app.page("/api/v1/predict/batch")
    class PredictBatchView(View):
        async def post(self, request: Request) -> Response:
            if component is None:
                return off(self)
            started = time.perf_counter()
            try:
                doc = await read_json(self, request)
                items = doc.get("events") if isinstance(doc, dict) else None
                if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
                    raise BadRequest(f'the body must be {{"events": [1 to {MAX_BATCH} events]}}')
                events = [parse_predict_event(d, f"events[{i}]") for i, d in enumerate(items)]
                which = model_choice(request)
                local = request.query.get("scope") == "local" or which == "offline"
                groups: dict[str | None, list[int]] = {}
                for i, event in enumerate(events):
                    groups.setdefault(None if local else owner_url(event.key), []).append(i)
                answers: list[Any] = [None] * len(events)

                async def run(url: str | None, indexes: list[int]) -> None:
                    if url is None:
                        for i in indexes:
                            answers[i] = predict_local(events[i], which)
                        return
                    reply = await forward(
                        url, "/api/v1/predict/batch", {"events": [items[i] for i in indexes]}
                    )
                    for i, answer in zip(indexes, reply["predictions"], strict=True):
                        answers[i] = answer

                await asyncio.gather(*(run(u, ix) for u, ix in groups.items()))
                return _ok(self, {"predictions": answers})
            except BadRequest as exc:
                return _error(self, exc.status, exc.message)
            except ServiceUnavailable:
                return _error(self, 503, "the worker owning a key is not known yet; retry")
            finally:
                metrics.predict_seconds.observe(time.perf_counter() - started)

    async def everywhere(request: Request, states: dict[str, Any], path: str) -> dict[str, Any]:
        """``states`` (this worker's) with every other worker's answer to ``path``."""
        if request.query.get("scope") == "local":
            return states
        own = str(app.conf.canonical_url).rstrip("/")
        urls = {str(url).rstrip("/") for url in app.router.tables_metadata()} - {own}
        query = urlencode({**request.query, "scope": "local"})

        async def fetch(url: str) -> dict[str, Any]:
            async with app.http_client.get(f"{url}{path}?{query}", timeout=5) as r:
                r.raise_for_status()
                return dict((await r.json())["states"])

        for result in await asyncio.gather(
            *(fetch(u) for u in sorted(urls)), return_exceptions=True
        ):
            if not isinstance(result, BaseException):
                states.update(result)
        return states

    async def all_states(request: Request) -> dict[str, Any]:
        assert component is not None
        return await everywhere(request, component.describe_all(), "/api/v1/models")

    def refuse(view: View, name: str) -> Response | None:
        """The answer when there is no model, or not one called ``name``."""
        if component is None:
            return off(view)
        if name != component.model.name:
            return _error(view, 404, f"no model {name!r}; this app runs {component.model.name!r}")
        return None

    @app.page("/api/v1/models")
    class ModelsView(View):
        async def get(self, request: Request) -> Response:
            if component is None:
                return off(self)
            return _ok(self, {"model": component.model.name, "states": await all_states(request)})

    @app.page("/api/v1/models/{name}/metrics")
    class ModelMetricsView(View):
        async def get(self, request: Request, name: str) -> Response:
            refused = refuse(self, name)
            if refused is not None:
                return refused
            states = await all_states(request)
            learned = sum(s["learned"] for s in states.values())
            body = {
                "model": name,
                "learned": learned,
                "predicted": sum(s["predicted"] for s in states.values()),
                "pending": sum(s["pending"] for s in states.values()),
                "states": {
                    k: {"learned": s["learned"], "metrics": s["metrics"]} for k, s in states.items()
                },
            }
            return _ok(self, body)

    @app.page("/api/v1/models/{name}/report")
    class ModelReportView(View):
        async def get(self, request: Request, name: str) -> Response:
            """Metrics over time, drift records and versions of every state of the model."""
            refused = refuse(self, name)
            if refused is not None:
                return refused
            assert component is not None
            try:
                span = [
                    parse_time_ms(bound, request.query[bound]) if bound in request.query else None
                    for bound in ("from", "to")
                ]
            except BadRequest as exc:
                return _error(self, exc.status, exc.message)
            if span[0] is not None and span[1] is not None and span[0] >= span[1]:
                return _error(self, 400, "from must be before to")
            path = f"/api/v1/models/{name}/report"
            states = await everywhere(request, component.report_all(span[0], span[1]), path)
            return _ok(self, {"model": name, "from": span[0], "to": span[1], "states": states})


__all__ = ["NotFound", "TTLCache", "parse_predict_event", "register_models_api"]
