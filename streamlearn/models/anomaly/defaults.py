"""Detectors by name, as settings and the CLI give them, including the default.

``default`` is the detector measured best on the benchmarks (docs/anomaly.md);
``a+b`` builds an :class:`~streamlearn.models.anomaly.ensemble.Ensemble` of registered
detectors with default parameters; any other name is a registered detector. Params
apply to a single detector, or per member as ``{"member": {...}}`` for an ensemble.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamlearn.models.anomaly.base import AnomalyError, Detector
from streamlearn.models.anomaly.ensemble import Ensemble
from streamlearn.models.anomaly.zscore import RobustZScore

__all__ = ["DEFAULT_DETECTOR", "build_detector", "detector_factory", "detector_names"]

DEFAULT_DETECTOR = "default"


def _default(**params: Any) -> Detector:
    return RobustZScore(**{"method": "std", **params})


def detector_names() -> list[str]:
    """Every name :func:`build_detector` accepts alone (``a+b`` combines them)."""
    from streamlearn.models.anomaly import DETECTORS

    return [DEFAULT_DETECTOR, *sorted(DETECTORS)]


def build_detector(name: str, params: dict[str, Any] | None = None) -> Detector:
    """A new detector for ``name`` (see the module docstring).

    Examples
    --------
    >>> build_detector("zscore", {"window": 64})
    RobustZScore(window=64, method='mad', min_samples=16, season=None)
    >>> build_detector("zscore+hst", {"hst": {"n_trees": 5}}).members["hst"].n_trees
    5
    >>> build_detector("zcore")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamlearn.models.anomaly.base.AnomalyError: unknown detector 'zcore'; known: default, ...
    """
    from streamlearn.models.anomaly import DETECTORS

    params = dict(params or {})
    names = [part.strip() for part in name.split("+")]
    for part in names:
        if part != DEFAULT_DETECTOR and part not in DETECTORS:
            raise AnomalyError(
                f"unknown detector {part!r}; known: {', '.join(detector_names())} "
                "(or several joined by '+')"
            )
    if len(names) != len(set(names)):
        raise AnomalyError(f"detector {name!r} names a member twice")

    def one(part: str, p: dict[str, Any]) -> Detector:
        try:
            return _default(**p) if part == DEFAULT_DETECTOR else DETECTORS[part](**p)
        except TypeError as exc:
            raise AnomalyError(f"bad parameters for detector {part!r}: {exc}") from None

    if len(names) == 1:
        return one(names[0], params)
    ensemble_keys = {"weights", "combine", "calibration_window"}
    unknown = set(params) - set(names) - ensemble_keys
    if unknown:
        raise AnomalyError(
            f"ensemble params must be per member ({', '.join(names)}) or one of "
            f"{sorted(ensemble_keys)}; got {sorted(unknown)}"
        )
    members = {part: one(part, dict(params.get(part) or {})) for part in names}
    return Ensemble(members, **{k: v for k, v in params.items() if k in ensemble_keys})


def detector_factory(name: str, params: dict[str, Any] | None = None) -> Callable[[], Detector]:
    """A function building a fresh detector per key; checks name and params once now."""
    build_detector(name, params)
    return lambda: build_detector(name, params)
