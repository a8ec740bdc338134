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
tree          classification  ``HoeffdingAdaptiveTreeClassifier``
arf           classification  ``ARFClassifier`` (adaptive random forest, 5 trees)
naive-bayes   classification  ``GaussianNB``
linear        regression      ``StandardScaler | LinearRegression``
tree          regression      ``StandardScaler | HoeffdingAdaptiveTreeRegressor``
arf           regression      ``StandardScaler | ARFRegressor`` (5 trees)
============  ==============  =========================================================

Binary classifiers learn a boolean target (``True`` = the positive class); map other
labels first, as :mod:`streamlearn.models.offline.progressive` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from streamlearn.errors import StreamlearnError

__all__ = ["LEARNERS", "LearnerError", "LearnerSpec", "Task", "build_learner", "learner_names"]

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


def _logreg(seed: int, n_classes: int, **params: Any) -> Any:
    from river import linear_model, multiclass, preprocessing

    model = linear_model.LogisticRegression(**params)
    if n_classes > 2:
        model = multiclass.OneVsRestClassifier(model)
    return preprocessing.StandardScaler() | model


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
    ['arf', 'logreg', 'naive-bayes', 'tree']
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
        Classes of a classification target; ``logreg`` goes one-vs-rest above two.
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
    >>> build_learner("linear", "classification")
    Traceback (most recent call last):
    ...
    streamlearn.models.learners.LearnerError: 'linear' is a regression learner; \
classification learners: arf, logreg, naive-bayes, tree
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
