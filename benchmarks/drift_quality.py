"""Quality and cost of the drift detectors (pure layer: no Kafka, no Faust).

    python benchmarks/drift_quality.py [--quick] [--seeds N] [--out FILE]

**Concept drift.** River's ``ConceptDriftStream`` joins two concepts of a synthetic
generator at event ``POSITION`` (10,000): SEA (variant 2 -> 3, no noise: the threshold
on x1 + x2 moves from 7 to 9.5, 21 % of the space changes label) and Agrawal
(classification function 0 -> 2), abrupt (width 1) and gradual (width 1,000), over
``--seeds`` seeds. A ``logreg-rbf`` learner (``build_learner``) predicts, then learns,
each event; its error stream (misclassified = True) goes to a
``ConceptDriftMonitor`` with each concept detector at its defaults (the stream's own
path: warm-up, cooldown, records only for an error increase). Reported: the delay
from the drift point to the first record after it (median and worst over seeds;
``miss``: none within 10,000 events) and the false alarms per 100,000 stationary
events: records on a stream of one concept (SEA variant 2 and SEA variant 0 with 10 %
label noise, Agrawal function 0), counted after a 5,000-event warm-up.

**Data drift.** One value per stream, a change at event 5,000: a mean shift
(N(0, 1) -> N(1, 1)), a variance change (N(0, 1) -> N(0, 2^2)), a new category (levels
0/1/2 -> 20 % of a new level 3). Each data detector runs through a
``DataDriftMonitor`` at default settings (reference = the first 1,000 values, its
online detector plus the KS + PSI comparison); the ``ks+psi only`` row is the
comparison alone (every 1,000 values, last 1,000 vs the reference). False alarms: on
100,000 stationary values each of N(0, 1), Student t(3) and the 3-level category.

**Cost**: µs per value of ``DataDriftMonitor.update`` (5 values per event) and per
error of ``ConceptDriftMonitor.update``; the pickled size of a 5-value key state.

Goals at default settings: abrupt concept drift detected within 1,000 events; <= 1
false alarm per 100,000 stationary events. About 3 minutes on 2 cores (KSWIN, a KS
test per event, is most of it). Results: a markdown table on stdout, JSON in
``benchmarks/results/drift_quality.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
from river.datasets import synth  # noqa: E402

from streamlearn.drift.compare import compare as compare_windows  # noqa: E402
from streamlearn.drift.detectors import DATA_DETECTORS, detector_names  # noqa: E402
from streamlearn.drift.monitor import ConceptDriftMonitor, DataDriftMonitor, DriftConfig  # noqa: E402
from streamlearn.models.learners import build_learner  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
POSITION = 10_000  # concept drift point
AFTER = 10_000  # events after it a detection may come
WARMUP = 5_000  # stationary events not counted
DATA_POSITION = 5_000
DATA_AFTER = 3_000


class DriftStream(synth.ConceptDriftStream):
    """``ConceptDriftStream`` that also takes ``width=1`` (River's sigmoid overflows)."""

    def __iter__(self) -> Iterator[tuple[dict, Any]]:
        rng = random.Random(self.seed)
        first, second = iter(self.stream), iter(self.drift_stream)
        i = 0
        while True:
            i += 1
            exponent = min(700.0, -4.0 * (i - self.position) / self.width)
            p_drift = 1.0 / (1.0 + math.exp(exponent))
            try:
                yield next(second) if rng.random() < p_drift else next(first)
            except StopIteration:
                return


def concept(gen: str, function: int, seed: int, noise: float = 0.0) -> synth.base.SyntheticDataset:
    if gen == "sea":
        return synth.SEA(variant=function, noise=noise, seed=seed)
    return synth.Agrawal(classification_function=function, seed=seed)


CONCEPTS = {"sea": (2, 3), "agrawal": (0, 2)}
STATIONARY = {"sea": ("sea", 2, 0.0), "sea-noise": ("sea", 0, 0.1), "agrawal": ("agrawal", 0, 0.0)}


def error_stream(stream: Any, n: int) -> np.ndarray:
    """Prequential errors (True = misclassified) of a fresh logreg-rbf on ``stream``."""
    model = build_learner("logreg-rbf", "classification")
    errors = np.zeros(n, dtype=bool)
    for i, (x, y) in enumerate(stream.take(n)):
        y = bool(y)
        errors[i] = model.predict_one(x) != y
        model.learn_one(x, y)
    return errors


def concept_records(name: str, errors: np.ndarray) -> list[int]:
    """Indexes of the errors on which a default ConceptDriftMonitor emits a record."""
    monitor = ConceptDriftMonitor(DriftConfig(concept_detector=name), "classification")
    state = monitor.new_state()
    update = monitor.update
    return [i for i, e in enumerate(errors.tolist()) if update(state, "m", None, e, i)]


def delay(hits: list[int], position: int, horizon: int) -> int | None:
    after = [i - position for i in hits if position <= i < position + horizon]
    return after[0] if after else None


def delays_summary(delays: list[int | None]) -> dict[str, Any]:
    found = [d for d in delays if d is not None]
    return {
        "delays": delays,
        "detected": f"{len(found)}/{len(delays)}",
        "median": statistics.median(found) if found else None,
        "worst": None if len(found) < len(delays) else max(found),
    }


def run_concept(seeds: int, stationary_events: int, kswin_events: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    drifted = {}
    for gen, (a, b) in CONCEPTS.items():
        for width in (1, 1000):
            for seed in range(seeds):
                stream = DriftStream(
                    concept(gen, a, seed), concept(gen, b, seed + 100), POSITION, width, seed
                )
                drifted[(gen, width, seed)] = error_stream(stream, POSITION + AFTER)
    stationary = {
        name: error_stream(concept(gen, f, seed=7, noise=noise), WARMUP + stationary_events)
        for name, (gen, f, noise) in STATIONARY.items()
    }
    learner_s = time.perf_counter() - t0
    out: dict[str, Any] = {"learner_s": learner_s, "error_rate": {}, "detectors": {}}
    for name, e in stationary.items():
        out["error_rate"][f"{name} stationary"] = float(e[WARMUP:].mean())
    for name in detector_names("classification"):
        row: dict[str, Any] = {}
        for gen in CONCEPTS:
            for width in (1, 1000):
                found = [
                    delay(concept_records(name, drifted[(gen, width, s)]), POSITION, AFTER)
                    for s in range(seeds)
                ]
                row[f"{gen} w={width}"] = delays_summary(found)
        alarms, events = 0, 0
        started = time.perf_counter()
        for e in stationary.values():
            n = kswin_events if name == "kswin" else stationary_events
            alarms += sum(1 for i in concept_records(name, e[: WARMUP + n]) if i >= WARMUP)
            events += n
        row["false_alarms"] = alarms
        row["stationary_events"] = events
        row["false_per_100k"] = alarms / events * 100_000
        row["us_per_error"] = (time.perf_counter() - started) / (events + WARMUP * 3) * 1e6
        out["detectors"][name] = row
        print(f"  concept {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


DATA_KINDS = ("mean shift", "variance change", "new category")


def data_values(kind: str, n: int, position: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "new category":
        before = rng.choice(3, size=position, p=[0.5, 0.3, 0.2])
        after = rng.choice(4, size=n - position, p=[0.4, 0.24, 0.16, 0.2])
        return np.r_[before, after].astype(np.float64)
    x = rng.normal(size=n)
    if kind == "mean shift":
        x[position:] += 1.0
    else:
        x[position:] *= 2.0
    return x


def stationary_values(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(size=n)
    if kind == "student-t3":
        return rng.standard_t(3, size=n)
    return rng.choice(3, size=n, p=[0.5, 0.3, 0.2]).astype(np.float64)


def monitor_records(name: str, values: np.ndarray) -> list[int]:
    monitor = DataDriftMonitor(DriftConfig(detector=name))
    state = monitor.new_state()
    update = monitor.update
    return [i for i, x in enumerate(values.tolist()) if update(state, "k", {"v": x}, i)]


def comparison_records(values: np.ndarray, config: DriftConfig | None = None) -> list[int]:
    """The KS + PSI rule alone: first N values as reference, every M the last W."""
    config = config or DriftConfig()
    ref = values[: config.reference_events]
    hits = []
    start = config.reference_events + config.window_events
    for end in range(start, values.size + 1, config.compare_every):
        result = compare_windows(ref, values[end - config.window_events : end])
        if result.drifted(config.compare_alpha, config.psi_threshold):
            hits.append(end - 1)
    return hits


def run_data(seeds: int, stationary_events: int, kswin_events: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    rows: dict[str, Callable[[np.ndarray], list[int]]] = {
        f"{name} + ks+psi (monitor)": (lambda v, name=name: monitor_records(name, v))
        for name in DATA_DETECTORS
    }
    rows["ks+psi only"] = comparison_records
    out: dict[str, Any] = {}
    n = DATA_POSITION + DATA_AFTER
    for row_name, run in rows.items():
        row: dict[str, Any] = {}
        for kind in DATA_KINDS:
            found = [
                delay(run(data_values(kind, n, DATA_POSITION, s)), DATA_POSITION, DATA_AFTER)
                for s in range(seeds)
            ]
            row[kind] = delays_summary(found)
        alarms, events = 0, 0
        size = kswin_events if row_name.startswith("kswin") else stationary_events
        for i, kind in enumerate(("normal", "student-t3", "category")):
            alarms += len(run(stationary_values(kind, size, 1000 + i)))
            events += size
        row["false_alarms"] = alarms
        row["stationary_events"] = events
        row["false_per_100k"] = alarms / events * 100_000
        out[row_name] = row
        print(f"  data {row_name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def run_cost(events: int = 20_000) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    names = [f"v{i}" for i in range(5)]
    rows = [dict(zip(names, r, strict=True)) for r in rng.normal(size=(events, 5)).tolist()]
    out: dict[str, Any] = {}
    for detector in DATA_DETECTORS:
        count = events if detector != "kswin" else 4_000
        monitor = DataDriftMonitor(DriftConfig(detector=detector))
        state = monitor.new_state()
        started = time.perf_counter()
        for i, row in enumerate(rows[:count]):
            monitor.update(state, "k", row, i)
        seconds = time.perf_counter() - started
        out[f"data {detector} us/value"] = seconds / (count * 5) * 1e6
        out[f"data {detector} state bytes (5 values)"] = len(pickle.dumps(state))
    errors = (rng.random(events) < 0.1).tolist()
    for detector in ("adwin", "hddm-a"):
        cmonitor = ConceptDriftMonitor(DriftConfig(concept_detector=detector), "classification")
        cstate = cmonitor.new_state()
        started = time.perf_counter()
        for i, e in enumerate(errors):
            cmonitor.update(cstate, "m", None, e, i)
        out[f"concept {detector} us/error"] = (time.perf_counter() - started) / events * 1e6
        out[f"concept {detector} state bytes"] = len(pickle.dumps(cstate))
    return out


def _delay_cell(cell: dict[str, Any]) -> str:
    if cell["median"] is None:
        return f"miss ({cell['detected']})"
    worst = "miss" if cell["worst"] is None else cell["worst"]
    return f"{cell['median']:.0f} / {worst} ({cell['detected']})"


def table(rows: dict[str, dict[str, Any]], columns: list[str]) -> str:
    lines = [
        "| detector | " + " | ".join(columns) + " | false alarms / 100k |",
        "|---|" + "---|" * (len(columns) + 1),
    ]
    for name, row in rows.items():
        cells = [_delay_cell(row[c]) for c in columns]
        fa = f"{row['false_per_100k']:.2f} ({row['false_alarms']} in {row['stationary_events']:,})"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {fa} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: fewer events")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, help="results JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = 2 if args.quick else args.seeds
    stationary = 20_000 if args.quick else 100_000
    kswin = 5_000 if args.quick else 30_000
    started = time.perf_counter()
    results = {
        "concept": run_concept(seeds, stationary, kswin),
        "data": run_data(seeds, stationary, kswin),
        "cost": run_cost(),
    }
    doc = {
        "benchmark": "drift_quality",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "quick": args.quick,
        "seeds": seeds,
        "seconds": time.perf_counter() - started,
        **results,
    }
    out = args.out or RESULTS_DIR / "drift_quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    columns = [f"{g} w={w}" for g in CONCEPTS for w in (1, 1000)]
    print("### Concept drift: delay median / worst (detected/seeds)\n")
    print(table(results["concept"]["detectors"], columns) + "\n")
    print("### Data drift: delay median / worst (detected/seeds)\n")
    print(table(results["data"], list(DATA_KINDS)) + "\n")
    print("### Cost\n")
    for name, value in results["cost"].items():
        print(f"- {name}: {value:,.2f}")
    print(f"\n{doc['seconds']:.0f} s; JSON in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
