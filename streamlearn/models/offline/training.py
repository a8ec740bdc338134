"""Train a registered scikit-learn model on a data set and evaluate it, as a JSON report.

The protocol, in order:

1. **Held-out split.** ``test_size`` of the rows are put aside: a stratified random
   sample for ``kfold``, the *last* rows (in time order) for ``timeseries``.
2. **Search.** On the other rows, ``RandomizedSearchCV`` (``random``) or
   ``HalvingRandomSearchCV`` (``halving``) tries ``n_iter`` parameter draws from the
   model's space, each cross-validated (``StratifiedKFold``/``KFold`` shuffled with
   ``seed``, or ``TimeSeriesSplit``); ``none`` cross-validates the default parameters.
3. **Fit** of the best parameters on all those rows: the model that is reported
   and saved.
4. **Evaluation** on the held-out rows: metrics (with a baseline that predicts the
   prior/mean), permutation feature importance, ROC curves or predicted-vs-actual; a
   learning curve over the training rows with the same folds.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, Literal

import numpy as np
from threadpoolctl import threadpool_limits

from streamlearn.models.offline.data import Dataset, OfflineError
from streamlearn.models.offline.metrics import classification_metrics, regression_metrics
from streamlearn.models.offline.registry import (
    MODELS,
    SEARCH_SPACES,
    build_model,
    merge_spaces,
    search_distributions,
)
from streamlearn.models.offline.saved import SavedModel

__all__ = ["TrainOptions", "TrainResult", "library_versions", "train"]

CV = Literal["kfold", "timeseries"]
Search = Literal["none", "random", "halving"]
CURVE_POINTS = 500  # most points of a ROC or predicted-vs-actual curve in the report


@dataclass
class TrainOptions:
    """How :func:`train` splits, searches and evaluates (see the module docstring)."""

    model: str
    cv: CV = "kfold"
    folds: int = 5
    search: Search = "random"
    n_iter: int = 20
    seed: int = 0
    test_size: float = 0.2
    scoring: str | None = None  # default: accuracy, or r2 for regression
    spaces: Mapping[str, Any] | None = None  # overrides, see registry.merge_spaces
    jobs: int = 1
    learning_curve: bool = True
    importance_repeats: int = 5

    def check(self) -> None:
        if self.cv not in ("kfold", "timeseries"):
            raise OfflineError(f"unknown cv {self.cv!r}; known: kfold, timeseries")
        if self.search not in ("none", "random", "halving"):
            raise OfflineError(f"unknown search {self.search!r}; known: none, random, halving")
        if self.folds < 2:
            raise OfflineError(f"folds must be at least 2; got {self.folds}")
        if self.n_iter < 1:
            raise OfflineError(f"n_iter must be at least 1; got {self.n_iter}")
        if not 0 < self.test_size < 1:
            raise OfflineError(f"test_size must be between 0 and 1; got {self.test_size}")
        if self.importance_repeats < 1:
            raise OfflineError("importance_repeats must be at least 1")


@dataclass
class TrainResult:
    """The fitted pipeline, the report (JSON-friendly) and the model ready to save."""

    pipeline: Any
    report: dict[str, Any]
    saved: SavedModel
    dataset: Dataset = field(repr=False)


def library_versions() -> dict[str, str]:
    """The versions of the libraries a fitted pipeline depends on."""
    out = {}
    for name in ("scikit-learn", "numpy", "scipy", "pandas", "river"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return repr(value)


def _splitter(options: TrainOptions, task: str) -> Any:
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    if options.cv == "timeseries":
        return TimeSeriesSplit(n_splits=options.folds)
    if task == "classification":
        return StratifiedKFold(n_splits=options.folds, shuffle=True, random_state=options.seed)
    return KFold(n_splits=options.folds, shuffle=True, random_state=options.seed)


def _check_rows(dataset: Dataset, options: TrainOptions) -> tuple[int, int]:
    n = dataset.n_rows
    n_test = math.ceil(n * options.test_size)
    n_train = n - n_test
    n_classes = len(dataset.classes or [])
    need_train = 2 * options.folds
    need_test = max(n_classes, 1)
    if n_train < need_train or n_test < need_test:
        need = max(
            math.ceil(need_train / (1 - options.test_size)),
            math.ceil(need_test / options.test_size),
        )
        raise OfflineError(
            f"{n} rows are too few for {options.folds} folds and a {options.test_size:g} "
            f"held-out share: need at least {need} (fewer --folds or more rows)"
        )
    return n_train, n_test


def _split(dataset: Dataset, options: TrainOptions) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    if options.cv == "timeseries":
        return tuple(
            train_test_split(dataset.X, dataset.y, test_size=options.test_size, shuffle=False)
        )
    stratify = dataset.y if dataset.task == "classification" else None
    return tuple(
        train_test_split(
            dataset.X,
            dataset.y,
            test_size=options.test_size,
            random_state=options.seed,
            stratify=stratify,
        )
    )


def _fold_scores(results: Mapping[str, Any], index: int, folds: int) -> list[float | None]:
    return [_jsonable(float(results[f"split{i}_test_score"][index])) for i in range(folds)]


def _search(
    pipeline: Any,
    distributions: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    cv: Any,
    scoring: str,
    options: TrainOptions,
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(fitted best pipeline, cv summary, search summary)."""
    from sklearn.base import clone
    from sklearn.model_selection import cross_validate

    if options.search == "none" or not distributions:
        scores = cross_validate(clone(pipeline), X, y, cv=cv, scoring=scoring, n_jobs=options.jobs)[
            "test_score"
        ]
        fitted = clone(pipeline).fit(X, y)
        cv_summary = {
            "mean": _jsonable(float(np.mean(scores))),
            "std": _jsonable(float(np.std(scores))),
            "scores": [_jsonable(float(s)) for s in scores],
        }
        return fitted, cv_summary, {"candidates": [], "n_candidates": 1, "best_params": {}}

    if options.search == "random":
        from sklearn.model_selection import RandomizedSearchCV

        n_iter = min(options.n_iter, _space_size(distributions))
        searcher = RandomizedSearchCV(
            pipeline,
            distributions,
            n_iter=n_iter,
            cv=cv,
            scoring=scoring,
            random_state=options.seed,
            n_jobs=options.jobs,
        )
    else:
        from sklearn.experimental import enable_halving_search_cv  # noqa: F401
        from sklearn.model_selection import HalvingRandomSearchCV

        searcher = HalvingRandomSearchCV(
            pipeline,
            distributions,
            n_candidates=options.n_iter,
            factor=3,
            min_resources="exhaust",
            cv=cv,
            scoring=scoring,
            random_state=options.seed,
            n_jobs=options.jobs,
        )
    searcher.fit(X, y)
    results = searcher.cv_results_
    best = int(searcher.best_index_)
    if not math.isfinite(float(results["mean_test_score"][best])):
        raise OfflineError("every parameter draw failed to fit (see the warnings)")
    cv_summary = {
        "mean": _jsonable(float(results["mean_test_score"][best])),
        "std": _jsonable(float(results["std_test_score"][best])),
        "scores": _fold_scores(results, best, options.folds),
    }
    order = np.argsort(results["rank_test_score"], kind="stable")
    if "iter" in results:  # halving: the candidates of the last (full-size) round first
        order = sorted(order, key=lambda i: (-results["iter"][i], results["rank_test_score"][i]))
    candidates = []
    for i in list(order)[:20]:
        entry = {
            "params": _strip(results["params"][i]),
            "mean": _jsonable(float(results["mean_test_score"][i])),
            "std": _jsonable(float(results["std_test_score"][i])),
            "rank": int(results["rank_test_score"][i]),
        }
        if "iter" in results:
            entry["iteration"] = int(results["iter"][i])
            entry["rows"] = int(results["n_resources"][i])
        candidates.append(entry)
    n_candidates = getattr(searcher, "n_candidates_", [len(results["params"])])[0]
    best_params = _strip(searcher.best_params_)
    fitted = searcher.best_estimator_
    # The same values as plain Python numbers, so the estimator's repr reads cleanly.
    fitted.set_params(
        **{k: v.item() for k, v in searcher.best_params_.items() if isinstance(v, np.generic)}
    )
    summary = {
        "candidates": candidates,
        "n_candidates": int(n_candidates),
        "best_params": best_params,
    }
    return fitted, cv_summary, summary


def _space_size(distributions: Mapping[str, Any]) -> int:
    size = 1
    for value in distributions.values():
        if not isinstance(value, list):
            return 1 << 30  # a continuous distribution: unbounded
        size *= len(value)
    return size


def _strip(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("model__"): _jsonable(v) for k, v in params.items()}


def _learning_curve(
    pipeline: Any, X: np.ndarray, y: np.ndarray, cv: Any, scoring: str, options: TrainOptions
) -> dict[str, Any]:
    from sklearn.base import clone
    from sklearn.model_selection import learning_curve

    shuffle = options.cv == "kfold"
    sizes, train, test = learning_curve(
        clone(pipeline),
        X,
        y,
        cv=cv,
        scoring=scoring,
        train_sizes=np.linspace(0.2, 1.0, 5),
        shuffle=shuffle,
        random_state=options.seed if shuffle else None,
        n_jobs=options.jobs,
    )
    return {
        "train_sizes": [int(s) for s in sizes],
        "train_mean": [_jsonable(float(v)) for v in np.nanmean(train, axis=1)],
        "train_std": [_jsonable(float(v)) for v in np.nanstd(train, axis=1)],
        "test_mean": [_jsonable(float(v)) for v in np.nanmean(test, axis=1)],
        "test_std": [_jsonable(float(v)) for v in np.nanstd(test, axis=1)],
    }


def _importance(
    fitted: Any,
    X: np.ndarray,
    y: np.ndarray,
    features: list[str],
    scoring: str,
    options: TrainOptions,
) -> list[dict[str, Any]]:
    from sklearn.inspection import permutation_importance

    result = permutation_importance(
        fitted,
        X,
        y,
        scoring=scoring,
        n_repeats=options.importance_repeats,
        random_state=options.seed,
        n_jobs=options.jobs,
    )
    rows = [
        {"feature": name, "mean": _jsonable(float(m)), "std": _jsonable(float(s))}
        for name, m, s in zip(
            features, result.importances_mean, result.importances_std, strict=True
        )
    ]
    return sorted(rows, key=lambda r: -(r["mean"] or 0.0))


def _thin(*arrays: np.ndarray) -> list[list[float]]:
    n = len(arrays[0])
    idx = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))
    return [[_jsonable(float(v)) for v in a[idx]] for a in arrays]


def _curves(
    fitted: Any, X: np.ndarray, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None
) -> dict[str, Any]:
    from sklearn.metrics import auc, roc_curve

    if proba is None:
        order = np.argsort(y, kind="stable")
        actual, predicted = _thin(y[order], pred[order])
        return {"predicted_vs_actual": {"actual": actual, "predicted": predicted}}
    classes = list(fitted.classes_)
    labels = classes[1:] if len(classes) == 2 else classes[:10]
    roc = []
    for label in labels:
        positive = y == label
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, proba[:, classes.index(label)])
        thin_fpr, thin_tpr = _thin(fpr, tpr)
        roc.append(
            {
                "label": _jsonable(label),
                "fpr": thin_fpr,
                "tpr": thin_tpr,
                "auc": _jsonable(float(auc(fpr, tpr))),
            }
        )
    return {"roc": roc}


def _predict_one_us(saved: SavedModel, X: np.ndarray) -> float | None:
    rows = [dict(zip(saved.features, row, strict=True)) for row in X[:50].tolist()]
    if not rows:
        return None
    saved.predict_one(rows[0])  # warm-up
    times = []
    for row in rows:
        start = time.perf_counter_ns()
        saved.predict_one(row)
        times.append(time.perf_counter_ns() - start)
    return round(float(np.median(times)) / 1000, 1)


def train(
    dataset: Dataset,
    options: TrainOptions,
    *,
    source: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Search, fit and evaluate ``options.model`` on ``dataset`` (see the module docstring).

    Raises :class:`OfflineError` for an unknown model, a bad search space, too few rows
    for the folds, or fits that all fail.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from streamlearn.models.offline.data import prepare_dataset
    >>> frame = load_iris(as_frame=True).frame
    >>> ds = prepare_dataset(frame, "target")
    >>> result = train(ds, TrainOptions("logreg", folds=3, n_iter=2, learning_curve=False))
    >>> result.report["metrics"]["accuracy"] > 0.9
    True
    >>> result.saved.predict_one(dict(zip(ds.features, ds.X[0])))
    0
    """
    options.check()
    say = progress or (lambda message: None)
    task = dataset.task
    if options.model not in MODELS[task]:
        build_model(options.model, task)  # raises, naming the known models
    spaces = merge_spaces(SEARCH_SPACES, options.spaces)
    space = spaces[task].get(options.model, {})
    pipeline = build_model(options.model, task, options.seed)
    distributions = search_distributions(space, pipeline)
    scoring = options.scoring or ("accuracy" if task == "classification" else "r2")
    _check_scoring(scoring)
    n_train, n_test = _check_rows(dataset, options)
    X_train, X_test, y_train, y_test = _split(dataset, options)
    cv = _splitter(options, task)
    started = time.perf_counter()
    timing: dict[str, float | None] = {}

    # One BLAS/OpenMP thread per process: parallelism comes from ``jobs`` (joblib),
    # and threads on top of it (or of a busy machine) slow fits down many times over.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        from sklearn.exceptions import ConvergenceWarning, FitFailedWarning

        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("default", category=FitFailedWarning)
        try:
            say(f"search ({options.search}) with {options.folds} {options.cv} folds")
            t0 = time.perf_counter()
            fitted, cv_summary, search = _search(
                pipeline, distributions, X_train, y_train, cv, scoring, options
            )
            timing["search_and_fit_s"] = round(time.perf_counter() - t0, 3)
            if options.learning_curve:
                say("learning curve")
                t0 = time.perf_counter()
                # learning_curve clones the fitted pipeline: the best parameters, unfitted.
                curve = _learning_curve(fitted, X_train, y_train, cv, scoring, options)
                timing["learning_curve_s"] = round(time.perf_counter() - t0, 3)
            else:
                curve = None
            say("held-out evaluation")
            t0 = time.perf_counter()
            pred = fitted.predict(X_test)
            proba = fitted.predict_proba(X_test) if task == "classification" else None
            timing["predict_test_s"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            importance = _importance(fitted, X_test, y_test, dataset.features, scoring, options)
            timing["importance_s"] = round(time.perf_counter() - t0, 3)
        except ValueError as exc:
            raise OfflineError(f"training {options.model!r} failed: {exc}") from None

    classes = [_jsonable(c) for c in fitted.classes_] if task == "classification" else None
    if task == "classification":
        metrics = classification_metrics(y_test, pred, proba, list(fitted.classes_))
        metrics["labels"] = classes
        baseline = _baseline(X_train, y_train, X_test, y_test, task, list(fitted.classes_))
    else:
        metrics = regression_metrics(y_test, pred)
        baseline = _baseline(X_train, y_train, X_test, y_test, task, None)
    model_description = MODELS[task][options.model].description
    saved = SavedModel(
        pipeline=fitted,
        features=list(dataset.features),
        target=dataset.target,
        task=task,
        classes=classes,
        model=options.model,
        params=search["best_params"],
        metrics={k: v for k, v in metrics.items() if k not in ("labels", "confusion_matrix")},
        versions=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        train_rows=n_train,
    )
    timing["predict_one_us"] = _predict_one_us(saved, X_test)
    timing["total_s"] = round(time.perf_counter() - started, 3)
    report = {
        "kind": "train",
        "created": saved.created,
        "source": source,
        "task": task,
        "target": dataset.target,
        "features": list(dataset.features),
        "classes": classes,
        "rows": {
            "total": dataset.n_rows,
            "train": n_train,
            "test": n_test,
            "dropped_missing_target": dataset.dropped_rows,
        },
        "ignored_columns": list(dataset.ignored_columns),
        "time_column": dataset.time_column,
        "model": {
            "name": options.model,
            "description": model_description,
            "params": search["best_params"],
            "estimator": repr(fitted.named_steps["model"]),
        },
        "protocol": {
            "cv": (
                "stratified-kfold"
                if options.cv == "kfold" and task == "classification"
                else options.cv
            ),
            "folds": options.folds,
            "search": options.search,
            "n_iter": options.n_iter,
            "scoring": scoring,
            "test_size": options.test_size,
            "seed": options.seed,
            "space": _jsonable(space),
        },
        "cv": cv_summary,
        "search": {"candidates": search["candidates"], "n_candidates": search["n_candidates"]},
        "metrics": metrics,
        "baseline": baseline,
        "learning_curve": curve,
        "importance": {
            "scoring": scoring,
            "repeats": options.importance_repeats,
            "features": importance,
        },
        "curves": _curves(fitted, X_test, y_test, pred, proba),
        "timing": timing,
        "versions": library_versions(),
    }
    return TrainResult(pipeline=fitted, report=report, saved=saved, dataset=dataset)


def _check_scoring(scoring: str) -> None:
    from sklearn.metrics import get_scorer_names

    if scoring not in get_scorer_names():
        raise OfflineError(
            f"unknown scoring {scoring!r}; e.g. accuracy, f1_macro, roc_auc, r2, "
            "neg_mean_absolute_error (any scikit-learn scorer name)"
        )


def _baseline(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    task: str,
    classes: list[Any] | None,
) -> dict[str, Any]:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if task == "classification":
        dummy = DummyClassifier(strategy="prior").fit(X_train, y_train)
        out = classification_metrics(
            y_test, dummy.predict(X_test), dummy.predict_proba(X_test), classes or []
        )
        out.pop("confusion_matrix")
        out.pop("labels")
        return {"strategy": "prior (most frequent class)", **out}
    dummy = DummyRegressor(strategy="mean").fit(X_train, y_train)
    return {"strategy": "mean", **regression_metrics(y_test, dummy.predict(X_test))}
