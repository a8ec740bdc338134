"""Answers to the time-series API from this worker's own state (keys it owns)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from streamlearn.analytics.windows import WindowSpec, WindowStats
from streamlearn.tables import KeyStats
from streamlearn.tables.windows import KeyWindows, window_record
from streamlearn.web.params import (
    BadRequest,
    NotFound,
    one_of,
    parse_duration_ms,
    required,
    time_range,
)

if TYPE_CHECKING:
    from streamlearn.worker import Worker

AGGREGATIONS = ("mean", "sum", "count", "min", "max", "p50", "p95", "p99", "std")
DAY_MS = 86_400_000


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class LocalQueries:
    """Reads the stats, windows and series state of the keys this worker owns."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.settings = worker.settings
        self.specs: dict[str, WindowSpec] = {s.name: s for s in self.settings.window_specs()}

    # --- state access ---------------------------------------------------------------
    def key_stats(self, key: str) -> KeyStats:
        stats = self.worker.stats
        state = stats.cache.peek(key)
        if state is None:
            raw = stats.table.get(key.encode())
            if raw is None:
                raise NotFound(f"unknown key {key!r}")
            state = stats.decode(raw)
        return state

    def key_windows(self, key: str) -> KeyWindows:
        windows = self.worker.windows
        state = windows.cache.peek(key)
        if state is None:
            raw = windows.table.get(key.encode())
            state = KeyWindows.from_bytes(raw) if raw is not None else KeyWindows()
        return state

    def local_keys(self) -> list[str]:
        keys = {raw.decode() for raw in self.worker.stats.table}
        keys.update(key for key, _ in self.worker.stats.cache.items())
        return sorted(keys)

    # --- endpoints --------------------------------------------------------------------
    def recent_events(self, key: str, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /api/v1/events/{key}?value=``: the raw events this worker holds."""
        recent = self.worker.recent
        if recent is None:
            raise NotFound("raw events are not kept (setting recent_events_per_key is 0)")
        value = required(query, "value")
        from_ms, to_ms = time_range(
            query,
            default_to_ms=2**62,
            default_span_ms=2**62,
            max_span_ms=2**63,
        )
        limit_text = query.get("limit", str(recent.capacity))
        if not limit_text.isdigit() or int(limit_text) < 1:
            raise BadRequest(f"limit={limit_text!r} must be a whole number of at least 1")
        return recent.query(key, value, from_ms, to_ms, int(limit_text))

    def stats(self, key: str) -> dict[str, Any]:
        state = self.key_stats(key)
        return {
            "key": key,
            "events": state.events,
            "first_ts": state.first_ts,
            "last_ts": state.last_ts,
            "rate_per_s": state.rate_per_s,
            "values": {
                name: {
                    "count": s.count,
                    "mean": s.mean,
                    "variance": s.variance,
                    "std": s.std,
                    "min": s.min,
                    "max": s.max,
                    "ewma": _finite(state.ewma[name].mean),
                }
                for name, s in sorted(state.values.items())
            },
            "correlations": {
                name: {
                    "n": p.n,
                    "covariance": _finite(p.covariance),
                    "pearson_r": _finite(p.correlation),
                }
                for name, p in sorted(state.pairs.items())
            },
            "attrs": state.attrs,
        }

    def _series_args(
        self, key: str, query: Mapping[str, str]
    ) -> tuple[KeyStats, str, WindowSpec, int, int]:
        state = self.key_stats(key)
        value = required(query, "value")
        if value not in state.values:
            raise NotFound(
                f"key {key!r} has no value {value!r}; it has {', '.join(sorted(state.values))}"
            )
        window = query.get("window") or next(iter(self.specs))
        one_of("window", window, list(self.specs))
        default_to = state.last_ts + 1 if state.last_ts else int(time.time() * 1000)
        from_ms, to_ms = time_range(
            query,
            default_to_ms=default_to,
            default_span_ms=DAY_MS,
            max_span_ms=self.settings.api_max_range_ms,
        )
        return state, value, self.specs[window], from_ms, to_ms

    def _windows_in_range(
        self, key: str, value: str, spec: WindowSpec, from_ms: int, to_ms: int
    ) -> list[tuple[dict[str, Any], WindowStats]]:
        out = []
        for entry in self.worker.windows.series.range(key, value, spec.name, from_ms, to_ms):
            out.append((entry["record"], WindowStats.from_list(entry["state"])))
        for start, stats in self.key_windows(key).open_results(spec.name, value):
            if from_ms <= start < to_ms:
                record = window_record(key, value, spec, start, stats)
                record["closed"] = False
                out.append((record, stats))
        out.sort(key=lambda pair: pair[0]["start"])
        return out

    def series(self, key: str, query: Mapping[str, str]) -> dict[str, Any]:
        _, value, spec, from_ms, to_ms = self._series_args(key, query)
        windows = self._windows_in_range(key, value, spec, from_ms, to_ms)
        return {
            "key": key,
            "value": value,
            "window": spec.name,
            "from": from_ms,
            "to": to_ms,
            "windows": [
                {
                    "start": r["start"],
                    "end": r["end"],
                    "closed": r["closed"],
                    "id": r["id"],
                    "stats": r["stats"],
                }
                for r, _ in windows
            ],
        }

    def aggregate(self, key: str, query: Mapping[str, str]) -> dict[str, Any]:
        """Re-aggregate the finest tumbling windows into ``every``-long buckets."""
        agg = one_of("agg", query.get("agg", "mean"), AGGREGATIONS)
        every_ms = parse_duration_ms("every", query.get("every", "5m"))
        base = self.base_spec()
        if every_ms % base.size_ms:
            raise BadRequest(
                f"every={query.get('every')} must be a multiple of the finest tumbling window "
                f"({base.text})"
            )
        params = dict(query)
        params["window"] = base.name
        _, value, _, from_ms, to_ms = self._series_args(key, params)
        buckets: dict[int, WindowStats] = {}
        for record, stats in self._windows_in_range(key, value, base, from_ms, to_ms):
            bucket = record["start"] - record["start"] % every_ms
            merged = buckets.get(bucket)
            buckets[bucket] = stats if merged is None else merged.merge(stats)
        points = []
        for start in sorted(buckets):
            result = buckets[start].result()
            number = result[agg]
            points.append(
                {
                    "start": start,
                    "end": start + every_ms,
                    "value": None if number is None or not math.isfinite(number) else number,
                    "count": result["count"],
                }
            )
        return {
            "key": key,
            "value": value,
            "agg": agg,
            "every_ms": every_ms,
            "from": from_ms,
            "to": to_ms,
            "points": points,
        }

    def base_spec(self) -> WindowSpec:
        tumbling = [s for s in self.specs.values() if s.step_ms == s.size_ms]
        if not tumbling:
            raise BadRequest("downsampling needs a tumbling window in the windows setting")
        return min(tumbling, key=lambda s: s.size_ms)
