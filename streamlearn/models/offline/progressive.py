"""Progressive validation of a River learner over a data set, as the stream would run it.

Each row, in order: the learner predicts it, the prediction updates the metrics, then
the learner learns the row. This is River's ``evaluate.progressive_val_score`` (same
prediction calls, same metric updates, so the same figures), plus the time the learner
spends per event and the metrics along the way.

A binary target is learned as ``label == positive`` (``positive`` the second of the
sorted classes, ``True`` for a boolean target), so every learner sees booleans.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from streamlearn.models.learners import LEARNERS, build_learner
from streamlearn.models.offline.data import Dataset
from streamlearn.models.offline.training import library_versions

__all__ = ["progressive_metrics", "progressive_validate"]


def progressive_metrics(task: str, n_classes: int = 2) -> dict[str, Any]:
    """The River metrics reported for ``task``, by report name.

    Examples
    --------
    >>> list(progressive_metrics("classification"))
    ['accuracy', 'f1', 'roc_auc', 'log_loss']
    >>> list(progressive_metrics("classification", n_classes=3))
    ['accuracy', 'f1_macro', 'log_loss']
    >>> list(progressive_metrics("regression"))
    ['mae', 'rmse', 'r2']
    """
    from river import metrics

    if task == "regression":
        return {"mae": metrics.MAE(), "rmse": metrics.RMSE(), "r2": metrics.R2()}
    if n_classes == 2:
        return {
            "accuracy": metrics.Accuracy(),
            "f1": metrics.F1(),
            "roc_auc": metrics.ROCAUC(),
            "log_loss": metrics.LogLoss(),
        }
    return {
        "accuracy": metrics.Accuracy(),
        "f1_macro": metrics.MacroF1(),
        "log_loss": metrics.CrossEntropy(),
    }


def progressive_validate(
    dataset: Dataset,
    learner: str,
    *,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    curve_points: int = 200,
    source: str | None = None,
    on_row: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Progressive validation of River learner ``learner`` over ``dataset``, as a report.

    ``us_per_event`` is the learner's predict plus learn time per row (metrics excluded).

    Examples
    --------
    >>> import pandas as pd
    >>> from river import datasets
    >>> from streamlearn.models.offline.data import prepare_dataset
    >>> frame = pd.DataFrame([{**x, "label": y} for x, y in datasets.Phishing()])
    >>> report = progressive_validate(prepare_dataset(frame, "label"), "logreg")
    >>> round(report["metrics"]["accuracy"], 4), report["rows"]
    (0.8928, 1250)
    """
    from river import metrics as river_metrics

    task = dataset.task
    classes = dataset.classes or []
    n_classes = len(classes)
    model = build_learner(learner, task, seed=seed, n_classes=max(n_classes, 2), params=params)
    named = progressive_metrics(task, n_classes)
    metric = river_metrics.base.Metrics(list(named.values()))
    if task == "classification" and n_classes == 2:
        positive = classes[1]
        targets = [bool(v == positive) for v in dataset.y.tolist()]
    else:
        positive = None
        targets = dataset.y.tolist()
    predict = (
        model.predict_proba_one
        if task == "classification" and not metric.requires_labels
        else model.predict_one
    )
    learn = model.learn_one
    rows = dataset.rows()
    n = len(rows)
    every = max(1, n // max(curve_points, 1))
    curve: dict[str, list[Any]] = {"step": [], **{name: [] for name in named}}
    clock = time.perf_counter_ns
    spent = 0
    scored = 0
    started = time.perf_counter()
    for i, (x, y) in enumerate(zip(rows, targets, strict=True), start=1):
        t0 = clock()
        y_pred = predict(x)
        t1 = clock()
        if y_pred is not None and y_pred != {}:
            metric.update(y, y_pred)
            scored += 1
        t2 = clock()
        learn(x, y)
        spent += (t1 - t0) + (clock() - t2)
        if i % every == 0 or i == n:
            curve["step"].append(i)
            for name, m in named.items():
                curve[name].append(_value(m))
        if on_row is not None:
            on_row(1)
    elapsed = time.perf_counter() - started
    spec = LEARNERS[task][learner]
    return {
        "kind": "evaluate",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "task": task,
        "target": dataset.target,
        "features": list(dataset.features),
        "classes": classes or None,
        "positive_label": positive,
        "rows": n,
        "scored_rows": scored,
        "dropped_missing_target": dataset.dropped_rows,
        "ignored_columns": list(dataset.ignored_columns),
        "time_column": dataset.time_column,
        "learner": {
            "name": learner,
            "description": spec.description,
            "params": params or {},
            "seed": seed,
        },
        "metrics": {name: _value(m) for name, m in named.items()},
        "us_per_event": round(spent / 1000 / max(n, 1), 2),
        "seconds": round(elapsed, 3),
        "curve": curve,
        "versions": library_versions(),
    }


def _value(metric: Any) -> float | None:
    value = float(metric.get())
    return value if value == value and abs(value) != float("inf") else None
