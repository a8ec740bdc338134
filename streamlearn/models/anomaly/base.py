"""The detector interface: ``learn_one`` + ``score_one``, params from the constructor.

A detector scores a flat event ``{value name: float}``; its raw score is ``>= 0`` and
higher means more anomalous. Raw scales differ per detector; wrap one in
:class:`~streamlearn.models.anomaly.calibration.Calibrated` to get ``[0, 1]``.
Hyper-parameters are stored exactly as passed to ``__init__`` (same attribute name), so
``clone()``, ``repr`` and ``_get_params()`` derive from the signature, as in River.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from streamlearn.errors import StreamlearnError

__all__ = ["AnomalyError", "Detector"]


class AnomalyError(StreamlearnError):
    """A detector was given a parameter value that is not allowed; the message names it."""


class Detector:
    """Base of every anomaly detector: learn an event, score an event.

    The intended loop is River's progressive one: ``score_one(x)`` then ``learn_one(x)``.
    State is plain Python / numpy / River / scikit-learn objects and pickles.

    Examples
    --------
    >>> class Threshold(Detector):
    ...     def __init__(self, limit: float = 1.0):
    ...         self.limit = limit
    ...     def learn_one(self, x):
    ...         pass
    ...     def score_one(self, x):
    ...         return float(sum(abs(v) > self.limit for v in x.values()))
    >>> d = Threshold(limit=2.0)
    >>> d, d.score_one({"a": 3.0, "b": 1.0}), d.clone()._get_params()
    (Threshold(limit=2.0), 1.0, {'limit': 2.0})
    """

    def learn_one(self, x: dict[str, float]) -> None:
        """Update the state with one event."""
        raise NotImplementedError

    def score_one(self, x: dict[str, float]) -> float:
        """Raw anomaly score of ``x`` (>= 0, higher = more anomalous); state unchanged."""
        raise NotImplementedError

    def skip_one(self, x: dict[str, float]) -> None:
        """An event passed that is not learned (e.g. an anomaly): keep time, learn nothing.

        Detectors that count events (a seasonal phase) advance here; others ignore it.
        """

    def _get_params(self) -> dict[str, Any]:
        """The constructor arguments, read back from the attributes of the same name."""
        return {
            name: getattr(self, name)
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def clone(self) -> Detector:
        """A fresh detector with the same parameters and no learned state."""
        return type(self)(**{k: _clone_param(v) for k, v in self._get_params().items()})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._get_params().items())
        return f"{type(self).__name__}({args})"


def _clone_param(value: Any) -> Any:
    # Nested detectors (Calibrated, Ensemble) are cloned, i.e. their state is dropped.
    if isinstance(value, Detector):
        return value.clone()
    if isinstance(value, dict) and any(isinstance(v, Detector) for v in value.values()):
        return {k: _clone_param(v) for k, v in value.items()}
    return copy.deepcopy(value)


def check_int(name: str, value: Any, minimum: int = 1) -> None:
    """Raise :class:`AnomalyError` unless ``value`` is an int ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AnomalyError(f"{name} must be an integer >= {minimum}, got {value!r}")
