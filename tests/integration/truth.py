"""Ground truth for windowed aggregates, by brute force over the input."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from streamlearn.analytics.windows import WindowSpec, window_id


@dataclass
class Truth:
    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    first_ts: int = 2**62
    first: float = 0.0
    last_ts: int = -(2**62)
    last: float = 0.0
    xs: list[float] | None = None

    def add(self, x: float, ts: int) -> None:
        self.count += 1
        self.total += x  # exact: the test values are dyadic, sums fit a double
        self.minimum = min(self.minimum, x)
        self.maximum = max(self.maximum, x)
        if ts < self.first_ts:
            self.first_ts, self.first = ts, x
        if ts > self.last_ts:
            self.last_ts, self.last = ts, x
        if self.xs is None:
            self.xs = []
        self.xs.append(x)


def make_events(n: int, keys: int, seed: int, disorder_ms: int) -> list[dict[str, Any]]:
    """``n`` events, unique ts per key, in a send order out of order by < disorder_ms.

    Values are multiples of 1/1024 below 2**10 in size, so every sum is exact in
    floating point whatever the order of addition.
    """
    rng = random.Random(seed)
    base = 1_700_000_000_000
    events = []
    for i in range(n):
        key = f"key-{rng.randrange(keys):03d}"
        ts = base + i * 20
        values = {
            "a": rng.randint(-(2**20), 2**20) / 1024,
            "b": rng.randint(0, 2**18) / 1024,
        }
        events.append({"id": f"e{i}", "key": key, "ts": ts, "values": values})
    jittered = sorted(events, key=lambda e: e["ts"] + rng.uniform(0, disorder_ms))
    return jittered


def window_truth(
    events: list[dict[str, Any]], specs: list[WindowSpec]
) -> dict[str, dict[str, Any]]:
    acc: dict[str, Truth] = defaultdict(Truth)
    for event in events:
        for spec in specs:
            for start in spec.windows_for(event["ts"]):
                for name, x in event["values"].items():
                    acc[window_id(event["key"], name, spec.name, start)].add(x, event["ts"])
    out = {}
    for wid, t in acc.items():
        mean = math.fsum(t.xs) / t.count
        variance = math.fsum((x - mean) ** 2 for x in t.xs) / (t.count - 1) if t.count > 1 else 0.0
        out[wid] = {
            "count": t.count,
            "sum": t.total,
            "min": t.minimum,
            "max": t.maximum,
            "first": t.first,
            "last": t.last,
            "mean": mean,
            "variance": variance,
        }
    return out


def compare(expected: dict[str, dict[str, Any]], got: dict[str, dict[str, Any]]) -> list[str]:
    """Differences, as readable lines (empty when equal)."""
    problems = []
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing:
        problems.append(f"{len(missing)} windows missing, e.g. {missing[:3]}")
    if extra:
        problems.append(f"{len(extra)} unexpected windows, e.g. {extra[:3]}")
    for wid in sorted(set(expected) & set(got)):
        e, g = expected[wid], got[wid]
        for field in ("count", "sum", "min", "max", "first", "last"):
            if e[field] != g[field]:
                problems.append(f"{wid}: {field} {g[field]!r} != {e[field]!r}")
        for field in ("mean", "variance"):
            if not math.isclose(e[field], g[field], rel_tol=1e-9, abs_tol=1e-12):
                problems.append(f"{wid}: {field} {g[field]!r} != {e[field]!r}")
    return problems
