"""Signed state checkpoints: open one, or drop it and start over (never crash, never
unpickle an unverified one)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from streamlearn.models.envelope import open_envelope
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
