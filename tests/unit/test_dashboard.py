"""The dashboard's views over HTTP (aiohttp's test server on the worker's web app): the page,
its assets, content types, caching, compression, 404 for anything else."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import plotly
import pytest
from aiohttp.test_utils import TestClient, TestServer

from streamlearn.app import create_app
from streamlearn.config import load_settings
from streamlearn.web.dashboard import ASSETS, load_asset, register_dashboard, render_page

STATIC = Path(__file__).resolve().parents[2] / "streamlearn" / "web" / "static"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = load_settings(
        data_dir=tmp_path,
        store="memory",
        app_id="dash-unit",
        windows=["tumbling:1m", "hopping:5m:1m"],
    )
    app = create_app(settings)
    worker = SimpleNamespace(settings=settings, models=None, anomaly=None, drift=None)
    register_dashboard(app, worker)  # type: ignore[arg-type]
    async with TestClient(TestServer(app.web.web_app)) as test_client:
        yield test_client


def embedded_config(page: str) -> dict:
    match = re.search(r'<script id="sl-config" type="application/json">(.*?)</script>', page, re.S)
    assert match, "the page embeds its configuration"
    return json.loads(match.group(1))


async def test_the_page_names_its_assets_by_hash_and_embeds_the_settings(
    client: TestClient,
) -> None:
    for path in ("/dashboard", "/dashboard/"):
        reply = await client.get(path)
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
        assert reply.headers["Cache-Control"] == "no-cache"
        page = await reply.text()
        for name in ASSETS:
            asset = load_asset(name)
            assert asset is not None
            assert f"/dashboard/assets/{name}?v={asset.version}" in page
        assert "{{" not in page  # every placeholder filled
        config = embedded_config(page)
        assert config["app_id"] == "dash-unit"
        assert [w["name"] for w in config["windows"]] == ["tumbling-1m", "hopping-5m-1m"]
        assert config["model_enabled"] is False and config["registry_writes"] is False
        assert config["links"]["stats"] == "/"  # Faust's stats page, linked from the page


def test_embedded_json_cannot_close_the_script_element() -> None:
    page = render_page({"app_id": "x</script><script>alert(1)", "windows": []})
    config = embedded_config(page)
    assert config["app_id"] == "x</script><script>alert(1)"
    assert "<title>streamlearn · x&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("dashboard.js", "application/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
        ("plotly.min.js", "application/javascript; charset=utf-8"),
    ],
)
async def test_assets_have_their_content_type_and_bytes(
    client: TestClient, name: str, content_type: str
) -> None:
    reply = await client.get(f"/dashboard/assets/{name}", headers={"Accept-Encoding": "identity"})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == content_type
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    body = await reply.read()
    if name == "plotly.min.js":  # the installed package's file: no CDN, works offline
        expected = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    else:
        expected = STATIC / name
    assert body == expected.read_bytes()


async def test_versioned_assets_are_immutable_others_revalidate(client: TestClient) -> None:
    asset = load_asset("dashboard.js")
    assert asset is not None
    plain = await client.get("/dashboard/assets/dashboard.js")
    assert plain.headers["Cache-Control"] == "no-cache"
    assert plain.headers["ETag"] == asset.etag
    versioned = await client.get(f"/dashboard/assets/dashboard.js?v={asset.version}")
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stale = await client.get("/dashboard/assets/dashboard.js?v=0000")
    assert stale.headers["Cache-Control"] == "no-cache"
    again = await client.get(
        "/dashboard/assets/dashboard.js", headers={"If-None-Match": f"W/{asset.etag}"}
    )
    assert again.status == 304
    assert await again.read() == b""
    changed = await client.get(
        "/dashboard/assets/dashboard.js", headers={"If-None-Match": '"other"'}
    )
    assert changed.status == 200


async def test_gzip_when_the_client_accepts_it(client: TestClient) -> None:
    reply = await client.get(
        "/dashboard/assets/dashboard.css",
        headers={"Accept-Encoding": "gzip, deflate"},
        auto_decompress=False,
    )
    assert reply.status == 200
    assert reply.headers["Content-Encoding"] == "gzip"
    assert reply.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(await reply.read()) == (STATIC / "dashboard.css").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/assets/nothing.js",
        "/dashboard/assets/dashboard.html",  # the template is not an asset
        "/dashboard/assets/..%2Fdashboard.py",
        "/dashboard/assets/..%2F..%2F..%2Fpyproject.toml",
        "/dashboard/assets/%2Fetc%2Fpasswd",
        "/dashboard/assets/static%2Fdashboard.js",
        "/dashboard/assets/../dashboard.py",
        "/dashboard/assets/../../../../etc/passwd",
    ],
)
async def test_unknown_names_and_traversal_are_404(client: TestClient, path: str) -> None:
    reply = await client.get(path)
    assert reply.status == 404
    body = await reply.read()
    assert b"root:" not in body and b"import" not in body


def test_load_asset_knows_only_its_names() -> None:
    assert load_asset("dashboard.css") is not None
    for name in ("", ".", "..", "../web/dashboard.py", "DASHBOARD.JS", "dashboard.js/"):
        assert load_asset(name) is None
