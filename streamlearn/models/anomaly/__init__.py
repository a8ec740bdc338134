"""Anomaly detectors, pure layer (no Faust): ``learn_one`` + ``score_one``, high = anomalous.

* :mod:`.base`: :class:`Detector` (the interface; params, ``clone``, ``repr``) and
  :class:`AnomalyError`.
* Raw detectors (score >= 0, scale per detector): :class:`RobustZScore` (``zscore``),
  :class:`HalfSpaceTrees` (``hst``), :class:`IncrementalLOF` (``lof``),
  :class:`IsolationForestDetector` (``iforest``), :class:`SklearnLOF` (``sklearn-lof``),
  :class:`AutoencoderDetector` (``autoencoder``), :class:`TemporalFeatures`
  (``temporal``: seasonal residual, level change, noise, repeats); :data:`DETECTORS`
  maps these names to the classes and :func:`make_detector` builds one.
* :class:`Calibrated` turns raw scores into ``[0, 1]``: ``1 - P(raw >= s)`` from a
  running empirical CDF with a Pareto tail; :class:`Ensemble` combines calibrated
  members; :func:`build_detector` builds one by name (``default``, ``zscore+hst``).
* :mod:`.scorer`: :class:`AlertPolicy` and :class:`Scorer`: thresholds, warm-up,
  episodes (one alert each), severity, explanations, per-key :class:`KeyState`.
* :mod:`.batch`: :func:`detect_rows` / :func:`detect_csv`, the batch path sharing the
  stream's code (``streamlearn detect``).

Examples
--------
>>> det = Calibrated(make_detector("zscore", window=64, min_samples=8))
>>> for i in range(50):
...     x = {"temp": 20.0 + i % 3, "load": 0.5}
...     _ = det.score_one(x)
...     det.learn_one(x)
>>> det.score_one({"temp": 21.0, "load": 0.5}), det.score_one({"temp": 90.0, "load": 0.5})
(0.0, 0.9803921568627451)

Above all 50 recorded scores: "rarer than 1 in 51" is all 50 events can tell; with
2,000 recorded, a Pareto tail resolves far rarer events (see :class:`Calibrated`).
>>> sorted(DETECTORS)
['autoencoder', 'hst', 'iforest', 'lof', 'sklearn-lof', 'temporal', 'zscore']
"""

from typing import Any

from streamlearn.models.anomaly.autoencoder import AutoencoderDetector
from streamlearn.models.anomaly.base import AnomalyError, Detector
from streamlearn.models.anomaly.calibration import Calibrated
from streamlearn.models.anomaly.ensemble import Ensemble
from streamlearn.models.anomaly.river_hst import HalfSpaceTrees
from streamlearn.models.anomaly.river_lof import IncrementalLOF
from streamlearn.models.anomaly.sklearn_batch import IsolationForestDetector, SklearnLOF
from streamlearn.models.anomaly.temporal import TemporalFeatures
from streamlearn.models.anomaly.zscore import RobustZScore

#: Detectors a CLI can name (``--detector hst``), by name.
DETECTORS: dict[str, type[Detector]] = {
    "zscore": RobustZScore,
    "hst": HalfSpaceTrees,
    "lof": IncrementalLOF,
    "iforest": IsolationForestDetector,
    "sklearn-lof": SklearnLOF,
    "autoencoder": AutoencoderDetector,
    "temporal": TemporalFeatures,
}


def make_detector(name: str, **params: Any) -> Detector:
    """A new detector of :data:`DETECTORS` by name; :class:`AnomalyError` if unknown."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise AnomalyError(f"unknown detector {name!r}; known: {sorted(DETECTORS)}") from None
    return cls(**params)


from streamlearn.models.anomaly.defaults import build_detector  # noqa: E402
from streamlearn.models.anomaly.scorer import AlertPolicy, KeyScorer, KeyState, Scorer  # noqa: E402

__all__ = [
    "DETECTORS",
    "AlertPolicy",
    "AnomalyError",
    "AutoencoderDetector",
    "Calibrated",
    "Detector",
    "Ensemble",
    "HalfSpaceTrees",
    "IncrementalLOF",
    "IsolationForestDetector",
    "KeyScorer",
    "KeyState",
    "RobustZScore",
    "Scorer",
    "SklearnLOF",
    "TemporalFeatures",
    "build_detector",
    "make_detector",
]
