"""Feature selection: offline by mutual information (scikit-learn), online by correlation
(a River transformer).

* :func:`select_by_mutual_info` ranks the features of a batch of feature dicts (or a
  DataFrame) by their estimated mutual information with the target and keeps the ``k``
  best; :func:`mutual_info_scores` gives the scores.
* :class:`OnlineSelectKBest` is River's ``feature_selection.SelectKBest`` with ``|r|``
  (absolute Pearson correlation) by default and a warm-up; it goes in a River pipeline
  before the learner.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from river import feature_selection, stats

from streamlearn.models.features.config import FeatureError

__all__ = ["OnlineSelectKBest", "mutual_info_scores", "select_by_mutual_info"]

Task = Literal["classification", "regression"]


def _rows(X: Any) -> list[dict[str, Any]]:
    """Feature dicts from a list of mappings or a DataFrame-like (``to_dict("records")``)."""
    if hasattr(X, "to_dict") and hasattr(X, "columns"):
        X = X.to_dict("records")
    rows = []
    for i, row in enumerate(X):
        if not isinstance(row, Mapping):
            raise FeatureError(f"X[{i}]: must be a mapping of feature name to value")
        rows.append(
            {
                str(k): v
                for k, v in row.items()
                if v is not None and not (isinstance(v, float) and not math.isfinite(v))
            }
        )
    return rows


def mutual_info_scores(
    X: Iterable[Mapping[str, Any]] | Any,
    y: Sequence[Any],
    task: Task = "classification",
    *,
    random_state: int = 0,
    n_neighbors: int = 3,
) -> dict[str, float]:
    """Estimated mutual information (nats) between each feature and the target.

    Rows are vectorised by scikit-learn's ``DictVectorizer``: a feature missing from a
    row (or NaN / None there) counts as 0, a string value ``v`` of feature ``f`` becomes
    the indicator feature ``f=v``. Columns holding only 0 and 1 are treated as discrete,
    the others as continuous (k-nearest-neighbour estimator, ``n_neighbors``).
    ``random_state`` fixes the estimator's noise: the same data give the same scores.

    Parameters
    ----------
    X
        Feature dicts (e.g. a pipeline's outputs) or a DataFrame.
    y
        One target per row: class labels, or numbers for ``task="regression"``.
    task
        ``classification`` (``mutual_info_classif``) or ``regression``
        (``mutual_info_regression``).
    random_state, n_neighbors
        Passed to scikit-learn.

    Returns
    -------
    dict
        Feature name -> score (>= 0), best first (ties by name).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(1)
    >>> X = [{"a": rng.random(), "b": rng.random()} for _ in range(200)]
    >>> y = [row["a"] > 0.5 for row in X]
    >>> scores = mutual_info_scores(X, y)
    >>> list(scores), scores["a"] > 0.5 > scores["b"]
    (['a', 'b'], True)
    """
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    if task not in ("classification", "regression"):
        raise FeatureError(f"task: must be 'classification' or 'regression', got {task!r}")
    rows = _rows(X)
    y = list(y)
    if len(rows) != len(y):
        raise FeatureError(f"y: has {len(y)} targets for {len(rows)} rows of X")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int) or n_neighbors < 1:
        raise FeatureError(f"n_neighbors: must be an integer >= 1, got {n_neighbors!r}")
    if len(rows) <= n_neighbors:
        raise FeatureError(f"X: needs more than n_neighbors={n_neighbors} rows, got {len(rows)}")
    vectorizer = DictVectorizer(sparse=False, sort=True)
    matrix = vectorizer.fit_transform(rows)
    names = [str(n) for n in vectorizer.get_feature_names_out()]
    if not names:
        raise FeatureError("X: has no features")
    discrete = np.all((matrix == 0.0) | (matrix == 1.0), axis=0)
    if task == "classification":
        scores = mutual_info_classif(
            matrix,
            np.asarray(y, dtype=object).astype(str),
            discrete_features=discrete,
            n_neighbors=n_neighbors,
            random_state=random_state,
        )
    else:
        try:
            target = np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            raise FeatureError("y: regression targets must be numbers") from None
        if not np.all(np.isfinite(target)):
            raise FeatureError("y: regression targets must be finite")
        scores = mutual_info_regression(
            matrix,
            target,
            discrete_features=discrete,
            n_neighbors=n_neighbors,
            random_state=random_state,
        )
    ranked = sorted(zip(names, scores.tolist(), strict=True), key=lambda p: (-p[1], p[0]))
    return {name: max(0.0, score) for name, score in ranked}


def select_by_mutual_info(
    X: Iterable[Mapping[str, Any]] | Any,
    y: Sequence[Any],
    k: int,
    task: Task = "classification",
    *,
    random_state: int = 0,
    n_neighbors: int = 3,
) -> list[str]:
    """The ``k`` features with the highest mutual information with the target.

    See :func:`mutual_info_scores` for how rows are read and scored; deterministic for a
    given ``random_state``. Fewer than ``k`` names when ``X`` has fewer features.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(7)
    >>> X = [{"noise": rng.gauss(0, 1), "signal": rng.gauss(0, 1)} for _ in range(300)]
    >>> y = [2.0 * row["signal"] + rng.gauss(0, 0.1) for row in X]
    >>> select_by_mutual_info(X, y, k=1, task="regression")
    ['signal']
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise FeatureError(f"k: must be an integer >= 1, got {k!r}")
    scores = mutual_info_scores(X, y, task, random_state=random_state, n_neighbors=n_neighbors)
    return list(scores)[:k]


class OnlineSelectKBest(feature_selection.SelectKBest):
    """Keep the ``k`` features most correlated with the target, learned online.

    River's ``SelectKBest`` ranks each feature by a bivariate statistic of (feature,
    target), updated by ``learn_one``; here the default statistic is Pearson's ``r`` and
    features rank by ``|r|`` (a strong negative correlation is as informative as a
    positive one). Until ``warmup`` targets are learned, every feature passes. Targets
    must be numbers or booleans (binary classification); for more classes, select
    offline with :func:`select_by_mutual_info`.

    Parameters
    ----------
    k
        Features kept.
    similarity
        A River bivariate statistic (default ``stats.PearsonCorr()``), copied per feature.
    use_abs
        Rank by the statistic's absolute value.
    warmup
        Targets learned before selecting.

    Examples
    --------
    In a pipeline, before the learner:

    >>> import random
    >>> from river import linear_model
    >>> rng = random.Random(3)
    >>> model = OnlineSelectKBest(k=1, warmup=20) | linear_model.LinearRegression()
    >>> for _ in range(500):
    ...     x = {"noise": rng.gauss(0, 1), "load": rng.gauss(0, 1)}
    ...     model.learn_one(x, -3.0 * x["load"] + rng.gauss(0, 0.1))
    >>> model["OnlineSelectKBest"].selected
    ['load']
    >>> model["OnlineSelectKBest"].transform_one({"noise": 0.3, "load": 1.0})
    {'load': 1.0}
    """

    def __init__(
        self,
        k: int = 10,
        similarity: stats.base.Bivariate | None = None,
        use_abs: bool = True,
        warmup: int = 0,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise FeatureError(f"k: must be an integer >= 1, got {k!r}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise FeatureError(f"warmup: must be an integer >= 0, got {warmup!r}")
        super().__init__(
            similarity=stats.PearsonCorr() if similarity is None else similarity,
            k=k,
            use_abs=use_abs,
        )
        self.warmup = warmup
        self.learned = 0

    @classmethod
    def _unit_test_params(cls) -> Iterable[dict[str, Any]]:
        yield {"k": 2}

    def learn_one(self, x: dict, y: Any) -> None:
        try:
            target = float(y)
        except (TypeError, ValueError):
            raise FeatureError(f"y: must be a number or a boolean, got {y!r}") from None
        super().learn_one(x, target)
        self.learned += 1

    def transform_one(self, x: dict) -> dict:
        if self.learned < self.warmup:
            return dict(x)
        return super().transform_one(x)

    @property
    def selected(self) -> list:
        """The features currently kept, best first."""
        return [name for name, _ in self.leaderboard.most_common(self.k)]
