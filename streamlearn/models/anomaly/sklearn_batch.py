"""Batch scikit-learn detectors refitted on a trailing reference window of events.

Fitting uses scikit-learn; scoring one event does not go through ``score_samples``,
whose per-call overhead (input validation, one ``apply`` per tree) costs milliseconds
per event. Both detectors score with the fitted model's own arrays instead and return
the same numbers (see :func:`forest_scores` and ``SklearnLOF``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from streamlearn.models.anomaly.base import AnomalyError, Detector, check_int

__all__ = [
    "Forest",
    "IsolationForestDetector",
    "SklearnLOF",
    "average_path_length",
    "compile_forest",
    "forest_scores",
]


class _ReferenceWindow(Detector):
    """Keeps the last ``reference_size`` events; fits a scikit-learn model on them.

    The first fit happens once ``min_samples`` events are learned, then one every
    ``refit_every`` learned events. Features are the sorted names seen up to the fit;
    a missing value (in the reference or in a scored event) is imputed with the running
    mean of its feature; names first seen after the fit are ignored until the next fit.
    Before the first fit the score is 0. Subclasses build the model
    (``_make_model``) and score a feature vector with it (``_score_vector``).
    """

    def __init__(self, reference_size: int, refit_every: int, min_samples: int) -> None:
        check_int("reference_size", reference_size, 2)
        check_int("refit_every", refit_every)
        check_int("min_samples", min_samples, 2)
        if min_samples > reference_size:
            raise AnomalyError(
                f"min_samples ({min_samples}) must be <= reference_size ({reference_size})"
            )
        self._reference: deque[dict[str, float]] = deque(maxlen=reference_size)
        self._means: dict[str, list[float]] = {}  # name -> [count, mean]
        self._since_fit = 0
        self._model: Any = None
        self._names: list[str] = []  # feature order of the fitted model

    def _make_model(self) -> Any:
        raise NotImplementedError

    def _fitted(self) -> None:
        """Called after each fit (e.g. to prepare fast scoring)."""

    def _score_vector(self, v: np.ndarray) -> float:
        """Raw score of one feature vector (float64, the fitted features' order)."""
        return -float(self._model.score_samples(v.reshape(1, -1))[0])

    def _vector(self, x: dict[str, float]) -> list[float]:
        means = self._means
        out = []
        for name in self._names:
            v = x.get(name)
            out.append(v if v is not None and math.isfinite(v) else means[name][1])
        return out

    def learn_one(self, x: dict[str, float]) -> None:
        means = self._means
        for name, v in x.items():
            if not math.isfinite(v):
                continue
            m = means.get(name)
            if m is None:
                m = means[name] = [0, 0.0]
            m[0] += 1
            m[1] += (v - m[1]) / m[0]
        self._reference.append(dict(x))
        self._since_fit += 1
        due = self._since_fit >= self.refit_every if self._model is not None else True
        if due and len(self._reference) >= self.min_samples:
            self._names = sorted(means)
            X = np.array([self._vector(r) for r in self._reference], dtype=float)
            self._model = self._make_model().fit(X)
            self._since_fit = 0
            self._fitted()

    def score_one(self, x: dict[str, float]) -> float:
        if self._model is None:
            return 0.0
        score = self._score_vector(np.array(self._vector(x), dtype=float))
        return score if score > 0.0 and math.isfinite(score) else 0.0


@dataclass(frozen=True)
class Forest:
    """The trees of a fitted ``IsolationForest`` as flat arrays, all trees stepped at once.

    Node ``i`` of the forest (the trees' nodes one after the other) splits column
    ``feature[i]`` of the event at ``threshold[i]``; its children are
    ``children[2 i]`` (``<= threshold``) and ``children[2 i + 1]``. A leaf is its own
    child with threshold ``+inf``, so stepping ``steps`` times from the roots leaves
    every tree at the leaf of the event; ``path[leaf]`` is that tree's path length.
    """

    children: np.ndarray  # intp, 2 * nodes
    feature: np.ndarray  # intp, nodes: a column of the scored vector (0 at leaves)
    threshold: np.ndarray  # float64, nodes
    path: np.ndarray  # float64, nodes: depth + c(samples at the node) - 1 (used at leaves)
    roots: np.ndarray  # intp, trees
    steps: int  # depth of the deepest leaf (edges)
    denominator: float  # trees * c(max_samples)


def average_path_length(n_samples: np.ndarray) -> np.ndarray:
    """``c(n)``: the average path length of an unsuccessful search in a BST of ``n`` nodes.

    The same expression as scikit-learn's ``_average_path_length`` (0 for ``n <= 1``,
    1 for ``n == 2``), so the same floats.

    Examples
    --------
    >>> average_path_length(np.array([1, 2, 256])).round(4).tolist()
    [0.0, 1.0, 10.2448]
    """
    n = np.asarray(n_samples)
    out = np.zeros(n.shape)
    out[n == 2] = 1.0
    big = n > 2
    m = n[big]
    out[big] = 2.0 * (np.log(m - 1.0) + np.euler_gamma) - 2.0 * (m - 1.0) / m
    return out


def compile_forest(model: IsolationForest) -> Forest:
    """The :class:`Forest` of a fitted scikit-learn ``IsolationForest``.

    Reads each tree's public ``tree_`` arrays (``children_left``, ``children_right``,
    ``feature``, ``threshold``, ``n_node_samples``) and ``estimators_features_`` (the
    columns each tree was trained on when features were subsampled).
    """
    n_features = model.n_features_in_
    parts: list[tuple[np.ndarray, ...]] = []
    roots, offset = [], 0
    for estimator, columns in zip(model.estimators_, model.estimators_features_, strict=True):
        tree = estimator.tree_
        nodes = np.arange(tree.node_count)
        leaf = tree.children_left < 0
        left = np.where(leaf, nodes, tree.children_left) + offset
        right = np.where(leaf, nodes, tree.children_right) + offset
        feature = np.where(leaf, 0, tree.feature)
        if len(columns) != n_features:  # trained on X[:, columns]
            feature = np.asarray(columns)[feature]
        threshold = np.where(leaf, np.inf, tree.threshold)
        parts.append((left, right, feature, threshold, leaf, tree.n_node_samples))
        roots.append(offset)
        offset += tree.node_count
    left, right, feature, threshold, leaf, samples = (
        np.concatenate(c) for c in zip(*parts, strict=True)
    )
    depth, steps = _node_depths(left, right, leaf, np.array(roots))
    path = depth + average_path_length(samples) - 1.0
    children = np.empty(2 * offset, dtype=np.intp)
    children[0::2], children[1::2] = left, right
    denominator = len(model.estimators_) * float(
        average_path_length(np.array([model.max_samples_]))[0]
    )
    return Forest(
        children,
        feature.astype(np.intp),
        threshold.astype(np.float64),
        path,
        np.array(roots, dtype=np.intp),
        steps,
        denominator,
    )


def _node_depths(
    left: np.ndarray, right: np.ndarray, leaf: np.ndarray, roots: np.ndarray
) -> tuple[np.ndarray, int]:
    """Depth of every node (a root is 1, as scikit-learn counts) and the deepest leaf's edges."""
    depth = np.zeros(len(left))
    depth[roots] = 1.0
    level = roots[~leaf[roots]]  # internal nodes of the current depth
    steps = 0
    while len(level):
        steps += 1
        children = np.concatenate([left[level], right[level]])
        depth[children] = steps + 1.0
        level = children[~leaf[children]]
    return depth, steps


def forest_scores(forest: Forest, X: np.ndarray) -> np.ndarray:
    """scikit-learn's ``IsolationForest.score_samples`` of the rows of ``X``, via ``forest``.

    The same arithmetic: values rounded to float32 (as scikit-learn's trees read them),
    compared ``<=`` with the float64 thresholds, path lengths summed tree by tree in
    order, ``-2 ** (-sum / denominator)``. About ``steps`` (8 for 256 samples) numpy
    operations on arrays of one entry per tree, instead of one ``apply`` call per tree.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3))
    >>> model = IsolationForest(n_estimators=10, random_state=0).fit(X)
    >>> bool(np.allclose(forest_scores(compile_forest(model), X), model.score_samples(X),
    ...                  rtol=0.0, atol=1e-12))
    True
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float32)).astype(np.float64)
    rows = np.arange(len(X))[:, None]
    node = np.broadcast_to(forest.roots, (len(X), len(forest.roots)))
    children, feature, threshold = forest.children, forest.feature, forest.threshold
    for _ in range(forest.steps):
        node = children[2 * node + (X[rows, feature[node]] > threshold[node])]
    depths = np.cumsum(forest.path[node], axis=1)[:, -1]
    if forest.denominator == 0.0:
        return -np.ones(len(X))
    return -(2.0 ** (-(depths / forest.denominator)))


def _forest_score_one(forest: Forest, v: np.ndarray) -> float:
    """``-forest_scores(forest, [v])[0]`` for one vector, with less indexing overhead."""
    v = v.astype(np.float32).astype(np.float64)
    node = forest.roots
    children, feature, threshold = forest.children, forest.feature, forest.threshold
    for _ in range(forest.steps):
        node = children[2 * node + (v[feature[node]] > threshold[node])]
    depth = np.cumsum(forest.path[node])[-1:]
    if forest.denominator == 0.0:
        return 1.0
    return float((2.0 ** (-(depth / forest.denominator)))[0])  # an array, as scikit-learn


class IsolationForestDetector(_ReferenceWindow):
    """scikit-learn's ``IsolationForest`` refitted on a trailing reference window.

    Raw score ``-score_samples(x)``: the isolation score ``2 ** (-E[h(x)] / c(n))``,
    in ``(0, 1]``, about 0.5 or below for inliers. Trees are scale-free, so no scaling;
    a constant feature is never split on (finite scores). See ``_ReferenceWindow`` for
    fitting, missing and new values.

    Cost: ``score_one`` walks all trees at once on the compiled forest
    (:func:`forest_scores`, the same floats as ``score_samples``): about 30 µs at 100
    trees. Each refit (``IsolationForest.fit``, about 0.1 s for 100 trees on 512
    events) is paid once per ``refit_every`` events: about 200 µs per event amortised
    with the defaults, in bursts; raise ``refit_every`` to lower it.

    Parameters
    ----------
    reference_size
        Events kept as reference.
    refit_every
        Learned events between refits.
    n_estimators
        Trees of the forest.
    seed
        ``random_state`` of every fit.
    min_samples
        Events needed before the first fit.

    Examples
    --------
    >>> det = IsolationForestDetector(reference_size=64, refit_every=64, n_estimators=20,
    ...                               min_samples=32)
    >>> det.score_one({"x": 1.0})  # not fitted yet
    0.0
    >>> for i in range(64):
    ...     det.learn_one({"x": float(i % 8), "y": 1.0})
    >>> det.score_one({"x": 3.0, "y": 1.0}) < det.score_one({"x": 90.0})  # y imputed
    True
    """

    def __init__(
        self,
        reference_size: int = 512,
        refit_every: int = 512,
        n_estimators: int = 100,
        seed: int = 42,
        min_samples: int = 64,
    ) -> None:
        check_int("n_estimators", n_estimators)
        super().__init__(reference_size, refit_every, min_samples)
        self.reference_size = reference_size
        self.refit_every = refit_every
        self.n_estimators = n_estimators
        self.seed = seed
        self.min_samples = min_samples
        self._forest: Forest | None = None

    def _make_model(self) -> Any:
        return IsolationForest(n_estimators=self.n_estimators, random_state=self.seed)

    def _fitted(self) -> None:
        self._forest = compile_forest(self._model)

    def _score_vector(self, v: np.ndarray) -> float:
        if self._forest is None:  # unpickled: compiled again from the model (a few ms)
            self._forest = compile_forest(self._model)
        return _forest_score_one(self._forest, v)

    def __getstate__(self) -> dict[str, Any]:
        # The compiled forest repeats the model's trees: not worth its bytes in a checkpoint.
        return {**self.__dict__, "_forest": None}


class SklearnLOF(_ReferenceWindow):
    """scikit-learn's ``LocalOutlierFactor(novelty=True)`` refitted on a reference window.

    Features are standardised with the reference's mean and std (a constant feature
    gets scale 1). Raw score ``-score_samples(x)``: the LOF, about 1 for inliers.
    See ``_ReferenceWindow`` for fitting, missing and new values.

    Cost: the neighbours are searched with a KD-tree (``algorithm="kd_tree"``, which
    scikit-learn also picks by itself for up to 15 features), and ``score_one`` queries
    that tree directly, then applies ``score_samples``' formula to the fitted model's
    arrays (the same floats, without its per-call overhead): about 30-60 µs per event
    on 512 reference events. Each refit (all reference events' neighbours, a few ms to
    tens of ms) is paid once per ``refit_every`` events.

    Parameters
    ----------
    reference_size
        Events kept as reference.
    refit_every
        Learned events between refits.
    n_neighbors
        Neighbourhood size of LOF.
    min_samples
        Events needed before the first fit (at least ``n_neighbors + 1`` is sensible).

    Examples
    --------
    >>> det = SklearnLOF(reference_size=64, refit_every=64, n_neighbors=5, min_samples=32)
    >>> for i in range(64):
    ...     det.learn_one({"x": float(i % 8), "y": float(i % 3)})
    >>> det.score_one({"x": 3.0, "y": 1.0}) < 2.0 < det.score_one({"x": 90.0, "y": 1.0})
    True
    """

    def __init__(
        self,
        reference_size: int = 512,
        refit_every: int = 512,
        n_neighbors: int = 20,
        min_samples: int = 64,
    ) -> None:
        check_int("n_neighbors", n_neighbors)
        super().__init__(reference_size, refit_every, min_samples)
        self.reference_size = reference_size
        self.refit_every = refit_every
        self.n_neighbors = n_neighbors
        self.min_samples = min_samples
        self._lof: tuple[Any, ...] | None = None

    def _make_model(self) -> Any:
        n_neighbors = min(self.n_neighbors, len(self._reference) - 1)
        lof = LocalOutlierFactor(n_neighbors=n_neighbors, novelty=True, algorithm="kd_tree")
        return make_pipeline(StandardScaler(), lof)

    def _fitted(self) -> None:
        scaler, lof = self._model[0], self._model[-1]
        k = lof.n_neighbors_
        # Fitted state score_samples reads: the reference events (scaled, one row per
        # feature here), each one's k-distance and local reachability density.
        self._lof = (
            scaler.mean_,
            scaler.scale_,
            np.ascontiguousarray(lof._fit_X.T),
            lof._tree,
            lof._distances_fit_X_[:, k - 1],
            lof._lrd,
            k,
        )

    def _score_vector(self, v: np.ndarray) -> float:
        # score_samples' steps (StandardScaler.transform, kneighbors, reachability,
        # lrd ratios) on one row, with the same numpy operations.
        assert self._lof is not None
        mean, scale, reference, tree, k_distance, lrd, k = self._lof
        scaled = (v - mean) / scale
        distances, neighbors = _nearest(reference, scaled, k)
        if neighbors is None:  # a tie at the k-th distance: the tree decides, as in sklearn
            distances, neighbors = tree.query(scaled.reshape(1, -1), k)
        reach = np.maximum(distances, k_distance[neighbors])
        x_lrd = 1.0 / (np.mean(reach, axis=1) + 1e-10)
        return float(np.mean(lrd[neighbors] / x_lrd[:, np.newaxis], axis=1)[0])


def _nearest(reference: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Distances ``(1, k)`` and indices ``(1, k)`` of the ``k`` reference columns nearest ``x``.

    Brute force over ``reference`` (one row per feature), Euclidean distance summed
    feature by feature as scikit-learn's KD-tree does (the same floats), nearest first.
    The indices are ``None`` when the ``k``-th and ``k + 1``-th distances are equal:
    which of the tied events is a neighbour is then the tree's choice.
    """
    diff = reference - x[:, np.newaxis]
    diff *= diff
    distances = np.sqrt(np.add.reduce(diff, axis=0))  # row by row: sequential per column
    if k < len(distances):
        part = np.argpartition(distances, k)
        nearest, after = part[:k], distances[part[k]]
        if distances[nearest].max() == after:
            return distances[:0], None
    else:
        nearest = np.arange(len(distances))
    order = nearest[np.argsort(distances[nearest], kind="stable")]
    return distances[order][np.newaxis], order[np.newaxis]
