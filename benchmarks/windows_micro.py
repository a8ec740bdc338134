"""Micro-benchmarks of the pure window layer (no Kafka, no Faust).

    python benchmarks/windows_micro.py [--values N] [--repeat R]

Prints microseconds per call, the best of ``--repeat`` runs (timeit, each run a loop
over ``--values`` pre-generated log-normal values; the loop's own overhead, ~0.02 us,
is included). Hot path per event and value: one ``WindowStats.update`` per window the
event falls in (1 for tumbling, 5 for hopping 5m/1m) and one ``window_starts`` per spec.
The flush figures are per window holding ``--values`` values.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import timeit
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import orjson  # noqa: E402

from streamlearn.analytics import RunningStats  # noqa: E402
from streamlearn.analytics.windows import (  # noqa: E402
    QuantileSketch,
    WindowSpec,
    WindowStats,
    window_id,
    window_starts,
)


def best_us(stmt: str, namespace: dict, per_run: int, repeat: int) -> float:
    """Best-of-``repeat`` microseconds per operation; ``stmt`` does ``per_run`` of them."""
    timer = timeit.Timer(stmt, globals=namespace)
    return min(timer.repeat(repeat=repeat, number=1)) / per_run * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=100_000, help="values per timed run")
    parser.add_argument("--repeat", type=int, default=7, help="runs; the best one counts")
    args = parser.parse_args()
    n, repeat = args.values, args.repeat

    rng = random.Random(42)
    xs = [rng.lognormvariate(3.0, 1.0) for _ in range(n)]
    mixed = [rng.gauss(0.0, 10.0) for _ in range(n)]
    t0 = 1_700_000_000_000
    tss = [t0 + i * 7 for i in range(n)]
    pairs = list(zip(xs, tss, strict=True))
    tumbling, hopping = WindowSpec.parse("tumbling:1m"), WindowSpec.parse("hopping:5m:1m")

    filled = WindowStats()
    for x, ts in pairs[:1000]:
        filled.update(x, ts)
    state = filled.to_list()
    raw = orjson.dumps(state)

    ns = {
        "xs": xs,
        "mixed": mixed,
        "tss": tss,
        "pairs": pairs,
        "WindowStats": WindowStats,
        "QuantileSketch": QuantileSketch,
        "RunningStats": RunningStats,
        "window_starts": window_starts,
        "window_id": window_id,
        "tumbling": tumbling,
        "hopping": hopping,
        "filled": filled,
        "state": state,
        "raw": raw,
        "orjson": orjson,
    }
    rows: list[tuple[str, float]] = []

    def run(label: str, stmt: str, per_run: int = n) -> None:
        rows.append((label, best_us(stmt, ns, per_run, repeat)))

    run(
        "WindowStats.update (positive values)",
        "w = WindowStats(); u = w.update\nfor x, ts in pairs: u(x, ts)",
    )
    run(
        "WindowStats.update (mixed-sign values)",
        "w = WindowStats(); u = w.update\nfor x, ts in zip(mixed, tss): u(x, ts)",
    )
    run("  RunningStats.update (reference)", "r = RunningStats(); u = r.update\nfor x in xs: u(x)")
    run("  QuantileSketch.add", "s = QuantileSketch(); a = s.add\nfor x in xs: a(x)")
    run("window_starts, tumbling 1m", "for ts in tss: window_starts(ts, 60_000, 60_000)")
    run("window_starts, hopping 5m/1m", "for ts in tss: window_starts(ts, 300_000, 60_000)")
    run("WindowSpec.windows_for, hopping 5m/1m", "f = hopping.windows_for\nfor ts in tss: f(ts)")
    m = max(n // 100, 10)
    run(
        "window_id",
        f"for i in range({m}): window_id('sensor-17', 'temp', 'hopping-5m-1m', i)",
        m,
    )
    run(
        "flush, 1000-value window: to_list + orjson.dumps",
        f"for _ in range({m}): orjson.dumps(filled.to_list())",
        m,
    )
    run(
        "load, 1000-value window: orjson.loads + from_list",
        f"for _ in range({m}): WindowStats.from_list(orjson.loads(raw))",
        m,
    )
    run("result() of a 1000-value window", f"for _ in range({m}): filled.result()", m)

    print(f"Python {platform.python_version()} on {platform.machine()} ({platform.system()})")
    print(
        f"best of {repeat} runs of {n} values; 1000-value window: "
        f"{len(filled.sketch.pos)} buckets, {len(raw)} bytes of JSON"
    )
    width = max(len(label) for label, _ in rows)
    for label, us in rows:
        print(f"{label:<{width}}  {us:8.3f} us")


if __name__ == "__main__":
    main()
