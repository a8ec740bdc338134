"""Seasonal sensor series with labelled, injected anomalies: a benchmark and demo source.

Each key is a device sampled every ``interval_ms`` (5 minutes by default) with three
values driven by one daily cycle of ``period`` events:

============ ======= ========================== =========== ==========
value        level   daily cycle (amplitude)    noise sigma resolution
============ ======= ========================== =========== ==========
temperature  20      4.0 (8 sigma)              0.5         0.01
load         50      15.0 (5 sigma)             3.0         0.1
pressure     3.0     0.2 (4 sigma)              0.05        0.001
============ ======= ========================== =========== ==========

The cycle is ``sin(phase) + 0.3 sin(2 phase)`` with a phase offset per key; the noise
of the three values is correlated (a shared component, correlation 0.36), each level
also wanders as a slow random walk (0.02 sigma per event), and values are rounded to
the sensor's resolution (so a repeated value happens now and then, as with real
sensors: about once in 100 to 200 events).

After ``clean`` events of warm-up (7 days by default), segments of five kinds are
injected into one value of a key each, one per slot of ``slot`` events (2,500 by
default, so segments are over a thousand events apart and about 4 % of the events
are anomalous), at a random place in the middle half of the slot, with magnitudes in
units of that value's noise sigma (added to the noise, not replacing it):

* ``spike``: one event ``+-6`` sigma;
* ``level_shift``: ``+-4`` sigma for 50-150 events, then back;
* ``variance``: noise sigma x2 (variance x4) for 100-200 events;
* ``stuck``: the value frozen at its last reading for 50-150 events;
* ``drift``: a linear ramp from 0 to ``+-6`` sigma over 100-200 events, then back.

Everything is drawn from one ``random.Random(seed)``: same arguments, same events.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from streamlearn.models.anomaly.base import AnomalyError

__all__ = ["KINDS", "Segment", "SyntheticData", "SyntheticEvent", "generate"]

#: Anomaly kinds, in the order segments are dealt per key.
KINDS = ("spike", "level_shift", "variance", "stuck", "drift")

#: name: (level, daily amplitude, noise sigma, resolution)
VALUES: dict[str, tuple[float, float, float, float]] = {
    "temperature": (20.0, 4.0, 0.5, 0.01),
    "load": (50.0, 15.0, 3.0, 0.1),
    "pressure": (3.0, 0.2, 0.05, 0.001),
}
#: Weight of the shared noise component: noise = sigma * (0.6 shared + 0.8 own).
SHARED = 0.6
#: Random walk of each level, per event, in noise sigmas.
WANDER = 0.02

#: (min, max) length in events, per kind.
LENGTHS = {
    "spike": (1, 1),
    "level_shift": (50, 150),
    "variance": (100, 200),
    "stuck": (50, 150),
    "drift": (100, 200),
}
SPIKE_SIGMAS = 6.0
SHIFT_SIGMAS = 4.0
VARIANCE_FACTOR = 2.0  # on sigma
DRIFT_SIGMAS = 6.0


@dataclass(frozen=True, slots=True)
class Segment:
    """One injected anomaly: events ``start..end`` (inclusive) of ``key``, in ``value``."""

    key: str
    kind: str
    value: str
    start: int
    end: int
    sign: float = 1.0


@dataclass(frozen=True, slots=True)
class SyntheticEvent:
    """One event: its key, index within the key, time, values and label (a kind or None)."""

    key: str
    index: int
    ts_ms: int
    values: dict[str, float]
    kind: str | None = None


@dataclass(frozen=True)
class SyntheticData:
    """Events of all keys in time order (keys interleaved) and the injected segments."""

    events: list[SyntheticEvent]
    segments: list[Segment]
    params: dict[str, int | float] = field(default_factory=dict)


def generate(
    keys: int = 10,
    per_kind: int = 2,
    slot: int = 2500,
    period: int = 288,
    clean: int = 2016,
    seed: int = 0,
    interval_ms: int = 300_000,
    events_per_key: int | None = None,
) -> SyntheticData:
    """Seasonal series of ``keys`` keys with ``per_kind`` segments of each kind per key.

    Parameters
    ----------
    keys
        Number of keys (``device-0``, ``device-1``...).
    per_kind
        Segments of each of the five kinds per key.
    slot
        Events per segment: each segment lies in its own slot, away from its edges.
        Anomalous events are then about 4 % of the events with the default 2,500.
    period
        Events per daily cycle.
    clean
        Events at the start of each key without anomalies.
    seed
        Seed of the one random generator.
    interval_ms
        Time between two events of a key.
    events_per_key
        Events per key; by default ``clean + 5 * per_kind * slot``. When given, the
        slots are as long as fit after ``clean``.

    Examples
    --------
    >>> data = generate(keys=2, per_kind=1, slot=500, clean=500, seed=1)
    >>> len(data.events), len(data.segments)
    (6000, 10)
    >>> first = data.events[0]
    >>> first.key, first.index, sorted(first.values), first.kind
    ('device-0', 0, ['load', 'pressure', 'temperature'], None)
    >>> sorted({s.kind for s in data.segments}) == sorted(KINDS)
    True
    >>> again = generate(keys=2, per_kind=1, slot=500, clean=500, seed=1)
    >>> again.events == data.events and again.segments == data.segments
    True
    """
    slots = per_kind * len(KINDS)
    if events_per_key is None:
        events_per_key = clean + slots * slot
    else:
        slot = (events_per_key - clean) // max(slots, 1)
    longest = max(hi for _, hi in LENGTHS.values())
    if slots and slot < 2 * longest:
        raise AnomalyError(
            f"{events_per_key} events per key leave {slot} per segment after {clean} clean "
            f"ones; need at least {2 * longest}"
        )
    rng = random.Random(seed)
    series: list[list[SyntheticEvent]] = []
    segments: list[Segment] = []
    for k in range(keys):
        key = f"device-{k}"
        plan = _plan(rng, key, clean, slot, per_kind)
        segments.extend(plan)
        series.append(_series(rng, key, events_per_key, period, interval_ms, plan))
    events = [e for row in zip(*series, strict=True) for e in row]
    params = {
        "keys": keys,
        "events_per_key": events_per_key,
        "per_kind": per_kind,
        "slot": slot,
        "period": period,
        "clean": clean,
        "seed": seed,
        "interval_ms": interval_ms,
    }
    return SyntheticData(events, segments, params)


def _plan(rng: random.Random, key: str, clean: int, slot: int, per_kind: int) -> list[Segment]:
    """Segments of one key: kinds shuffled into equal slots, each at a random offset."""
    kinds = [kind for kind in KINDS for _ in range(per_kind)]
    rng.shuffle(kinds)
    names = sorted(VALUES)
    plan = []
    for i, kind in enumerate(kinds):
        lo, hi = LENGTHS[kind]
        length = rng.randint(lo, hi)
        margin = slot // 4  # the previous segment's effects fade before the next one
        start = clean + i * slot + margin + rng.randrange(slot - length - 2 * margin)
        sign = rng.choice((-1.0, 1.0))
        plan.append(Segment(key, kind, rng.choice(names), start, start + length - 1, sign))
    return plan


def _series(
    rng: random.Random,
    key: str,
    n: int,
    period: int,
    interval_ms: int,
    plan: list[Segment],
) -> list[SyntheticEvent]:
    """One key's events, with the segments of ``plan`` applied."""
    by_index = {i: s for s in plan for i in range(s.start, s.end + 1)}
    offset = rng.uniform(0.0, 2.0 * math.pi)
    wander = dict.fromkeys(VALUES, 0.0)
    last: dict[str, float] = {}
    out = []
    for i in range(n):
        phase = 2.0 * math.pi * i / period + offset
        cycle = math.sin(phase) + 0.3 * math.sin(2.0 * phase)
        shared = rng.gauss(0.0, 1.0)
        segment = by_index.get(i)
        values = {}
        for name, (level, amplitude, sigma, resolution) in VALUES.items():
            wander[name] += rng.gauss(0.0, WANDER * sigma)
            noise = SHARED * shared + 0.8 * rng.gauss(0.0, 1.0)
            v = level + wander[name] + amplitude * cycle
            if segment is not None and segment.value == name:
                if segment.kind == "stuck":
                    values[name] = last[name]
                    continue
                v, noise = _inject(segment, i, sigma, v, noise)
            v += sigma * noise
            values[name] = last[name] = round(round(v / resolution) * resolution, 6)
        out.append(
            SyntheticEvent(key, i, i * interval_ms, values, segment.kind if segment else None)
        )
    return out


def _inject(segment: Segment, i: int, sigma: float, v: float, noise: float) -> tuple[float, float]:
    """The clean value and unit noise of event ``i`` changed by ``segment``."""
    kind, sign = segment.kind, segment.sign
    if kind == "spike":
        return v + sign * SPIKE_SIGMAS * sigma, noise
    if kind == "level_shift":
        return v + sign * SHIFT_SIGMAS * sigma, noise
    if kind == "variance":
        return v, noise * VARIANCE_FACTOR
    # drift: 0 at the start, the full ramp at the end
    length = segment.end - segment.start + 1
    return v + sign * DRIFT_SIGMAS * sigma * (i - segment.start + 1) / length, noise
