"""The web dashboard: one page served by every worker, no build step, no CDN.

* ``GET /dashboard``: the page (``static/dashboard.html``) with this worker's settings
  that the page needs (app id, windows, model name...) embedded as JSON. Never cached:
  it names its assets by content hash.
* ``GET /dashboard/assets/{name}``: ``dashboard.js``, ``dashboard.css`` and
  ``plotly.min.js`` (from the installed plotly package, so the page works offline).
  Only these names exist (anything else is 404, so no path reaches the file system);
  an asset asked for with ``?v=<its hash>`` (as the page asks) is cached for a year,
  otherwise revalidated with its ETag. Gzip-compressed for clients that accept it.

The page reads the JSON API (``/api/v1/...``) from the browser; it changes nothing
itself except the registry, with the API token the user types (kept in the tab's
``sessionStorage``).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import html
import importlib.resources
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faust
import orjson
from faust.web import Request, Response, View

import streamlearn

if TYPE_CHECKING:
    from streamlearn.worker import Worker

__all__ = ["ASSETS", "Asset", "load_asset", "page_config", "register_dashboard", "render_page"]

#: Served asset name -> (package, path inside it, Content-Type).
ASSETS: dict[str, tuple[str, str, str]] = {
    "dashboard.js": (
        "streamlearn.web",
        "static/dashboard.js",
        "application/javascript; charset=utf-8",
    ),
    "dashboard.css": ("streamlearn.web", "static/dashboard.css", "text/css; charset=utf-8"),
    "plotly.min.js": (
        "plotly",
        "package_data/plotly.min.js",
        "application/javascript; charset=utf-8",
    ),
}
PAGE = ("streamlearn.web", "static/dashboard.html")
#: A versioned asset URL never changes content: browsers may keep it this long.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Anything else is revalidated (ETag) on every use.
REVALIDATE = "no-cache"


@dataclass
class Asset:
    """One asset's bytes, type and content hash (its ETag and URL version)."""

    name: str
    body: bytes
    content_type: str
    version: str = field(init=False)
    _gzipped: bytes | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.version = hashlib.sha256(self.body).hexdigest()[:16]

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


_cache: dict[str, Asset] = {}


def _read(package: str, path: str) -> bytes:
    return importlib.resources.files(package).joinpath(path).read_bytes()


def load_asset(name: str) -> Asset | None:
    """The asset called ``name``, or None when there is no such asset.

    >>> load_asset("dashboard.css").content_type
    'text/css; charset=utf-8'
    >>> load_asset("../worker.py") is None
    True
    """
    if name not in ASSETS:
        return None
    asset = _cache.get(name)
    if asset is None:
        package, path, content_type = ASSETS[name]
        asset = _cache[name] = Asset(name, _read(package, path), content_type)
    return asset


def page_config(worker: Worker) -> dict[str, Any]:
    """What the page needs to know about this app that the JSON API does not say."""
    settings = worker.settings
    model = worker.models.model.name if worker.models is not None else None
    return {
        "app_id": settings.app_id,
        "version": streamlearn.__version__,
        "windows": [
            {"name": s.name, "size_ms": s.size_ms, "step_ms": s.step_ms}
            for s in settings.window_specs()
        ],
        "anomaly_enabled": worker.anomaly is not None,
        "model_enabled": model is not None,
        "model_name": model,
        "drift_enabled": worker.drift is not None,
        "registry_writes": settings.api_token is not None,
        "links": {"stats": "/", "assignment": "/assignment/", "metrics": "/metrics"},
    }


def render_page(config: dict[str, Any]) -> str:
    """The page with ``config`` embedded and every asset URL carrying its hash."""
    text = _read(*PAGE).decode()
    for name in ASSETS:
        asset = load_asset(name)
        assert asset is not None
        text = text.replace(f"{{{{asset:{name}}}}}", f"/dashboard/assets/{name}?v={asset.version}")
    # JSON inside <script>: no "</" can close the element early.
    embedded = orjson.dumps(config).decode().replace("</", "<\\/")
    text = text.replace("{{config}}", embedded)
    return text.replace("{{title}}", html.escape(f"streamlearn · {config['app_id']}"))


def register_dashboard(app: faust.App, worker: Worker) -> None:
    config = page_config(worker)
    lock = asyncio.Lock()

    @app.page("/dashboard", name="dashboard")
    class DashboardPage(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(
                render_page(config).encode(),
                headers={
                    "Content-Type": "text/html; charset=utf-8",
                    "Cache-Control": REVALIDATE,
                    "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin",
                },
            )

    @app.page("/dashboard/", name="dashboard_slash")
    class DashboardPageSlash(DashboardPage):
        pass

    @app.page("/dashboard/assets/{name}", name="dashboard_asset")
    class DashboardAsset(View):
        async def get(self, request: Request, name: str) -> Response:
            asset = load_asset(name)
            if asset is None:
                return self.bytes(
                    orjson.dumps({"error": f"no dashboard asset {name!r}", "status": 404}),
                    status=404,
                    headers={"Content-Type": "application/json"},
                )
            headers = {
                "Content-Type": asset.content_type,
                "ETag": asset.etag,
                "Cache-Control": IMMUTABLE
                if request.query.get("v") == asset.version
                else REVALIDATE,
                "Vary": "Accept-Encoding",
                "X-Content-Type-Options": "nosniff",
            }
            if asset.etag in _etags(request.headers.get("If-None-Match", "")):
                return self.bytes(b"", status=304, headers=headers)
            body = asset.body
            if "gzip" in request.headers.get("Accept-Encoding", ""):
                async with lock:  # compressed once (plotly: 4.8 MB), off the event loop
                    body = await asyncio.to_thread(asset.gzipped)
                headers["Content-Encoding"] = "gzip"
            return self.bytes(body, headers=headers)


def _etags(header: str) -> set[str]:
    """The entity tags of an ``If-None-Match`` header (weak ones as strong).

    >>> sorted(_etags('"a", W/"b"'))
    ['"a"', '"b"']
    """
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
