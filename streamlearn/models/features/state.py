"""What a key's features remember between events: bounded, plain Python, picklable."""

from __future__ import annotations

from collections import deque
from typing import Any

from streamlearn.models.features.stats import WindowState

__all__ = ["KeyFeatures", "ValueHistory"]


class ValueHistory:
    """One value name's past: its last values (ring buffer), their times, its EWMAs.

    Parameters
    ----------
    size
        Values kept (0: none, when only EWMAs are needed).
    timed
        Also keep each value's event time (ms), for time windows and spectra in Hz.
    window
        Keep a :class:`~streamlearn.models.features.stats.WindowState` over the last
        values (window statistics).

    Examples
    --------
    >>> h = ValueHistory(size=2, timed=False)
    >>> for v in [1.0, 2.0, 3.0]:
    ...     h.values.append(v)
    >>> list(h.values)
    [2.0, 3.0]
    """

    __slots__ = ("ewma", "last_ts", "times", "values", "window")

    def __init__(self, size: int, timed: bool, window: bool = False) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.times: deque[int] | None = deque(maxlen=size) if timed else None
        #: one per configured EWMA, empty until the first value
        self.ewma: list[float] = []
        #: event time (ms) of the last value, None before the first
        self.last_ts: int | None = None
        #: the window's sorted values and running moments (its values: the last n here)
        self.window = WindowState() if window else None

    def __getstate__(self) -> tuple[Any, ...]:
        w = self.window
        moments = None if w is None else (w.n, w.mean, w.m2, w.removals)
        return (self.values, self.times, self.ewma, self.last_ts, moments)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.values, self.times, self.ewma, self.last_ts, moments = state
        self.window = None
        if moments is not None:  # the sorted copy is rebuilt, not stored
            w = self.window = WindowState()
            w.n, w.mean, w.m2, w.removals = moments
            values = self.values
            w.sorted = sorted([values[i] for i in range(len(values) - w.n, len(values))])


class KeyFeatures:
    """A key's feature state: made by :meth:`FeaturePipeline.new_state
    <streamlearn.models.features.pipeline.FeaturePipeline.new_state>`, advanced by its
    ``update``, only read by its ``transform``.

    Its size is bounded by the configuration: at most ``max_values`` (or the configured
    ``values``) histories of at most the largest ring buffer a family needs.

    Examples
    --------
    >>> import pickle
    >>> state = KeyFeatures("cfg")
    >>> state.history["temp"] = ValueHistory(4, timed=False)
    >>> state.history["temp"].values.append(1.5)
    >>> copy = pickle.loads(pickle.dumps(state))
    >>> copy.summary()
    {'events': 0, 'last_ts_ms': None, 'values': ['temp']}
    """

    __slots__ = ("config_id", "events", "geo", "history", "last_ts_ms")

    def __init__(self, config_id: str) -> None:
        #: fingerprint of the configuration that made this state
        self.config_id = config_id
        #: events applied by ``update``
        self.events = 0
        #: latest event time (ms) applied, None before the first
        self.last_ts_ms: int | None = None
        #: value name -> its history
        self.history: dict[str, ValueHistory] = {}
        #: (lat, lon, ts_ms) of the last valid position
        self.geo: tuple[float, float, int] | None = None

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.config_id, self.events, self.last_ts_ms, self.history, self.geo)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.config_id, self.events, self.last_ts_ms, self.history, self.geo = state

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (for the query API)."""
        return {
            "events": self.events,
            "last_ts_ms": self.last_ts_ms,
            "values": sorted(self.history),
        }

    def __repr__(self) -> str:
        return (
            f"KeyFeatures(events={self.events}, last_ts_ms={self.last_ts_ms}, "
            f"values={sorted(self.history)})"
        )
