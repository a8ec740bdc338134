"""scikit-learn models by name, and the hyper-parameter space each is searched over.

Every model is a pipeline ``SimpleImputer(median) -> StandardScaler -> estimator``, so
missing values and feature scales need no preparation. :data:`SEARCH_SPACES` declares
each model's space in one place, in a JSON form that a file can override
(:func:`merge_spaces`):

* a list: the values to choose from (``null`` is ``None``);
* ``{"uniform": [low, high]}``, ``{"loguniform": [low, high]}``: a float in the range;
* ``{"randint": [low, high]}``: an integer from low to high, both included;
* any other value: that value, fixed.

Parameter names are the estimator's own (``C``, ``max_depth``); in an ensemble they go
through the member's name (``rf__n_estimators``, ``final_estimator__C``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streamlearn.models.offline.data import OfflineError, Task

__all__ = [
    "MODELS",
    "SEARCH_SPACES",
    "ModelSpec",
    "build_model",
    "merge_spaces",
    "model_names",
    "search_distributions",
]

TASKS: tuple[Task, ...] = ("classification", "regression")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: name, task, description and ``factory(seed) -> estimator``."""

    name: str
    task: Task
    description: str
    factory: Callable[[int], Any]


def _logreg(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, random_state=seed)


def _rf_classifier(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, random_state=seed)


def _hgb_classifier(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed)


def _voting_classifier(seed: int) -> Any:
    from sklearn.ensemble import VotingClassifier

    members = [("logreg", _logreg(seed)), ("rf", _rf_classifier(seed))]
    return VotingClassifier([*members, ("hgb", _hgb_classifier(seed))], voting="soft")


def _stacking_classifier(seed: int) -> Any:
    from sklearn.ensemble import StackingClassifier
    from sklearn.model_selection import StratifiedKFold

    members = [("logreg", _logreg(seed)), ("rf", _rf_classifier(seed))]
    return StackingClassifier(
        [*members, ("hgb", _hgb_classifier(seed))],
        final_estimator=_logreg(seed),
        cv=StratifiedKFold(3, shuffle=True, random_state=seed),
    )


def _ridge(seed: int) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge()


def _linear(seed: int) -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


def _rf_regressor(seed: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=100, random_state=seed)


def _hgb_regressor(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(random_state=seed)


def _voting_regressor(seed: int) -> Any:
    from sklearn.ensemble import VotingRegressor

    return VotingRegressor(
        [("ridge", _ridge(seed)), ("rf", _rf_regressor(seed)), ("hgb", _hgb_regressor(seed))]
    )


def _stacking_regressor(seed: int) -> Any:
    from sklearn.ensemble import StackingRegressor
    from sklearn.model_selection import KFold

    return StackingRegressor(
        [("ridge", _ridge(seed)), ("rf", _rf_regressor(seed)), ("hgb", _hgb_regressor(seed))],
        final_estimator=_ridge(seed),
        cv=KFold(3, shuffle=True, random_state=seed),
    )


MODELS: dict[Task, dict[str, ModelSpec]] = {
    "classification": {
        spec.name: spec
        for spec in (
            ModelSpec("logreg", "classification", "LogisticRegression", _logreg),
            ModelSpec("rf", "classification", "RandomForestClassifier", _rf_classifier),
            ModelSpec("hgb", "classification", "HistGradientBoostingClassifier", _hgb_classifier),
            ModelSpec(
                "voting",
                "classification",
                "VotingClassifier (soft) of logreg, rf, hgb",
                _voting_classifier,
            ),
            ModelSpec(
                "stacking",
                "classification",
                "StackingClassifier of logreg, rf, hgb -> LogisticRegression",
                _stacking_classifier,
            ),
        )
    },
    "regression": {
        spec.name: spec
        for spec in (
            ModelSpec("linear", "regression", "LinearRegression", _linear),
            ModelSpec("ridge", "regression", "Ridge", _ridge),
            ModelSpec("rf", "regression", "RandomForestRegressor", _rf_regressor),
            ModelSpec("hgb", "regression", "HistGradientBoostingRegressor", _hgb_regressor),
            ModelSpec(
                "voting", "regression", "VotingRegressor of ridge, rf, hgb", _voting_regressor
            ),
            ModelSpec(
                "stacking",
                "regression",
                "StackingRegressor of ridge, rf, hgb -> Ridge",
                _stacking_regressor,
            ),
        )
    },
}

_RF = {
    "n_estimators": [100, 200, 300],
    "max_depth": [None, 8, 16, 32],
    "min_samples_leaf": {"randint": [1, 8]},
    "max_features": ["sqrt", 0.5, 1.0],
}
_HGB = {
    "learning_rate": {"loguniform": [0.01, 0.3]},
    "max_iter": [100, 200, 300],
    "max_leaf_nodes": {"randint": [8, 64]},
    "min_samples_leaf": {"randint": [5, 50]},
    "l2_regularization": {"loguniform": [1e-4, 10.0]},
}

SEARCH_SPACES: dict[Task, dict[str, dict[str, Any]]] = {
    "classification": {
        "logreg": {"C": {"loguniform": [1e-3, 100.0]}, "class_weight": [None, "balanced"]},
        "rf": {**_RF, "class_weight": [None, "balanced"]},
        "hgb": _HGB,
        "voting": {
            "logreg__C": {"loguniform": [1e-2, 100.0]},
            "rf__n_estimators": [100, 200],
            "rf__min_samples_leaf": {"randint": [1, 8]},
            "hgb__learning_rate": {"loguniform": [0.03, 0.3]},
            "hgb__max_leaf_nodes": {"randint": [8, 64]},
        },
        "stacking": {
            "rf__n_estimators": [100, 200],
            "rf__min_samples_leaf": {"randint": [1, 8]},
            "hgb__learning_rate": {"loguniform": [0.03, 0.3]},
            "final_estimator__C": {"loguniform": [1e-2, 100.0]},
        },
    },
    "regression": {
        "linear": {},  # nothing to tune: its defaults are cross-validated
        "ridge": {"alpha": {"loguniform": [1e-3, 1000.0]}},
        "rf": _RF,
        "hgb": _HGB,
        "voting": {
            "ridge__alpha": {"loguniform": [1e-2, 100.0]},
            "rf__n_estimators": [100, 200],
            "rf__min_samples_leaf": {"randint": [1, 8]},
            "hgb__learning_rate": {"loguniform": [0.03, 0.3]},
            "hgb__max_leaf_nodes": {"randint": [8, 64]},
        },
        "stacking": {
            "rf__n_estimators": [100, 200],
            "rf__min_samples_leaf": {"randint": [1, 8]},
            "hgb__learning_rate": {"loguniform": [0.03, 0.3]},
            "final_estimator__alpha": {"loguniform": [1e-2, 100.0]},
        },
    },
}


def model_names(task: Task) -> list[str]:
    """The model names registered for ``task``.

    Examples
    --------
    >>> model_names("classification")
    ['hgb', 'logreg', 'rf', 'stacking', 'voting']
    >>> model_names("regression")
    ['hgb', 'linear', 'rf', 'ridge', 'stacking', 'voting']
    """
    if task not in MODELS:
        raise OfflineError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    return sorted(MODELS[task])


def _spec(name: str, task: Task) -> ModelSpec:
    known = model_names(task)
    spec = MODELS[task].get(name)
    if spec is None:
        others = [t for t in TASKS if t != task and name in MODELS[t]]
        if others:
            raise OfflineError(
                f"{name!r} is a {others[0]} model; {task} models: {', '.join(known)}"
            )
        raise OfflineError(f"unknown model {name!r} for {task}; known: {', '.join(known)}")
    return spec


def build_model(name: str, task: Task, seed: int = 0) -> Any:
    """A new, unfitted pipeline (imputer, scaler, model ``name``) for ``task``.

    Examples
    --------
    >>> list(build_model("hgb", "classification").named_steps)
    ['impute', 'scale', 'model']
    >>> build_model("ridge", "classification")
    Traceback (most recent call last):
    ...
    streamlearn.models.offline.data.OfflineError: 'ridge' is a regression model; \
classification models: hgb, logreg, rf, stacking, voting
    """
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    estimator = _spec(name, task).factory(seed)
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", estimator),
        ]
    )


def merge_spaces(
    base: Mapping[str, Mapping[str, Mapping[str, Any]]],
    overrides: Mapping[str, Any] | None,
) -> dict[Task, dict[str, dict[str, Any]]]:
    """``base`` with the parameters of ``overrides`` put in, per model name.

    ``overrides`` maps model names to ``{parameter: space}`` for any task; or, to
    target one task, ``{"classification": {...}, "regression": {...}}``. A model's
    ``{"replace": true, ...}`` entry replaces its whole space; ``{}`` with ``replace``
    searches nothing (its defaults).

    Examples
    --------
    >>> spaces = merge_spaces(SEARCH_SPACES, {"ridge": {"alpha": [0.1, 1.0]}})
    >>> spaces["regression"]["ridge"]
    {'alpha': [0.1, 1.0]}
    >>> merge_spaces(SEARCH_SPACES, {"hgb": {"replace": True}})["classification"]["hgb"]
    {}
    >>> merge_spaces(SEARCH_SPACES, {"xgb": {}})
    Traceback (most recent call last):
    ...
    streamlearn.models.offline.data.OfflineError: search space for unknown model 'xgb'; \
known: hgb, linear, logreg, rf, ridge, stacking, voting
    """
    merged: dict[Task, dict[str, dict[str, Any]]] = {
        task: {name: dict(space) for name, space in base.get(task, {}).items()} for task in TASKS
    }
    if not overrides:
        return merged
    if not isinstance(overrides, Mapping):
        raise OfflineError("search spaces must be a JSON object: {model: {parameter: space}}")
    per_task: list[tuple[tuple[Task, ...], str, Any]] = []
    for key, value in overrides.items():
        if key in TASKS:
            if not isinstance(value, Mapping):
                raise OfflineError(f"search spaces for {key} must be an object")
            per_task.extend(((key,), name, space) for name, space in value.items())
        else:
            per_task.append((TASKS, key, value))
    every = sorted({name for task in TASKS for name in MODELS[task]})
    for tasks, name, space in per_task:
        applies = [t for t in tasks if name in MODELS[t]]
        if not applies:
            raise OfflineError(
                f"search space for unknown model {name!r}; known: {', '.join(every)}"
            )
        if not isinstance(space, Mapping):
            raise OfflineError(f"search space of {name!r} must be an object of parameters")
        space = copy.deepcopy(dict(space))
        replace = bool(space.pop("replace", False))
        for task in applies:
            merged[task][name] = space if replace else {**merged[task].get(name, {}), **space}
    return merged


def search_distributions(
    space: Mapping[str, Any], pipeline: Any, model: str = "model"
) -> dict[str, Any]:
    """``space`` as ``RandomizedSearchCV`` distributions for the pipeline's ``model`` step.

    Examples
    --------
    >>> pipe = build_model("logreg", "classification")
    >>> dists = search_distributions({"C": {"loguniform": [0.1, 10]}, "penalty": "l2"}, pipe)
    >>> sorted(dists), dists["model__penalty"]
    (['model__C', 'model__penalty'], ['l2'])
    >>> search_distributions({"alpha": [1.0]}, pipe)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamlearn.models.offline.data.OfflineError: LogisticRegression has no parameter 'alpha'; ...
    """
    from scipy import stats

    valid = pipeline.get_params()
    estimator = type(pipeline.named_steps[model]).__name__
    out: dict[str, Any] = {}
    for name, value in space.items():
        key = f"{model}__{name}"
        if key not in valid:
            names = sorted(k.removeprefix(f"{model}__") for k in valid if k.startswith(model))
            shown = ", ".join(n for n in names if n)[:400]
            raise OfflineError(f"{estimator} has no parameter {name!r}; parameters: {shown}")
        out[key] = _distribution(name, value, stats)
    return out


def _distribution(name: str, value: Any, stats: Any) -> Any:
    if isinstance(value, list):
        if not value:
            raise OfflineError(f"parameter {name!r}: empty list of values")
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((kind, bounds),) = value.items()
        ok = (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
            and bounds[0] < bounds[1]
        )
        if kind in ("uniform", "loguniform", "randint") and not ok:
            raise OfflineError(f"parameter {name!r}: {kind} needs [low, high] with low < high")
        low, high = bounds if ok else (None, None)
        if kind == "uniform":
            return stats.uniform(low, high - low)
        if kind == "loguniform":
            if low <= 0:
                raise OfflineError(f"parameter {name!r}: loguniform needs low > 0")
            return stats.loguniform(low, high)
        if kind == "randint":
            return stats.randint(int(low), int(high) + 1)
    return [value]
