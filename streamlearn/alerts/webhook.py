"""POST alerts to a webhook, with retries and exponential backoff; never raise.

Delivery is at-least-once: a retry after a timeout, or a replay after a worker
crash, can deliver an alert twice. Every request carries the alert's ``dedup_key`` in
the ``Idempotency-Key`` and ``X-Streamlearn-Dedup-Key`` headers so that receivers can
drop repeats.

Retried (up to ``retries`` times): connection errors, timeouts, 5xx and 429 (waiting
at least its ``Retry-After``). Not retried: any other 4xx, which the receiver will
refuse again. Either way the sink logs, counts and returns: a dead webhook never stops
the worker.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from streamlearn import __version__
from streamlearn.alerts.envelope import Alert
from streamlearn.errors import ConfigError
from streamlearn.web.metrics import Metrics

__all__ = [
    "Delivery",
    "Outcome",
    "WebhookSink",
    "backoff_delay_s",
    "backoff_schedule",
    "mask_url",
    "parse_retry_after",
    "validate_webhook_url",
]

logger = logging.getLogger(__name__)

#: Longest wait between two attempts from the exponential schedule.
MAX_BACKOFF_S = 30.0
#: A ``Retry-After`` longer than this is cut to it (the alert agent waits meanwhile).
MAX_RETRY_AFTER_S = 60.0
#: Each delay is the exponential one reduced by a random fraction up to this, so that
#: workers that failed together do not retry together.
JITTER = 0.5


def mask_url(url: str) -> str:
    """``url`` with its user, password, query and fragment masked (for logs and errors).

    Examples
    --------
    >>> mask_url("https://bot:s3cret@hooks.example.com:8443/alerts?token=abc#x")
    'https://***@hooks.example.com:8443/alerts?***'
    >>> mask_url("http://127.0.0.1:9000/hook")
    'http://127.0.0.1:9000/hook'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"***@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def validate_webhook_url(url: str) -> str:
    """``url`` if it is an ``http://`` or ``https://`` URL with a host, else ConfigError.

    Examples
    --------
    >>> validate_webhook_url("https://hooks.example.com/alerts")
    'https://hooks.example.com/alerts'
    >>> validate_webhook_url("hooks.example.com/alerts")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamlearn.errors.ConfigError: alert_webhook_url must be an http:// or https:// URL ...
    """
    problem = None
    try:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problem = "must be an http:// or https:// URL with a host"
        else:
            _ = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError:
        problem = "must be an http:// or https:// URL with a host and a valid port"
    if problem is not None:
        raise ConfigError(
            f"alert_webhook_url {problem}, e.g. https://hooks.example.com/alerts; "
            f"got {mask_url(url)!r}"
        )
    return url.strip()


def backoff_delay_s(
    retry: int,
    base_s: float,
    cap_s: float = MAX_BACKOFF_S,
    jitter: float = JITTER,
    rand: float = 0.0,
) -> float:
    """The wait before retry number ``retry`` (0 is the first retry).

    ``base_s * 2**retry``, capped at ``cap_s``, then reduced by ``jitter * rand`` of
    itself; ``rand`` in [0, 1) is the random draw (0 gives the longest delay).

    Examples
    --------
    >>> [backoff_delay_s(r, 0.5) for r in range(8)]
    [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    >>> backoff_delay_s(2, 0.5, rand=0.5)  # 2.0 reduced by a quarter
    1.5
    """
    if retry < 0:
        raise ValueError(f"retry must be >= 0, got {retry}")
    if not 0.0 <= rand < 1.0 or not 0.0 <= jitter <= 1.0:
        raise ValueError(f"rand must be in [0, 1) and jitter in [0, 1]; got {rand}, {jitter}")
    # 2**retry overflows a float past ~1000 retries: the cap is reached long before.
    delay = cap_s if retry >= 64 else min(cap_s, base_s * 2.0**retry)
    return delay * (1.0 - jitter * rand)


def backoff_schedule(
    retries: int,
    base_s: float,
    cap_s: float = MAX_BACKOFF_S,
    jitter: float = JITTER,
    rng: random.Random | None = None,
) -> list[float]:
    """Waits before each of ``retries`` retries (no jitter without ``rng``).

    Examples
    --------
    >>> backoff_schedule(5, 0.5)
    [0.5, 1.0, 2.0, 4.0, 8.0]
    >>> jittered = backoff_schedule(5, 0.5, rng=random.Random(7))
    >>> all(full / 2 < d <= full for d, full in zip(jittered, backoff_schedule(5, 0.5)))
    True
    """
    return [
        backoff_delay_s(r, base_s, cap_s, jitter, rng.random() if rng else 0.0)
        for r in range(retries)
    ]


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None.

    Examples
    --------
    >>> parse_retry_after("3"), parse_retry_after(None), parse_retry_after("soon")
    (3.0, None, None)
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now_s=40.0)
    60.0
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    now = time.time() if now_s is None else now_s
    return max(0.0, when.timestamp() - now)


class Outcome(StrEnum):
    """What became of one alert."""

    #: a 2xx response
    DELIVERED = "delivered"
    #: a 4xx other than 429: the receiver refuses this alert, retrying will not help
    REJECTED = "rejected"
    #: retries exhausted on connection errors, timeouts, 5xx or 429
    GAVE_UP = "gave_up"


@dataclass(frozen=True, slots=True)
class Delivery:
    """The result of :meth:`WebhookSink.send`: outcome, attempts made, last status."""

    outcome: Outcome
    attempts: int
    status: int | None
    elapsed_s: float
    error: str | None = None


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class WebhookSink:
    """POSTs alerts to one URL through one aiohttp session.

    Parameters
    ----------
    url
        ``http://`` or ``https://``; validated here (:class:`ConfigError` otherwise).
    timeout_s
        Total time allowed for one attempt (connect, send, response).
    retries
        Retries after the first attempt before giving up.
    backoff_s
        The first retry's wait; each next one doubles, up to ``max_backoff_s``.
    metrics
        Counts sent, failed (by reason) and retried alerts and the delivery time.
    sleep
        Waits between attempts (tests replace it to record the waits).

    Examples
    --------
    >>> sink = WebhookSink("https://user:pw@hooks.example.com/a?key=1", retries=3)
    >>> sink
    WebhookSink('https://***@hooks.example.com/a?***', retries=3)
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = MAX_BACKOFF_S,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.url = validate_webhook_url(url)
        self.masked_url = mask_url(self.url)
        if timeout_s <= 0 or retries < 0 or backoff_s <= 0 or max_backoff_s < backoff_s:
            raise ConfigError(
                "webhook needs timeout_s > 0, retries >= 0 and 0 < backoff_s <= max_backoff_s"
            )
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Any, metrics: Metrics | None = None) -> WebhookSink:
        """The sink for ``settings.alert_webhook_url`` and its timeout, retries, backoff."""
        if not settings.alert_webhook_url:
            raise ConfigError("alert_webhook_url is not set")
        return cls(
            settings.alert_webhook_url,
            timeout_s=settings.alert_webhook_timeout_s,
            retries=settings.alert_webhook_retries,
            backoff_s=settings.alert_webhook_backoff_s,
            metrics=metrics,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.masked_url!r}, retries={self.retries})"

    async def __aenter__(self) -> WebhookSink:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _session_now(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={"User-Agent": f"streamlearn/{__version__}"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def send(self, alert: Alert | Mapping[str, Any]) -> Delivery:
        """POST one alert (an :class:`Alert` or a validated envelope dict)."""
        doc = alert.to_dict() if isinstance(alert, Alert) else dict(alert)
        return await self.post(orjson.dumps(doc), str(doc["dedup_key"]), str(doc["type"]))

    async def post(self, body: bytes, dedup_key: str, alert_type: str = "unknown") -> Delivery:
        """POST ``body`` (alert JSON) until accepted, refused, or out of retries."""
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": dedup_key,
            "X-Streamlearn-Dedup-Key": dedup_key,
            "X-Streamlearn-Alert-Type": alert_type,
        }
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            retry_after: float | None = None
            try:
                session = self._session_now()
                async with session.post(self.url, data=body, headers=headers) as response:
                    status = response.status
                    if 200 <= status < 300:
                        await response.read()
                        elapsed = time.monotonic() - started
                        if self.metrics is not None:
                            self.metrics.webhook_sent.labels(type=alert_type).inc()
                            self.metrics.webhook_delivery_seconds.observe(elapsed)
                        return Delivery(Outcome.DELIVERED, attempt, status, elapsed)
                    text = (await response.text(errors="replace"))[:200]
                    error = f"HTTP {status}: {text}" if text else f"HTTP {status}"
                    if not _retryable(status):
                        return self._failed(
                            Outcome.REJECTED, dedup_key, attempt, status, error, started
                        )
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                error = f"no response in {self.timeout_s:g}s"
            except aiohttp.ClientError as exc:
                error = f"{type(exc).__name__}: {exc}".replace(self.url, self.masked_url)
            except Exception as exc:  # never let a webhook problem reach the agent
                error = f"{type(exc).__name__}: {exc}".replace(self.url, self.masked_url)
            retry = attempt - 1
            if retry >= self.retries:
                return self._failed(Outcome.GAVE_UP, dedup_key, attempt, status, error, started)
            delay = backoff_delay_s(
                retry, self.backoff_s, self.max_backoff_s, JITTER, self.rng.random()
            )
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_retry_after_s))
            logger.info(
                "webhook %s: alert %s attempt %d failed (%s); retrying in %.2fs",
                self.masked_url,
                dedup_key,
                attempt,
                error,
                delay,
            )
            if self.metrics is not None:
                self.metrics.webhook_retries.inc()
            await self.sleep(delay)

    def _failed(
        self,
        outcome: Outcome,
        dedup_key: str,
        attempts: int,
        status: int | None,
        error: str,
        started: float,
    ) -> Delivery:
        if outcome is Outcome.REJECTED:
            what = "refused the alert (not retried)"
        else:
            what = f"did not take the alert after {attempts} attempts (giving up)"
        logger.error(
            "webhook %s %s: dedup_key=%s, last error: %s", self.masked_url, what, dedup_key, error
        )
        if self.metrics is not None:
            self.metrics.webhook_failed.labels(reason=outcome.value).inc()
        return Delivery(outcome, attempts, status, time.monotonic() - started, error)
