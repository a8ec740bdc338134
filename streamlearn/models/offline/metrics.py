"""Held-out metrics of a fitted classifier or regressor, as JSON-friendly dicts."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["classification_metrics", "regression_metrics"]


def _float(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence[Any],
) -> dict[str, Any]:
    """Accuracy, F1, ROC-AUC, log loss and the confusion matrix.

    F1 is of the positive class (``classes[1]``) for two classes, else macro-averaged.
    ROC-AUC is one-vs-rest for more than two classes; ``None`` when a class is missing
    from ``y_true``, like log loss when there are no probabilities.

    Examples
    --------
    >>> y = np.array([0, 0, 1, 1])
    >>> p = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    >>> m = classification_metrics(y, p.argmax(1), p, [0, 1])
    >>> m["accuracy"], round(m["f1"], 3), m["roc_auc"], m["confusion_matrix"]
    (0.75, 0.8, 1.0, [[1, 1], [0, 2]])
    """
    from sklearn import metrics

    labels = list(classes)
    binary = len(labels) == 2
    out: dict[str, Any] = {
        "accuracy": _float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": None,
        "f1": None,
        "f1_average": "binary" if binary else "macro",
        "roc_auc": None,
        "log_loss": None,
        "labels": labels,
        "confusion_matrix": metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class absent from y_true or y_pred
        out["balanced_accuracy"] = _float(metrics.balanced_accuracy_score(y_true, y_pred))
        if binary:
            out["f1"] = _float(
                metrics.f1_score(y_true, y_pred, pos_label=labels[1], zero_division=0)
            )
        else:
            out["f1"] = _float(
                metrics.f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
            )
        if proba is not None:
            present = set(np.unique(y_true).tolist())
            if len(present) == len(labels):
                if binary:
                    positive = np.asarray(y_true) == labels[1]
                    out["roc_auc"] = _float(metrics.roc_auc_score(positive, proba[:, 1]))
                else:
                    out["roc_auc"] = _float(
                        metrics.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
                    )
            out["log_loss"] = _float(metrics.log_loss(y_true, proba, labels=labels))
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """MAE, RMSE and R².

    Examples
    --------
    >>> regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    {'mae': 0.3333333333333333, 'rmse': 0.5773502691896257, 'r2': 0.5}
    """
    from sklearn import metrics

    return {
        "mae": _float(metrics.mean_absolute_error(y_true, y_pred)),
        "rmse": _float(math.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "r2": _float(metrics.r2_score(y_true, y_pred)),
    }
