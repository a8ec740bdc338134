"""Cost of the feature pipeline per event (pure layer: no Kafka, no Faust).

    python benchmarks/features_cost.py [--events N] [--keys K] [--repeat R]

For each configuration: ``2 * --events`` pre-generated events (3 values ``temp``,
``rpm``, ``load``, plus ``lat``/``lon`` and two ``attrs``), ``--keys`` keys round-robin,
one event per second per key. The first half warms the keys' states up (windows and
spectra full); each timed run applies ``transform`` + ``update`` to every event of the
second half, on a copy of the warm states. ``transform`` alone is timed on each key's
next event, read again and again against the warm state (a read-only predict). The best
of ``--repeat`` runs counts. Also printed: features per event and the pickled size of
one key's state.
"""

from __future__ import annotations

import argparse
import pickle
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from streamlearn.models.features import FeaturePipeline, Observation  # noqa: E402

VALUES = ["temp", "rpm", "load"]

#: Every family on, the way a heavy user would configure it.
FULL: dict[str, Any] = {
    "values": VALUES,
    "temporal": {
        "cyclical": ["hour", "weekday", "yearday"],
        "lags": 3,
        "ewma_alphas": [0.1],
        "ewma_half_lives": ["5m"],
    },
    "window": {
        "size": 64,
        "duration": "5m",
        "stats": ["count", "mean", "std", "min", "max", "z"],
        "quantiles": [0.5, 0.9],
    },
    "frequency": {"size": 32},
    "spatial": {"references": {"depot": [48.8566, 2.3522]}},
    "categorical": {"one_hot": {"mode": ["idle", "run", "fault"]}, "hash_buckets": 16},
}

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {"values": VALUES},
    "raw only": {"values": VALUES, "temporal": False},
    "+ temporal (lags 3, 2 EWMAs)": {
        "values": VALUES,
        "temporal": FULL["temporal"],
    },
    "+ window (64, 5m, 8 stats)": {"values": VALUES, "temporal": False, "window": FULL["window"]},
    "+ window, no duration": {
        "values": VALUES,
        "temporal": False,
        "window": {**FULL["window"], "duration": None},
    },
    "+ frequency (32), 1 value": {
        "values": VALUES,
        "temporal": False,
        "frequency": {**FULL["frequency"], "values": ["rpm"]},
    },
    "+ frequency (32), 3 values": {
        "values": VALUES,
        "temporal": False,
        "frequency": FULL["frequency"],
    },
    "+ spatial": {"values": VALUES, "temporal": False, "spatial": FULL["spatial"]},
    "+ categorical": {"values": VALUES, "temporal": False, "categorical": FULL["categorical"]},
    "full without frequency": {**FULL, "frequency": False},
    "full": FULL,
}


def make_events(n: int, keys: int, seed: int = 42) -> list[Observation]:
    """``n`` events over ``keys`` keys, one per second per key."""
    rng = random.Random(seed)
    t0 = 1_767_607_200_000
    events = []
    for i in range(n):
        k = i % keys
        step = i // keys
        events.append(
            Observation(
                key=f"k{k}",
                ts_ms=t0 + step * 1000,
                values={
                    "temp": 20.0 + rng.gauss(0, 1),
                    "rpm": 1500.0 + 100 * (step % 7) + rng.gauss(0, 5),
                    "load": rng.random(),
                    "lat": 48.85 + 0.001 * step + rng.gauss(0, 1e-4),
                    "lon": 2.35 + rng.gauss(0, 1e-4),
                },
                attrs={"mode": rng.choice(["idle", "run", "fault", "boot"]), "site": f"s{k}"},
            )
        )
    return events


def measure(config: dict[str, Any], events: list[Observation], repeat: int) -> dict[str, float]:
    """Warm up on the first half of ``events``; time the second half."""
    pipe = FeaturePipeline(config)
    half = len(events) // 2
    warm, timed = events[:half], events[half:]
    states: dict[str, Any] = {}
    for e in warm:  # fill windows and spectra
        state = states.get(e.key)
        if state is None:
            state = states[e.key] = pipe.new_state()
        pipe.update(e, state)
    # read-only probes: each key's next event, again and again (as a predict API would)
    probes = list({e.key: e for e in reversed(timed[: len(states)])}.values())
    probes = (probes * (len(timed) // len(probes) + 1))[: len(timed)]
    transform, update = pipe.transform, pipe.update

    def both() -> float:
        snapshot = pickle.loads(pickle.dumps(states))
        start = time.perf_counter()
        for e in timed:
            state = snapshot[e.key]
            transform(e, state)
            update(e, state)
        return time.perf_counter() - start

    def read_only() -> float:
        start = time.perf_counter()
        for e in probes:
            transform(e, states[e.key])
        return time.perf_counter() - start

    n = len(timed)
    per_event = min(both() for _ in range(repeat)) / n * 1e6
    transform_only = min(read_only() for _ in range(repeat)) / n * 1e6
    features = len(transform(probes[0], states[probes[0].key]))
    size = len(pickle.dumps(states[probes[0].key]))
    return {"us": per_event, "transform_us": transform_only, "features": features, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per timed run")
    parser.add_argument("--keys", type=int, default=50, help="keys, round-robin")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best one counts")
    args = parser.parse_args()
    events = make_events(2 * args.events, args.keys)
    print(f"python {platform.python_version()} on {platform.machine()}, {args.events} events, ")
    print(f"{args.keys} keys, best of {args.repeat}\n")
    print("| configuration | transform + update µs/event | transform µs | features | state |")
    print("|---|---|---|---|---|")
    for name, config in CONFIGS.items():
        r = measure(config, events, args.repeat)
        print(
            f"| {name} | {r['us']:.1f} | {r['transform_us']:.1f} | {r['features']:.0f} "
            f"| {r['bytes'] / 1024:.1f} KiB |"
        )


if __name__ == "__main__":
    main()
