"""Event-time windows, pure layer (no Faust): specs, window starts and ids, accumulators.

* :mod:`.spec`: :class:`WindowSpec` (``tumbling:1m``, ``hopping:5m:1m``),
  :func:`window_starts`, :func:`window_id`, :func:`parse_duration_ms`.
* :mod:`.sketch`: :class:`QuantileSketch`, a mergeable DDSketch-style quantile sketch
  with relative error ``a`` (default 1 %).
* :mod:`.aggregate`: :class:`WindowStats`, the per-window accumulator (count, sum,
  mean, variance/std, min, max, first, last, p50/p95/p99).

Examples
--------
>>> spec = WindowSpec.parse("hopping:5m:1m")
>>> stats = {start: WindowStats() for start in spec.windows_for(425_000)}
>>> for w in stats.values():
...     w.update(21.5, 425_000)
>>> sorted(stats)[0], stats[420_000].result()["mean"]
(180000, 21.5)
>>> window_id("sensor-1", "temp", spec.name, 420_000)
'sensor-1:temp:hopping-5m-1m:420000'
"""

from streamlearn.analytics.windows.aggregate import QUANTILES, WindowStats
from streamlearn.analytics.windows.sketch import QuantileSketch
from streamlearn.analytics.windows.spec import (
    WindowSpec,
    parse_duration_ms,
    window_id,
    window_starts,
)

__all__ = [
    "QUANTILES",
    "QuantileSketch",
    "WindowSpec",
    "WindowStats",
    "parse_duration_ms",
    "window_id",
    "window_starts",
]
