"""Quality and cost of the anomaly detectors (pure layer: no Kafka, no Faust).

    python benchmarks/anomaly_quality.py [--quick] [--only NAME ...] [--out FILE]

Two benchmarks, each over every detector of ``DETECTORS`` (default parameters) and a
few configured detectors and ensembles (:func:`candidates`):

**Shuttle** (River's bundled ``datasets.Shuttle``: 49,097 rows, 9 numeric values,
label 1 = a rare class, 7 %). Progressive protocol, in file order: each row is scored,
then learned, by the detector wrapped in ``Calibrated`` (the scores the alert layer
sees, in ``[0, 1]``). Reported: ROC-AUC, PR-AUC (average precision) and the best F1
over all thresholds of those scores (scikit-learn's metrics); CPU µs per row (score +
learn, calibration included) and, apart, of the bare detector (no calibration; on the
first 10,000 rows).

**Synthetic** (:mod:`streamlearn.models.anomaly.synthetic`: seasonal sensor series,
10 keys x 27,016 events of three correlated values, 20 injected segments of each of
five kinds: spikes, level shifts, variance changes, stuck sensors, drifts; magnitudes
in that module's docstring; about 4 % of the events are anomalous). Each key has a
``KeyScorer(detector, AlertPolicy(warmup=...))``: the alert layer of the stream
(threshold 0.9999, episodes, anomalies not learned), with the warm-up raised to
``SEASONAL_WARMUP`` for detectors that need 7 seasons of history. An event the scorer
does not learn is passed to the detector's ``skip_one`` when it has one (the
alert layer does not do that yet; a seasonal detector's phase drifts without it: see
the ``no skip_one`` row). Reported:

* recall per kind: the fraction of segments with at least one **alert** (the first
  event of an episode) on an event from the segment's start to ``--tolerance``
  (10) events after its end;
* false alerts per 10,000 normal events: alerts on no segment (nor its tolerance),
  over the events after each key's warm-up outside all segments and tolerances; in
  parentheses the share of those within ``AFTER`` (300) events after a segment's end
  (mostly a drifted or shifted value falling back to normal);
* the median delay from a segment's start to its first alert, in events (JSON);
* CPU µs per event (the whole ``KeyScorer.process``: detector, calibration, policy).

Goals: ROC-AUC >= 0.98 on Shuttle for the default detector; recall >= 95 % of the
injected segments with <= 1 false alert per 10,000 normal events.

River's LOF costs about 3 ms per event: it runs on the first 5,000 Shuttle rows and
one synthetic key; the batch scikit-learn detectors and the autoencoder on three
keys. ``--quick`` runs 10,000 Shuttle rows and 2 keys: a smoke test, not figures to
quote. A full run takes about 6 minutes on 2 cores.

Results: a markdown table on stdout, JSON in ``benchmarks/results/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
from river import datasets  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score  # noqa: E402

from streamlearn.models.anomaly import DETECTORS, Calibrated, Detector, Ensemble  # noqa: E402
from streamlearn.models.anomaly.river_hst import HalfSpaceTrees  # noqa: E402
from streamlearn.models.anomaly.synthetic import KINDS, Segment, SyntheticData, generate  # noqa: E402
from streamlearn.models.anomaly.temporal import TemporalFeatures  # noqa: E402
from streamlearn.models.anomaly.zscore import RobustZScore  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: Season of the synthetic series in events (one day of 5-minute readings).
SEASON = 288
#: Alert-layer warm-up for seasonal detectors: 7 seasons of history, then the level
#: window, the deviations' warm-up and enough scores for the calibration's tail.
SEASONAL_WARMUP = 7 * SEASON + 600
#: Events after a segment's end whose false alerts are also counted apart.
AFTER = 300
#: Shuttle rows whose raw detector cost (no calibration) is timed.
COST_ROWS = 10_000


@dataclass(frozen=True)
class Candidate:
    """A named detector factory and how much of each benchmark it runs on."""

    name: str
    build: Callable[[], Detector]
    note: str = ""
    shuttle: bool = True
    synthetic: bool = True
    shuttle_rows: int | None = None  # None: all
    cost_rows: int = COST_ROWS  # Shuttle rows the bare detector is timed on
    synthetic_keys: int | None = None  # None: all
    warmup: int = 500  # AlertPolicy.warmup on the synthetic series
    threshold: float = 0.9999  # AlertPolicy.threshold on the synthetic series
    skip: bool = True  # pass events the scorer does not learn to ``skip_one``


def _ensemble(members: dict[str, Detector], weights: dict[str, float]) -> Ensemble:
    return Ensemble(members, weights=weights)


def candidates() -> list[Candidate]:
    """Every registered detector with default parameters, then configured ones.

    River's LOF (about 3 ms per event) runs on 5,000 Shuttle rows and one synthetic
    key; the batch scikit-learn detectors and the autoencoder on three keys.
    """
    slow_rows = {"lof": 5000}
    cost_rows = {"lof": 1000}
    slow_keys = {"lof": 1, "iforest": 3, "sklearn-lof": 3, "autoencoder": 3}
    out = [
        Candidate(
            name,
            cls,
            "registered, default parameters",
            shuttle_rows=slow_rows.get(name),
            cost_rows=cost_rows.get(name, COST_ROWS),
            synthetic_keys=slow_keys.get(name),
        )
        for name, cls in sorted(DETECTORS.items())
    ]
    seasonal = {"shuttle": False, "warmup": SEASONAL_WARMUP}
    out += [
        Candidate("zscore(std)", lambda: RobustZScore(method="std"), "mean / std"),
        Candidate(
            "zscore(std, season)",
            lambda: RobustZScore(method="std", season=SEASON, window=32, min_samples=7),
            f"each phase against the last 32 seasons (season={SEASON})",
            **seasonal,
        ),
        Candidate("temporal", TemporalFeatures, "TemporalFeatures, no season"),
        Candidate(
            "temporal(season)",
            lambda: TemporalFeatures(season=SEASON),
            f"TemporalFeatures(season={SEASON})",
            **seasonal,
        ),
        Candidate(
            "temporal(season), threshold 0.99995",
            lambda: TemporalFeatures(season=SEASON),
            "the same, alert threshold 0.99995 instead of 0.9999",
            threshold=0.99995,
            **seasonal,
        ),
        Candidate(
            "temporal(season), no skip_one",
            lambda: TemporalFeatures(season=SEASON),
            "the same, events not learned are not passed to skip_one (phase drifts)",
            skip=False,
            **seasonal,
        ),
        Candidate(
            "zscore(std)+hst",
            lambda: _ensemble(
                {"zscore": RobustZScore(method="std"), "hst": HalfSpaceTrees()},
                {"zscore": 2.0, "hst": 1.0},
            ),
            "Ensemble, weights 2:1",
        ),
        Candidate(
            "zscore(std)+temporal",
            lambda: _ensemble(
                {"zscore": RobustZScore(method="std"), "temporal": TemporalFeatures()},
                {"zscore": 2.0, "temporal": 1.0},
            ),
            "Ensemble, weights 2:1",
        ),
        Candidate(
            "temporal(season)+zscore(std)",
            lambda: _ensemble(
                {
                    "temporal": TemporalFeatures(season=SEASON),
                    "zscore": RobustZScore(method="std"),
                },
                {"temporal": 2.0, "zscore": 1.0},
            ),
            "Ensemble, weights 2:1",
            **seasonal,
        ),
    ]
    return out


# -- Shuttle ---------------------------------------------------------------------------


def shuttle(limit: int | None = None) -> tuple[list[dict[str, float]], np.ndarray]:
    """Shuttle's rows (file order) and labels (1 = anomaly), the first ``limit``."""
    rows, labels = [], []
    for x, y in datasets.Shuttle():
        if limit is not None and len(rows) >= limit:
            break
        rows.append({k: float(v) for k, v in x.items()})
        labels.append(int(y))
    return rows, np.array(labels)


def progressive_scores(
    det: Detector, rows: Iterable[dict[str, float]]
) -> tuple[list[float], float]:
    """Calibrated scores of score-then-learn over ``rows``, and CPU seconds spent."""
    calibrated = det if isinstance(det, Calibrated) else Calibrated(det)
    scores = []
    start = time.process_time()
    for x in rows:
        scores.append(calibrated.score_one(x))
        calibrated.learn_one(x)
    return scores, time.process_time() - start


def ranking_quality(labels: np.ndarray, scores: list[float]) -> dict[str, float]:
    """ROC-AUC, average precision and the best F1 over thresholds.

    >>> ranking_quality(np.array([0, 0, 1, 1]), [0.1, 0.4, 0.35, 0.8])
    {'roc_auc': 0.75, 'pr_auc': 0.8333, 'best_f1': 0.8}
    """
    precision, recall, _ = precision_recall_curve(labels, scores)
    total = precision + recall
    f1 = 2 * precision * recall / np.where(total > 0, total, 1.0)
    return {
        "roc_auc": round(float(roc_auc_score(labels, scores)), 4),
        "pr_auc": round(float(average_precision_score(labels, scores)), 4),
        "best_f1": round(float(f1.max()), 4),
    }


def detector_cost(det: Detector, rows: list[dict[str, float]]) -> float:
    """CPU µs per row of the bare detector's ``score_one`` + ``learn_one`` (no calibration)."""
    start = time.process_time()
    for x in rows:
        det.score_one(x)
        det.learn_one(x)
    return us(time.process_time() - start, len(rows))


def run_shuttle(cand: Candidate, rows: list[dict[str, float]], labels: np.ndarray) -> dict:
    """Quality and cost of one candidate on (the first rows of) Shuttle."""
    n = min(len(rows), cand.shuttle_rows or len(rows))
    scores, seconds = progressive_scores(cand.build(), rows[:n])
    return {
        "rows": n,
        **ranking_quality(labels[:n], scores),
        "us_per_event": us(seconds, n),
        "detector_us": detector_cost(cand.build(), rows[: min(n, cand.cost_rows)]),
    }


# -- synthetic -------------------------------------------------------------------------


class NoSkip(Detector):
    """A detector whose ``skip_one`` does nothing: the phase drifts on every anomaly."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner

    def learn_one(self, x: dict[str, float]) -> None:
        self.inner.learn_one(x)

    def score_one(self, x: dict[str, float]) -> float:
        return self.inner.score_one(x)


def alerts_of(
    build: Callable[[], Detector],
    data: SyntheticData,
    policy: Any,
    keys: set[str] | None = None,
    skip: bool = False,
) -> tuple[list[tuple[str, int]], float, int]:
    """Alerts ``(key, event index)`` of a ``KeyScorer`` per key; CPU seconds; events.

    The scorer passes an event it does not learn to the detector's ``skip_one``, which
    keeps a seasonal detector's phase; without ``skip`` the detector ignores that call
    (to measure what it is worth).
    """
    from streamlearn.models.anomaly.scorer import KeyScorer

    scorers: dict[str, Any] = {}
    alerts = []
    n = 0
    start = time.process_time()
    for e in data.events:
        if keys is not None and e.key not in keys:
            continue
        scorer = scorers.get(e.key)
        if scorer is None:
            detector = build() if skip else NoSkip(build())
            scorer = scorers[e.key] = KeyScorer(detector, policy, key=e.key)
        scored = scorer.process(e.values, e.ts_ms, f"{e.key}:{e.index}")
        if scored.alert is not None:
            alerts.append((e.key, e.index))
        n += 1
    return alerts, time.process_time() - start, n


def match_alerts(
    alerts: list[tuple[str, int]],
    segments: list[Segment],
    events_per_key: dict[str, int],
    warmup: int,
    tolerance: int,
) -> dict[str, Any]:
    """Recall per kind, false alerts per 10,000 normal events, delays.

    A segment is detected by an alert of its key on an event in
    ``[start, end + tolerance]``; other alerts are false (``false_after_segment``: those
    within ``AFTER`` events after a segment's end, e.g. when a drifted value falls
    back). Normal events: from ``warmup`` on, outside every ``[start, end + tolerance]``.

    Examples
    --------
    >>> segs = [Segment("k", "spike", "v", 100, 100), Segment("k", "drift", "v", 300, 399)]
    >>> out = match_alerts([("k", 100), ("k", 405), ("k", 700)], segs, {"k": 1000}, 50, 10)
    >>> out["recall"], out["detected"], out["false_alerts"], out["normal_events"]
    ({'spike': 1.0, 'drift': 1.0}, 2, 1, 829)
    >>> out["false_after_segment"]  # 700 is 301 events after the drift's end
    0
    >>> out["median_delay"]
    {'spike': 0.0, 'drift': 105.0}
    """
    by_key: dict[str, list[int]] = {}
    for key, i in alerts:
        by_key.setdefault(key, []).append(i)
    matched: set[tuple[str, int]] = set()
    found: dict[str, list[int]] = {}
    delays: dict[str, list[int]] = {}
    for s in segments:
        if s.key not in events_per_key:
            continue
        hits = [i for i in by_key.get(s.key, []) if s.start <= i <= s.end + tolerance]
        found.setdefault(s.kind, []).append(1 if hits else 0)
        if hits:
            delays.setdefault(s.kind, []).append(min(hits) - s.start)
            matched.update((s.key, i) for i in hits)
    covered = {
        (s.key, i)
        for s in segments
        if s.key in events_per_key
        for i in range(s.start, s.end + tolerance + 1)
    }
    normal = sum(
        1 for key, n in events_per_key.items() for i in range(warmup, n) if (key, i) not in covered
    )
    false = [a for a in alerts if a not in matched]
    after = {
        (s.key, i)
        for s in segments
        if s.key in events_per_key
        for i in range(s.end + tolerance + 1, s.end + AFTER + 1)
    }
    kinds = [k for k in KINDS if k in found]
    return {
        "recall": {k: round(sum(found[k]) / len(found[k]), 4) for k in kinds},
        "segments": sum(len(v) for v in found.values()),
        "detected": sum(sum(v) for v in found.values()),
        "false_alerts": len(false),
        "false_after_segment": sum(1 for a in false if a in after),
        "normal_events": normal,
        "median_delay": {k: float(statistics.median(delays[k])) for k in kinds if k in delays},
    }


def run_synthetic(cand: Candidate, data: SyntheticData, tolerance: int) -> dict:
    """Alerts of one candidate on the synthetic series, matched to the segments."""
    from streamlearn.models.anomaly.scorer import AlertPolicy

    policy = AlertPolicy(threshold=cand.threshold, warmup=cand.warmup)
    names = sorted({e.key for e in data.events}, key=lambda k: int(k.rsplit("-", 1)[1]))
    keys = set(names[: cand.synthetic_keys]) if cand.synthetic_keys else None
    alerts, seconds, n = alerts_of(cand.build, data, policy, keys, cand.skip)
    per_key = {
        e.key: int(data.params["events_per_key"])
        for e in data.events
        if keys is None or e.key in keys
    }
    out = match_alerts(alerts, data.segments, per_key, policy.warmup, tolerance)
    out["overall_recall"] = round(out["detected"] / max(out["segments"], 1), 4)
    out["false_per_10k"] = round(1e4 * out["false_alerts"] / max(out["normal_events"], 1), 2)
    out["events"] = n
    out["us_per_event"] = us(seconds, n)
    return out


# -- output ----------------------------------------------------------------------------


def us(seconds: float, n: int) -> float:
    """Microseconds per item, rounded to 0.1."""
    return round(1e6 * seconds / max(n, 1), 1)


def shuttle_table(results: dict[str, dict]) -> str:
    """Markdown table of the Shuttle results."""
    lines = [
        "| detector | rows | ROC-AUC | PR-AUC | best F1 | µs/event | detector µs/event |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['rows']:,} | {r['roc_auc']:.3f} | {r['pr_auc']:.3f} "
            f"| {r['best_f1']:.3f} | {r['us_per_event']:.0f} | {r['detector_us']:.0f} |"
        )
    return "\n".join(lines)


def synthetic_table(results: dict[str, dict]) -> str:
    """Markdown table of the synthetic results."""
    kinds = " | ".join(KINDS)
    lines = [
        f"| detector | events | {kinds} | all | false / 10k (after a segment) | µs/event |",
        "|---|---:|" + "---:|" * (len(KINDS) + 3),
    ]
    for name, r in results.items():
        recall = " | ".join(f"{r['recall'].get(k, 0.0):.0%}" for k in KINDS)
        after = 1e4 * r["false_after_segment"] / max(r["normal_events"], 1)
        lines.append(
            f"| {name} | {r['events']:,} | {recall} | {r['overall_recall']:.0%} "
            f"({r['detected']}/{r['segments']}) | {r['false_per_10k']:.2f} ({after:.2f}) "
            f"| {r['us_per_event']:.0f} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    import river
    import sklearn

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "river": river.__version__,
        "scikit-learn": sklearn.__version__,
    }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Anomaly detector quality (Shuttle, synthetic seasonal anomalies) and cost."
    )
    parser.add_argument("--quick", action="store_true", help="small data: a smoke test")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="candidates to run")
    parser.add_argument("--skip-shuttle", action="store_true", help="synthetic only")
    parser.add_argument("--skip-synthetic", action="store_true", help="Shuttle only")
    parser.add_argument("--tolerance", type=int, default=10, help="events after a segment")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic series")
    parser.add_argument("--out", type=Path, help="results JSON (default: benchmarks/results/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [c for c in candidates() if not args.only or c.name in args.only]
    started = time.perf_counter()
    results: dict[str, Any] = {"shuttle": {}, "synthetic": {}}
    data = None
    if not args.skip_shuttle:
        rows, labels = shuttle(10_000 if args.quick else None)
        for cand in (c for c in chosen if c.shuttle):
            log(f"shuttle: {cand.name}")
            results["shuttle"][cand.name] = run_shuttle(cand, rows, labels)
    if not args.skip_synthetic:
        data = generate(keys=2 if args.quick else 10, seed=args.seed)
        for cand in (c for c in chosen if c.synthetic):
            log(f"synthetic: {cand.name}")
            results["synthetic"][cand.name] = run_synthetic(cand, data, args.tolerance)
    report = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "tolerance": args.tolerance,
        "after_segment": AFTER,
        "synthetic_params": data.params if data else None,
        "candidates": {
            c.name: {
                "note": c.note,
                "shuttle_rows": c.shuttle_rows,
                "synthetic_keys": c.synthetic_keys,
                "warmup": c.warmup,
                "threshold": c.threshold,
                "skip_one": c.skip,
            }
            for c in chosen
        },
        "machine": machine(),
        **results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = args.out or RESULTS_DIR / f"anomaly-quality-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    if results["shuttle"]:
        print("## Shuttle (progressive, calibrated scores)\n")
        print(shuttle_table(results["shuttle"]) + "\n")
    if results["synthetic"]:
        print(f"## Synthetic seasonal anomalies (recall per kind, tolerance {args.tolerance})\n")
        print(synthetic_table(results["synthetic"]) + "\n")
    log(f"results: {out} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
