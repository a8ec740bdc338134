"""Reports of ``train`` and ``evaluate``: JSON, and one self-contained HTML page.

The HTML page holds every figure of the JSON report as tables, and as interactive
plotly charts with plotly.js inlined in the page (no network needed to open it) when
the ``plotly`` package is installed. Figures are built here as plain plotly JSON
(``{"data": [...], "layout": {...}}``); only plotly.js itself comes from the package.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "evaluate_figures",
    "plotly_js",
    "render_html",
    "train_figures",
    "write_json",
    "write_report",
]

Figure = dict[str, Any]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}
.sub{color:#666;margin-top:0}table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.figure{width:100%;height:420px}.note{background:#fff8e1;border:1px solid #f0d98c;
padding:.5rem .8rem}code{font-size:.85rem}
"""


def plotly_js() -> str | None:
    """plotly.js from the installed ``plotly`` package, or ``None`` without it."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        return None
    return get_plotlyjs()


def write_json(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``report`` as indented JSON (atomically)."""
    path = Path(path)
    data = orjson.dumps(
        report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    )
    _write(path, data + b"\n")
    return path


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_report(
    report: Mapping[str, Any], directory: str | Path, *, html_page: bool = True
) -> list[Path]:
    """Write ``directory``/report.json and (with ``html_page``) report.html; their paths."""
    directory = Path(directory)
    paths = [write_json(report, directory / "report.json")]
    if html_page:
        page = render_html(report)
        path = directory / "report.html"
        _write(path, page.encode())
        paths.append(path)
    return paths


# --- figures -----------------------------------------------------------------------


def _label(value: Any) -> str:
    return str(value)


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": x}},
        "yaxis": {"title": {"text": y}},
        "margin": {"l": 70, "r": 20, "t": 50, "b": 60},
        **extra,
    }


def train_figures(report: Mapping[str, Any]) -> list[Figure]:
    """The plotly figures of a ``train`` report.

    Examples
    --------
    >>> report = {"task": "regression", "learning_curve": None, "importance": {"features": [
    ...     {"feature": "a", "mean": 0.5, "std": 0.1}], "scoring": "r2"}, "curves": {}}
    >>> [f["layout"]["title"]["text"] for f in train_figures(report)]
    ['Permutation importance on the held-out rows (drop in r2)']
    """
    figures: list[Figure] = []
    metrics = report.get("metrics") or {}
    curves = report.get("curves") or {}
    if report.get("task") == "classification" and metrics.get("confusion_matrix"):
        labels = [_label(v) for v in metrics["labels"]]
        cm = metrics["confusion_matrix"]
        figures.append(
            {
                "data": [
                    {
                        "type": "heatmap",
                        "z": cm,
                        "x": labels,
                        "y": labels,
                        "text": cm,
                        "texttemplate": "%{text}",
                        "colorscale": "Blues",
                        "hovertemplate": "actual %{y}<br>predicted %{x}<br>%{z} rows"
                        "<extra></extra>",
                    }
                ],
                "layout": _layout(
                    "Confusion matrix (held-out rows)",
                    "predicted",
                    "actual",
                    xaxis={"title": {"text": "predicted"}, "type": "category"},
                    yaxis={
                        "title": {"text": "actual"},
                        "type": "category",
                        "autorange": "reversed",
                    },
                ),
            }
        )
    if curves.get("roc"):
        data: list[dict[str, Any]] = [
            {
                "type": "scatter",
                "mode": "lines",
                "x": c["fpr"],
                "y": c["tpr"],
                "name": f"{_label(c['label'])} (AUC {_fmt(c['auc'])})",
            }
            for c in curves["roc"]
        ]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [0, 1],
                "y": [0, 1],
                "name": "chance",
                "line": {"dash": "dash", "color": "#999"},
            }
        )
        figures.append(
            {
                "data": data,
                "layout": _layout(
                    "ROC curve (held-out rows, one class against the rest)",
                    "false positive rate",
                    "true positive rate",
                ),
            }
        )
    pva = curves.get("predicted_vs_actual")
    if pva:
        actual, predicted = pva["actual"], pva["predicted"]
        low = min(min(actual), min(predicted))
        high = max(max(actual), max(predicted))
        figures.append(
            {
                "data": [
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "x": actual,
                        "y": predicted,
                        "name": "rows",
                        "marker": {"size": 5, "opacity": 0.6},
                    },
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "x": [low, high],
                        "y": [low, high],
                        "name": "perfect",
                        "line": {"dash": "dash", "color": "#999"},
                    },
                ],
                "layout": _layout(
                    "Predicted against actual (held-out rows)", "actual", "predicted"
                ),
            }
        )
        figures.append(
            {
                "data": [
                    {
                        "type": "histogram",
                        "x": [p - a for a, p in zip(actual, predicted, strict=True)],
                        "name": "residuals",
                    }
                ],
                "layout": _layout("Residuals (predicted - actual)", "residual", "rows"),
            }
        )
    curve = report.get("learning_curve")
    if curve:
        scoring = (report.get("protocol") or {}).get("scoring", "score")
        figures.append(
            {
                "data": [
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "x": curve["train_sizes"],
                        "y": curve[f"{part}_mean"],
                        "error_y": {"type": "data", "array": curve[f"{part}_std"]},
                        "name": name,
                    }
                    for part, name in (("train", "training folds"), ("test", "validation folds"))
                ],
                "layout": _layout("Learning curve", "training rows", scoring),
            }
        )
    importance = (report.get("importance") or {}).get("features") or []
    if importance:
        shown = list(reversed(importance[:30]))  # plotly draws the first bar at the bottom
        scoring = report["importance"].get("scoring", "score")
        figures.append(
            {
                "data": [
                    {
                        "type": "bar",
                        "orientation": "h",
                        "x": [r["mean"] for r in shown],
                        "y": [r["feature"] for r in shown],
                        "error_x": {"type": "data", "array": [r["std"] for r in shown]},
                        "name": "importance",
                    }
                ],
                "layout": _layout(
                    f"Permutation importance on the held-out rows (drop in {scoring})",
                    f"drop in {scoring}",
                    "",
                    height=max(300, 28 * len(shown) + 120),
                    yaxis={"type": "category", "automargin": True},
                ),
            }
        )
    return figures


def evaluate_figures(report: Mapping[str, Any]) -> list[Figure]:
    """The plotly figures of an ``evaluate`` report: each metric along the stream.

    Examples
    --------
    >>> report = {"curve": {"step": [1, 2], "accuracy": [0.5, 0.75], "log_loss": [0.7, 0.6]}}
    >>> [f["layout"]["title"]["text"] for f in evaluate_figures(report)]
    ['Progressive accuracy', 'Progressive log_loss']
    """
    curve = report.get("curve") or {}
    steps = curve.get("step") or []
    groups = [
        ("accuracy", "f1", "f1_macro", "roc_auc"),
        ("log_loss",),
        ("mae", "rmse"),
        ("r2",),
    ]
    figures = []
    for group in groups:
        names = [n for n in group if n in curve]
        if not names:
            continue
        figures.append(
            {
                "data": [
                    {"type": "scatter", "mode": "lines", "x": steps, "y": curve[n], "name": n}
                    for n in names
                ],
                "layout": _layout(f"Progressive {', '.join(names)}", "events seen", "value"),
            }
        )
    return figures


# --- HTML --------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping | list):
        return orjson.dumps(value).decode()
    return str(value)


def _table(header: Iterable[str] | None, rows: Iterable[Iterable[Any]]) -> str:
    out = ["<table>"]
    if header is not None:
        out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = []
        for value in row:
            cls = ' class="num"' if isinstance(value, int | float) and value is not True else ""
            cells.append(f"<td{cls}>{html.escape(_fmt(value))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _train_sections(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = report.get("rows") or {}
    protocol = report.get("protocol") or {}
    cv = report.get("cv") or {}
    model = report.get("model") or {}
    timing = report.get("timing") or {}
    summary = [
        ("task", report.get("task")),
        ("target", report.get("target")),
        ("model", f"{model.get('name')}: {model.get('description')}"),
        ("rows", f"{rows.get('total')} ({rows.get('train')} train, {rows.get('test')} held out)"),
        ("rows dropped (no target)", rows.get("dropped_missing_target")),
        ("features", ", ".join(report.get("features") or [])),
        ("ignored columns (not numeric)", ", ".join(report.get("ignored_columns") or []) or "-"),
        ("classes", report.get("classes")),
        ("cross-validation", f"{protocol.get('folds')} folds, {protocol.get('cv')}"),
        ("search", f"{protocol.get('search')} (n_iter {protocol.get('n_iter')})"),
        ("scoring", protocol.get("scoring")),
        ("CV score (best)", f"{_fmt(cv.get('mean'))} ± {_fmt(cv.get('std'))}"),
        ("CV fold scores", cv.get("scores")),
        ("seed", protocol.get("seed")),
    ]
    sections = [("Summary", _table(None, summary))]
    metrics = report.get("metrics") or {}
    baseline = report.get("baseline") or {}
    names = (
        ["accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss"]
        if report.get("task") == "classification"
        else ["mae", "rmse", "r2"]
    )
    label = {"f1": f"f1 ({metrics.get('f1_average', 'binary')})"}
    sections.append(
        (
            "Held-out metrics",
            _table(
                ["metric", "model", f"baseline: {baseline.get('strategy', '')}"],
                [(label.get(n, n), metrics.get(n), baseline.get(n)) for n in names],
            ),
        )
    )
    if metrics.get("confusion_matrix"):
        labels = [_label(v) for v in metrics["labels"]]
        sections.append(
            (
                "Confusion matrix (rows: actual, columns: predicted)",
                _table(
                    ["", *labels],
                    [
                        [lab, *counts]
                        for lab, counts in zip(labels, metrics["confusion_matrix"], strict=True)
                    ],
                ),
            )
        )
    params = model.get("params") or {}
    sections.append(
        (
            "Parameters",
            _table(["parameter", "value"], sorted(params.items()))
            + f"<p><code>{html.escape(str(model.get('estimator', '')))}</code></p>",
        )
    )
    candidates = (report.get("search") or {}).get("candidates") or []
    if candidates:
        extra = ["iteration", "rows"] if "iteration" in candidates[0] else []
        sections.append(
            (
                f"Search: best of {report['search'].get('n_candidates')} candidates",
                _table(
                    ["rank", "mean", "std", *extra, "parameters"],
                    [
                        [c["rank"], c["mean"], c["std"], *(c[k] for k in extra), c["params"]]
                        for c in candidates
                    ],
                ),
            )
        )
    curve = report.get("learning_curve")
    if curve:
        sections.append(
            (
                "Learning curve",
                _table(
                    ["training rows", "train mean", "train std", "validation mean", "std"],
                    zip(
                        curve["train_sizes"],
                        curve["train_mean"],
                        curve["train_std"],
                        curve["test_mean"],
                        curve["test_std"],
                        strict=True,
                    ),
                ),
            )
        )
    importance = (report.get("importance") or {}).get("features") or []
    if importance:
        sections.append(
            (
                "Permutation importance (held-out rows)",
                _table(
                    ["feature", "mean drop", "std"],
                    [(r["feature"], r["mean"], r["std"]) for r in importance],
                ),
            )
        )
    sections.append(("Timing", _table(["step", "value"], [(k, v) for k, v in timing.items()])))
    return sections


def _evaluate_sections(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    learner = report.get("learner") or {}
    summary = [
        ("task", report.get("task")),
        ("target", report.get("target")),
        ("learner", f"{learner.get('name')}: {learner.get('description')}"),
        ("params", learner.get("params")),
        ("seed", learner.get("seed")),
        ("rows", report.get("rows")),
        ("features", ", ".join(report.get("features") or [])),
        ("positive label", report.get("positive_label")),
        ("µs per event (predict + learn)", report.get("us_per_event")),
        ("seconds", report.get("seconds")),
    ]
    metrics = report.get("metrics") or {}
    return [
        ("Summary", _table(None, summary)),
        ("Progressive metrics", _table(["metric", "value"], metrics.items())),
    ]


def render_html(report: Mapping[str, Any], *, include_plotlyjs: bool = True) -> str:
    """One self-contained HTML page for a ``train`` or ``evaluate`` report.

    With ``include_plotlyjs`` and the plotly package installed, plotly.js is inlined
    and every figure is an interactive chart; otherwise the page says so, and the
    tables still hold every figure.

    Examples
    --------
    >>> page = render_html({"kind": "evaluate", "metrics": {"accuracy": 0.9}},
    ...                    include_plotlyjs=False)
    >>> "<td class=\\"num\\">0.9</td>" in page
    True
    """
    kind = report.get("kind", "train")
    if kind == "evaluate":
        title = f"Progressive validation: {(report.get('learner') or {}).get('name')}"
        sections = _evaluate_sections(report)
        figures = evaluate_figures(report)
    else:
        title = f"Training report: {(report.get('model') or {}).get('name')}"
        sections = _train_sections(report)
        figures = train_figures(report)
    js = plotly_js() if include_plotlyjs else None
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
    ]
    if js is not None:
        parts.append(f'<script type="text/javascript">{js}</script>')
    parts.append("</head><body>")
    parts.append(f"<h1>{html.escape(title)}</h1>")
    parts.append(
        f'<p class="sub">{html.escape(str(report.get("source") or ""))} · '
        f"{html.escape(str(report.get('created') or ''))}</p>"
    )
    if figures and js is None:
        parts.append(
            '<p class="note">Charts need the <code>plotly</code> Python package '
            "(<code>pip install plotly</code>); the tables below hold the same figures.</p>"
        )
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    if figures and js is not None:
        parts.append("<h2>Charts</h2>")
        config = {"responsive": True, "displaylogo": False}
        for i, figure in enumerate(figures):
            div = f"figure-{i}"
            height = figure["layout"].get("height")
            style = f' style="height:{int(height)}px"' if height else ""
            parts.append(f'<div id="{div}" class="figure"{style}></div>')
            parts.append(
                "<script>Plotly.newPlot("
                f'"{div}", {_js(figure["data"])}, {_js(figure["layout"])}, {_js(config)});'
                "</script>"
            )
    versions = report.get("versions") or {}
    parts.append(
        '<p class="sub">'
        + html.escape(", ".join(f"{k} {v}" for k, v in versions.items()))
        + "</p></body></html>"
    )
    return "\n".join(parts)


def _js(value: Any) -> str:
    """JSON safe inside a <script> element."""
    text = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    return text.decode().replace("</", "<\\/")
