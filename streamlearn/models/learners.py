"""Online (River) supervised learners by name: one registry for the CLI and the stream.

Every learner is built fresh by :func:`build_learner` with a fixed seed, so two runs over
the same events in the same order make the same predictions. ``params`` go to the
learner's main estimator (the last step of a pipeline), e.g. ``{"n_models": 10}`` for
``arf``.

============  ==============  =========================================================
name          task            learner
============  ==============  =========================================================
logreg        classification  ``StandardScaler | LogisticRegression`` (one-vs-rest for
                              more than two classes)
logreg-rbf    classification  ``StandardScaler | RadialBasisExpander | LogisticRegression``
                              (SGD, learning rate 0.05): each scaled feature plus three
                              Gaussian bumps of it, a per-feature non-linearity
tree          classification  ``HoeffdingAdaptiveTreeClassifier``
arf           classification  ``ARFClassifier`` (adaptive random forest, 5 trees)
naive-bayes   classification  ``GaussianNB``
linear        regression      ``StandardScaler | LinearRegression``
tree          regression      ``StandardScaler | HoeffdingAdaptiveTreeRegressor``
arf           regression      ``StandardScaler | ARFRegressor`` (5 trees)
============  ==============  =========================================================

Binary classifiers learn a boolean target (``True`` = the positive class); map other
labels first, as :mod:`streamlearn.models.offline.progressive` does.

Progressive accuracy on River's Phishing data set (1,250 events, predict then learn, file
order): ``logreg`` 0.893, ``logreg-rbf`` 0.909, ``arf`` 0.899; see ``docs/models.md`` and
``benchmarks/models_quality.py`` for every metric and the time per event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from river import base as river_base

from streamlearn.errors import StreamlearnError

__all__ = [
    "LEARNERS",
    "LearnerError",
    "LearnerSpec",
    "RadialBasisExpander",
    "Task",
    "build_learner",
    "learner_names",
]

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")


class LearnerError(StreamlearnError):
    """An unknown learner name, a task it does not do, or a parameter it does not take."""


@dataclass(frozen=True)
class LearnerSpec:
    """A registered learner: its name, task, one-line description and factory."""

    name: str
    task: Task
    description: str
    factory: Callable[..., Any]  # (seed, n_classes, **params) -> River estimator


class RadialBasisExpander(river_base.Transformer):
    """Each feature, plus a Gaussian bump of it around each of ``centers``.

    For a feature ``f`` of value ``v`` and a center ``c`` the new feature ``f~c`` is
    ``exp(-((v - c) / width) ** 2)``; ``f`` itself is kept. After a ``StandardScaler``
    the centers are in standard deviations, and a linear model on the output learns one
    smooth curve per feature (an additive model) instead of one slope: it can tell the
    middle of a feature's range from both ends. Features do not interact. No randomness:
    the output depends on ``x`` only. A non-finite or far-out value gives bumps of 0.

    Parameters
    ----------
    centers
        Where the bumps are, in the feature's units.
    width
        Their width, in the same units.

    Examples
    --------
    >>> expander = RadialBasisExpander()
    >>> {k: round(v, 3) for k, v in expander.transform_one({"v": 1.0}).items()}
    {'v': 1.0, 'v~-1': 0.018, 'v~0': 0.368, 'v~1': 1.0}
    >>> expander.transform_one({"v": float("nan")})["v~0"]
    0.0
    """

    def __init__(self, centers: Sequence[float] = (-1.0, 0.0, 1.0), width: float = 1.0) -> None:
        if not centers or width <= 0:
            raise ValueError("RadialBasisExpander needs centers and a width > 0")
        self.centers = tuple(float(c) for c in centers)
        self.width = float(width)
        self._names: dict[Hashable, tuple[tuple[str, float], ...]] = {}

    def transform_one(self, x: dict[Hashable, float]) -> dict[Hashable, float]:
        out: dict[Hashable, float] = dict(x)
        names = self._names
        inverse = 1.0 / self.width
        exp = math.exp
        for name, value in x.items():
            bumps = names.get(name)
            if bumps is None:
                bumps = names[name] = tuple((f"{name}~{c:g}", c) for c in self.centers)
            for out_name, center in bumps:
                d = (value - center) * inverse
                d *= d
                out[out_name] = exp(-d) if d < 700.0 else 0.0  # NaN compares False
        return out


def _logreg(seed: int, n_classes: int, **params: Any) -> Any:
    from river import linear_model, multiclass, preprocessing

    model = linear_model.LogisticRegression(**params)
    if n_classes > 2:
        model = multiclass.OneVsRestClassifier(model)
    return preprocessing.StandardScaler() | model


def _logreg_rbf(seed: int, n_classes: int, **params: Any) -> Any:
    from river import linear_model, multiclass, optim, preprocessing

    model = linear_model.LogisticRegression(**{"optimizer": optim.SGD(0.05), **params})
    if n_classes > 2:
        model = multiclass.OneVsRestClassifier(model)
    return preprocessing.StandardScaler() | RadialBasisExpander() | model


def _tree_classifier(seed: int, n_classes: int, **params: Any) -> Any:
    from river import tree

    return tree.HoeffdingAdaptiveTreeClassifier(**{"seed": seed, **params})


def _arf_classifier(seed: int, n_classes: int, **params: Any) -> Any:
    from river import forest

    return forest.ARFClassifier(**{"n_models": 5, "seed": seed, **params})


def _naive_bayes(seed: int, n_classes: int, **params: Any) -> Any:
    from river import naive_bayes

    return naive_bayes.GaussianNB(**params)


def _linear(seed: int, n_classes: int, **params: Any) -> Any:
    from river import linear_model, preprocessing

    return preprocessing.StandardScaler() | linear_model.LinearRegression(**params)


def _tree_regressor(seed: int, n_classes: int, **params: Any) -> Any:
    from river import preprocessing, tree

    # Its leaves hold linear models: they need scaled features.
    model = tree.HoeffdingAdaptiveTreeRegressor(**{"seed": seed, **params})
    return preprocessing.StandardScaler() | model


def _arf_regressor(seed: int, n_classes: int, **params: Any) -> Any:
    from river import forest, preprocessing

    model = forest.ARFRegressor(**{"n_models": 5, "seed": seed, **params})
    return preprocessing.StandardScaler() | model


LEARNERS: dict[Task, dict[str, LearnerSpec]] = {
    "classification": {
        spec.name: spec
        for spec in (
            LearnerSpec("logreg", "classification", "StandardScaler | LogisticRegression", _logreg),
            LearnerSpec(
                "logreg-rbf",
                "classification",
                "StandardScaler | RadialBasisExpander | LogisticRegression (SGD 0.05)",
                _logreg_rbf,
            ),
            LearnerSpec(
                "tree", "classification", "HoeffdingAdaptiveTreeClassifier", _tree_classifier
            ),
            LearnerSpec("arf", "classification", "ARFClassifier, 5 trees", _arf_classifier),
            LearnerSpec("naive-bayes", "classification", "GaussianNB", _naive_bayes),
        )
    },
    "regression": {
        spec.name: spec
        for spec in (
            LearnerSpec("linear", "regression", "StandardScaler | LinearRegression", _linear),
            LearnerSpec(
                "tree",
                "regression",
                "StandardScaler | HoeffdingAdaptiveTreeRegressor",
                _tree_regressor,
            ),
            LearnerSpec(
                "arf", "regression", "StandardScaler | ARFRegressor, 5 trees", _arf_regressor
            ),
        )
    },
}


def learner_names(task: Task) -> list[str]:
    """The learner names registered for ``task``.

    Examples
    --------
    >>> learner_names("classification")
    ['arf', 'logreg', 'logreg-rbf', 'naive-bayes', 'tree']
    >>> learner_names("regression")
    ['arf', 'linear', 'tree']
    """
    if task not in LEARNERS:
        raise LearnerError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    return sorted(LEARNERS[task])


def build_learner(
    name: str,
    task: Task,
    *,
    seed: int = 0,
    n_classes: int = 2,
    params: dict[str, Any] | None = None,
) -> Any:
    """A new River learner ``name`` for ``task`` (see the module docstring).

    Parameters
    ----------
    name
        A name of :func:`learner_names` for ``task``.
    task
        ``"classification"`` or ``"regression"``.
    seed
        Seed of the learner's random choices (trees, forests).
    n_classes
        Classes of a classification target; ``logreg`` and ``logreg-rbf`` go one-vs-rest
        above two.
    params
        Keyword arguments of the main estimator.

    Examples
    --------
    >>> build_learner("arf", "classification", seed=3).n_models
    5
    >>> model = build_learner("logreg", "classification")
    >>> [type(step).__name__ for step in model.steps.values()]
    ['StandardScaler', 'LogisticRegression']
    >>> type(build_learner("logreg", "classification", n_classes=3)["OneVsRestClassifier"])
    <class 'river.multiclass.ovr.OneVsRestClassifier'>
    >>> model = build_learner("logreg-rbf", "classification", params={"l2": 0.001})
    >>> [type(step).__name__ for step in model.steps.values()]
    ['StandardScaler', 'RadialBasisExpander', 'LogisticRegression']
    >>> model["LogisticRegression"].optimizer.learning_rate, model["LogisticRegression"].l2
    (0.05, 0.001)
    >>> build_learner("linear", "classification")
    Traceback (most recent call last):
    ...
    streamlearn.models.learners.LearnerError: 'linear' is a regression learner; \
classification learners: arf, logreg, logreg-rbf, naive-bayes, tree
    >>> build_learner("tree", "regression", params={"depth": 3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamlearn.models.learners.LearnerError: learner 'tree' (regression): bad params ...
    """
    known = learner_names(task)
    spec = LEARNERS[task].get(name)
    if spec is None:
        others = [t for t in TASKS if t != task and name in LEARNERS[t]]
        if others:
            raise LearnerError(
                f"{name!r} is a {others[0]} learner; {task} learners: {', '.join(known)}"
            )
        raise LearnerError(f"unknown learner {name!r} for {task}; known: {', '.join(known)}")
    try:
        return spec.factory(seed, n_classes, **(params or {}))
    except (TypeError, ValueError) as exc:
        raise LearnerError(f"learner {name!r} ({task}): bad params {params!r}: {exc}") from None
