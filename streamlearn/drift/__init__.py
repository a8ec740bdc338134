"""Data and concept drift: online detectors, window comparisons, per-key monitors.

Pure code (no Faust): :class:`DataDriftMonitor` watches every value of a key,
:class:`ConceptDriftMonitor` a model's error stream; both return :class:`DriftRecord`
alerts, one per drift episode. See ``docs/drift.md``.
"""

from streamlearn.drift.compare import Comparison, compare, summary
from streamlearn.drift.detectors import (
    DriftError,
    build_concept_detector,
    build_data_detector,
    validate_drift_settings,
)
from streamlearn.drift.monitor import (
    ConceptDriftMonitor,
    DataDriftMonitor,
    DriftConfig,
    DriftRecord,
)

__all__ = [
    "Comparison",
    "ConceptDriftMonitor",
    "DataDriftMonitor",
    "DriftConfig",
    "DriftError",
    "DriftRecord",
    "build_concept_detector",
    "build_data_detector",
    "compare",
    "summary",
    "validate_drift_settings",
]
