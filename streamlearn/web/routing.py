"""Which worker owns a key, and forwarding a request to it.

Faust's ``app.router.key_store`` asks the *producer's* metadata for the changelog
topic's partition count; until this worker has produced to that topic the metadata is
missing and it fails with a ``TypeError`` (an HTTP 500 right after a start or a
rebalance). Our tables use raw byte keys and a fixed partition count, so the owning
partition is Kafka's default partitioner over the key, computed here without metadata,
and the owner's URL comes from the assignor's published table metadata.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.app.router import SameNode
from faust.web import Request, Response, Web
from faust.web.exceptions import ServiceUnavailable
from yarl import URL

from streamlearn.agents.windows import partition_for_key


def owner_url(app: faust.App, table_name: str, key: str) -> URL:
    """The web URL of the worker whose ``table_name`` holds ``key``.

    Raises :class:`ServiceUnavailable` when no worker is known to own it yet (before the
    first assignment, or mid-rebalance).
    """
    table: Any = app.tables[table_name]
    topic = table.changelog_topic.get_topic_name()
    partition = partition_for_key(key, table.partitions or app.conf.topic_partitions)
    for url, topics in app.router.table_metadata(table_name).items():
        if partition in topics.get(topic, ()):
            return URL(url)
    raise ServiceUnavailable()


def is_local(app: faust.App, url: URL) -> bool:
    """Whether ``url`` is this worker's own web server."""
    own = URL(str(app.conf.canonical_url))
    return (url.host, url.port) == (own.host, own.port)


async def route_req(
    app: faust.App, table_name: str, key: str, web: Web, request: Request
) -> Response:
    """Forwards ``request`` to the worker owning ``key`` and relays its answer.

    Raises :class:`SameNode` when that is this worker, :class:`ServiceUnavailable` when
    the owner is not known yet.
    """
    url = owner_url(app, table_name, key)
    if is_local(app, url):
        raise SameNode()
    routed = request.url.with_host(url.host or "127.0.0.1").with_port(url.port)
    async with app.http_client.request(
        method=request.method, headers=request.headers, url=routed
    ) as response:
        return web.text(
            await response.text(), content_type=response.content_type, status=response.status
        )
