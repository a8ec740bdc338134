"""Feature extraction for online models, pure layer (no Faust): per key, an event becomes
a flat ``dict[str, float]`` for River.

* :mod:`.config`: :class:`FeatureConfig` (from the JSON ``model_features`` setting) and
  one dataclass per family; :class:`FeatureError` names the bad field.
* :mod:`.pipeline`: :class:`FeaturePipeline`: ``new_state()`` gives a key's
  :class:`KeyFeatures`; ``transform(event, state)`` gives the event's features without
  touching the state, ``update(event, state)`` then advances it (``extract`` does both).
* Families: raw values; temporal (cycles of the event time, time since the key's last
  event, lags, deltas, EWMAs); window statistics (:mod:`.stats`); spectral
  (:mod:`.spectral`); spatial (:mod:`.geo`); categorical ``attrs`` (one-hot, hashing).
* :mod:`.selection`: :func:`select_by_mutual_info` (offline, scikit-learn) and
  :class:`OnlineSelectKBest` (a River transformer).

Examples
--------
>>> pipe = FeaturePipeline({"window": {"size": 8, "stats": ["mean", "z"], "quantiles": []},
...                         "temporal": {"cyclical": [], "delta": False}})
>>> state = pipe.new_state()
>>> for i, v in enumerate([10.0, 12.0, 11.0, 13.0]):
...     pipe.update(Observation("pump-7", i * 1000, {"temp": v}), state)
>>> pipe.transform(Observation("pump-7", 4000, {"temp": 16.0}), state)
{'temp': 16.0, 'since_last_s': 1.0, 'temp_win_mean': 11.5, 'temp_win_z': 3.4856850115866753}
"""

from streamlearn.models.features.config import (
    CategoricalConfig,
    FeatureConfig,
    FeatureError,
    FrequencyConfig,
    RawConfig,
    SpatialConfig,
    TemporalConfig,
    WindowConfig,
)
from streamlearn.models.features.pipeline import EventLike, FeaturePipeline, Observation
from streamlearn.models.features.selection import (
    OnlineSelectKBest,
    mutual_info_scores,
    select_by_mutual_info,
)
from streamlearn.models.features.state import KeyFeatures

__all__ = [
    "CategoricalConfig",
    "EventLike",
    "FeatureConfig",
    "FeatureError",
    "FeaturePipeline",
    "FrequencyConfig",
    "KeyFeatures",
    "Observation",
    "OnlineSelectKBest",
    "RawConfig",
    "SpatialConfig",
    "TemporalConfig",
    "WindowConfig",
    "mutual_info_scores",
    "select_by_mutual_info",
]
