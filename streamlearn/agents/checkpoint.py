"""Signed per-key state: open a checkpoint or drop it and start over (never crash, never
unpickle an unverified one), and the component plumbing every such state shares."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from streamlearn.models.envelope import open_envelope
from streamlearn.tables import StateCache
from streamlearn.web.metrics import Metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")


def open_checkpoint(
    raw: bytes,
    key: bytes,
    expected: type[T],
    fresh: Callable[[], T],
    metrics: Metrics,
    what: str,
) -> T:
    """The ``expected`` state in ``raw``; ``fresh()`` (logged, counted) when ``raw`` is
    not a checkpoint this app signed, or holds something else.

    ``what`` completes "discarding a <what>", e.g. ``"model checkpoint (the model starts
    over)"``.
    """
    try:
        state: Any = open_envelope(raw, key)
        if not isinstance(state, expected):
            raise TypeError(f"expected {expected.__name__}, found {type(state).__name__}")
    except Exception as exc:
        logger.error("discarding a %s: %s", what, exc)
        metrics.checkpoint_rejected.inc()
        return fresh()
    return state


class CachedComponent(Generic[T]):
    """A pipeline component whose state is a :class:`StateCache` (``self.cache``): state
    written once per batch, forgotten on rebalance, looked up for queries."""

    cache: StateCache[T]

    def on_batch_end(self, now_s: float) -> None:
        pass

    def flush_state(self) -> None:
        self.cache.flush()

    def on_timer(self, now_s: float) -> None:
        pass

    def on_rebalance(self) -> None:
        self.cache.clear()

    def state_of(self, key: str) -> T | None:
        """The state of ``key`` if this worker holds it (cached or in the table)."""
        return self.cache.lookup(key)
