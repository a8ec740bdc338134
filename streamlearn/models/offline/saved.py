"""Fitted scikit-learn pipelines saved in signed envelopes and served one event at a time.

A saved model holds the fitted pipeline (imputation, scaling, model), its feature
list, task, classes, held-out metrics and library versions, pickled inside an
envelope (:mod:`streamlearn.models.envelope`, kind ``"model"``) signed with the app's
secret key: :func:`load_model` checks the signature before unpickling anything.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamlearn.models.envelope import EnvelopeError, open_envelope, read_header, seal
from streamlearn.models.offline.data import OfflineError, Task

__all__ = ["MODEL_KIND", "MissingFeaturesError", "SavedModel", "load_model", "save_model"]

MODEL_KIND = "model"


class MissingFeaturesError(OfflineError):
    """An event lacks features the model needs; ``missing`` lists them."""

    def __init__(self, missing: list[str], features: list[str]) -> None:
        self.missing = missing
        super().__init__(
            f"missing feature{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(the model needs {', '.join(features)})"
        )


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


_controller: Any = None


def _one_thread() -> Any:
    """A context in which OpenMP runs one thread (about 10 µs to enter and leave).

    Events are far too little work for threads: on a busy machine, OpenMP threads made
    gradient-boosting predictions 20 times slower.
    """
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="openmp")


@dataclass
class SavedModel:
    """A fitted pipeline and what a server needs to know to feed it single events.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    >>> y = np.array(["ham", "spam", "ham", "spam"])
    >>> model = SavedModel(
    ...     LogisticRegression().fit(X, y), ["a", "b"], "label", "classification", ["ham", "spam"]
    ... )
    >>> model.predict_one({"a": 0.95, "b": 0.0, "other": "ignored"})
    'spam'
    >>> sorted(model.predict_proba_one({"a": 0.0, "b": 1.0}))
    ['ham', 'spam']
    >>> model.predict_one({"a": 1.0})
    Traceback (most recent call last):
    ...
    streamlearn.models.offline.saved.MissingFeaturesError: missing feature b \
(the model needs a, b)
    """

    pipeline: Any
    features: list[str]
    target: str
    task: Task
    classes: list[Any] | None = None
    model: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    train_rows: int = 0

    def _matrix(self, rows: Iterable[Mapping[str, Any]]) -> np.ndarray:
        features = self.features
        out = []
        for x in rows:
            missing = [f for f in features if f not in x]
            if missing:
                raise MissingFeaturesError(missing, features)
            vector = []
            for name in features:
                value = x[name]
                if value is None:
                    vector.append(math.nan)  # imputed like a missing value in training
                    continue
                try:
                    vector.append(float(value))
                except (TypeError, ValueError):
                    raise OfflineError(f"feature {name} must be a number; got {value!r}") from None
            out.append(vector)
        return np.asarray(out, dtype=float).reshape(len(out), len(features))

    def predict_one(self, x: Mapping[str, Any]) -> Any:
        """The prediction for one event ``{feature: value}``: a class label or a number.

        A feature that is ``None`` is imputed as in training; one that is absent raises
        :class:`MissingFeaturesError`; extra keys are ignored.
        """
        matrix = self._matrix([x])
        with _one_thread():
            return _native(self.pipeline.predict(matrix)[0])

    def predict_proba_one(self, x: Mapping[str, Any]) -> dict[Any, float]:
        """Each class's probability for one event (classification only)."""
        if self.task != "classification":
            raise OfflineError(f"a {self.task} model predicts numbers, not probabilities")
        matrix = self._matrix([x])
        with _one_thread():
            proba = self.pipeline.predict_proba(matrix)[0]
        return {_native(c): float(p) for c, p in zip(self.pipeline.classes_, proba, strict=True)}

    def predict_many(self, rows: Iterable[Mapping[str, Any]]) -> list[Any]:
        """:meth:`predict_one` for many events, in one call to the pipeline (one thread)."""
        matrix = self._matrix(rows)
        if not len(matrix):
            return []
        with _one_thread():
            return [_native(v) for v in self.pipeline.predict(matrix)]

    def describe(self) -> dict[str, Any]:
        """What the model is, without the pipeline (JSON-friendly)."""
        return {
            "model": self.model,
            "task": self.task,
            "target": self.target,
            "features": list(self.features),
            "classes": self.classes,
            "params": self.params,
            "metrics": self.metrics,
            "versions": self.versions,
            "created": self.created,
            "train_rows": self.train_rows,
        }


def save_model(model: SavedModel, path: str | Path, key: bytes) -> Path:
    """Write ``model`` to ``path`` in an envelope signed with ``key`` (atomically).

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.linear_model import LinearRegression
    >>> fitted = LinearRegression().fit(np.array([[0.0], [1.0], [2.0]]), [1.0, 3.0, 5.0])
    >>> path = Path(tempfile.mkdtemp()) / "m.model"
    >>> _ = save_model(SavedModel(fitted, ["x"], "y", "regression"), path, b"k" * 32)
    >>> round(load_model(path, b"k" * 32).predict_one({"x": 3}), 6)
    7.0
    >>> load_model(path, b"z" * 32)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamlearn.models.envelope.EnvelopeError: ...: signature mismatch: ...
    """
    path = Path(path)
    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    blob = seal(model, key, kind=MODEL_KIND)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    return path


def load_model(path: str | Path, key: bytes) -> SavedModel:
    """The :class:`SavedModel` at ``path``, after checking it was signed with ``key``.

    Raises :class:`~streamlearn.models.envelope.EnvelopeError` for a file that is not
    an envelope, was altered or was signed with another key, and :class:`OfflineError`
    for a missing file or an envelope that holds something other than a model.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise OfflineError(f"{path}: no such file") from None
    try:
        obj = open_envelope(blob, key)
    except EnvelopeError as exc:
        raise EnvelopeError(f"{path}: {exc}") from None
    kind = read_header(blob).get("kind")
    if kind != MODEL_KIND or not isinstance(obj, SavedModel):
        raise OfflineError(f"{path} holds a {kind!r} envelope, not a saved model")
    return obj
