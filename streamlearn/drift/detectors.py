"""Online drift detectors by name, with defaults tuned for streamlearn's streams.

Every detector is a River one (``update(x)`` and a read-only ``drift_detected``):

=============  ==========================  ==============  ================================
name           River class                 data / concept  input
=============  ==========================  ==============  ================================
adwin          ``drift.ADWIN``             both            a real value
kswin          ``drift.KSWIN``             both            a real value
page-hinkley   ``drift.PageHinkley``       both            a real value
ddm            ``drift.binary.DDM``        concept         an error as bool (classification)
eddm           ``drift.binary.EDDM``       concept         an error as bool (classification)
hddm-a         ``drift.binary.HDDMA``      concept         an error as bool (classification)
hddm-w         ``drift.binary.HDDMW``      concept         an error as bool (classification)
=============  ==========================  ==============  ================================

Empty ``params`` mean the tuned defaults of :data:`DATA_DEFAULTS` and
:data:`CONCEPT_DEFAULTS`; given ``params`` are used as passed, on top of River's own
defaults (not ours). The data monitor feeds a detector values standardised by the
reference window (z-scores), the concept monitor feeds classification errors as 0/1 and
regression errors divided by the reference's mean absolute error, so one set of defaults
fits every key. Why each default is what it is: ``docs/drift.md`` (measured with
``benchmarks/drift_quality.py``: <= 1 false alarm per 100,000 stationary events).
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from river import drift
from river.drift import binary

from streamlearn.errors import StreamlearnError

__all__ = [
    "BINARY_DETECTORS",
    "CONCEPT_DEFAULTS",
    "DATA_DEFAULTS",
    "DATA_DETECTORS",
    "DriftError",
    "build_concept_detector",
    "build_data_detector",
    "detector_names",
    "validate_drift_settings",
]

Task = Literal["classification", "regression"]


class DriftError(StreamlearnError):
    """An unknown drift detector, one the task cannot use, or a parameter it does not take."""


DATA_DETECTORS: dict[str, type] = {
    "adwin": drift.ADWIN,
    "kswin": drift.KSWIN,
    "page-hinkley": drift.PageHinkley,
}
BINARY_DETECTORS: dict[str, type] = {
    "ddm": binary.DDM,
    "eddm": binary.EDDM,
    "hddm-a": binary.HDDMA,
    "hddm-w": binary.HDDMW,
}

#: Defaults of data detectors, whose input is a z-score against the reference window.
DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "adwin": {"delta": 1e-5},
    "kswin": {"alpha": 1e-9, "window_size": 500, "stat_size": 100, "seed": 0},
    "page-hinkley": {"delta": 0.25, "threshold": 50.0, "alpha": 1.0, "min_instances": 100},
}
#: Defaults of concept detectors, whose input is a model's error (0/1 or relative).
CONCEPT_DEFAULTS: dict[str, dict[str, Any]] = {
    "adwin": {"delta": 1e-5},
    "kswin": {"alpha": 1e-9, "window_size": 500, "stat_size": 100, "seed": 0},
    "page-hinkley": {"delta": 0.02, "threshold": 25.0, "min_instances": 100, "mode": "up"},
    "ddm": {"warm_start": 100, "warning_threshold": 3.0, "drift_threshold": 4.0},
    "eddm": {"warm_start": 100, "alpha": 0.9, "beta": 0.8},
    "hddm-a": {"drift_confidence": 1e-3, "warning_confidence": 5e-3},
    "hddm-w": {"drift_confidence": 1e-3, "warning_confidence": 5e-3, "lambda_val": 0.05},
}


def detector_names(task: Task | None = None) -> list[str]:
    """Detector names: for data drift (``task=None``) or on a ``task`` model's errors.

    >>> detector_names()
    ['adwin', 'kswin', 'page-hinkley']
    >>> detector_names("classification")[3:]
    ['ddm', 'eddm', 'hddm-a', 'hddm-w']
    """
    if task == "classification":
        return [*DATA_DETECTORS, *BINARY_DETECTORS]
    return list(DATA_DETECTORS)


def _build(name: str, params: dict[str, Any], cls: type, defaults: dict[str, Any]) -> Any:
    kwargs = dict(params) if params else dict(defaults)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise DriftError(
            f"drift detector {name!r} takes no parameter {unknown[0]!r} "
            f"(it takes: {', '.join(sorted(accepted))})"
        )
    try:
        detector = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise DriftError(f"drift detector {name!r}: bad parameters {kwargs}: {exc}") from None
    # River checks few values: a probe catches e.g. a string where a number belongs.
    try:
        probe = cls(**kwargs)
        probe.update(0.0 if cls in DATA_DETECTORS.values() else False)
    except Exception as exc:
        raise DriftError(f"drift detector {name!r}: bad parameters {kwargs}: {exc}") from None
    return detector


def build_data_detector(name: str, params: dict[str, Any] | None = None) -> Any:
    """A new data drift detector ``name`` (adwin, kswin, page-hinkley).

    Examples
    --------
    >>> build_data_detector("adwin").delta
    1e-05
    >>> build_data_detector("adwin", {"delta": 0.01}).delta
    0.01
    >>> build_data_detector("ddm")
    Traceback (most recent call last):
    ...
    streamlearn.drift.detectors.DriftError: unknown data drift detector 'ddm' (choose from: adwin, kswin, page-hinkley)
    >>> build_data_detector("adwin", {"delt": 0.01})
    Traceback (most recent call last):
    ...
    streamlearn.drift.detectors.DriftError: drift detector 'adwin' takes no parameter 'delt' (it takes: clock, delta, grace_period, max_buckets, min_window_length)
    """  # noqa: E501
    cls = DATA_DETECTORS.get(name)
    if cls is None:
        raise DriftError(
            f"unknown data drift detector {name!r} (choose from: {', '.join(DATA_DETECTORS)})"
        )
    return _build(name, params or {}, cls, DATA_DEFAULTS[name])


def build_concept_detector(name: str, params: dict[str, Any] | None, task: Task) -> Any:
    """A new detector of a ``task`` model's error stream.

    Examples
    --------
    >>> type(build_concept_detector("hddm-a", {}, "classification")).__name__
    'HDDMA'
    >>> build_concept_detector("ddm", {}, "regression")
    Traceback (most recent call last):
    ...
    streamlearn.drift.detectors.DriftError: concept drift detector 'ddm' needs classification errors; for regression choose from: adwin, kswin, page-hinkley
    """  # noqa: E501
    if task not in ("classification", "regression"):
        raise DriftError(f"unknown task {task!r} (choose from: classification, regression)")
    cls = DATA_DETECTORS.get(name) or BINARY_DETECTORS.get(name)
    if cls is None:
        raise DriftError(
            f"unknown concept drift detector {name!r} "
            f"(choose from: {', '.join(detector_names('classification'))})"
        )
    if name in BINARY_DETECTORS and task == "regression":
        raise DriftError(
            f"concept drift detector {name!r} needs classification errors; for regression "
            f"choose from: {', '.join(DATA_DETECTORS)}"
        )
    return _build(name, params or {}, cls, CONCEPT_DEFAULTS[name])


def validate_drift_settings(settings: Any) -> None:
    """Raise :class:`DriftError` when the ``drift_*`` settings cannot work together.

    Checks the detectors and their parameters (for ``model_task``), and that a pinned
    reference range is complete and not empty.
    """
    build_data_detector(settings.drift_detector, settings.drift_params)
    task = getattr(settings, "model_task", "classification")
    build_concept_detector(settings.drift_concept_detector, settings.drift_concept_params, task)
    start, end = settings.drift_reference_from_ms, settings.drift_reference_to_ms
    if (start is None) != (end is None):
        raise DriftError(
            "drift_reference_from_ms and drift_reference_to_ms must be set together "
            "(a pinned reference range [from, to))"
        )
    if start is not None and end is not None and end <= start:
        raise DriftError(
            f"drift_reference_to_ms ({end}) must be after drift_reference_from_ms ({start})"
        )
