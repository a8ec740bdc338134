"""Batch scikit-learn detectors refitted on a trailing reference window of events."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from streamlearn.models.anomaly.base import AnomalyError, Detector, check_int

__all__ = ["IsolationForestDetector", "SklearnLOF"]


class _ReferenceWindow(Detector):
    """Keeps the last ``reference_size`` events; fits a scikit-learn model on them.

    The first fit happens once ``min_samples`` events are learned, then one every
    ``refit_every`` learned events. Features are the sorted names seen up to the fit;
    a missing value (in the reference or in a scored event) is imputed with the running
    mean of its feature; names first seen after the fit are ignored until the next fit.
    Before the first fit the score is 0.
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

    def score_one(self, x: dict[str, float]) -> float:
        if self._model is None:
            return 0.0
        X = np.array([self._vector(x)], dtype=float)
        score = -float(self._model.score_samples(X)[0])
        return score if score > 0.0 and math.isfinite(score) else 0.0


class IsolationForestDetector(_ReferenceWindow):
    """scikit-learn's ``IsolationForest`` refitted on a trailing reference window.

    Raw score ``-score_samples(x)``: the isolation score ``2 ** (-E[h(x)] / c(n))``,
    in ``(0, 1]``, about 0.5 or below for inliers. Trees are scale-free, so no scaling;
    a constant feature is never split on (finite scores). See ``_ReferenceWindow`` for
    fitting, missing and new values. ``score_one`` costs one ``score_samples`` call
    (milliseconds at 100 trees): use it where that rate is affordable.

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

    def _make_model(self) -> Any:
        return IsolationForest(n_estimators=self.n_estimators, random_state=self.seed)


class SklearnLOF(_ReferenceWindow):
    """scikit-learn's ``LocalOutlierFactor(novelty=True)`` refitted on a reference window.

    Features are standardised with the reference's mean and std (a constant feature
    gets scale 1). Raw score ``-score_samples(x)``: the LOF, about 1 for inliers.
    See ``_ReferenceWindow`` for fitting, missing and new values.

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

    def _make_model(self) -> Any:
        n_neighbors = min(self.n_neighbors, len(self._reference) - 1)
        return make_pipeline(
            StandardScaler(), LocalOutlierFactor(n_neighbors=n_neighbors, novelty=True)
        )
