"""A small MLP autoencoder trained online on mini-batches of standardised events."""

from __future__ import annotations

import math

import numpy as np
from river import preprocessing
from sklearn.neural_network import MLPRegressor

from streamlearn.models.anomaly.base import AnomalyError, Detector, check_int

__all__ = ["AutoencoderDetector"]

#: Standardised values are clipped to +-CLIP so an absurd value cannot overflow the net.
CLIP = 1e4


class AutoencoderDetector(Detector):
    """Reconstruction error of an MLP trained to copy its (standardised) input.

    Each value is standardised by a running River ``StandardScaler`` (learned before it
    transforms), the vector (features = sorted names seen) is buffered, and every
    ``batch_size`` learned events scikit-learn's ``MLPRegressor`` takes one
    ``partial_fit(X, X)`` step. Raw score: mean squared reconstruction error of ``x``;
    0 before the first batch. Scoring runs the network's forward pass in numpy (the
    same floats as ``predict``, without its validation overhead).

    * Missing values are 0 after standardising, i.e. the running mean.
    * A new value name changes the input size: the network is rebuilt (the scaler and
      the pending batch are kept) and scores 0 until its first batch.
    * Constant series: a zero-variance feature standardises to 0.0; values are clipped
      to ``+-1e4`` standard deviations, so scores stay finite.

    Parameters
    ----------
    hidden
        Hidden layer sizes (a bottleneck narrower than the number of values).
    batch_size
        Learned events per ``partial_fit``.
    seed
        ``random_state`` of the network.

    Examples
    --------
    >>> det = AutoencoderDetector(hidden=(2,), batch_size=16, seed=0)
    >>> det.score_one({"a": 1.0, "b": 2.0})
    0.0
    >>> for i in range(320):
    ...     v = float(i % 10)
    ...     det.learn_one({"a": v, "b": 2 * v, "c": -v})
    >>> det.score_one({"a": 4.0, "b": 8.0, "c": -4.0}) < det.score_one({"a": 4.0, "b": 80.0})
    True
    """

    def __init__(self, hidden: tuple[int, ...] = (8,), batch_size: int = 32, seed: int = 42):
        if not hidden or not all(isinstance(h, int) and h >= 1 for h in hidden):
            raise AnomalyError(f"hidden must be a non-empty tuple of ints >= 1, got {hidden!r}")
        check_int("batch_size", batch_size)
        self.hidden = hidden
        self.batch_size = batch_size
        self.seed = seed
        self._scaler = preprocessing.StandardScaler()
        self._names: list[str] = []
        self._batch: list[dict[str, float]] = []  # scaled events (dicts: names may grow)
        self._net: MLPRegressor | None = None
        self._fitted = False

    def _vector(self, scaled: dict[str, float]) -> list[float]:
        return [min(max(scaled.get(name, 0.0), -CLIP), CLIP) for name in self._names]

    def learn_one(self, x: dict[str, float]) -> None:
        x = {k: v for k, v in x.items() if math.isfinite(v)}
        self._scaler.learn_one(x)
        if any(name not in self._names for name in x):
            self._names = sorted(self._scaler.counts)
            self._net, self._fitted = None, False
        self._batch.append(self._scaler.transform_one(x))
        if len(self._batch) >= self.batch_size:
            if self._net is None:
                self._net = MLPRegressor(hidden_layer_sizes=self.hidden, random_state=self.seed)
            X = np.array([self._vector(s) for s in self._batch], dtype=float)
            self._net.partial_fit(X, X)
            self._fitted = True
            self._batch.clear()

    def score_one(self, x: dict[str, float]) -> float:
        if not self._fitted or self._net is None:
            return 0.0
        known = {k: v for k, v in x.items() if k in self._scaler.counts and math.isfinite(v)}
        v = np.array([self._vector(self._scaler.transform_one(known))], dtype=float)
        error = float(np.mean((np.ravel(_forward(self._net, v)) - v.ravel()) ** 2))
        return error if math.isfinite(error) else 0.0


def _forward(net: MLPRegressor, X: np.ndarray) -> np.ndarray:
    """``net.predict(X)`` for a 2-d ``X``: the same operations, without input validation.

    ReLU hidden layers (``MLPRegressor``'s default activation, the one used here) and an
    identity output, as in scikit-learn's forward pass; its validation costs far more
    than the arithmetic on one small row.
    """
    last = len(net.coefs_) - 1
    activation = X
    for i, (weights, bias) in enumerate(zip(net.coefs_, net.intercepts_, strict=True)):
        activation = activation @ weights
        activation += bias
        if i != last:
            np.maximum(activation, 0, out=activation)
    return activation
