"""Quality and cost of the online learners (pure layer: no Kafka, no Faust).

    python benchmarks/models_quality.py [--repeat R] [--only NAME ...] [--candidates]
                                        [--budget-us US] [--out FILE]

Every learner of the registry (:mod:`streamlearn.models.learners`, default parameters,
seed 0) under progressive validation, the protocol of ``streamlearn evaluate`` and of
the stream: each event in file order is predicted, the prediction is scored, then the
learner learns the event. Nothing is held out and nothing is tuned per run.

* **Classification** on River's bundled ``Phishing`` (1,250 events, 9 features in
  [0, 1], 44 % positive): accuracy, F1, ROC-AUC and log loss.
* **Regression** on River's bundled ``TrumpApproval`` (1,001 events, 6 features):
  MAE, RMSE and R2.

Two costs per event, each the best of ``--repeat`` runs (the metrics must come out the
same in every run: the learners are deterministic with their seed):

* ``learner µs``: the learner's own predict plus learn (``streamlearn evaluate``'s
  ``us_per_event``). A learner *fits the budget* when this is at most ``--budget-us``
  (50 µs: half of the 100 µs an event a worker has at 10,000 events/s).
* ``worker µs``: :meth:`OnlineModel.predict_event` with an inline label, what a worker
  spends in the model per labelled event: the learner plus the prequential metrics
  (overall and rolling) and the prediction record. Features are not included (see
  ``benchmarks/features_cost.py``).

A second table per task runs the same events through the stream's default feature
pipeline first (one key, one event a second: raw values, hour and weekday cycles,
``since_last_s``, deltas), as a worker with ``model_features = {}`` would: the
prequential accuracy (MAE) the model then reaches, and µs per event of the model
(``predict_event``) and of the features.

``--candidates`` also runs the configurations considered when choosing the default
classifier (tuned optimizers, ensembles, kernel and polynomial expansions; see
:func:`candidate_models`) on Phishing, with the same protocol.

Results: markdown tables on stdout, JSON in ``benchmarks/results/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO_ROOT, RESULTS_DIR, log, machine_info, utc_stamp

from streamlearn.models.learners import LEARNERS, Task, learner_names
from streamlearn.models.offline.data import Dataset, prepare_dataset
from streamlearn.models.offline.progressive import progressive_validate
from streamlearn.models.online import ModelConfig, OnlineModel

#: Which registry data set each task is measured on, and its target column.
DATASETS: dict[Task, tuple[str, str]] = {
    "classification": ("Phishing", "is_phishing"),
    "regression": ("TrumpApproval", "approval"),
}
CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
STREAM_START_MS = 1_767_600_000_000  # 2026-01-05 08:00 UTC, a Monday
HEADINGS = {
    "accuracy": "accuracy",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "log_loss": "log loss",
    "mae": "MAE",
    "rmse": "RMSE",
    "r2": "R2",
}


def load_dataset(task: Task) -> Dataset:
    """River's bundled data set for ``task`` as a :class:`Dataset`, in file order."""
    import pandas as pd
    from river import datasets

    name, target = DATASETS[task]
    rows = [{**x, target: y} for x, y in getattr(datasets, name)()]
    return prepare_dataset(pd.DataFrame(rows), target, task=task)


def worker_run(
    dataset: Dataset, task: Task, learner: str, seed: int, stream_features: bool
) -> dict[str, Any]:
    """:meth:`OnlineModel.predict_event` with inline labels over the rows, in order.

    With ``stream_features`` each row first goes through the stream's default feature
    pipeline (one key, one event a second of event time) and the model learns those
    features. Returns the model's prequential metrics and µs per event (model, features).
    """
    from streamlearn.models.features import FeaturePipeline, Observation

    classes = tuple(dataset.classes or (False, True))
    model = OnlineModel(ModelConfig(task=task, learner=learner, seed=seed, classes=classes))
    state = model.new_state()
    pipeline = FeaturePipeline({})
    key_state = pipeline.new_state()
    clock = time.perf_counter_ns
    in_model = in_features = 0
    rows = dataset.rows()
    for i, (x, y) in enumerate(zip(rows, dataset.y.tolist(), strict=True)):
        ts = STREAM_START_MS + 1000 * i
        if stream_features:
            t0 = clock()
            x = pipeline.extract(Observation("key", ts, x), key_state)
            in_features += clock() - t0
        t0 = clock()
        model.predict_event(state, "key", f"e{i}", ts, x, label=y)
        in_model += clock() - t0
    n = max(len(rows), 1)
    return {
        "metrics": model.metrics(state),
        "features": len(x),
        "model_us": round(in_model / 1000 / n, 2),
        "features_us": round(in_features / 1000 / n, 2),
    }


def measure(
    dataset: Dataset, task: Task, learner: str, repeat: int, seed: int, budget_us: float
) -> dict[str, Any]:
    """Metrics, costs and budget fit of one registered learner."""
    runs = [progressive_validate(dataset, learner, seed=seed) for _ in range(repeat)]
    metrics = runs[0]["metrics"]
    learner_cost = min(r["us_per_event"] for r in runs)
    worker = [worker_run(dataset, task, learner, seed, False) for _ in range(repeat)]
    stream = [worker_run(dataset, task, learner, seed, True) for _ in range(repeat)]
    return {
        "description": LEARNERS[task][learner].description,
        "metrics": metrics,
        "deterministic": all(r["metrics"] == metrics for r in runs)
        and all(r["metrics"] == stream[0]["metrics"] for r in stream),
        "learner_us": learner_cost,
        "worker_us": min(r["model_us"] for r in worker),
        "fits_budget": learner_cost <= budget_us,
        "rows": runs[0]["rows"],
        "stream_features": {
            "features": stream[0]["features"],
            "metrics": stream[0]["metrics"],
            "model_us": min(r["model_us"] for r in stream),
            "features_us": min(r["features_us"] for r in stream),
        },
    }


# --- the configurations considered for the default classifier -------------------------


def candidate_models() -> dict[str, Callable[[], Any]]:
    from river import compose, ensemble, linear_model, naive_bayes, optim, preprocessing
    from river import feature_extraction as fx

    from streamlearn.models.learners import RadialBasisExpander

    def scaled(model: Any) -> Any:
        return preprocessing.StandardScaler() | model

    def logreg(lr: float = 0.01, **kw: Any) -> Any:
        return linear_model.LogisticRegression(optimizer=optim.SGD(lr), **kw)

    return {
        "logreg, SGD 0.01 (registry logreg)": lambda: scaled(logreg()),
        "logreg, SGD 0.05": lambda: scaled(logreg(0.05)),
        "logreg, SGD 0.1": lambda: scaled(logreg(0.1)),
        "logreg, Adam": lambda: scaled(linear_model.LogisticRegression(optimizer=optim.Adam())),
        "logreg, AdaGrad": lambda: scaled(
            linear_model.LogisticRegression(optimizer=optim.AdaGrad())
        ),
        "logreg, FTRL-Proximal": lambda: scaled(
            linear_model.LogisticRegression(optimizer=optim.FTRLProximal())
        ),
        "logreg, l2 0.001": lambda: scaled(logreg(l2=0.001)),
        "logreg, hinge loss": lambda: scaled(logreg(loss=optim.losses.Hinge())),
        "PAClassifier (PA-I, C 0.01)": lambda: scaled(linear_model.PAClassifier(C=0.01, mode=1)),
        "PAClassifier (PA-II, C 0.01)": lambda: scaled(linear_model.PAClassifier(C=0.01, mode=2)),
        "ALMAClassifier": lambda: scaled(linear_model.ALMAClassifier()),
        "bagging of 3 logregs": lambda: scaled(
            ensemble.BaggingClassifier(logreg(), n_models=3, seed=0)
        ),
        "stacking logreg + GaussianNB -> logreg": lambda: ensemble.StackingClassifier(
            [scaled(logreg()), naive_bayes.GaussianNB()], meta_classifier=logreg()
        ),
        "PolynomialExtender(2) | StandardScaler | logreg": lambda: (
            fx.PolynomialExtender(degree=2) | scaled(logreg())
        ),
        "RBFSampler(20) + values | logreg": lambda: scaled(
            (fx.RBFSampler(n_components=20, seed=0) + compose.FuncTransformer(dict)) | logreg()
        ),
        "RadialBasisExpander | logreg, SGD 0.01": lambda: scaled(RadialBasisExpander() | logreg()),
        "RadialBasisExpander | logreg, SGD 0.05 (logreg-rbf)": lambda: scaled(
            RadialBasisExpander() | logreg(0.05)
        ),
        "RadialBasisExpander | logreg, SGD 0.1": lambda: scaled(
            RadialBasisExpander() | logreg(0.1)
        ),
        "RadialBasisExpander(width 0.5) | logreg, SGD 0.05": lambda: scaled(
            RadialBasisExpander(width=0.5) | logreg(0.05)
        ),
    }


def run_candidate(make: Callable[[], Any], dataset: Dataset) -> dict[str, Any]:
    """Progressive accuracy, ROC-AUC, log loss and learner µs of one River classifier."""
    from river import metrics

    model = make()
    accuracy, roc_auc, log_loss = metrics.Accuracy(), metrics.ROCAUC(), metrics.LogLoss()
    positive = dataset.classes[1] if dataset.classes else True
    clock = time.perf_counter_ns
    spent = 0
    for x, label in zip(dataset.rows(), dataset.y.tolist(), strict=True):
        y = label == positive
        t0 = clock()
        proba = model.predict_proba_one(x)
        t1 = clock()
        if proba:
            accuracy.update(y, max(proba, key=lambda c: proba[c]))
            roc_auc.update(y, proba)
            log_loss.update(y, proba)
        t2 = clock()
        model.learn_one(x, y)
        spent += (t1 - t0) + (clock() - t2)
    return {
        "accuracy": float(accuracy.get()),
        "roc_auc": float(roc_auc.get()),
        "log_loss": float(log_loss.get()),
        "learner_us": round(spent / 1000 / dataset.n_rows, 2),
    }


# --- output ---------------------------------------------------------------------------


def _cell(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def learners_table(task: Task, results: dict[str, dict[str, Any]]) -> str:
    names = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    head = ["learner", *(HEADINGS[n] for n in names), "learner µs", "worker µs", "fits 10k ev/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for learner, r in results.items():
        cells = [f"`{learner}`", *(_cell(r["metrics"][n]) for n in names)]
        cells += [f"{r['learner_us']:.1f}", f"{r['worker_us']:.1f}"]
        cells.append("yes" if r["fits_budget"] else "no")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stream_table(task: Task, results: dict[str, dict[str, Any]]) -> str:
    name = "accuracy" if task == "classification" else "mae"
    head = ["learner", "features", HEADINGS[name], "model µs", "features µs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for learner, r in results.items():
        s = r["stream_features"]
        cells = [f"`{learner}`", str(s["features"]), _cell(s["metrics"][name])]
        cells += [f"{s['model_us']:.1f}", f"{s['features_us']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def candidates_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| configuration | accuracy | ROC-AUC | log loss | learner µs |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        escaped = name.replace("|", r"\|")
        lines.append(
            f"| {escaped} | {_cell(r['accuracy'])} | {_cell(r['roc_auc'])} | "
            f"{_cell(r['log_loss'])} | {r['learner_us']:.1f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Progressive quality and cost of every online learner "
        "(Phishing for classification, TrumpApproval for regression)."
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per learner (best time)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="learners to run")
    parser.add_argument("--seed", type=int, default=0, help="the learners' seed")
    parser.add_argument(
        "--budget-us", type=float, default=50.0, help="learner µs per event that fit 10k ev/s"
    )
    parser.add_argument(
        "--candidates", action="store_true", help="also the configurations considered"
    )
    parser.add_argument("--out", type=Path, help="results JSON (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    for task in ("classification", "regression"):
        chosen = [n for n in learner_names(task) if not args.only or n in args.only]
        if not chosen:
            continue
        dataset = load_dataset(task)
        results[task] = {}
        for learner in chosen:
            log(f"{task}: {learner}")
            results[task][learner] = measure(
                dataset, task, learner, args.repeat, args.seed, args.budget_us
            )
    candidates: dict[str, Any] = {}
    if args.candidates:
        dataset = load_dataset("classification")
        for name, make in candidate_models().items():
            log(f"candidate: {name}")
            runs = [run_candidate(make, dataset) for _ in range(args.repeat)]
            candidates[name] = {**runs[0], "learner_us": min(r["learner_us"] for r in runs)}
    report = {
        "created": utc_stamp(),
        "datasets": {task: DATASETS[task][0] for task in results},
        "seed": args.seed,
        "repeat": args.repeat,
        "budget_us": args.budget_us,
        **results,
        "candidates": candidates,
        "machine": machine_info(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = args.out or RESULTS_DIR / f"models-quality-{report['created']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    for task, rows in results.items():
        print(f"## {task.capitalize()} on {DATASETS[task][0]} (progressive, seed {args.seed})\n")
        print(learners_table(task, rows) + "\n")
        print(f"### {DATASETS[task][0]} through the stream's default features\n")
        print(stream_table(task, rows) + "\n")
    if candidates:
        print("## Configurations considered for the default classifier (Phishing)\n")
        print(candidates_table(candidates) + "\n")
    shown = out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out
    log(f"results: {shown} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
