"""A :class:`~streamlearn.report.data.Report` as one self-contained HTML page.

Charts are plotly figures; plotly.js is inlined once, with the first chart, so the page
opens offline and loads nothing from the network. Every text that comes from the
records (keys, value names, messages, reasons) is escaped, in the page and in the
charts (plotly.js renders a few HTML tags in labels).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from streamlearn.report.data import (
    DeadLetterRow,
    ModelMetrics,
    Report,
    WindowPoint,
    format_time,
)

__all__ = ["COUNT_LABELS", "render_html"]

#: The summary's counts, in order, with their labels.
COUNT_LABELS = {
    "events": "events",
    "keys": "keys",
    "windows": "windows closed",
    "anomalies": "anomalies (alerts, one per episode)",
    "data_drift": "data drift records",
    "concept_drift": "concept drift records",
    "degradations": "model degradations",
    "promotions": "promotions",
    "model_events": "model lifecycle records",
    "predictions": "predictions",
    "labelled": "labelled predictions",
    "dead_letters": "dead letters",
    "stats_records": "running-statistics records",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}h3{font-size:1rem;margin-top:1.4rem}
.sub{color:#666;margin-top:0}table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{background:#fff8e1;border:1px solid #f0d98c;padding:.5rem .8rem}
.empty{background:#eef5ff;border:1px solid #a9c8f0;padding:.8rem 1rem;font-size:1.05rem}
.sev-critical{color:#b00020;font-weight:600}.sev-warning{color:#a15c00}.sev-info{color:#555}
.msg{max-width:38rem}code{font-size:.85rem}nav a{margin-right:1rem}
"""

_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_BLUE, _RED, _ORANGE, _GREY, _GREEN = "#1f77b4", "#d62728", "#ff7f0e", "#7f7f7f", "#2ca02c"


def _e(value: Any) -> str:
    """Text for the page, escaped."""
    return html.escape(_fmt(value))


def _p(value: Any) -> str:
    """Text for a chart label or hover, escaped for plotly.js's own HTML subset."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _x(ms: int) -> str:
    """A chart's x value: UTC, as plotly.js reads dates."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def _cell(value: Any, *, cls: str = "", raw_html: bool = False) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    classes = " ".join(c for c in (cls, "num" if numeric else "") if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{value if raw_html else _e(value)}</td>"


def _table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, table_id: str | None = None
) -> str:
    ident = f' id="{table_id}"' if table_id else ""
    out = [f"<table{ident}><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(c if _is_cell(c) else _cell(c) for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


class _Html(str):
    """A ready-made ``<td>`` (already escaped)."""


def _is_cell(value: Any) -> bool:
    return isinstance(value, _Html)


def _severity(severity: Any) -> _Html:
    text = str(severity)
    cls = f"sev-{text}" if text in ("info", "warning", "critical") else ""
    return _Html(_cell(text, cls=cls))


def _message(text: Any) -> _Html:
    return _Html(_cell(text, cls="msg"))


def _limited(rows: Sequence[Any], limit: int, what: str) -> tuple[Sequence[Any], str]:
    if len(rows) <= limit:
        return rows, ""
    return rows[:limit], f'<p class="note">The first {limit:,} of {len(rows):,} {_e(what)}.</p>'


# --- figures ----------------------------------------------------------------------------


class _Figures:
    """Turns plotly figures into ``<div>``s, plotly.js inlined with the first one."""

    def __init__(self, include_plotlyjs: bool) -> None:
        self.include_plotlyjs = include_plotlyjs
        self.count = 0

    def html(self, figure: Any, height: int) -> str:
        import plotly.io as pio

        first = self.count == 0
        self.count += 1
        figure.update_layout(
            template="plotly_white",
            height=height,
            margin={"l": 70, "r": 30, "t": 50, "b": 50},
            hovermode="closest",
            legend={"orientation": "h", "y": -0.08 if height < 500 else -0.04},
        )
        return pio.to_html(
            figure,
            include_plotlyjs=self.include_plotlyjs and first,
            full_html=False,
            config=_PLOT_CONFIG,
            div_id=f"figure-{self.count}",
            default_width="100%",
            default_height=f"{height}px",
            validate=False,
        )


def _key_figure(
    key: str,
    values: dict[str, list[WindowPoint]],
    anomalies: list[dict[str, Any]],
    drift: list[dict[str, Any]],
    spec: str,
    max_values: int,
) -> tuple[Any, int]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(values)[:max_values]
    figure = make_subplots(
        rows=len(names),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.3 / max(len(names), 1)),
        subplot_titles=[_p(n) for n in names],
    )
    for row, name in enumerate(names, start=1):
        points = values[name]
        x = [_x(p.start) for p in points]
        mean = [p.mean for p in points]
        std = [p.std or 0.0 for p in points]
        upper = [m + s if m is not None else None for m, s in zip(mean, std, strict=True)]
        lower = [m - s if m is not None else None for m, s in zip(mean, std, strict=True)]
        legend = row == 1
        figure.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=upper + lower[::-1],
                fill="toself",
                fillcolor="rgba(31,119,180,0.18)",
                line={"width": 0},
                hoverinfo="skip",
                name="mean ± std",
                legendgroup="std",
                showlegend=legend,
            ),
            row=row,
            col=1,
        )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=mean,
                mode="lines+markers" if len(points) <= 120 else "lines",
                line={"color": _BLUE},
                marker={"size": 4},
                name="mean",
                legendgroup="mean",
                showlegend=legend,
                customdata=[[p.count, p.std, p.min, p.max] for p in points],
                hovertemplate="%{x}<br>mean %{y:.4g} ± %{customdata[1]:.3g}<br>"
                "min %{customdata[2]:.4g}, max %{customdata[3]:.4g}<br>"
                "%{customdata[0]} events<extra></extra>",
            ),
            row=row,
            col=1,
        )
        for bound, label in (("min", "min"), ("max", "max")):
            figure.add_trace(
                go.Scatter(
                    x=x,
                    y=[getattr(p, bound) for p in points],
                    mode="lines",
                    line={"color": _GREY, "width": 1, "dash": "dot"},
                    name="min / max",
                    legendgroup="minmax",
                    showlegend=legend and label == "min",
                    hovertemplate=f"{label} %{{y:.4g}}<extra></extra>",
                ),
                row=row,
                col=1,
            )
        hits = [
            (a, v)
            for a in anomalies
            for v in (a.get("values") or [])
            if isinstance(v, dict) and v.get("name") == name and _finite(v.get("value"))
        ]
        if hits:
            figure.add_trace(
                go.Scatter(
                    x=[_x(a["ts"]) for a, _ in hits],
                    y=[v["value"] for _, v in hits],
                    mode="markers",
                    marker={"symbol": "x", "size": 12, "color": _RED, "line": {"width": 1}},
                    name="anomaly",
                    legendgroup="anomaly",
                    showlegend=True,
                    hovertext=[_p(a.get("message", "")) for a, _ in hits],
                    hoverinfo="text",
                ),
                row=row,
                col=1,
            )
        shifts = [d for d in drift if d.get("subject") == name and d.get("kind") == "data"]
        for record in shifts:
            figure.add_vline(
                x=_x(record["ts"]), line={"color": _ORANGE, "dash": "dash"}, row=row, col=1
            )
        if shifts:
            figure.add_trace(
                go.Scatter(
                    x=[_x(d["ts"]) for d in shifts],
                    y=[(d.get("current") or {}).get("mean") for d in shifts],
                    mode="markers",
                    marker={"symbol": "diamond", "size": 11, "color": _ORANGE},
                    name="data drift",
                    legendgroup="drift",
                    hovertext=[_p(d.get("message", "")) for d in shifts],
                    hoverinfo="text",
                ),
                row=row,
                col=1,
            )
    figure.update_layout(title={"text": f"{_p(key)}: {_p(spec)} windows (UTC)"})
    return figure, max(320, 60 + 230 * len(names))


def _metrics_figure(metrics: ModelMetrics, promotions: list[dict[str, Any]]) -> Any:
    import plotly.graph_objects as go

    x = [_x(ts) for ts, _, _ in metrics.points]
    label = "accuracy" if metrics.metric == "accuracy" else "MAE"
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[c for _, c, _ in metrics.points],
            mode="lines",
            name=f"{label} (cumulative)",
            line={"color": _BLUE},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[r for _, _, r in metrics.points],
            mode="lines",
            name=f"{label} (last {metrics.rolling_window:,} labels)",
            line={"color": _GREEN},
        )
    )
    for record in promotions:
        figure.add_vline(x=_x(record["ts"]), line={"color": _ORANGE, "dash": "dash"})
    if promotions:
        figure.add_trace(
            go.Scatter(
                x=[_x(r["ts"]) for r in promotions],
                y=[metrics.points[-1][1]] * len(promotions),
                mode="markers",
                marker={"symbol": "star", "size": 12, "color": _ORANGE},
                name="promotion",
                hovertext=[_p(r.get("message", "")) for r in promotions],
                hoverinfo="text",
            )
        )
    figure.update_layout(
        title={"text": f"{_p(metrics.model)}: prequential {label} by event time (UTC)"},
        yaxis={"title": {"text": label}},
    )
    return figure


def _timeline_figure(report: Report) -> Any:
    import plotly.graph_objects as go

    rows: list[tuple[str, dict[str, Any]]] = [("anomaly", a) for a in report.anomalies]
    for record in report.drift:
        kind = (
            "degradation" if record.get("type") == "degradation" else f"{record.get('kind')} drift"
        )
        rows.append((kind, record))
    rows.extend((str(r.get("event") or r.get("type")), r) for r in report.model_events)
    colors = {"critical": _RED, "warning": _ORANGE, "info": _GREY}
    figure = go.Figure()
    for severity in ("info", "warning", "critical"):
        picked = [(kind, r) for kind, r in rows if r.get("severity") == severity]
        if not picked:
            continue
        figure.add_trace(
            go.Scatter(
                x=[_x(r["ts"]) for _, r in picked],
                y=[kind for kind, _ in picked],
                mode="markers",
                marker={"size": 10, "color": colors[severity]},
                name=severity,
                hovertext=[
                    f"{_p(r.get('key') or '')}: {_p(r.get('message', ''))}" for _, r in picked
                ],
                hoverinfo="text",
            )
        )
    figure.update_layout(title={"text": "Alerts and lifecycle records by event time (UTC)"})
    return figure


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- sections ---------------------------------------------------------------------------


def _chart_keys(report: Report, max_keys: int) -> list[str]:
    """Keys with window series, most anomalies (then events) first."""
    rows = {row.key: row for row in report.key_rows}
    ranked = sorted(
        report.series,
        key=lambda k: (
            (-rows[k].anomalies, -rows[k].drift, -rows[k].events, k) if k in rows else (0, 0, 0, k)
        ),
    )
    return ranked[:max_keys]


def _summary(report: Report) -> str:
    options = report.options
    parts = []
    if report.empty:
        where = (
            f" for key{'s' if len(options.keys) > 1 else ''} "
            + ", ".join(repr(k) for k in sorted(options.keys))
            if options.keys
            else ""
        )
        parts.append(
            '<p class="empty" id="nothing-found">Nothing found between '
            f"{_e(format_time(options.from_ms))} and {_e(format_time(options.to_ms))} UTC"
            f"{_e(where)}. Times are event times (the records' <code>ts</code>), not the "
            "times records were published.</p>"
        )
    rows = []
    for name, label in COUNT_LABELS.items():
        value = report.counts.get(name, 0)
        rows.append(
            f'<tr data-count="{name}"><th>{_e(label)}</th>'
            f'<td class="num" data-value="{value}">{_e(value)}</td></tr>'
        )
    parts.append('<table id="counts">' + "".join(rows) + "</table>")
    if report.windows_by_spec:
        parts.append(
            "<p>Windows by spec: "
            + ", ".join(f"{_e(k)} {_e(v)}" for k, v in report.windows_by_spec.items())
            + ".</p>"
        )
    for key in report.missing_keys:
        parts.append(
            f'<p class="note missing-key">No records for key {_e(repr(key))} in range.</p>'
        )
    for note in report.notes:
        parts.append(f'<p class="note">{_e(note)}</p>')
    if report.dead_letter_reasons:
        parts.append("<h3>Dead letters by reason</h3>")
        parts.append(
            _table(
                ["reason (error.code)", "records"],
                report.dead_letter_reasons.items(),
                table_id="dead-letter-reasons",
            )
        )
    if report.key_rows:
        parts.append("<h3>Keys</h3>")
        shown, more = _limited(report.key_rows, 1_000, "keys")
        parts.append(
            _table(
                [
                    "key",
                    "events",
                    "windows",
                    "anomalies",
                    "drift",
                    "predictions",
                    "labelled",
                    "dead letters",
                    "first (UTC)",
                    "last (UTC)",
                ],
                [
                    (
                        r.key,
                        r.events,
                        r.windows,
                        r.anomalies,
                        r.drift,
                        r.predictions,
                        r.labelled,
                        r.dead_letters,
                        format_time(r.first_ts),
                        format_time(r.last_ts),
                    )
                    for r in shown
                ],
                table_id="keys",
            )
            + more
        )
    return "".join(parts)


def _aggregates(report: Report, figures: _Figures, max_keys: int, max_values: int) -> str:
    parts = []
    if not report.series:
        parts.append(
            "<p>No closed windows in range"
            + (f" for spec {_e(report.window_spec)}" if report.window_spec else "")
            + ".</p>"
        )
    else:
        keys = _chart_keys(report, max_keys)
        parts.append(
            f"<p>Window spec <code>{_e(report.window_spec)}</code>, windows whose start is in "
            "range: the mean of each value with a ± one standard deviation band and the "
            "window's min and max; anomalies are red crosses at the anomalous value, data "
            "drift orange diamonds at the drifted window mean.</p>"
        )
        if len(report.series) > len(keys):
            parts.append(
                f'<p class="note">Charts for {len(keys):,} of {len(report.series):,} keys '
                "(those with the most anomalies, drift and events; <code>--max-keys</code> "
                "shows more, <code>--key</code> picks).</p>"
            )
        anomalies: dict[str, list[dict[str, Any]]] = {}
        for a in report.anomalies:
            anomalies.setdefault(str(a.get("key")), []).append(a)
        drift: dict[str, list[dict[str, Any]]] = {}
        for d in report.drift:
            drift.setdefault(str(d.get("key")), []).append(d)
        for key in keys:
            values = report.series[key]
            parts.append(f'<h3 class="key-chart">{_e(key)}</h3>')
            if len(values) > max_values:
                parts.append(f'<p class="note">{max_values} of {len(values)} values charted.</p>')
            figure, height = _key_figure(
                key,
                values,
                anomalies.get(key, []),
                drift.get(key, []),
                str(report.window_spec),
                max_values,
            )
            parts.append(figures.html(figure, height))
    if report.running_stats:
        parts.append("<h3>Running statistics (the last record of each key in range)</h3>")
        rows = []
        for key, doc in report.running_stats.items():
            for name, stats in sorted((doc.get("values") or {}).items()):
                stats = stats if isinstance(stats, dict) else {}
                rows.append(
                    (
                        key,
                        name,
                        stats.get("count"),
                        stats.get("mean"),
                        stats.get("std"),
                        stats.get("min"),
                        stats.get("max"),
                        stats.get("ewma"),
                        format_time(doc.get("ts")),
                    )
                )
        shown, more = _limited(rows, 1_000, "rows")
        parts.append(
            _table(
                ["key", "value", "count", "mean", "std", "min", "max", "EWMA", "as of (UTC)"],
                shown,
                table_id="running-stats",
            )
            + more
        )
    return "".join(parts)


def _anomaly_values(record: dict[str, Any]) -> str:
    out = []
    for v in record.get("values") or []:
        if not isinstance(v, dict):
            continue
        out.append(
            f"{_fmt(v.get('name'))} = {_fmt(v.get('value'))} "
            f"(expected {_fmt(v.get('expected_low'))} to {_fmt(v.get('expected_high'))})"
        )
    return "; ".join(out)


def _anomalies(report: Report, max_rows: int) -> str:
    if not report.anomalies:
        return "<p>No anomalies in range.</p>"
    shown, more = _limited(report.anomalies, max_rows, "anomalies")
    rows = [
        (
            format_time(a.get("ts")),
            a.get("key"),
            _severity(a.get("severity")),
            a.get("grade"),
            a.get("subject"),
            a.get("score"),
            _anomaly_values(a),
            a.get("event_id"),
            _message(a.get("message")),
        )
        for a in shown
    ]
    return (
        _table(
            [
                "time (UTC)",
                "key",
                "severity",
                "grade",
                "subject",
                "score",
                "values",
                "event",
                "message",
            ],
            rows,
            table_id="anomalies",
        )
        + more
    )


def _models(report: Report, figures: _Figures) -> str:
    if not report.models:
        return "<p>No predictions in range, so no model metrics.</p>"
    parts = [
        "<p>Prequential metrics: every labelled prediction is scored against its label "
        "(inline on the event, else the first delayed label on the labels topic that the "
        "model did not refuse), as the worker scores it before learning. Computed here "
        "over all the model's states together, in event-time order.</p>"
    ]
    rows = []
    for m in report.models:
        overall = m.overall
        if m.metric == "accuracy":
            values = (overall.get("accuracy"), overall.get("accuracy_last"), None)
        else:
            values = (overall.get("mae"), overall.get("mae_last"), overall.get("rmse"))
        rows.append((m.model, m.task, m.predictions, m.labelled, m.metric, *values))
    parts.append(
        _table(
            [
                "model",
                "task",
                "predictions",
                "labelled",
                "metric",
                "overall",
                "last labels (rolling)",
                "RMSE",
            ],
            rows,
            table_id="models",
        )
    )
    for m in report.models:
        if not m.labelled:
            parts.append(
                f'<p class="note">{_e(m.model)}: none of its {m.predictions:,} predictions in '
                f"range has a label the model used, so its {_e(m.metric)} cannot be computed "
                "from the records. Labels come inline (an event's <code>label</code>) or on "
                "the labels topic.</p>"
            )
            continue
        promotions = [
            r
            for r in report.model_events
            if r.get("event") in ("promotion", "adopted") and r.get("model") == m.model
        ]
        parts.append(figures.html(_metrics_figure(m, promotions), 380))
    return "".join(parts)


def _drift(report: Report, figures: _Figures, max_rows: int) -> str:
    parts = []
    if report.anomalies or report.drift or report.model_events:
        parts.append(figures.html(_timeline_figure(report), 300))
    parts.append("<h3>Drift and degradation</h3>")
    if report.drift:
        shown, more = _limited(report.drift, max_rows, "drift records")
        rows = [
            (
                format_time(d.get("ts")),
                "degradation" if d.get("type") == "degradation" else f"{d.get('kind')} drift",
                d.get("key"),
                d.get("subject"),
                _severity(d.get("severity")),
                d.get("detector"),
                d.get("statistic"),
                d.get("p_value"),
                _message(d.get("message")),
            )
            for d in shown
        ]
        parts.append(
            _table(
                [
                    "time (UTC)",
                    "type",
                    "key",
                    "subject",
                    "severity",
                    "detector",
                    "statistic",
                    "p-value",
                    "message",
                ],
                rows,
                table_id="drift",
            )
            + more
        )
    else:
        parts.append("<p>No drift or degradation records in range.</p>")
    parts.append("<h3>Promotions and other model lifecycle records</h3>")
    if report.model_events:
        shown, more = _limited(report.model_events, max_rows, "model lifecycle records")
        rows = [
            (
                format_time(r.get("ts")),
                r.get("event") or r.get("type"),
                r.get("model"),
                r.get("version"),
                r.get("key"),
                _severity(r.get("severity")),
                _message(r.get("message")),
            )
            for r in shown
        ]
        parts.append(
            _table(
                ["time (UTC)", "event", "model", "version", "key", "severity", "message"],
                rows,
                table_id="model-events",
            )
            + more
        )
    else:
        parts.append("<p>No promotions or other model lifecycle records in range.</p>")
    return "".join(parts)


def _dead_letters(rows: list[DeadLetterRow], max_rows: int) -> str:
    if not rows:
        return "<p>No dead letters in range.</p>"
    shown, more = _limited(rows, max_rows, "dead letters")
    table = _table(
        ["time (UTC)", "key", "reason", "detail", "source (topic/partition@offset)"],
        [
            (format_time(r.ts) + (" *" if r.refused_at else ""), r.key, r.code, r.reason, r.source)
            for r in shown
        ],
        table_id="dead-letters",
    )
    legend = (
        '<p class="sub">* the record had no valid <code>ts</code>: the time it was refused.</p>'
        if any(r.refused_at for r in shown)
        else ""
    )
    return table + more + legend


def _source(report: Report) -> str:
    source = report.source
    parts = []
    if source:
        facts = [
            ("broker", source.get("broker")),
            ("app id", source.get("app_id")),
            ("topic prefix", source.get("topic_prefix") or "(none)"),
            (
                "read from",
                f"records published from {format_time(source.get('seek_ms'))} UTC "
                f"(--from minus a slack of {source.get('slack_ms', 0) / 1000:g} s)",
            ),
            (
                "read to",
                f"the first record published after {format_time(source['stop_after_ms'])} UTC"
                if source.get("stop_after_ms") is not None
                else "the end of each partition when reading started",
            ),
            ("seconds", source.get("seconds")),
        ]
        parts.append(_table(["", ""], facts, table_id="source"))
        topics = source.get("topics") or []
        if topics:
            parts.append(
                _table(
                    ["topic", "name", "partitions", "records read", "note"],
                    [
                        (
                            t["kind"],
                            t["topic"],
                            t["partitions"],
                            t["records"],
                            "does not exist"
                            if not t["exists"]
                            else (
                                f"{t['stopped_early']} partitions stopped early"
                                if t.get("stopped_early")
                                else ""
                            ),
                        )
                        for t in topics
                    ],
                    table_id="topics",
                )
            )
    if report.duplicates:
        parts.append(
            "<p>Duplicate deliveries dropped (outputs are at-least-once): "
            + ", ".join(f"{_e(k)} {_e(v)}" for k, v in report.duplicates.items())
            + ".</p>"
        )
    if report.unreadable:
        parts.append(
            '<p class="note">Records that are not streamlearn output, skipped: '
            + ", ".join(f"{_e(k)} {_e(v)}" for k, v in report.unreadable.items())
            + ".</p>"
        )
    return "".join(parts)


# --- the page ---------------------------------------------------------------------------


def render_html(
    report: Report,
    *,
    include_plotlyjs: bool = True,
    max_keys: int = 12,
    max_values: int = 8,
    max_rows: int = 1_000,
) -> str:
    """The report as one HTML page.

    ``include_plotlyjs`` inlines plotly.js (about 4.5 MB) with the first chart; without
    it the charts need plotly.js from elsewhere (tests). ``max_keys`` keys get charts
    (most anomalies first), ``max_values`` values per key, and tables show ``max_rows``.
    """
    options = report.options
    figures = _Figures(include_plotlyjs)
    title = "streamlearn report"
    scope = "keys " + ", ".join(sorted(options.keys)) if options.keys else "all keys"
    sections = [
        ("summary", "Summary", _summary(report)),
        ("aggregates", "Aggregates", _aggregates(report, figures, max_keys, max_values)),
        ("anomalies", "Anomalies", _anomalies(report, max_rows)),
        ("models", "Model metrics", _models(report, figures)),
        ("drift", "Drift and model lifecycle", _drift(report, figures, max_rows)),
        ("dead-letters", "Dead letters", _dead_letters(report.dead_letters, max_rows)),
        ("source", "Source", _source(report)),
    ]
    generated = (
        f" · generated {_e(format_time(report.generated_ms))} UTC"
        if report.generated_ms is not None
        else ""
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}: {_e(format_time(options.from_ms))} to "
        f"{_e(format_time(options.to_ms))} UTC</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub" id="range" data-from="{options.from_ms}" data-to="{options.to_ms}">'
        f"Event time {_e(format_time(options.from_ms))} to {_e(format_time(options.to_ms))} "
        f"UTC (from inclusive, to exclusive) · {_e(scope)}{generated}</p>",
        "<nav>"
        + "".join(f'<a href="#{anchor}">{_e(heading)}</a>' for anchor, heading, _ in sections)
        + "</nav>",
    ]
    for anchor, heading, body in sections:
        parts.append(f'<section id="{anchor}"><h2>{_e(heading)}</h2>{body}</section>')
    parts.append("</body></html>")
    return "\n".join(parts)
