"""HTTP endpoints for statistical analysis over stored series.

Each series is one statistic (``stat``, default ``mean``) of each window of a key's value
(``window``, default the finest tumbling spec) within ``from``..``to``. Series of keys
owned by other workers are fetched from them, so any worker answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import faust
from faust.web import Request, Response, View

from streamlearn.agents.windows import partition_for_key
from streamlearn.analytics import (
    AnalysisError,
    anova_oneway,
    chi_square,
    correlation_matrix,
    describe,
    ks_two_sample,
    mann_whitney_u,
    ols,
    welch_t_test,
)
from streamlearn.web.api import _error, _ok
from streamlearn.web.params import BadRequest, one_of, required
from streamlearn.web.queries import LocalQueries
from streamlearn.web.routing import owner_url

if TYPE_CHECKING:
    from streamlearn.worker import Worker

STATS = ("mean", "sum", "count", "min", "max", "std", "p50", "p95", "p99", "first", "last")
TWO_SAMPLE = {"welch": welch_t_test, "mannwhitney": mann_whitney_u, "ks": ks_two_sample}
SERIES_PARAMS = ("window", "from", "to")


class SeriesSource:
    """Fetches window series of any key: locally when owned, else from its owner."""

    def __init__(self, app: faust.App, worker: Worker, queries: LocalQueries) -> None:
        self.app = app
        self.worker = worker
        self.queries = queries
        self.keyed_topic = worker.topics.keyed.get_topic_name()

    def owned(self, key: str) -> bool:
        partition = partition_for_key(key, self.worker.settings.topic_partitions)
        return any(
            tp.topic == self.keyed_topic and tp.partition == partition
            for tp in self.app.assignor.assigned_actives()
        )

    async def _remote(self, key: str, path: str, params: Mapping[str, str]) -> Any:
        url = str(owner_url(self.app, "stats", key)).rstrip("/")
        target = f"{url}/api/v1/{path}/{quote(key, safe='')}?{urlencode(params)}"
        async with self.app.http_client.get(target, timeout=10) as reply:
            body = await reply.json(content_type=None)
            if reply.status != 200:
                raise BadRequest(body.get("error", f"{target}: HTTP {reply.status}"), reply.status)
            return body

    async def series(self, key: str, value: str, query: Mapping[str, str]) -> dict[int, float]:
        """window start -> the chosen statistic, for windows that have it."""
        stat = one_of("stat", query.get("stat", "mean"), STATS)
        params = {k: query[k] for k in SERIES_PARAMS if query.get(k)}
        params["value"] = value
        params.setdefault("window", self.queries.base_spec().name)
        if self.owned(key):
            doc = self.queries.series(key, params)
        else:
            doc = await self._remote(key, "series", params)
        return {
            w["start"]: float(w["stats"][stat])
            for w in doc["windows"]
            if w["stats"].get(stat) is not None
        }

    async def attrs(self, key: str) -> dict[str, dict[str, int]]:
        if self.owned(key):
            return self.queries.stats(key)["attrs"]
        return (await self._remote(key, "stats", {}))["attrs"]


def _key_value(text: str, name: str) -> tuple[str, str]:
    key, sep, value = text.rpartition(":")
    if not sep or not key or not value:
        raise BadRequest(f"{name}={text!r} must be KEY:VALUE")
    return key, value


def _aligned(columns: dict[str, dict[int, float]]) -> dict[str, list[float | None]]:
    starts = sorted(set().union(*columns.values()))
    return {name: [col.get(s) for s in starts] for name, col in columns.items()}


def register_analysis_api(app: faust.App, worker: Worker, queries: LocalQueries) -> None:
    source = SeriesSource(app, worker, queries)

    def endpoint(path: str, handler: Callable[[Request, dict[str, str]], Awaitable[Any]]):
        class AnalysisView(View):
            async def get(self, request: Request, **match: str) -> Response:
                try:
                    return _ok(self, await handler(request, match))
                except AnalysisError as exc:
                    return _error(self, 400, str(exc))
                except BadRequest as exc:
                    return _error(self, exc.status, exc.message)

        AnalysisView.__name__ = f"Analysis{path.title().replace('/', '').replace('-', '')}"
        app.page(f"/api/v1/analysis/{path}")(AnalysisView)

    async def describe_view(request: Request, match: dict[str, str]) -> Any:
        q = request.query
        series = await source.series(match["key"], required(q, "value"), q)
        return {"n": len(series), "describe": describe(list(series.values())).to_dict()}

    async def compare_view(request: Request, match: dict[str, str]) -> Any:
        q = request.query
        test = TWO_SAMPLE[one_of("test", q.get("test", "welch"), tuple(TWO_SAMPLE))]
        a_key, a_value = _key_value(required(q, "a"), "a")
        b_key, b_value = _key_value(q.get("b") or required(q, "a"), "b")
        a_query = {**q, **{k[2:]: v for k, v in q.items() if k in ("a_from", "a_to")}}
        b_query = {**q, **{k[2:]: v for k, v in q.items() if k in ("b_from", "b_to")}}
        a = await source.series(a_key, a_value, a_query)
        b = await source.series(b_key, b_value, b_query)
        return test(list(a.values()), list(b.values())).to_dict()

    async def anova_view(request: Request, match: dict[str, str]) -> Any:
        q = request.query
        groups = [_key_value(g.strip(), "groups") for g in required(q, "groups").split(",")]
        samples = [list((await source.series(k, v, q)).values()) for k, v in groups]
        return anova_oneway(*samples).to_dict()

    async def correlation_view(request: Request, match: dict[str, str]) -> Any:
        q = request.query
        key = match["key"]
        values = [v.strip() for v in required(q, "values").split(",") if v.strip()]
        method = one_of("method", q.get("method", "pearson"), ("pearson", "spearman"))
        columns = {v: await source.series(key, v, q) for v in values}
        return correlation_matrix(_aligned(columns), method).to_dict()  # type: ignore[arg-type]

    async def ols_view(request: Request, match: dict[str, str]) -> Any:
        q = request.query
        key = match["key"]
        y_name = required(q, "y")
        x_names = [x.strip() for x in required(q, "x").split(",") if x.strip()]
        columns = {n: await source.series(key, n, q) for n in [y_name, *x_names]}
        complete = sorted(set.intersection(*(set(c) for c in columns.values())))
        if not complete:
            raise BadRequest("y and x have no window in common in that range")
        y = [columns[y_name][s] for s in complete]
        x = {n: [columns[n][s] for s in complete] for n in x_names}
        return ols(y, x).to_dict()

    async def chi_square_view(request: Request, match: dict[str, str]) -> Any:
        q = request.query
        attr = required(q, "attr")
        keys = [k.strip() for k in required(q, "keys").split(",") if k.strip()]
        counts = {k: (await source.attrs(k)).get(attr, {}) for k in keys}
        categories = sorted(set().union(*counts.values()))
        if not categories:
            raise BadRequest(f"none of the keys has attribute {attr!r}")
        table = [[counts[k].get(c, 0) for c in categories] for k in keys]
        result = chi_square(table).to_dict()
        result["detail"].update(row_labels=keys, col_labels=categories)
        return result

    endpoint("describe/{key}", describe_view)
    endpoint("compare", compare_view)
    endpoint("anova", anova_view)
    endpoint("correlation/{key}", correlation_view)
    endpoint("ols/{key}", ols_view)
    endpoint("chi-square", chi_square_view)
