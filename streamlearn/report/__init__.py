"""``streamlearn report``: one self-contained HTML page about a range of event time.

Three layers:

* :mod:`~streamlearn.report.data` (pure): records of the input and output topics go in
  (:class:`RawRecord`), a :class:`Report` comes out: counts, window series per key and
  value, anomalies, drift and model lifecycle records, prequential model metrics
  computed from predictions joined to their labels, dead letters by reason.
* :mod:`~streamlearn.report.render` (pure): a :class:`Report` as HTML, with plotly
  charts and plotly.js inlined once (the page works offline).
* :mod:`~streamlearn.report.reader`: reads the topics of a time range from Kafka.
"""

from __future__ import annotations

from streamlearn.report.data import (
    TOPIC_KINDS,
    RawRecord,
    Report,
    ReportBuilder,
    ReportOptions,
    label_target,
    parse_time,
)

__all__ = [
    "TOPIC_KINDS",
    "RawRecord",
    "Report",
    "ReportBuilder",
    "ReportOptions",
    "label_target",
    "parse_time",
]
