"""Registry API: read the model registry, and change it with the API token.

* ``GET /api/v1/registry/models``: every model's summary.
* ``GET /api/v1/registry/models/{name}``: every version of ``name``.
* ``GET /api/v1/registry/models/{name}/versions/{ref}``: one version; ``ref`` is a
  number, ``latest`` or a stage (its newest version).
* ``POST /api/v1/registry/models/{name}/versions``: register a signed artifact, sent as
  the raw body (``application/octet-stream``) with ``description``, ``by``,
  ``training_data``, ``metrics`` and ``params`` (JSON objects) as query parameters, or
  as JSON ``{"artifact_base64": ..., "metrics": {...}, ...}``. 201 with the version.
* ``POST .../versions/{version}/promote`` ``{"to", "why", "by"?}``,
  ``POST .../versions/{version}/archive`` ``{"why"?, "by"?}``,
  ``POST /api/v1/registry/models/{name}/rollback`` ``{"why", "by"?}``.

POSTs need ``Authorization: Bearer <api_token>`` (401 otherwise, and while no token is
configured). Errors: 400 bad input or a refused artifact, 404 unknown name or version,
409 a transition the lifecycle does not allow or a concurrent change, 503 registry not
ready. Reads first catch the view up with the topic, so a change made anywhere (CLI,
another worker) is visible as soon as it returns.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import TYPE_CHECKING, Any

import faust
import orjson
from faust.web import Request, Response, View

from streamlearn.registry.errors import ArtifactRefusedError, RegistryError
from streamlearn.web.params import BadRequest

if TYPE_CHECKING:
    from streamlearn.worker import Worker

__all__ = ["MAX_UPLOAD_BYTES", "check_token", "register_registry_api"]

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
PREFIX = "/api/v1/registry/models"


def _reply(view: View, body: Any, status: int = 200) -> Response:
    return view.bytes(
        orjson.dumps({"error": body, "status": status} if status >= 400 else body),
        status=status,
        headers={"Content-Type": "application/json"},
    )


def check_token(header: str | None, token: str | None) -> None:
    """Refuse (401) unless ``header`` is ``Bearer <token>``; compared in constant time.

    >>> check_token("Bearer s3cret", "s3cret")
    >>> check_token("Bearer guess", "s3cret")
    Traceback (most recent call last):
    ...
    streamlearn.web.params.BadRequest: invalid API token
    """
    if not token:
        raise BadRequest(
            "changing the registry over HTTP is disabled: no api_token is configured "
            "(set STREAMLEARN_API_TOKEN)",
            401,
        )
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise BadRequest("missing Authorization: Bearer <api_token> header", 401)
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise BadRequest("invalid API token", 401)


def _json_param(value: Any, name: str) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"{name} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object")
    return value


def _text(doc: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = doc.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def _version(text: str) -> int:
    if not text.isdigit():
        raise BadRequest(f"version must be a number, got {text!r}")
    return int(text)


def register_registry_api(app: faust.App, worker: Worker) -> None:
    client = worker.registry
    token = worker.settings.api_token
    secret = token.get_secret_value() if token is not None else None
    metrics = worker.metrics

    async def guarded(view: View, request: Request, action: Any, write: bool) -> Response:
        """Run ``action()``; errors become JSON answers with their status."""
        try:
            if client is None:
                raise BadRequest("this worker runs no model registry", 404)
            if write:
                check_token(request.headers.get("Authorization"), secret)
            await client.wait_ready()
            if not write:
                await client.sync()
            status, body = await action()
            return _reply(view, body, status)
        except ArtifactRefusedError as exc:
            metrics.registry_refused.inc()
            return _reply(view, str(exc), exc.status)
        except RegistryError as exc:
            return _reply(view, str(exc), exc.status)
        except BadRequest as exc:
            return _reply(view, exc.message, exc.status)

    async def body_json(view: View, request: Request) -> dict[str, Any]:
        raw = await view.web.read_request_content(request)
        if not raw.strip():
            return {}
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise BadRequest("the body must be a JSON object")
        return doc

    async def read_upload(request: Request) -> bytes:
        size = request.content_length
        if size is not None and size > MAX_UPLOAD_BYTES:
            raise BadRequest(f"the artifact is larger than {MAX_UPLOAD_BYTES} bytes", 413)
        chunks, total = [], 0
        async for chunk in request.content.iter_chunked(1 << 20):
            total += len(chunk)
            if total > MAX_UPLOAD_BYTES:
                raise BadRequest(f"the artifact is larger than {MAX_UPLOAD_BYTES} bytes", 413)
            chunks.append(chunk)
        return b"".join(chunks)

    @app.page(PREFIX)
    class RegistryModelsView(View):
        async def get(self, request: Request) -> Response:
            async def action() -> tuple[int, Any]:
                assert client is not None
                return 200, {"models": [e.summary() for e in client.entries()]}

            return await guarded(self, request, action, write=False)

    @app.page(PREFIX + "/{name}")
    class RegistryModelView(View):
        async def get(self, request: Request, name: str) -> Response:
            async def action() -> tuple[int, Any]:
                assert client is not None
                return 200, client.entry(name).to_dict()

            return await guarded(self, request, action, write=False)

    @app.page(PREFIX + "/{name}/versions")
    class RegistryVersionsView(View):
        async def get(self, request: Request, name: str) -> Response:
            async def action() -> tuple[int, Any]:
                assert client is not None
                return 200, {"versions": client.entry(name).to_dict()["versions"]}

            return await guarded(self, request, action, write=False)

        async def post(self, request: Request, name: str) -> Response:
            async def action() -> tuple[int, Any]:
                assert client is not None
                if request.content_type == "application/json":
                    doc = await body_json(self, request)
                    encoded = _text(doc, "artifact_base64", required=True)
                    try:
                        blob = base64.b64decode(encoded or "", validate=True)
                    except (binascii.Error, ValueError):
                        raise BadRequest("artifact_base64 is not base64") from None
                else:
                    doc = dict(request.query)
                    blob = await read_upload(request)
                if not blob:
                    raise BadRequest("no artifact: send the signed model file as the body")
                version = await client.register_blob(
                    name,
                    blob,
                    params=_json_param(doc.get("params"), "params"),
                    metrics=_json_param(doc.get("metrics"), "metrics"),
                    training_data=_text(doc, "training_data"),
                    created_by=_text(doc, "by") or "http",
                    description=_text(doc, "description") or "",
                )
                metrics.registry_changes.labels("register").inc()
                return 201, version.to_dict()

            return await guarded(self, request, action, write=True)

    @app.page(PREFIX + "/{name}/versions/{ref}")
    class RegistryVersionView(View):
        async def get(self, request: Request, name: str, ref: str) -> Response:
            async def action() -> tuple[int, Any]:
                assert client is not None
                return 200, client.get(name, ref).to_dict()

            return await guarded(self, request, action, write=False)

    @app.page(PREFIX + "/{name}/versions/{version}/promote")
    class RegistryPromoteView(View):
        async def post(self, request: Request, name: str, version: str) -> Response:
            async def action() -> tuple[int, Any]:
                assert client is not None
                doc = await body_json(self, request)
                to = _text(doc, "to", required=True)
                why = _text(doc, "why", required=True)
                assert to is not None and why is not None
                by = _text(doc, "by") or "http"
                changed = await client.promote(name, _version(version), to, by=by, why=why)
                metrics.registry_changes.labels("promote").inc()
                return 200, changed.to_dict()

            return await guarded(self, request, action, write=True)

    @app.page(PREFIX + "/{name}/versions/{version}/archive")
    class RegistryArchiveView(View):
        async def post(self, request: Request, name: str, version: str) -> Response:
            async def action() -> tuple[int, Any]:
                assert client is not None
                doc = await body_json(self, request)
                by = _text(doc, "by") or "http"
                why = _text(doc, "why") or ""
                changed = await client.archive(name, _version(version), by=by, why=why)
                metrics.registry_changes.labels("archive").inc()
                return 200, changed.to_dict()

            return await guarded(self, request, action, write=True)

    @app.page(PREFIX + "/{name}/rollback")
    class RegistryRollbackView(View):
        async def post(self, request: Request, name: str) -> Response:
            async def action() -> tuple[int, Any]:
                assert client is not None
                doc = await body_json(self, request)
                why = _text(doc, "why", required=True)
                assert why is not None
                by = _text(doc, "by") or "http"
                changed = await client.rollback(name, by=by, why=why)
                metrics.registry_changes.labels("rollback").inc()
                return 200, changed.to_dict()

            return await guarded(self, request, action, write=True)
