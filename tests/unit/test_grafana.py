"""The Grafana dashboard and its provisioning agree with the workers and the compose file.

Nothing here runs Grafana or Docker. The dashboard JSON and the provisioning YAML are
parsed; every PromQL expression must read only metrics a worker exports (with labels
they have, counters through rate/increase, histograms through histogram_quantile) and
must pass ``promtool check rules``; the compose service must mount each file where the
provisioning files expect it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from streamlearn.web.metrics import Metrics
from tests.unit.test_compose import _interpolate, _parse_port, _parse_volume

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD_FILE = GRAFANA / "dashboards" / "streamlearn.json"
DATASOURCE_FILE = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER_FILE = GRAFANA / "provisioning" / "dashboards" / "streamlearn.yml"
MONITORING_DOC = ROOT / "docs" / "monitoring.md"
#: GF_PATHS_PROVISIONING of the official image, unless the service overrides it.
IMAGE_PROVISIONING_DIR = "/etc/grafana/provisioning"
#: Grafana migrates dashboards with an older schemaVersion each time it loads them.
MIN_SCHEMA_VERSION = 41

#: Labels Prometheus attaches to every scraped series.
TARGET_LABELS = frozenset({"instance", "job"})
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
#: Keywords followed by a list of label names.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = LABEL_LIST_KEYWORDS | {"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"}
#: Functions whose argument must be a counter (or a histogram's _bucket/_sum/_count).
COUNTER_FUNCTIONS = {"rate", "irate", "increase"}
#: Grafana's own variables, with the value promtool sees in their place.
BUILTIN_VARIABLES = {"__rate_interval": "20s", "__interval": "1m", "__range": "1h"}
#: Values the dashboard's variables take: every worker, or a pick of two (Grafana joins
#: a multi-value pick into an escaped regex).
VARIABLE_VALUES = {
    "all": {"worker": ".*", "metric": ".*"},
    "picked": {
        "worker": r"(10\\.0\\.0\\.7:6066|10\\.0\\.0\\.8:6066)",
        "metric": "(accuracy|accuracy_last)",
    },
}
VARIABLE_REF = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def variable_name(m: re.Match[str]) -> str:
    """The name in a VARIABLE_REF match: $name, ${name}, ${name:format} or [[name]]."""
    return next(group for group in m.groups() if group)


# --- what a worker exports -----------------------------------------------------------


@dataclass(frozen=True)
class Series:
    kind: str  # counter, gauge or histogram (for _bucket, _sum and _count)
    labels: frozenset[str]


def exported_series() -> dict[str, Series]:
    """Every sample name on a worker's /metrics page, plus Prometheus's own `up`."""
    metrics = Metrics()
    out: dict[str, Series] = {"up": Series("gauge", TARGET_LABELS)}
    for metric in vars(metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        labels = frozenset(metric._labelnames) | TARGET_LABELS
        if metric._type == "counter":
            out[metric._name + "_total"] = Series("counter", labels)
        elif metric._type == "histogram":
            out[metric._name + "_bucket"] = Series("histogram", labels | {"le"})
            out[metric._name + "_sum"] = Series("histogram", labels)
            out[metric._name + "_count"] = Series("histogram", labels)
        else:
            out[metric._name] = Series(metric._type, labels)
    # process_* of prometheus-client's ProcessCollector (the worker registers it).
    for family in metrics.registry.collect():
        if family.name.startswith("process_"):
            for sample in family.samples:
                out[sample.name] = Series(family.type, TARGET_LABELS)
    return out


EXPORTED = exported_series()


# --- a small PromQL reader ---------------------------------------------------------------


TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)'
    r"|(?P<range>\[[^\]]*\])"
    r"|(?P<number>(?:0x[0-9a-fA-F]+|\d+\.?\d*(?:e[+-]?\d+)?|\.\d+)(?![\w:]))"
    r"|(?P<duration>\d+(?:ms|[smhdwy]))"
    r"|(?P<ident>[A-Za-z_:][\w:]*)"
    r"|(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},]))"
)


@dataclass
class Selector:
    name: str
    matchers: dict[str, tuple[str, str]]  # label -> (operator, value)
    wrapped_by: str | None  # the innermost function call around it, if any


@dataclass
class Parsed:
    selectors: list[Selector] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    grouping: list[list[str]] = field(default_factory=list)  # each by (...) clause


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens, pos, text = [], 0, expr.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        assert m and m.end() > pos, f"cannot read PromQL at {text[pos:]!r}"
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def parse_promql(expr: str) -> Parsed:
    """Metric selectors (with their matchers), function calls and by-clauses of `expr`."""
    tokens = tokenize(expr)
    parsed = Parsed()
    i, call_stack, pending_call = 0, [], None

    def label_list(start: int) -> tuple[list[str], int]:
        assert tokens[start] == ("op", "("), expr
        labels, j = [], start + 1
        while tokens[j] != ("op", ")"):
            if tokens[j][0] == "ident":
                labels.append(tokens[j][1])
            j += 1
        return labels, j + 1

    while i < len(tokens):
        kind, value = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "ident" and value in LABEL_LIST_KEYWORDS:
            if nxt == ("op", "("):
                labels, i = label_list(i + 1)
                if value in ("by", "without"):
                    parsed.grouping.append(labels)
                continue
        elif kind == "ident" and (value in AGGREGATIONS or nxt == ("op", "(")):
            parsed.functions.append(value)
            pending_call = value
        elif kind == "ident" and value.lower() in KEYWORDS:
            pass
        elif kind == "ident" or (kind == "op" and value == "{"):
            name = value if kind == "ident" else ""
            matchers: dict[str, tuple[str, str]] = {}
            j = i + 1 if kind == "ident" else i
            if j < len(tokens) and tokens[j] == ("op", "{"):
                j += 1
                while tokens[j] != ("op", "}"):
                    if tokens[j][0] == "ident":
                        (_, op), (string_kind, string) = tokens[j + 1], tokens[j + 2]
                        assert string_kind == "string", expr
                        matchers[tokens[j][1]] = (op, string[1:-1])
                        j += 3
                    else:
                        j += 1
                i = j
            parsed.selectors.append(
                Selector(name, matchers, call_stack[-1] if call_stack else None)
            )
        elif kind == "op" and value == "(":
            call_stack.append(pending_call)
            pending_call = None
        elif kind == "op" and value == ")":
            call_stack.pop()
        i += 1
    return parsed


# --- the files --------------------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text())


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(dashboard) if p["type"] != "row"]


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def variable_queries(dashboard: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Query variables: name -> (the selector of their label_values(), the label)."""
    out = {}
    for name, var in variables(dashboard).items():
        if var["type"] != "query":
            continue
        query = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert m, f"variable {name}: {query!r} is not label_values(selector, label)"
        out[name] = (m.group(1), m.group(2))
    return out


def exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) for every query of every panel."""
    return [
        (f"panel {p['id']} ({p['title']}) {t['refId']}", t["expr"])
        for p in query_panels(dashboard)
        for t in p["targets"]
    ]


def all_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for the panels' queries and the variables' selectors."""
    return exprs(dashboard) + [
        (f"variable {name}", selector)
        for name, (selector, _) in variable_queries(dashboard).items()
    ]


def substitute(expr: str, values: dict[str, str]) -> str:
    def value_of(m: re.Match[str]) -> str:
        name = variable_name(m)
        assert name in values, f"unknown variable ${name} in {expr!r}"
        return values[name]

    return VARIABLE_REF.sub(value_of, expr)


def compose_services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def grafana_env() -> dict[str, str]:
    env = compose_services()["grafana"].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def host_path(container_path: str) -> Path:
    """The repository path the grafana container sees at `container_path` (bind mounts)."""
    wanted = PurePosixPath(container_path)
    best: tuple[PurePosixPath, Path] | None = None
    for entry in compose_services()["grafana"].get("volumes", []):
        volume = _parse_volume(entry)
        target = PurePosixPath(str(volume["target"]))
        if volume["type"] != "bind" or not (target == wanted or target in wanted.parents):
            continue
        if best is None or len(target.parts) > len(best[0].parts):
            best = (target, (COMPOSE_FILE.parent / str(volume["source"])).resolve())
    assert best is not None, f"nothing is mounted at {container_path} in the grafana service"
    target, source = best
    return source.joinpath(*wanted.relative_to(target).parts)


def provisioned_datasource() -> dict[str, Any]:
    doc = yaml.safe_load(DATASOURCE_FILE.read_text())
    assert doc["apiVersion"] == 1
    (datasource,) = doc["datasources"]
    return datasource


def dashboard_provider() -> dict[str, Any]:
    doc = yaml.safe_load(PROVIDER_FILE.read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    return provider


# --- the PromQL reader itself ------------------------------------------------------------


def test_parse_promql_finds_selectors_functions_and_grouping() -> None:
    parsed = parse_promql(
        "histogram_quantile(0.99, sum by (agent, le) "
        '(rate(streamlearn_processing_seconds_bucket{instance=~"a|b"}[5m])))'
        ' / on() group_left sum(up{job="streamlearn"} == 1) and foo_bar offset 5m'
    )
    assert [(s.name, s.matchers, s.wrapped_by) for s in parsed.selectors] == [
        ("streamlearn_processing_seconds_bucket", {"instance": ("=~", "a|b")}, "rate"),
        ("up", {"job": ("=", "streamlearn")}, "sum"),
        ("foo_bar", {}, None),
    ]
    assert parsed.functions == ["histogram_quantile", "sum", "rate", "sum"]
    assert parsed.grouping == [["agent", "le"]]


def test_substitute_fills_every_variable_form() -> None:
    values = {"worker": "w", "__rate_interval": "20s"}
    expr = 'rate(x{instance=~"$worker", a="${worker}", b="[[worker]]"}[$__rate_interval])'
    assert substitute(expr, values) == 'rate(x{instance=~"w", a="w", b="w"}[20s])'
    with pytest.raises(AssertionError, match=r"unknown variable \$nope"):
        substitute("up{a=~'$nope'}", values)


# --- the dashboard ---------------------------------------------------------------------


def test_dashboard_is_a_classic_dashboard_json_model() -> None:
    dashboard = load_dashboard()
    # File provisioning reads the classic JSON model (panels, schemaVersion), not the
    # v2 resource format (elements, layout).
    assert "elements" not in dashboard and "layout" not in dashboard
    assert dashboard["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert dashboard["uid"] == "streamlearn" and dashboard["title"]
    assert dashboard["time"] == {"from": "now-1h", "to": "now"}
    assert dashboard["refresh"] == "10s"
    assert dashboard.get("id") is None  # the instance assigns it


def test_panel_ids_are_unique_and_the_grid_has_no_overlap() -> None:
    panels = all_panels(load_dashboard())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    cells: dict[tuple[int, int], int] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] >= 1 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]} and {panel['id']} overlap"
                cells[(x, y)] = panel["id"]


def test_every_panel_uses_the_provisioned_prometheus() -> None:
    dashboard = load_dashboard()
    uid = provisioned_datasource()["uid"]
    ds_vars = {n: v for n, v in variables(dashboard).items() if v["type"] == "datasource"}

    def resolve(ref: dict[str, Any], where: str) -> None:
        assert ref and ref.get("type") == "prometheus", f"{where}: datasource {ref!r}"
        name = VARIABLE_REF.fullmatch(ref["uid"])
        if name:
            var = ds_vars[variable_name(name)]
            assert var["query"] == "prometheus", where
            # Provisioned: the compose data source; imported elsewhere: pick one at the top.
            assert var["current"]["value"] == uid, f"{where}: defaults to another uid"
        else:
            assert ref["uid"] == uid, f"{where}: datasource uid {ref['uid']!r}, not {uid!r}"

    panels = query_panels(dashboard)
    assert len(panels) >= 20
    for panel in panels:
        where = f"panel {panel['id']} ({panel['title']})"
        resolve(panel.get("datasource"), where)
        assert panel["targets"], f"{where} has no query"
        for target in panel["targets"]:
            resolve(target.get("datasource", panel["datasource"]), f"{where} {target['refId']}")
    for name, var in variables(dashboard).items():
        if var["type"] == "query":
            resolve(var["datasource"], f"variable {name}")


def test_the_worker_variable_lists_the_scraped_workers() -> None:
    dashboard = load_dashboard()
    worker = variables(dashboard)["worker"]
    assert variable_queries(dashboard)["worker"] == ('up{job="streamlearn"}', "instance")
    assert worker["multi"] and worker["includeAll"] and worker["allValue"] == ".*"
    # Every query follows the pick.
    for where, expr in exprs(dashboard):
        for selector in parse_promql(expr).selectors:
            assert selector.matchers.get("instance") == ("=~", "$worker"), (
                f"{where}: {selector.name} ignores $worker"
            )


def test_every_variable_used_is_defined() -> None:
    dashboard = load_dashboard()
    known = set(variables(dashboard)) | set(BUILTIN_VARIABLES)
    for where, text in all_queries(dashboard):
        for m in VARIABLE_REF.finditer(text):
            assert variable_name(m) in known, f"{where}: ${variable_name(m)} is not defined"


def test_every_metric_is_exported_by_a_worker_with_the_labels_used() -> None:
    dashboard = load_dashboard()
    assert "process_resident_memory_bytes" in EXPORTED  # the ProcessCollector is there
    seen: set[str] = set()
    for where, expr in all_queries(dashboard):
        parsed = parse_promql(expr)
        assert parsed.selectors, f"{where} reads no metric"
        labels_in_expr: set[str] = set()
        for selector in parsed.selectors:
            series = EXPORTED.get(selector.name)
            assert series is not None, f"{where}: {selector.name!r} is not exported"
            unknown = set(selector.matchers) - series.labels
            assert not unknown, f"{where}: {selector.name} has no label {sorted(unknown)}"
            labels_in_expr |= series.labels
            seen.add(selector.name)
        for labels in parsed.grouping:
            assert set(labels) <= labels_in_expr, f"{where}: grouping by {labels}"
    for name, (selector, label) in variable_queries(dashboard).items():
        (first, *_) = parse_promql(selector).selectors
        assert label in EXPORTED[first.name].labels, f"variable {name}: no label {label}"
    # The families the dashboard is about are all on it.
    for name in (
        "streamlearn_events_in_total",
        "streamlearn_events_out_total",
        "streamlearn_dead_letters_total",
        "streamlearn_consumer_lag_records",
        "streamlearn_end_to_end_latency_seconds_bucket",
        "streamlearn_processing_seconds_bucket",
        "streamlearn_watermark_lag_seconds",
        "streamlearn_late_events_total",
        "streamlearn_alerts_total",
        "streamlearn_model_learned_total",
        "streamlearn_model_metric",
        "streamlearn_model_champion_version",
        "streamlearn_registry_production_version",
        "streamlearn_drift_alerts_total",
        "streamlearn_model_promotions_total",
        "streamlearn_model_degradations_total",
        "streamlearn_webhook_sent_total",
        "streamlearn_webhook_failed_total",
        "streamlearn_state_bytes",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "up",
    ):
        assert name in seen, f"no panel shows {name}"


def test_counters_go_through_rate_and_histograms_through_quantiles() -> None:
    for where, expr in exprs(load_dashboard()):
        parsed = parse_promql(expr)
        for selector in parsed.selectors:
            kind = EXPORTED[selector.name].kind
            in_rate = selector.wrapped_by in COUNTER_FUNCTIONS
            if kind in ("counter", "histogram"):
                assert in_rate, f"{where}: {selector.name} is a {kind}; use rate or increase"
            else:
                assert not in_rate, f"{where}: rate/increase of the gauge {selector.name}"
        if "histogram_quantile" in parsed.functions:
            assert all(s.name.endswith("_bucket") for s in parsed.selectors), where
            assert parsed.grouping and all("le" in g for g in parsed.grouping), (
                f"{where}: histogram_quantile needs the le label kept (sum by (le))"
            )


def expected_unit(panel: dict[str, Any]) -> str:
    """The unit a panel's queries call for, derived from the queries alone."""
    texts = [t["expr"] for t in panel["targets"]]
    names = {s.name for text in texts for s in parse_promql(text).selectors}
    if any(re.search(r"\)\s*/\s*\w", text) for text in texts):
        return "percentunit"  # a ratio of two rates
    if any("histogram_quantile" in text for text in texts):
        return "s"
    if names == {"process_cpu_seconds_total"}:
        return "percentunit"  # CPU seconds per second: 1 = one core
    if all(name.endswith("_bytes") for name in names):
        return "bytes"
    if all(name.endswith("_seconds") for name in names):
        return "s"
    if all(re.search(r"\b(rate|irate)\(", text) for text in texts):
        return "ops"
    return "short"  # counts: records, versions, events per time bucket, targets


def test_every_panel_has_the_unit_its_queries_call_for() -> None:
    for panel in query_panels(load_dashboard()):
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit == expected_unit(panel), f"panel {panel['id']} ({panel['title']}): {unit}"


def test_legends_name_labels_the_query_keeps() -> None:
    for panel in query_panels(load_dashboard()):
        for target in panel["targets"]:
            wanted = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            if not wanted:
                continue
            expr = target["expr"]
            outer = re.match(
                r"\s*(?:histogram_quantile\(\s*[\d.]+\s*,\s*)?(\w+)\s*(?:by\s*\(([^)]*)\))?\s*\(",
                expr,
            )
            if outer and outer.group(1) in AGGREGATIONS:
                kept = {w.strip() for w in (outer.group(2) or "").split(",") if w.strip()}
                kept -= {"le"}
            else:  # no aggregation: every label of the series
                kept = set().union(*(EXPORTED[s.name].labels for s in parse_promql(expr).selectors))
            assert wanted <= kept, f"panel {panel['id']} {target['refId']}: legend {wanted}"


def test_promtool_accepts_every_query(tmp_path: Path) -> None:
    """Each query, with the variables filled in as Grafana would, is valid PromQL."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make test` installs it (scripts/system-deps.sh)"
    items = all_queries(load_dashboard())
    groups = []
    for case, values in VARIABLE_VALUES.items():
        values = {**values, **BUILTIN_VARIABLES}
        rules = []
        for where, expr in items:
            filled = substitute(expr, values)
            assert "$" not in filled, f"{where}: {filled}"
            slug = re.sub(r"\W+", "_", where).strip("_")  # promtool names the failing one
            rules.append({"record": f"streamlearn_dashboard:{case}:{slug}", "expr": filled})
        groups.append({"name": f"dashboard-{case}", "rules": rules})
    rules_file = tmp_path / "dashboard-rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    done = subprocess.run(
        [promtool, "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(items) * len(VARIABLE_VALUES)} rules found" in done.stdout, done.stdout


def test_promtool_refuses_a_broken_query(tmp_path: Path) -> None:
    """So the check above cannot pass vacuously."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make test` installs it (scripts/system-deps.sh)"
    rules_file = tmp_path / "broken.yml"
    broken = {"record": "x:y", "expr": "sum(rate(streamlearn_alerts_total[5m])"}
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [broken]}]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0


# --- provisioning ------------------------------------------------------------------------


def test_the_data_source_is_the_compose_prometheus() -> None:
    datasource = provisioned_datasource()
    assert datasource["type"] == "prometheus" and datasource["access"] == "proxy"
    assert datasource["uid"] == "streamlearn-prometheus" and datasource["isDefault"]
    url = re.fullmatch(r"http://([\w.-]+):(\d+)/?", datasource["url"])
    assert url, datasource["url"]
    services = compose_services()
    assert url.group(1) in services, f"{url.group(1)} is not a compose service"
    # Prometheus listens on 9090 in its container (the port the compose file publishes).
    targets = {_parse_port(p)["target"] for p in services[url.group(1)].get("ports", [])}
    assert url.group(2) == "9090" and "9090" in targets
    # The data source's minimum step is the scrape interval, for $__rate_interval.
    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["global"]["scrape_interval"]
    assert datasource["jsonData"]["timeInterval"] == scrape


def test_the_dashboard_provider_reads_files() -> None:
    provider = dashboard_provider()
    assert provider["type"] == "file"
    assert PurePosixPath(provider["options"]["path"]).is_absolute()
    assert provider.get("disableDeletion") is True


# --- the compose service --------------------------------------------------------------------


def test_grafana_is_a_pinned_official_image_after_prometheus() -> None:
    grafana = compose_services()["grafana"]
    repo, _, tag = grafana["image"].rpartition(":")
    assert repo == "grafana/grafana", grafana["image"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"pin a full version, not {tag!r}"
    assert int(tag.split(".")[0]) >= 12
    assert "prometheus" in grafana.get("depends_on", [])
    ports = [_parse_port(p) for p in grafana.get("ports", [])]
    assert ports == [{"host_ip": "127.0.0.1", "published": "3000", "target": "3000"}]


def test_grafana_login_settings() -> None:
    env = grafana_env()
    # The admin password comes from the shell, with a default the docs give.
    password = re.fullmatch(r"\$\{(\w+):-([^}]+)\}", env["GF_SECURITY_ADMIN_PASSWORD"])
    assert password, env["GF_SECURITY_ADMIN_PASSWORD"]
    # Anonymous access is off unless asked for, and read-only when on.
    assert _interpolate(env.get("GF_AUTH_ANONYMOUS_ENABLED", "false")) == "false"
    assert env.get("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer") == "Viewer"
    assert _interpolate(env.get("GF_USERS_ALLOW_SIGN_UP", "false")) == "false"
    section = MONITORING_DOC.read_text().split("\n## Grafana\n", 1)[1]
    for m in re.finditer(r"\$\{(\w+):-([^}]*)\}", " ".join(env.values())):
        assert m.group(1) in section, f"docs/monitoring.md (Grafana) does not name {m.group(1)}"
    assert f"`{password.group(2)}`" in section, "the default password is not documented"


def test_grafana_mounts_what_the_provisioning_files_name() -> None:
    services = compose_services()
    provisioning = grafana_env().get("GF_PATHS_PROVISIONING", IMAGE_PROVISIONING_DIR)
    assert host_path(f"{provisioning}/datasources/{DATASOURCE_FILE.name}") == DATASOURCE_FILE
    assert host_path(f"{provisioning}/dashboards/{PROVIDER_FILE.name}") == PROVIDER_FILE
    # The provider's directory holds the dashboard, and Grafana opens it as home.
    dashboards = host_path(dashboard_provider()["options"]["path"])
    assert dashboards.is_dir() and DASHBOARD_FILE in dashboards.glob("*.json")
    home = grafana_env().get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home is None or host_path(home) == DASHBOARD_FILE
    # Repository files are mounted read-only; Grafana's database lives in a named volume.
    volumes = [_parse_volume(v) for v in services["grafana"]["volumes"]]
    for entry, volume in zip(services["grafana"]["volumes"], volumes, strict=True):
        if volume["type"] == "bind":
            read_only = entry.get("read_only") if isinstance(entry, dict) else entry[-3:] == ":ro"
            assert read_only, f"{entry!r} is writable by Grafana"
    data = [v for v in volumes if v["target"] == "/var/lib/grafana"]
    assert len(data) == 1 and data[0]["type"] == "volume"
    assert data[0]["source"] in yaml.safe_load(COMPOSE_FILE.read_text())["volumes"]


def test_host_path_resolves_through_the_mounts() -> None:
    assert host_path("/etc/grafana/dashboards") == DASHBOARD_FILE.parent
    assert host_path("/etc/grafana/dashboards/streamlearn.json") == DASHBOARD_FILE
    with pytest.raises(AssertionError, match="nothing is mounted at /etc/nope"):
        host_path("/etc/nope/file.yml")


# --- docs ---------------------------------------------------------------------------------


def test_the_docs_describe_every_panel() -> None:
    section = MONITORING_DOC.read_text().split("\n## Grafana\n", 1)[1]
    for panel in query_panels(load_dashboard()):
        assert panel["title"] in section, f"docs/monitoring.md does not describe {panel['title']!r}"
