"""docs/monitoring.md lists every metric a worker exports, with its type and labels."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from streamlearn.web.metrics import Metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"
ROW = re.compile(r"^\| `(streamlearn_\w+)` \| (\w+) \| ([^|]*) \|", re.M)


def exported() -> dict[str, tuple[str, tuple[str, ...]]]:
    out = {}
    for metric in vars(Metrics()).values():
        if isinstance(metric, MetricWrapperBase):
            name = metric._name + ("_total" if metric._type == "counter" else "")
            out[name] = (metric._type, tuple(metric._labelnames))
    return out


def test_every_exported_metric_is_documented_as_it_is() -> None:
    documented = {
        name: (kind, tuple(re.findall(r"`(\w+)`", labels)))
        for name, kind, labels in ROW.findall(DOC.read_text())
    }
    metrics = exported()
    assert len(metrics) >= 20
    assert documented == metrics
