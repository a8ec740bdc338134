"""Offline training and evaluation: scikit-learn models searched and reported, River
learners validated progressively, fitted models saved for serving (pure: no Faust).

The ``streamlearn train`` and ``streamlearn evaluate`` commands are thin layers over
:func:`train` and :func:`progressive_validate`; see docs/offline.md.
"""

from streamlearn.models.offline.data import (
    Dataset,
    OfflineError,
    infer_task,
    prepare_dataset,
    read_table,
)
from streamlearn.models.offline.progressive import progressive_metrics, progressive_validate
from streamlearn.models.offline.registry import (
    MODELS,
    SEARCH_SPACES,
    build_model,
    merge_spaces,
    model_names,
    search_distributions,
)
from streamlearn.models.offline.report import render_html, write_json, write_report
from streamlearn.models.offline.saved import (
    MissingFeaturesError,
    SavedModel,
    load_model,
    save_model,
)
from streamlearn.models.offline.training import TrainOptions, TrainResult, train

__all__ = [
    "MODELS",
    "SEARCH_SPACES",
    "Dataset",
    "MissingFeaturesError",
    "OfflineError",
    "SavedModel",
    "TrainOptions",
    "TrainResult",
    "build_model",
    "infer_task",
    "load_model",
    "merge_spaces",
    "model_names",
    "prepare_dataset",
    "progressive_metrics",
    "progressive_validate",
    "read_table",
    "render_html",
    "save_model",
    "search_distributions",
    "train",
    "write_json",
    "write_report",
]
