"""What the dashboard and the overview API show: recent alerts, throughput history, lag.

Pure Python, no Faust: :mod:`streamlearn.agents.observe` feeds these from the running
worker and :mod:`streamlearn.web.overview_api` answers from them.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamlearn.alerts.envelope import SEVERITIES, severity_rank

__all__ = ["AlertBuffer", "History", "Sample", "dir_bytes", "partition_lag"]


class AlertBuffer:
    """The newest ``capacity`` alerts, once each (by dedup key), queryable by filter.

    Alert records are delivered at least once (a worker that crashes after sending
    and before committing sends again); the dedup key of the envelope names one alert,
    so a repeat replaces nothing and is not shown twice.

    Examples
    --------
    >>> buf = AlertBuffer(capacity=2)
    >>> for i, sev in enumerate(["info", "critical", "critical"]):
    ...     _ = buf.add({"type": "anomaly", "severity": sev, "key": f"k{i}", "ts": i,
    ...                  "dedup_key": f"d{i}"})
    >>> [a["key"] for a in buf.query()[0]]  # newest first, capacity 2
    ['k2', 'k1']
    >>> buf.add({"type": "anomaly", "severity": "critical", "key": "k2", "ts": 2,
    ...          "dedup_key": "d2"})
    False
    >>> [a["key"] for a in buf.query(min_severity="critical", key="k1")[0]]
    ['k1']
    """

    def __init__(self, capacity: int = 5_000) -> None:
        self.capacity = capacity
        self._alerts: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._alerts)

    def add(self, record: Mapping[str, Any]) -> bool:
        """Keep ``record`` (a dict with the envelope's fields); False for a repeat."""
        dedup = record.get("dedup_key")
        if not isinstance(dedup, str) or not dedup:
            dedup = orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()
        if dedup in self._alerts:
            return False
        self._alerts[dedup] = dict(record)
        while len(self._alerts) > self.capacity:
            self._alerts.popitem(last=False)
        return True

    def query(
        self,
        *,
        types: Iterable[str] = (),
        min_severity: str | None = None,
        severities: Iterable[str] = (),
        key: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        text: str | None = None,
        limit: int = 200,
    ) -> tuple[list[dict[str, Any]], int]:
        """(matching alerts, newest event time first, at most ``limit``; how many matched).

        Alerts of one key can sit in different partitions of the alert topics, so the
        order they were read in is not their order in event time: they are sorted by
        ``ts`` (the most recently read first among equal times).
        """
        wanted_types = set(types)
        wanted_severities = set(severities)
        floor = severity_rank(min_severity) if min_severity else -1
        needle = text.lower() if text else None
        found: list[dict[str, Any]] = []
        for alert in reversed(self._alerts.values()):
            if wanted_types and alert.get("type") not in wanted_types:
                continue
            severity = alert.get("severity")
            if wanted_severities and severity not in wanted_severities:
                continue
            if floor >= 0 and (severity not in SEVERITIES or severity_rank(severity) < floor):
                continue
            if key is not None and alert.get("key") != key:
                continue
            ts = alert.get("ts")
            if since_ms is not None and not (isinstance(ts, int | float) and ts >= since_ms):
                continue
            if until_ms is not None and not (isinstance(ts, int | float) and ts < until_ms):
                continue
            if needle is not None and needle not in _searchable(alert):
                continue
            found.append(alert)
        found.sort(key=_event_time, reverse=True)  # stable: read order among equal times
        return found[:limit], len(found)


def _event_time(alert: Mapping[str, Any]) -> float:
    ts = alert.get("ts")
    return float(ts) if isinstance(ts, int | float) else float("-inf")


def _searchable(alert: Mapping[str, Any]) -> str:
    return " ".join(str(alert.get(f, "")) for f in ("key", "subject", "message")).lower()


@dataclass(frozen=True)
class Sample:
    """Counter totals (and lag) at one moment, as the overview's history keeps them."""

    ts_ms: int
    events_in: float
    events_out: float
    dead_letters: float
    lag: int


@dataclass
class History:
    """Samples over the last ``span_s``; rates between consecutive samples.

    Examples
    --------
    >>> h = History(span_s=60)
    >>> h.add(Sample(0, events_in=0, events_out=0, dead_letters=0, lag=5))
    >>> h.add(Sample(5_000, events_in=500, events_out=1_000, dead_letters=5, lag=0))
    >>> h.series()["events_in_per_s"], h.series()["dead_letters_per_s"], h.series()["lag"]
    ([100.0], [1.0], [0])
    """

    span_s: float = 3_600.0
    samples: deque[Sample] = field(default_factory=deque)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        horizon = sample.ts_ms - self.span_s * 1000
        # One sample older than the horizon stays: it is the base of the first rate.
        while len(self.samples) > 2 and self.samples[1].ts_ms <= horizon:
            self.samples.popleft()

    def series(self) -> dict[str, list[Any]]:
        """Per-second rates (counters restarted at 0 give no negative rate) and lag."""
        out: dict[str, list[Any]] = {
            "ts_ms": [],
            "events_in_per_s": [],
            "events_out_per_s": [],
            "dead_letters_per_s": [],
            "lag": [],
        }
        pairs = zip(list(self.samples), list(self.samples)[1:], strict=False)
        for before, after in pairs:
            seconds = (after.ts_ms - before.ts_ms) / 1000
            if seconds <= 0:
                continue
            out["ts_ms"].append(after.ts_ms)
            for name in ("events_in", "events_out", "dead_letters"):
                delta = max(0.0, getattr(after, name) - getattr(before, name))
                out[f"{name}_per_s"].append(round(delta / seconds, 3))
            out["lag"].append(after.lag)
        return out


def partition_lag(highwater: int | None, committed: int | None, read: int | None) -> int | None:
    """Records in the partition not yet committed by the group (Kafka's consumer lag).

    ``highwater`` is the log end offset (the next offset to be written); ``committed``
    the next offset the group will read after a restart; before the first commit the
    position reached so far (``read``, the offset of the last record read) stands in.

    >>> partition_lag(100, 90, 95), partition_lag(100, None, 95), partition_lag(None, 1, 1)
    (10, 4, None)
    """
    if highwater is None:
        return None
    if committed is not None:
        return max(0, highwater - committed)
    if read is not None:
        return max(0, highwater - read - 1)
    return None


def dir_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it does not exist).

    Files can vanish while RocksDB compacts: they are skipped, not an error.
    """
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total
