/* streamlearn dashboard: plain JavaScript on the worker's JSON API, charts by plotly.js.
 *
 * One page, five views (Overview, Key explorer, Models, Alerts, Registry) switched by the
 * URL hash (#overview, #keys?key=K&value=V, #models, #alerts, #registry). The visible view
 * refreshes itself every few seconds while the tab is visible. Every request can fail:
 * a failure becomes a message in its panel, never an exception that stops the page.
 */
(function () {
  "use strict";

  const CONFIG = JSON.parse(document.getElementById("sl-config").textContent);
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "streamlearn.apiToken";

  // --- HTTP ------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options) {
    let response;
    try {
      response = await fetch(path, Object.assign({ headers: { Accept: "application/json" } }, options));
    } catch (err) {
      throw new ApiError(0, "the worker does not answer");
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (err) {
      body = null;
    }
    if (!response.ok) {
      const message = body && typeof body.error === "string" ? body.error : `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, message);
    }
    return body;
  }

  /** Run ``jobs`` (functions returning promises), at most ``limit`` at once, in order. */
  async function pool(jobs, limit) {
    const results = new Array(jobs.length);
    let next = 0;
    async function runner() {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await jobs[i]();
      }
    }
    await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, runner));
    return results;
  }

  const enc = encodeURIComponent;

  function describeError(err) {
    if (err instanceof ApiError) {
      return err.status ? `${err.status}: ${err.message}` : err.message;
    }
    return String(err && err.message ? err.message : err);
  }

  // --- formatting --------------------------------------------------------------------------
  const esc = (value) =>
    String(value == null ? "" : value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  function fmtInt(n) {
    return n == null || !isFinite(n) ? "–" : Math.round(n).toLocaleString("en-US");
  }

  function fmtNum(n, digits) {
    if (n == null || !isFinite(n)) return "–";
    const a = Math.abs(n);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return n.toExponential(2);
    return Number(n.toPrecision(digits || 4)).toLocaleString("en-US", { maximumFractionDigits: 6 });
  }

  /** An event rate per second; slow ones (historical data, quiet keys) per hour or day. */
  function fmtEventRate(n) {
    if (n == null || !isFinite(n)) return "–";
    if (n === 0 || n >= 0.1) return `${fmtRate(n)}/s`;
    if (n * 3600 >= 1) return `${fmtNum(n * 3600, 3)}/h`;
    return `${fmtNum(n * 86400, 3)}/day`;
  }

  function fmtRate(n) {
    if (n == null || !isFinite(n)) return "–";
    if (n >= 100) return fmtInt(n);
    if (n >= 10) return n.toFixed(1);
    return n.toFixed(n === 0 ? 0 : 2);
  }

  function fmtDuration(seconds) {
    if (seconds == null || !isFinite(seconds)) return "–";
    const s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }

  const pad = (n) => String(n).padStart(2, "0");

  function fmtTime(ms, withSeconds) {
    if (ms == null || !isFinite(ms)) return "–";
    const d = new Date(ms);
    const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}` + (withSeconds === false ? "" : `:${pad(d.getUTCSeconds())}`);
    return `${day} ${time}`;
  }

  /** A time for lists: the day alone when the clock says midnight (daily data). */
  function fmtWhen(ms) {
    if (ms == null || !isFinite(ms)) return "–";
    const d = new Date(ms);
    if (!d.getUTCHours() && !d.getUTCMinutes() && !d.getUTCSeconds()) return fmtTime(ms).slice(0, 10);
    return fmtTime(ms);
  }

  function fmtIso(text) {
    if (!text) return "–";
    const ms = Date.parse(text);
    return isFinite(ms) ? fmtTime(ms, false) : esc(text);
  }

  function fmtSpan(ms) {
    const units = [["y", 365 * 86400e3], ["d", 86400e3], ["h", 3600e3], ["m", 60e3], ["s", 1e3]];
    for (const [u, size] of units) if (ms >= size && ms % size === 0) return `${ms / size}${u}`;
    return `${ms} ms`;
  }

  function toLocalInput(ms) {
    // datetime-local inputs hold UTC here (the page speaks UTC everywhere).
    return new Date(ms).toISOString().slice(0, 19);
  }

  function fromLocalInput(text) {
    if (!text) return null;
    const ms = Date.parse(text.length === 16 ? `${text}:00Z` : `${text}Z`);
    return isFinite(ms) ? ms : null;
  }

  function badge(kind, text) {
    return `<span class="badge ${esc(kind)}">${esc(text == null ? kind : text)}</span>`;
  }

  function setNotice(id, message, kind) {
    const el = $(id);
    if (!el) return;
    if (!message) {
      el.hidden = true;
      el.textContent = "";
      return;
    }
    el.className = "notice" + (kind ? ` ${kind}` : "");
    el.textContent = message;
    el.hidden = false;
  }

  // --- charts ------------------------------------------------------------------------------
  const FONT = getComputedStyle(document.documentElement).fontFamily;
  const COLORS = {
    primary: "#2563eb",
    primaryBand: "rgba(37, 99, 235, 0.14)",
    range: "rgba(100, 116, 139, 0.13)",
    rangeLine: "rgba(100, 116, 139, 0.45)",
    out: "#0ea5e9",
    critical: "#dc2626",
    warning: "#d97706",
    violet: "#7c3aed",
    grid: "#eef0f3",
    axis: "#d5d9de",
  };
  const SERIES = ["#2563eb", "#0ea5e9", "#16a34a", "#d97706", "#7c3aed", "#db2777", "#0d9488", "#64748b", "#ca8a04", "#4f46e5"];
  // No mode bar: drag to zoom, double-click to reset, as in every plotly chart.
  const PLOT_CONFIG = { displaylogo: false, responsive: true, displayModeBar: false };

  function layout(extra) {
    const base = {
      margin: { l: 56, r: 16, t: 10, b: 36 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: FONT, size: 12, color: "#39414b" },
      xaxis: { type: "date", gridcolor: COLORS.grid, linecolor: COLORS.axis, zeroline: false, automargin: true },
      yaxis: { gridcolor: COLORS.grid, linecolor: COLORS.axis, zeroline: false, automargin: true, separatethousands: true },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 12 } },
      hovermode: "x unified",
      hoverlabel: { font: { family: FONT, size: 12 }, bgcolor: "#ffffff", bordercolor: COLORS.axis },
      showlegend: true,
    };
    for (const [k, v] of Object.entries(extra || {})) {
      base[k] = v && typeof v === "object" && !Array.isArray(v) && base[k] ? Object.assign({}, base[k], v) : v;
    }
    return base;
  }

  function countPoints(trace) {
    if (trace.type === "bar" && trace.orientation === "h") return (trace.y || []).length;
    return (trace.x || []).filter((x, i) => x != null && (trace.y == null || trace.y[i] != null)).length;
  }

  /** Draw ``traces`` into chart ``id``, or its empty state when they hold no point. */
  function draw(id, traces, lay, empty) {
    const el = $(id);
    const overlay = el.parentElement.querySelector(".empty");
    const points = traces.reduce((n, t) => n + (t.countsAsData === false ? 0 : countPoints(t)), 0);
    if (!points) {
      showEmpty(id, empty ? empty[0] : "No data", empty ? empty[1] : "");
      return false;
    }
    overlay.hidden = true;
    const clean = traces.map((t) => {
      const copy = Object.assign({}, t);
      delete copy.countsAsData;
      return copy;
    });
    Plotly.react(el, clean, lay, PLOT_CONFIG);
    return true;
  }

  function showEmpty(id, title, detail) {
    const el = $(id);
    const overlay = el.parentElement.querySelector(".empty");
    if (el.data) Plotly.purge(el);
    overlay.innerHTML = `<strong>${esc(title)}</strong>${detail ? `<span>${esc(detail)}</span>` : ""}`;
    overlay.hidden = false;
  }

  function resizeCharts(section) {
    for (const el of section.querySelectorAll(".chart")) {
      if (el.data) Plotly.Plots.resize(el);
    }
  }

  // --- token -------------------------------------------------------------------------------
  const token = {
    get() {
      try {
        return sessionStorage.getItem(TOKEN_KEY) || "";
      } catch (err) {
        return "";
      }
    },
    set(value) {
      try {
        if (value) sessionStorage.setItem(TOKEN_KEY, value);
        else sessionStorage.removeItem(TOKEN_KEY);
      } catch (err) {
        /* storage off: the token lives until the dialog closes */
      }
      showTokenState();
    },
  };

  function showTokenState() {
    const button = $("token-button");
    const set = Boolean(token.get());
    button.classList.toggle("set", set);
    button.textContent = set ? "API token ✓" : "API token";
  }

  function initToken() {
    showTokenState();
    $("token-button").addEventListener("click", () => {
      const panel = $("token-panel");
      panel.hidden = !panel.hidden;
      if (!panel.hidden) {
        $("token-input").value = token.get();
        $("token-input").focus();
      }
    });
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      token.set($("token-input").value.trim());
      $("token-panel").hidden = true;
    });
    $("token-clear").addEventListener("click", () => {
      token.set("");
      $("token-input").value = "";
      $("token-panel").hidden = true;
    });
  }

  // --- registry actions (shared by the Models and Registry views) -------------------------
  let pendingAction = null;

  function openAction(action) {
    pendingAction = action;
    $("action-title").textContent = action.title;
    $("action-text").textContent = action.text;
    $("action-why").value = "";
    $("action-token").value = token.get();
    setNotice("action-error", null);
    $("action-confirm").disabled = false;
    if (!CONFIG.registry_writes) {
      setNotice(
        "action-error",
        "This worker has no api_token configured, so it refuses registry changes over HTTP (401). Set STREAMLEARN_API_TOKEN on the workers.",
        "error"
      );
    }
    $("action-dialog").showModal();
    $("action-why").focus();
  }

  function initActions() {
    $("action-cancel").addEventListener("click", () => $("action-dialog").close());
    $("action-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const action = pendingAction;
      if (!action) return;
      const why = $("action-why").value.trim();
      const secret = $("action-token").value.trim();
      if (!why) {
        setNotice("action-error", "Say why: it is recorded in the version's history.", "error");
        return;
      }
      if (!secret) {
        setNotice("action-error", "Enter the API token: registry changes need Authorization: Bearer <api_token>.", "error");
        return;
      }
      token.set(secret);
      $("action-confirm").disabled = true;
      try {
        await api(action.path, {
          method: "POST",
          headers: { Accept: "application/json", "Content-Type": "application/json", Authorization: `Bearer ${secret}` },
          body: JSON.stringify(Object.assign({ why, by: "dashboard" }, action.body || {})),
        });
        $("action-dialog").close();
        if (action.done) action.done();
      } catch (err) {
        const hint =
          err.status === 401
            ? "401 Unauthorized: " + err.message + ". Check the API token (the workers' api_token setting)."
            : describeError(err);
        setNotice("action-error", hint, "error");
      } finally {
        $("action-confirm").disabled = false;
      }
    });
  }

  /** The versions table of one registry entry, with promote and rollback buttons. */
  function renderVersions(container, entry, onChange) {
    const versions = (entry.versions || []).slice().sort((a, b) => b.version - a.version);
    if (!versions.length) {
      container.innerHTML = `<div class="empty-row"><strong>No versions</strong></div>`;
      return;
    }
    const rows = versions.map((v) => {
      const changes = v.history || [];
      const last = changes[changes.length - 1];
      const metrics = Object.entries(v.metrics || {})
        .slice(0, 4)
        .map(([k, val]) => `${esc(k)}=${typeof val === "number" ? fmtNum(val) : esc(val)}`)
        .join(" ");
      const buttons = [];
      if (v.stage !== "staging" && v.stage !== "production") {
        buttons.push(`<button class="btn small" data-act="promote" data-to="staging" data-version="${v.version}">→ staging</button>`);
      }
      if (v.stage !== "production") {
        buttons.push(`<button class="btn small" data-act="promote" data-to="production" data-version="${v.version}">→ production</button>`);
      }
      return `<tr>
        <td class="mono">v${v.version}</td>
        <td>${badge(v.stage)}</td>
        <td class="nowrap">${fmtIso(v.created_at)}<div class="history">${esc(v.created_by || "")}</div></td>
        <td class="wrap">${esc(v.description || "") || '<span class="muted">–</span>'}<div class="metrics-inline">${metrics}</div></td>
        <td class="wrap">${last ? `${esc(last.why || "")}<div class="history">${esc(last.by || "")} · ${fmtIso(last.at)}</div>` : ""}</td>
        <td><div class="actions">${buttons.join("")}</div></td>
      </tr>`;
    });
    const lineage = entry.production_lineage || [];
    const production = versions.find((v) => v.stage === "production");
    const canRollback = production && lineage.length >= 2 && lineage[lineage.length - 1] === production.version;
    container.innerHTML = `
      <div class="row-end" style="margin-bottom:8px">
        <button class="btn small danger" data-act="rollback" ${canRollback ? "" : "disabled"}
          title="${canRollback ? `Archive v${production.version} and restore v${lineage[lineage.length - 2]}` : "Needs a production version with an earlier one before it"}">Roll back production</button>
      </div>
      <table class="table versions"><thead><tr><th>Version</th><th>Stage</th><th>Created (UTC)</th><th>Description · metrics</th><th>Last change</th><th></th></tr></thead>
      <tbody>${rows.join("")}</tbody></table>`;
    const name = entry.name;
    for (const button of container.querySelectorAll("button[data-act]")) {
      button.addEventListener("click", () => {
        if (button.dataset.act === "rollback") {
          openAction({
            title: `Roll back ${name}`,
            text: `Archives v${production.version} (production) and makes v${lineage[lineage.length - 2]} production again.`,
            path: `/api/v1/registry/models/${enc(name)}/rollback`,
            done: onChange,
          });
        } else {
          const version = button.dataset.version;
          const to = button.dataset.to;
          openAction({
            title: `Promote ${name} v${version} to ${to}`,
            text:
              to === "production"
                ? "The current production version, if any, is archived. Workers serving this model pick the new version up."
                : "Staging versions run in shadow against the champion as challengers.",
            path: `/api/v1/registry/models/${enc(name)}/versions/${enc(version)}/promote`,
            body: { to },
            done: onChange,
          });
        }
      });
    }
  }

  // --- Overview ----------------------------------------------------------------------------
  const Overview = {
    interval: 5000,
    init() {},
    async refresh() {
      let o;
      try {
        o = await api("/api/v1/overview");
        setNotice("overview-error", null);
      } catch (err) {
        setNotice("overview-error", `The overview is not available: ${describeError(err)}`);
        for (const id of ["chart-throughput", "chart-lag", "chart-dlq", "chart-dlq-reasons"]) {
          showEmpty(id, "No data", "The overview endpoint did not answer.");
        }
        await this.alerts();
        return;
      }
      this.kpis(o);
      this.charts(o);
      this.tables(o);
      await this.alerts();
    },
    kpis(o) {
      const t = o.totals || {};
      const h = o.history || {};
      const last = (arr) => (arr && arr.length ? arr[arr.length - 1] : null);
      const inRate = last(h.events_in_per_s);
      const outRate = last(h.events_out_per_s);
      const dlqRate = last(h.dead_letters_per_s);
      const workers = o.workers || [];
      $("kpi-in").innerHTML = inRate == null ? "–" : `${fmtRate(inRate)}<span class="unit">/s</span>`;
      $("kpi-in-sub").textContent = `${fmtInt(t.events_in)} in total`;
      $("kpi-out").innerHTML = outRate == null ? "–" : `${fmtRate(outRate)}<span class="unit">/s</span>`;
      $("kpi-out-sub").textContent = `${fmtInt(t.events_out)} records published`;
      const lag = (o.lag || {}).total;
      const parts = ((o.lag || {}).partitions || []).length;
      $("kpi-lag").textContent = fmtInt(lag);
      $("kpi-lag-sub").textContent = parts ? `records behind, ${parts} partitions` : "records behind";
      $("kpi-lag").parentElement.classList.toggle("warn", lag > 10000);
      $("kpi-dlq").textContent = fmtInt(t.dead_letters);
      const share = t.events_in ? (100 * (t.dead_letters || 0)) / t.events_in : 0;
      $("kpi-dlq-sub").textContent = `${share < 0.01 && share > 0 ? "<0.01" : share.toFixed(2)}% of input` + (dlqRate ? ` · ${fmtRate(dlqRate)}/s now` : "");
      $("kpi-dlq").parentElement.classList.toggle("bad", share >= 1);
      $("kpi-alerts").textContent = fmtInt(t.alerts);  // anomaly alerts; drift ones below
      $("kpi-alerts-sub").textContent = `${fmtInt(t.drift_alerts)} drift · ${fmtInt(t.predictions)} predictions`;
      $("kpi-uptime").textContent = fmtDuration(o.uptime_s);
      $("kpi-uptime-sub").textContent = `${workers.length} worker${workers.length === 1 ? "" : "s"}`;
      const sample = o.sample_s || 5;
      $("overview-sub").textContent =
        workers.length > 1
          ? `All ${workers.length} workers of ${CONFIG.app_id}, merged. Rates are sampled every ${sample} s.`
          : `The one worker of ${CONFIG.app_id}. Rates are sampled every ${sample} s.`;
    },
    charts(o) {
      const h = o.history || {};
      const x = h.ts_ms || [];
      draw(
        "chart-throughput",
        [
          { x, y: h.events_in_per_s || [], name: "events in", type: "scatter", mode: "lines", line: { color: COLORS.primary, width: 2 }, fill: "tozeroy", fillcolor: "rgba(37,99,235,0.08)", hovertemplate: "%{y:,.1f}/s" },
          { x, y: h.events_out_per_s || [], name: "records out", type: "scatter", mode: "lines", line: { color: COLORS.out, width: 1.5, dash: "dot" }, hovertemplate: "%{y:,.1f}/s" },
        ],
        layout({ yaxis: { rangemode: "tozero", title: { text: "per second", font: { size: 11 } } } }),
        ["No throughput yet", "The workers sample their counters every 5 s; the first points appear shortly after start."]
      );
      draw(
        "chart-lag",
        [{ x, y: h.lag || [], name: "lag", type: "scatter", mode: "lines", line: { color: COLORS.warning, width: 2, shape: "hv" }, fill: "tozeroy", fillcolor: "rgba(217,119,6,0.08)", hovertemplate: "%{y:,} records" }],
        layout({ showlegend: false, yaxis: { rangemode: "tozero" } }),
        ["No lag samples yet", "Lag is sampled with the throughput, every 5 s."]
      );
      const dlq = h.dead_letters_per_s || [];
      const anyDlq = dlq.some((v) => v > 0);
      if (x.length && !anyDlq) {
        showEmpty("chart-dlq", "No dead letters in the last hour", "Every event was valid and on time.");
      } else {
        draw(
          "chart-dlq",
          [{ x, y: dlq, name: "dead letters", type: "scatter", mode: "lines", line: { color: COLORS.critical, width: 1.5 }, fill: "tozeroy", fillcolor: "rgba(220,38,38,0.08)", hovertemplate: "%{y:,.2f}/s" }],
          layout({ showlegend: false, yaxis: { rangemode: "tozero" } }),
          ["No samples yet", "Dead letters are sampled every 5 s."]
        );
      }
      const reasons = Object.entries(o.dead_letters_by_reason || {}).filter(([, n]) => n > 0).sort((a, b) => a[1] - b[1]);
      if (!reasons.length) {
        showEmpty("chart-dlq-reasons", "No dead letters", "Refused records would be counted here by reason (invalid_json, late…).");
      } else {
        draw(
          "chart-dlq-reasons",
          [{ type: "bar", orientation: "h", x: reasons.map((r) => r[1]), y: reasons.map((r) => r[0]), marker: { color: "rgba(220,38,38,0.75)" }, hovertemplate: "%{y}: %{x:,}<extra></extra>" }],
          layout({ showlegend: false, hovermode: "closest", bargap: reasons.length < 3 ? 0.55 : 0.25, margin: { l: 110, r: 16, t: 6, b: 30 }, xaxis: { type: "linear", gridcolor: COLORS.grid, rangemode: "tozero" }, yaxis: { gridcolor: "rgba(0,0,0,0)", automargin: true } }),
          ["No dead letters", ""]
        );
      }
    },
    tables(o) {
      const workers = o.workers || [];
      $("workers-table").querySelector("tbody").innerHTML = workers.length
        ? workers
            .map(
              (w) => `<tr><td class="mono">${esc(w.url)}</td><td class="num">${fmtDuration(w.uptime_s)}</td>
                <td class="num" title="${esc((w.partitions || []).join(", "))}">${fmtInt((w.partitions || []).length)}</td>
                <td class="num"><a href="${esc(String(w.url).replace(/\/$/, ""))}/dashboard" target="_blank" rel="noopener">open</a></td></tr>`
            )
            .join("")
        : `<tr><td colspan="4" class="muted">No worker reported yet.</td></tr>`;
      const lag = ((o.lag || {}).partitions || []).filter((p) => p.lag > 0).sort((a, b) => b.lag - a.lag).slice(0, 6);
      $("lag-table").querySelector("tbody").innerHTML = lag.length
        ? lag.map((p) => `<tr><td class="mono">${esc(p.topic)}</td><td class="num">${p.partition}</td><td class="num">${fmtInt(p.lag)}</td></tr>`).join("")
        : `<tr><td colspan="3" class="muted">Every partition is caught up.</td></tr>`;
    },
    async alerts() {
      const list = $("overview-alerts");
      try {
        const body = await api("/api/v1/alerts?limit=5");
        const alerts = (body && body.alerts) || [];
        list.innerHTML = alerts.length
          ? alerts.map(alertItem).join("")
          : `<li class="empty-item">No alerts yet: anomalies, drift and model changes appear here.</li>`;
      } catch (err) {
        list.innerHTML = `<li class="empty-item">Alerts are not available: ${esc(describeError(err))}</li>`;
      }
    },
  };

  function alertItem(a) {
    return `<li><span class="when">${fmtWhen(a.ts)}</span><span class="what">
      <span class="line">${badge(a.severity)} ${badge(a.type)} <strong>${esc(a.key || a.subject || "")}</strong></span>
      <span class="line clamp muted" title="${esc(a.message)}">${esc(a.message)}</span></span></li>`;
  }

  // --- Key explorer ----------------------------------------------------------------------------
  const RANGES = [
    ["15m", 15 * 60e3],
    ["1h", 3600e3],
    ["6h", 6 * 3600e3],
    ["24h", 86400e3],
    ["7d", 7 * 86400e3],
    ["30d", 30 * 86400e3],
    ["1y", 365 * 86400e3],
  ];
  const MAX_CHUNKS = 120;

  const Keys = {
    interval: 5000,
    keys: [],
    key: null,
    value: null,
    window: null,
    range: null, // a RANGES name, "all", or "custom"
    custom: null, // [from, to] for "custom"
    maxRangeMs: null, // the API's longest range, learned from its answer
    seq: 0,
    init() {
      const select = $("window-select");
      const windows = CONFIG.windows || [];
      select.innerHTML = windows.map((w) => `<option value="${esc(w.name)}">${esc(w.name)}</option>`).join("");
      this.window = windows.length ? windows[0].name : null;
      this.renderRangeButtons();
      $("key-select").addEventListener("change", () => this.choose($("key-select").value, null));
      $("value-select").addEventListener("change", () => {
        this.value = $("value-select").value;
        this.syncHash();
        this.refresh();
      });
      select.addEventListener("change", () => {
        this.window = select.value;
        this.renderRangeButtons();
        this.refresh();
      });
      let filterTimer = null;
      $("key-filter").addEventListener("input", () => {
        clearTimeout(filterTimer);
        filterTimer = setTimeout(() => {
          const shown = this.fillKeys();
          if (shown.length && !shown.includes(this.key)) this.choose(shown[0], null);
        }, 200);
      });
      $("range-apply").addEventListener("click", () => {
        const from = fromLocalInput($("range-from").value);
        const to = fromLocalInput($("range-to").value);
        if (from == null || to == null || from >= to) {
          setNotice("keys-error", "Choose a start before the end (UTC).");
          return;
        }
        this.custom = [from, to];
        this.refresh();
      });
    },
    windowSpec() {
      return (CONFIG.windows || []).find((w) => w.name === this.window) || { step_ms: 60e3, size_ms: 60e3 };
    },
    /** Presets worth offering for this window: at least four windows long. */
    presets() {
      const step = this.windowSpec().step_ms;
      return RANGES.filter(([, span]) => span >= 4 * step);
    },
    renderRangeButtons() {
      const box = $("range-buttons");
      const names = this.presets().map((r) => r[0]).concat(["all", "custom"]);
      if (this.range && !names.includes(this.range)) this.range = null;
      box.innerHTML = names
        .map((n) => `<button type="button" data-range="${n}" class="${n === this.range ? "active" : ""}">${n === "all" ? "All" : n === "custom" ? "Custom" : n}</button>`)
        .join("");
      for (const b of box.querySelectorAll("button")) {
        b.addEventListener("click", () => {
          this.range = b.dataset.range;
          this.syncHash();
          if (this.range === "custom" && !this.custom && this.lastSpan) this.custom = this.lastSpan.slice();
          this.renderRangeButtons();
          this.refresh();
        });
      }
      $("custom-range").hidden = this.range !== "custom";
      if (this.range === "custom" && this.custom) {
        $("range-from").value = toLocalInput(this.custom[0]);
        $("range-to").value = toLocalInput(this.custom[1]);
      }
    },
    fromHash(params) {
      if (params.get("key")) {
        this.key = params.get("key");
        this.value = params.get("value") || null;
      }
      const range = params.get("range");
      if (range && (range === "all" || RANGES.some((r) => r[0] === range))) {
        this.range = range;
        this.renderRangeButtons();
      }
    },
    syncHash() {
      if (currentView !== "keys" || !this.key) return;
      const params = new URLSearchParams({ key: this.key });
      if (this.value) params.set("value", this.value);
      if (this.range && this.range !== "custom") params.set("range", this.range);
      history.replaceState(null, "", `#keys?${params}`);
    },
    choose(key, value) {
      this.key = key;
      this.value = value;
      this.syncHash();
      this.refresh();
    },
    fillKeys() {
      const filter = $("key-filter").value.trim().toLowerCase();
      const shown = filter ? this.keys.filter((k) => k.toLowerCase().includes(filter)) : this.keys.slice();
      if (this.key && !shown.includes(this.key) && this.keys.includes(this.key) && !filter) shown.unshift(this.key);
      const select = $("key-select");
      const html = shown.length
        ? shown.map((k) => `<option value="${esc(k)}">${esc(k)}</option>`).join("")
        : `<option value="" disabled>${this.keys.length ? "no key matches" : "no keys yet"}</option>`;
      if (select.dataset.html !== html) {
        select.innerHTML = html;
        select.dataset.html = html;
      }
      if (this.key && shown.includes(this.key)) select.value = this.key;
      return shown;
    },
    async refresh() {
      const seq = ++this.seq;
      const stale = () => seq !== this.seq;
      try {
        const body = await api("/api/v1/keys");
        if (stale()) return;
        this.keys = (body && body.keys) || [];
      } catch (err) {
        setNotice("keys-error", `Keys are not available: ${describeError(err)}`);
        showEmpty("chart-key", "No data", "The key list did not load.");
        return;
      }
      if (!this.keys.length) {
        this.fillKeys();
        setNotice("keys-error", null);
        $("value-select").innerHTML = "";
        showEmpty("chart-key", "No keys yet", "Produce events to the events topic; each event's key appears here.");
        this.facts("key-stats", null, "No key selected.");
        this.facts("key-anomaly", null, "No key selected.");
        $("key-alerts").innerHTML = `<li class="empty-item">No key selected.</li>`;
        return;
      }
      if (!this.key || !this.keys.includes(this.key)) this.key = this.keys[0];
      this.fillKeys();
      const key = this.key;
      let stats;
      try {
        stats = await api(`/api/v1/stats/${enc(key)}`);
        if (stale()) return;
      } catch (err) {
        if (stale()) return;
        setNotice("keys-error", `Statistics of ${key} are not available: ${describeError(err)}`);
        showEmpty("chart-key", "No data", "The key's statistics did not load.");
        return;
      }
      const names = Object.keys(stats.values || {});
      if (!this.value || !names.includes(this.value)) this.value = names[0] || null;
      const valueSelect = $("value-select");
      const options = names.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join("");
      if (valueSelect.dataset.html !== options) {
        valueSelect.innerHTML = options;
        valueSelect.dataset.html = options;
      }
      if (this.value) valueSelect.value = this.value;
      this.renderStats(stats);
      if (!this.value) {
        showEmpty("chart-key", "No values", `${key} has no numeric values yet.`);
        return;
      }
      const span = this.span(stats);
      this.lastSpan = span;
      const [series, alerts, detector, raw] = await Promise.all([
        this.series(key, this.value, span).then(
          (w) => ({ windows: w }),
          (err) => ({ error: err })
        ),
        this.alerts(key, span),
        CONFIG.anomaly_enabled ? api(`/api/v1/anomaly/${enc(key)}`).catch((err) => ({ error: err })) : Promise.resolve(null),
        api(`/api/v1/events/${enc(key)}?value=${enc(this.value)}&from=${span[0]}&to=${span[1]}`).catch((err) => ({ error: err, events: [] })),
      ]);
      if (stale()) return;
      const problems = [];
      if (series.error) problems.push(`windows: ${describeError(series.error)}`);
      if (alerts.error) problems.push(`anomaly markers: ${describeError(alerts.error)}`);
      if (raw.error && !(raw.error instanceof ApiError && raw.error.status === 404)) problems.push(`raw values: ${describeError(raw.error)}`);
      setNotice("keys-error", problems.length ? `Some data did not load (${problems.join("; ")}).` : null);
      this.renderDetector(detector);
      this.renderAlerts(alerts.alerts || [], alerts.error);
      this.chart(key, this.value, series.windows || [], alerts.alerts || [], span, series.note, raw);
    },
    span(stats) {
      const last = stats.last_ts != null ? stats.last_ts + 1 : Date.now();
      const first = stats.first_ts != null ? stats.first_ts : last - 86400e3;
      const step = this.windowSpec().step_ms;
      if (!this.range) {
        // Everything when it is a readable number of windows, else the widest preset that is.
        const fits = this.presets().filter(([, s]) => s / step <= 600);
        this.range = (last - first) / step <= 600 || !fits.length ? "all" : fits[fits.length - 1][0];
        this.renderRangeButtons();
      }
      if (this.range === "custom" && this.custom) return this.custom.slice();
      if (this.range === "all" || this.range === "custom") {
        const start = first - (first % step);
        return [start, last];
      }
      const preset = RANGES.find((r) => r[0] === this.range);
      return [last - preset[1], last];
    },
    /** Every window in [from, to): in pieces when the range is longer than the API allows. */
    async series(key, value, span) {
      const [from, to] = span;
      const step = this.maxRangeMs || to - from;
      const pieces = [];
      for (let a = from; a < to; a += step) pieces.push([a, Math.min(to, a + step)]);
      const kept = pieces.slice(-MAX_CHUNKS);
      try {
        const answers = await pool(
          kept.map(([a, b]) => () => api(`/api/v1/series/${enc(key)}?value=${enc(value)}&window=${enc(this.window)}&from=${a}&to=${b}`)),
          6
        );
        const seen = new Set();
        const windows = [];
        for (const answer of answers) {
          for (const w of answer.windows || []) {
            if (seen.has(w.start)) continue;
            seen.add(w.start);
            windows.push(w);
          }
        }
        windows.sort((a, b) => a.start - b.start);
        return windows;
      } catch (err) {
        const m = err instanceof ApiError && err.status === 400 && /maximum is (\d+) ms/.exec(err.message);
        if (m && !this.maxRangeMs) {
          this.maxRangeMs = Number(m[1]);
          return this.series(key, value, span);
        }
        throw err;
      }
    },
    async alerts(key, span) {
      if (!CONFIG.anomaly_enabled) return { alerts: [] };
      try {
        const body = await api(`/api/v1/alerts?type=anomaly&key=${enc(key)}&since=${span[0]}&until=${span[1]}&limit=500`);
        return { alerts: (body && body.alerts) || [] };
      } catch (err) {
        return { alerts: [], error: err };
      }
    },
    chart(key, value, windows, alerts, span, note, raw) {
      const spec = this.windowSpec();
      const mid = (w) => w.start + (w.end - w.start) / 2;
      const x = windows.map(mid);
      const stat = (w, name) => (w.stats && w.stats[name] != null && isFinite(w.stats[name]) ? w.stats[name] : null);
      const mean = windows.map((w) => stat(w, "mean"));
      const std = windows.map((w) => stat(w, "std") || 0);
      const lo = mean.map((m, i) => (m == null ? null : m - std[i]));
      const hi = mean.map((m, i) => (m == null ? null : m + std[i]));
      const min = windows.map((w) => stat(w, "min"));
      const max = windows.map((w) => stat(w, "max"));
      const custom = windows.map((w, i) => [std[i], min[i], max[i], w.stats ? w.stats.count : null, w.closed ? "closed" : "open"]);
      const markers = this.markers(value, alerts, windows);
      const others = markers.others;
      const few = windows.length <= 60;
      const points = (raw && raw.events) || [];
      const traces = [
        {
          x: points.map((p) => p.ts),
          y: points.map((p) => p.value),
          name: `raw values (last ${fmtInt(raw && raw.held ? raw.held : points.length)} events)`,
          type: "scatter",
          mode: "markers",
          marker: { size: 3, color: COLORS.rangeLine, opacity: 0.8 },
          hovertemplate: "%{y:.6g} at %{x|%Y-%m-%d %H:%M:%S}<extra>raw</extra>",
          countsAsData: false,
          showlegend: points.length > 0,
        },
        { x, y: max, name: "raw max", type: "scatter", mode: "lines", line: { width: 0.8, color: COLORS.rangeLine }, hoverinfo: "skip", showlegend: false, countsAsData: false },
        { x, y: min, name: "raw min – max", type: "scatter", mode: "lines", line: { width: 0.8, color: COLORS.rangeLine }, fill: "tonexty", fillcolor: COLORS.range, hoverinfo: "skip", countsAsData: false },
        { x, y: hi, name: "mean + std", type: "scatter", mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false, countsAsData: false },
        { x, y: lo, name: "mean ± std", type: "scatter", mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: COLORS.primaryBand, hoverinfo: "skip", countsAsData: false },
        {
          x,
          y: mean,
          name: "window mean",
          type: "scatter",
          mode: few ? "lines+markers" : "lines",
          line: { color: COLORS.primary, width: 2 },
          marker: { size: 5, color: COLORS.primary },
          customdata: custom,
          hovertemplate: "mean %{y:.4g} ± %{customdata[0]:.3g}<br>raw %{customdata[1]:.4g} … %{customdata[2]:.4g} · %{customdata[3]} events (%{customdata[4]})<extra></extra>",
        },
        {
          x: others.x,
          y: others.y,
          name: "anomaly of other values",
          type: "scatter",
          mode: "markers",
          marker: { symbol: "diamond-open", size: 10, color: COLORS.critical, line: { width: 1.5 } },
          text: others.text,
          hovertemplate: "%{text}<extra></extra>",
          countsAsData: false,
          showlegend: others.x.length > 0,
        },
        {
          x: markers.x,
          y: markers.y,
          name: "anomaly",
          type: "scatter",
          mode: "markers",
          marker: { symbol: "diamond", size: 11, color: COLORS.critical, line: { color: "#fff", width: 1.5 } },
          text: markers.text,
          hovertemplate: "%{text}<extra></extra>",
          countsAsData: false,
        },
      ];
      $("key-chart-title").textContent = `${key} · ${value}`;
      const found = markers.x.length + others.x.length;
      const noteParts = [`${fmtInt(windows.length)} windows of ${spec.name}`, `${fmtInt(found)} ${found === 1 ? "anomaly" : "anomalies"}`];
      if (note) noteParts.push(note);
      $("key-chart-note").textContent = noteParts.join(" · ");
      draw(
        "chart-key",
        traces,
        layout({
          hovermode: "closest",
          xaxis: { range: [span[0], Math.max(span[1], windows.length ? windows[windows.length - 1].end : span[1])] },
          yaxis: { title: { text: value, font: { size: 11 } } },
        }),
        [
          "No windows in this range",
          `${key} has no ${spec.name} windows of ${value} between ${fmtTime(span[0])} and ${fmtTime(span[1])} UTC. Widen the range or pick another window.`,
        ]
      );
    },
    /** Anomaly markers: at the anomalous value of ``value`` when the alert names it
     * (``x``, ``y``), else at the window mean of that time (``others``: an anomaly of
     * the key's other values, or of their combination). */
    markers(value, alerts, windows) {
      const out = { x: [], y: [], text: [], others: { x: [], y: [], text: [] } };
      for (const a of alerts) {
        const values = a.values || (a.evidence && a.evidence.values) || [];
        const hit = values.find((v) => v.name === value);
        const score = a.score != null ? a.score : a.evidence && a.evidence.score;
        const scoreText = score != null ? `<br>score ${Number(score).toFixed(6)}` : "";
        if (hit && hit.value != null) {
          const expected = hit.expected_low != null ? `<br>expected ${fmtNum(hit.expected_low)} … ${fmtNum(hit.expected_high)}` : "";
          out.x.push(a.ts);
          out.y.push(hit.value);
          out.text.push(`<b>${esc(a.severity)}</b> ${fmtWhen(a.ts)}<br>${esc(value)} = ${fmtNum(hit.value)}${expected}${scoreText}`);
          continue;
        }
        const w = windows.find((w) => w.start <= a.ts && a.ts < w.end);
        if (!w || !w.stats || w.stats.mean == null) continue;
        out.others.x.push(a.ts);
        out.others.y.push(w.stats.mean);
        out.others.text.push(`<b>${esc(a.severity)}</b> ${fmtWhen(a.ts)}<br>${esc(a.message || "")}${scoreText}`);
      }
      return out;
    },
    renderStats(stats) {
      const v = (stats.values || {})[this.value] || {};
      this.facts("key-stats", [
        ["Events", fmtInt(stats.events)],
        ["Event rate", fmtEventRate(stats.rate_per_s)],
        ["First event", fmtWhen(stats.first_ts)],
        ["Newest event", fmtWhen(stats.last_ts)],
        [`Mean of ${this.value || "value"}`, fmtNum(v.mean)],
        ["Std", fmtNum(v.std)],
        ["Min … max", `${fmtNum(v.min)} … ${fmtNum(v.max)}`],
        ["EWMA", fmtNum(v.ewma)],
      ]);
    },
    renderDetector(detector) {
      if (!CONFIG.anomaly_enabled) {
        this.facts("key-anomaly", null, "Anomaly detection is off (anomaly_enabled = false).");
      } else if (!detector || detector.error) {
        const err = detector && detector.error;
        this.facts("key-anomaly", null, err && err.status === 404 ? "No detector state for this key yet." : `Not available: ${describeError(err)}`);
      } else {
        const policy = detector.policy || {};
        const warm = policy.warmup != null && detector.events < policy.warmup;
        this.facts("key-anomaly", [
          ["Events scored", fmtInt(detector.events)],
          ["Anomalous events", fmtInt(detector.anomalies)],
          ["Episodes (alerts)", fmtInt(detector.episodes)],
          ["Episode open", detector.episode_open ? badge("critical", "yes") : badge("ok", "no")],
          ["Threshold", policy.threshold != null ? String(policy.threshold) : "–"],
          ["Warm-up", warm ? `${fmtInt(detector.events)} / ${fmtInt(policy.warmup)}` : "done"],
        ]);
      }
    },
    renderAlerts(alerts, error) {
      const list = $("key-alerts");
      if (error) {
        list.innerHTML = `<li class="empty-item">Alerts are not available: ${esc(describeError(error))}</li>`;
      } else if (!alerts.length) {
        list.innerHTML = `<li class="empty-item">No anomaly of this key in the range.</li>`;
      } else {
        list.innerHTML = alerts.slice(0, 5).map(alertItem).join("");
      }
    },
    facts(id, rows, emptyText) {
      $(id).innerHTML = rows
        ? rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${String(v).startsWith("<span") ? v : esc(v)}</dd>`).join("")
        : `<div class="empty-item">${esc(emptyText)}</div>`;
    },
  };

  // --- Models ----------------------------------------------------------------------------------
  const Models = {
    interval: 10000,
    metric: null,
    state: "",
    init() {
      $("metric-select").addEventListener("change", () => {
        this.metric = $("metric-select").value;
        this.render();
      });
      $("state-select").addEventListener("change", () => {
        this.state = $("state-select").value;
        this.render();
      });
    },
    async refresh() {
      const name = CONFIG.model_name;
      if (!CONFIG.model_enabled || !name) {
        $("models-title").textContent = "Models";
        setNotice("models-error", "Online models are off on this worker (model_enabled = false). The registry below still works.");
        this.report = null;
        this.render();
        await this.registry();
        return;
      }
      $("models-title").textContent = `Model ${name}`;
      try {
        this.report = await api(`/api/v1/models/${enc(name)}/report`);
        setNotice("models-error", null);
      } catch (err) {
        this.report = null;
        setNotice("models-error", `The model report is not available: ${describeError(err)}`);
      }
      this.render();
      await this.registry();
    },
    states() {
      const states = (this.report && this.report.states) || {};
      return Object.entries(states).sort((a, b) => (b[1].learned || 0) - (a[1].learned || 0) || a[0].localeCompare(b[0]));
    },
    render() {
      const all = this.states();
      const first = all.length ? all[0][1] : null;
      const task = first ? first.task : null;
      $("models-sub").textContent = first
        ? `${task === "classification" ? "Classification" : "Regression"} · ${all.length} model state${all.length === 1 ? "" : "s"} · ${shortLearner(first.learner)}`
        : "Prequential metrics of the online model, drift, champion and challengers.";
      // metric choices
      const metrics = new Set();
      for (const [, s] of all) for (const p of s.metrics_over_time || []) for (const k of Object.keys(p)) if (k.endsWith("_last")) metrics.add(k);
      const names = Array.from(metrics).sort();
      const preferred = task === "classification" ? "accuracy_last" : "mae_last";
      if (!this.metric || !names.includes(this.metric)) this.metric = names.includes(preferred) ? preferred : names[0] || null;
      const mSelect = $("metric-select");
      mSelect.innerHTML = names.length ? names.map((n) => `<option value="${esc(n)}">${esc(metricLabel(n))}</option>`).join("") : `<option value="">no metric yet</option>`;
      if (this.metric) mSelect.value = this.metric;
      const sSelect = $("state-select");
      if (this.state && !all.some(([n]) => n === this.state)) this.state = "";
      sSelect.innerHTML = `<option value="">All states (top 10)</option>` + all.map(([n]) => `<option value="${esc(n)}">${esc(n)}</option>`).join("");
      sSelect.value = this.state;
      const shown = this.state ? all.filter(([n]) => n === this.state) : all.slice(0, 10);
      this.kpis(all, shown);
      this.metricChart(shown);
      this.versionChart(shown);
      this.championTable(shown);
      this.events(shown);
    },
    kpis(all, shown) {
      const sum = (f) => all.reduce((n, [, s]) => n + (f(s) || 0), 0);
      $("kpi-predicted").textContent = fmtInt(sum((s) => s.predicted));
      $("kpi-predicted-sub").textContent = `${fmtInt(sum((s) => s.pending))} waiting for a label`;
      $("kpi-learned").textContent = fmtInt(sum((s) => s.learned));
      $("kpi-learned-sub").textContent = `${fmtInt(sum((s) => s.labels_expired))} expired · ${fmtInt(sum((s) => s.labels_unknown))} unknown`;
      const metric = this.metric;
      $("kpi-metric-label").textContent = metric ? metricLabel(metric) : "Rolling metric";
      let weighted = 0, weight = 0;
      for (const [, s] of shown) {
        const v = s.metrics ? s.metrics[metric] : null;
        if (v != null && isFinite(v)) {
          weighted += v * (s.learned || 1);
          weight += s.learned || 1;
        }
      }
      $("kpi-metric").textContent = weight ? fmtNum(weighted / weight) : "–";
      $("kpi-metric-sub").textContent = shown.length > 1 ? `weighted over ${shown.length} states` : shown.length ? shown[0][0] : "no labels yet";
      const drift = sum((s) => (s.drift || []).length);
      const promotions = sum((s) => (s.versions || []).length);
      const degraded = all.filter(([, s]) => s.champion && s.champion.degraded).length;
      const degradations = sum((s) => (s.events || []).filter((e) => e.type === "degradation").length);
      $("kpi-drift").textContent = fmtInt(drift);
      $("kpi-drift-sub").textContent = degraded
        ? `${degraded} state${degraded === 1 ? "" : "s"} degraded now`
        : degradations
          ? `${degradations} degradation alert${degradations === 1 ? "" : "s"}, recovered`
          : "no degradation";
      $("kpi-drift").parentElement.classList.toggle("warn", degraded > 0);
      $("kpi-promotions").textContent = fmtInt(promotions);
      const challengers = sum((s) => (s.challengers || []).length);
      $("kpi-promotions-sub").textContent = `${fmtInt(challengers)} challenger${challengers === 1 ? "" : "s"} in shadow`;
    },
    metricChart(shown) {
      const metric = this.metric;
      const traces = [];
      const drift = { x: [], y: [], text: [] };
      const promo = { x: [], y: [], text: [] };
      const degraded = { x: [], y: [], text: [] };
      shown.forEach(([name, s], i) => {
        const points = (s.metrics_over_time || []).filter((p) => p[metric] != null && p.ts != null);
        if (!points.length) return;
        const x = points.map((p) => p.ts);
        const y = points.map((p) => p[metric]);
        traces.push({
          x,
          y,
          name,
          type: "scatter",
          mode: points.length < 30 ? "lines+markers" : "lines",
          line: { color: SERIES[i % SERIES.length], width: 1.8 },
          marker: { size: 4 },
          customdata: points.map((p) => [p.learned, p.version]),
          hovertemplate: `${esc(name)}: %{y:.4g} (v%{customdata[1]}, %{customdata[0]:,} labels)<extra></extra>`,
        });
        const at = (ts) => {
          let best = points[0];
          for (const p of points) if (Math.abs(p.ts - ts) < Math.abs(best.ts - ts)) best = p;
          return best[metric];
        };
        for (const d of s.drift || []) {
          if (d.ts == null) continue;
          drift.x.push(d.ts);
          drift.y.push(at(d.ts));
          drift.text.push(`<b>drift</b> ${esc(name)} ${fmtWhen(d.ts)}<br>${esc(d.message || "")}`);
        }
        for (const e of s.events || []) {
          if (e.type !== "degradation" || e.ts == null) continue;
          degraded.x.push(e.ts);
          degraded.y.push(at(e.ts));
          degraded.text.push(`<b>degradation</b> ${esc(name)} ${fmtWhen(e.ts)}<br>${esc(e.message || "")}`);
        }
        for (const v of s.versions || []) {
          promo.x.push(v.since_ts);
          promo.y.push(at(v.since_ts));
          promo.text.push(`<b>v${esc(v.version)}</b> ${esc(name)} ${fmtWhen(v.since_ts)}`);
        }
      });
      traces.push({ x: drift.x, y: drift.y, text: drift.text, name: "drift", type: "scatter", mode: "markers", marker: { symbol: "triangle-up", size: 11, color: COLORS.warning, line: { color: "#fff", width: 1 } }, hovertemplate: "%{text}<extra></extra>", countsAsData: false });
      traces.push({ x: degraded.x, y: degraded.y, text: degraded.text, name: "degradation", type: "scatter", mode: "markers", marker: { symbol: "x", size: 10, color: COLORS.critical }, hovertemplate: "%{text}<extra></extra>", countsAsData: false });
      traces.push({ x: promo.x, y: promo.y, text: promo.text, name: "new version", type: "scatter", mode: "markers", marker: { symbol: "diamond", size: 11, color: COLORS.violet, line: { color: "#fff", width: 1 } }, hovertemplate: "%{text}<extra></extra>", countsAsData: false });
      $("metric-chart-title").textContent = metric ? `${metricLabel(metric)} over time` : "Metric over time";
      draw(
        "chart-metric",
        traces,
        layout({ hovermode: "closest", yaxis: { title: { text: metric ? metricLabel(metric) : "", font: { size: 11 } } } }),
        this.report
          ? ["No labelled events yet", "The metric is recorded every 100 labels (inline labels or the labels topic)."]
          : ["No report", "The model report did not load."]
      );
    },
    versionChart(shown) {
      const traces = [];
      const names = [];
      const palette = ["#bfdbfe", "#c4b5fd", "#a7f3d0", "#fde68a", "#fbcfe8", "#bae6fd"];
      // Every state's bars end at the newest event time any of them reports.
      let end = null;
      for (const [, s] of shown) {
        for (const r of [].concat(s.metrics_over_time || [], s.events || [], s.drift || [])) if (r.ts != null && (end == null || r.ts > end)) end = r.ts;
        for (const v of s.versions || []) if (v.since_ts != null && (end == null || v.since_ts > end)) end = v.since_ts;
      }
      for (const [name, s] of shown) {
        const points = s.metrics_over_time || [];
        const changes = (s.versions || []).filter((v) => v.since_ts != null).sort((a, b) => a.since_ts - b.since_ts);
        const start = points.length ? points[0].ts : changes.length ? changes[0].since_ts : null;
        if (start == null) continue;
        names.push(name);
        const segments = [{ version: changes.length ? changes[0].evidence.from_version || 1 : (s.champion || {}).version || 1, from: start }];
        for (const c of changes) segments.push({ version: c.version, from: c.since_ts });
        segments.forEach((seg, i) => {
          let to = i + 1 < segments.length ? segments[i + 1].from : Math.max(end || seg.from, seg.from);
          if (to === seg.from) to = seg.from + Math.max(1, (end - start) / 100); // changed at the very end: still visible
          const width = to - seg.from;
          traces.push({
            type: "bar",
            orientation: "h",
            y: [name],
            x: [width],
            base: [seg.from],
            marker: { color: palette[(seg.version - 1) % palette.length], line: { color: "#fff", width: 1 } },
            text: [`v${seg.version}`],
            textposition: "inside",
            insidetextanchor: "middle",
            textfont: { color: "#1d232b", size: 11 },
            hovertemplate: `${esc(name)} v${seg.version}<br>${fmtWhen(seg.from)} → ${fmtWhen(to)}<extra></extra>`,
            showlegend: false,
          });
        });
      }
      draw(
        "chart-versions",
        traces,
        layout({
          barmode: "overlay",
          hovermode: "closest",
          showlegend: false,
          margin: { l: 96, r: 16, t: 6, b: 30 },
          yaxis: { type: "category", categoryorder: "array", categoryarray: names.slice().reverse(), gridcolor: "rgba(0,0,0,0)", automargin: true },
          bargap: 0.35,
        }),
        ["No version history yet", "Each model state starts at v1; promotions add versions."]
      );
    },
    championTable(shown) {
      const body = $("champion-table").querySelector("tbody");
      if (!shown.length) {
        body.innerHTML = `<tr><td colspan="4" class="muted">${this.report ? "No model state yet: the model starts with the first event." : "–"}</td></tr>`;
        return;
      }
      body.innerHTML = shown
        .map(([name, s]) => {
          const c = s.champion || {};
          const challengers = (s.challengers || [])
            .map((ch) => {
              const acc = ch.champion_accuracy != null ? `accuracy ${fmtNum(ch.challenger_accuracy)} vs ${fmtNum(ch.champion_accuracy)}` : null;
              const mae = ch.champion_mae != null ? `MAE ${fmtNum(ch.challenger_mae)} vs ${fmtNum(ch.champion_mae)}` : null;
              return `<div>${badge("model", ch.origin)} ${fmtInt(ch.learned)} labels${acc || mae ? ` · ${acc || mae}` : ""}</div>`;
            })
            .join("");
          return `<tr><td class="mono nowrap">${esc(name)}</td>
            <td><strong>v${esc(c.version)}</strong> ${badge("info", c.origin || "initial")} ${c.degraded ? badge("critical", "degraded") : ""}
              ${c.baseline != null ? `<div class="history muted">baseline ${fmtNum(c.baseline)}</div>` : ""}</td>
            <td class="nowrap">${c.since_ts != null ? fmtWhen(c.since_ts) : "start"}</td>
            <td>${challengers || '<span class="muted">none</span>'}</td></tr>`;
        })
        .join("");
    },
    events(shown) {
      const records = [];
      for (const [name, s] of shown) {
        for (const r of (s.events || []).concat(s.drift || [])) records.push(Object.assign({ state: name }, r));
      }
      records.sort((a, b) => (b.ts || 0) - (a.ts || 0));
      $("model-events").innerHTML = records.length
        ? records
            .slice(0, 8)
            .map(
              (r) => `<li><span class="when">${fmtWhen(r.ts)}</span><span class="what">
                <span class="line">${badge(r.type === "model" ? "model" : r.type, r.event || r.type)} <span class="muted">${esc(r.state)}</span></span>
                <span class="line clamp" title="${esc(r.message)}">${esc(r.message)}</span></span></li>`
            )
            .join("")
        : `<li class="empty-item">No drift, challenger or promotion yet.</li>`;
    },
    async registry() {
      const box = $("model-registry");
      const name = CONFIG.model_name;
      if (!name) {
        box.innerHTML = `<div class="empty-row">No online model runs on this worker.</div>`;
        return;
      }
      try {
        const entry = await api(`/api/v1/registry/models/${enc(name)}`);
        renderVersions(box, entry, () => this.refresh());
      } catch (err) {
        box.innerHTML =
          err.status === 404
            ? `<div class="empty-row"><strong>${esc(name)} has no registered version yet</strong><span>Automatic promotions are recorded here; register one with <code>streamlearn models register ${esc(name)} FILE</code>.</span></div>`
            : `<div class="empty-row">The registry is not available: ${esc(describeError(err))}</div>`;
      }
    },
  };

  function metricLabel(name) {
    const base = name.replace(/_last$/, "");
    const label = { mae: "MAE", rmse: "RMSE", r2: "R²", accuracy: "Accuracy", f1: "F1", log_loss: "Log loss", roc_auc: "ROC AUC" }[base] || base;
    return name.endsWith("_last") ? `${label} (rolling)` : label;
  }

  /** A River repr's steps: "Pipeline (\n  StandardScaler (...),\n  LinearRegression (\n    optimizer=SGD (..." as
   * "StandardScaler → LinearRegression" (classes that start a line; parameters' classes follow a "name="). */
  function shortLearner(text) {
    if (!text) return "";
    const names = Array.from(String(text).matchAll(/^\s*([A-Z][A-Za-z0-9]+)\s*\(/gm), (m) => m[1]).filter((n) => n !== "Pipeline");
    const short = names.length ? names.join(" → ") : String(text).replace(/\s+/g, " ");
    return short.length > 90 ? `${short.slice(0, 87)}…` : short;
  }

  // --- Alerts ----------------------------------------------------------------------------------
  const Alerts = {
    interval: 3000,
    limit: 50,
    shownKeys: null,
    open: new Set(),
    seen: new Set(),
    seenReady: false,
    init() {
      $("alerts-more").addEventListener("click", () => {
        this.limit = Math.min(1000, this.limit + 100);
        this.refresh(true);
      });
      let typing = null;
      for (const el of document.querySelectorAll("#alert-filters input, #alert-filters select")) {
        if (el.type === "search") {
          el.addEventListener("input", () => {
            clearTimeout(typing);
            typing = setTimeout(() => this.refresh(true), 300);
          });
        } else {
          el.addEventListener("change", () => this.refresh(true));
        }
      }
    },
    query() {
      const types = Array.from(document.querySelectorAll("#alert-types input")).filter((i) => i.checked).map((i) => i.value);
      const params = new URLSearchParams({ limit: String(this.limit) });
      const allTypes = document.querySelectorAll("#alert-types input").length;
      if (types.length < allTypes) params.set("type", types.join(","));
      const severity = $("alert-severity").value;
      if (severity) params.set("min_severity", severity);
      const key = $("alert-key").value.trim();
      if (key) params.set("key", key);
      const search = $("alert-search").value.trim();
      if (search) params.set("q", search);
      return { params, types };
    },
    async refresh(force) {
      if (!force && !$("alert-live").checked && this.shownKeys) return;
      const { params, types } = this.query();
      const body = $("alerts-table").querySelector("tbody");
      if (!types.length) {
        body.innerHTML = "";
        this.signature = null;
        this.empty("Choose at least one alert type.");
        return;
      }
      let answer;
      try {
        answer = await api(`/api/v1/alerts?${params}`);
        setNotice("alerts-error", null);
      } catch (err) {
        setNotice("alerts-error", `The alert feed is not available: ${describeError(err)}`);
        return;
      }
      const alerts = (answer && answer.alerts) || [];
      for (const a of alerts) this.seen.add(a.dedup_key);
      this.seenReady = true;
      updateBadge(0);
      const previous = this.shownKeys;
      this.shownKeys = new Set(alerts.map((a) => a.dedup_key));
      const matched = answer.count != null ? answer.count : alerts.length;
      $("alerts-count").textContent = answer.truncated
        ? `newest ${fmtInt(alerts.length)} of ${fmtInt(matched)}`
        : `${fmtInt(alerts.length)} alert${alerts.length === 1 ? "" : "s"}`;
      $("alerts-more").hidden = !answer.truncated || this.limit >= 1000;
      if (!alerts.length) {
        body.innerHTML = "";
        this.signature = null;
        const filtered = types.length < 4 || params.get("min_severity") || params.get("key") || params.get("q");
        if (answer.ready === false) this.empty("Loading the alert history…", "This worker is still reading the alert topics.");
        else if (filtered) this.empty("No alert matches these filters.");
        else this.empty("No alerts yet.", "Anomalies, drift, model degradation and promotions appear here as the workers publish them.");
        return;
      }
      $("alerts-empty").hidden = true;
      // Unchanged feed: keep the rows as they are (an opened "raw record" stays open).
      const signature = alerts.map((a) => a.dedup_key).join("\n") + "|" + Array.from(this.open).join("\n");
      if (signature === this.signature && body.children.length) return;
      this.signature = signature;
      body.innerHTML = alerts
        .map((a) => {
          const fresh = previous && !previous.has(a.dedup_key) ? " fresh" : "";
          const keyCell =
            a.key && a.type === "anomaly"
              ? `<a href="#keys?${new URLSearchParams({ key: a.key, value: (a.values && a.values[0] && a.values[0].name) || "" })}" title="Open in the key explorer">${esc(a.key)}</a>`
              : esc(a.key || "–");
          const row = `<tr class="alert-row${fresh}" data-id="${esc(a.dedup_key)}">
            <td class="mono">${fmtWhen(a.ts)}</td><td>${badge(a.severity)}</td><td>${badge(a.type, a.event || a.type)}</td>
            <td>${keyCell}</td><td>${esc(a.subject || "")}</td><td class="msg">${esc(a.message)}</td></tr>`;
          const detail = this.open.has(a.dedup_key) ? `<tr class="detail"><td colspan="6" class="detail-cell">${alertDetail(a)}</td></tr>` : "";
          return row + detail;
        })
        .join("");
      for (const tr of body.querySelectorAll("tr.alert-row")) {
        tr.addEventListener("click", (event) => {
          if (event.target.closest("a")) return;
          const id = tr.dataset.id;
          if (this.open.has(id)) this.open.delete(id);
          else this.open.add(id);
          this.refresh(true);
        });
      }
    },
    empty(title, detail) {
      const el = $("alerts-empty");
      el.innerHTML = `<strong>${esc(title)}</strong>${detail ? `<span>${esc(detail)}</span>` : ""}`;
      el.hidden = false;
    },
    /** Background check for alerts not seen yet (the tab badge). */
    async poll() {
      try {
        const body = await api("/api/v1/alerts?limit=100");
        const alerts = (body && body.alerts) || [];
        if (!this.seenReady) {
          for (const a of alerts) this.seen.add(a.dedup_key);
          this.seenReady = true;
          return;
        }
        updateBadge(alerts.filter((a) => !this.seen.has(a.dedup_key)).length);
      } catch (err) {
        /* the feed itself reports errors */
      }
    },
  };

  /** An alert's evidence as a short list of facts, its values as a table, the raw record folded. */
  function alertDetail(a) {
    const evidence = a.evidence && typeof a.evidence === "object" ? a.evidence : {};
    const facts = [];
    let valuesTable = "";
    for (const [k, v] of Object.entries(evidence)) {
      if (k === "values" && Array.isArray(v) && v.length && typeof v[0] === "object") {
        valuesTable = `<table class="table compact"><thead><tr><th>value</th><th class="num">observed</th><th class="num">expected</th><th class="num">z</th></tr></thead><tbody>${v
          .map(
            (x) => `<tr><td>${esc(x.name)}</td><td class="num">${fmtNum(x.value)}</td>
              <td class="num">${x.expected_low != null ? `${fmtNum(x.expected_low)} … ${fmtNum(x.expected_high)}` : "–"}</td>
              <td class="num">${x.z != null ? fmtNum(x.z, 3) : "–"}</td></tr>`
          )
          .join("")}</tbody></table>`;
        continue;
      }
      let text;
      if (typeof v === "number") text = fmtNum(v, 6);
      else if (Array.isArray(v)) text = v.map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x))).join(", ");
      else if (v && typeof v === "object") text = Object.entries(v).map(([kk, vv]) => `${kk} ${typeof vv === "number" ? fmtNum(vv, 6) : JSON.stringify(vv)}`).join(" · ");
      else text = String(v);
      facts.push(`<dt>${esc(k.replace(/_/g, " "))}</dt><dd>${esc(text)}</dd>`);
    }
    if (a.topic != null) facts.push(`<dt>published</dt><dd>${esc(`${a.topic} · partition ${a.partition} · offset ${a.offset}`)}</dd>`);
    if (a.dedup_key) facts.push(`<dt>dedup key</dt><dd class="mono">${esc(a.dedup_key)}</dd>`);
    return `<div class="alert-detail"><dl class="facts left">${facts.join("")}</dl>${valuesTable}</div>
      <details><summary>Raw record</summary><pre class="evidence">${esc(JSON.stringify(a, null, 2))}</pre></details>`;
  }

  function updateBadge(n) {
    const el = $("alerts-badge");
    el.hidden = !n;
    el.textContent = n > 99 ? "99+" : String(n);
  }

  // --- Registry --------------------------------------------------------------------------------
  const Registry = {
    interval: 10000,
    selected: null,
    init() {},
    async refresh() {
      let models;
      try {
        models = ((await api("/api/v1/registry/models")) || {}).models || [];
        setNotice("registry-error", null);
      } catch (err) {
        setNotice("registry-error", `The registry is not available: ${describeError(err)}`);
        return;
      }
      const body = $("registry-table").querySelector("tbody");
      if (!models.length) {
        body.innerHTML = "";
        const empty = $("registry-empty");
        empty.innerHTML = `<strong>No models registered yet</strong><span>Register one with <code>streamlearn models register NAME FILE</code>; the online model's automatic promotions are recorded here too.</span>`;
        empty.hidden = false;
        $("registry-detail-title").textContent = "Versions";
        $("registry-detail").innerHTML = `<div class="empty-row">Nothing to show yet.</div>`;
        return;
      }
      $("registry-empty").hidden = true;
      if (!this.selected || !models.some((m) => m.name === this.selected)) this.selected = models[0].name;
      body.innerHTML = models
        .map(
          (m) => `<tr data-name="${esc(m.name)}" class="${m.name === this.selected ? "selected" : ""}">
            <td><strong>${esc(m.name)}</strong></td><td class="num">${fmtInt(m.versions)}</td>
            <td>${m.production != null ? badge("production", `v${m.production}`) : '<span class="muted">–</span>'}</td>
            <td>${(m.staging || []).length ? m.staging.map((v) => badge("staging", `v${v}`)).join(" ") : '<span class="muted">–</span>'}</td>
            <td>${fmtIso(m.updated_at)}</td></tr>`
        )
        .join("");
      for (const tr of body.querySelectorAll("tr")) {
        tr.addEventListener("click", () => {
          this.selected = tr.dataset.name;
          this.refresh();
        });
      }
      $("registry-detail-title").textContent = `Versions of ${this.selected}`;
      try {
        const entry = await api(`/api/v1/registry/models/${enc(this.selected)}`);
        renderVersions($("registry-detail"), entry, () => this.refresh());
      } catch (err) {
        $("registry-detail").innerHTML = `<div class="empty-row">Not available: ${esc(describeError(err))}</div>`;
      }
    },
  };

  // --- shell: routing, refresh loop, live indicator ----------------------------------------------
  const VIEWS = { overview: Overview, keys: Keys, models: Models, alerts: Alerts, registry: Registry };
  let currentView = null;
  let timer = null;
  let running = false;

  function parseHash() {
    const raw = location.hash.replace(/^#/, "");
    const [name, query] = raw.split("?");
    return { name: VIEWS[name] ? name : "overview", params: new URLSearchParams(query || "") };
  }

  function route() {
    const { name, params } = parseHash();
    if (name === "keys") Keys.fromHash(params);
    const changed = name !== currentView;
    currentView = name;
    for (const section of document.querySelectorAll("section.view")) section.hidden = section.dataset.view !== name;
    for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === name);
    if (name === "alerts") updateBadge(0);
    if (changed) resizeCharts($(`view-${name}`));
    schedule(0);
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(tick, delay);
  }

  async function tick() {
    if (running) return schedule(500);
    const view = VIEWS[currentView];
    if (document.hidden) return schedule(view.interval);
    running = true;
    try {
      const health = api("/api/v1/health").then(
        () => setLive(true),
        (err) => setLive(false, err)
      );
      await view.refresh();
      if (currentView !== "alerts") await Alerts.poll();
      await health;
    } catch (err) {
      // A view that failed in an unexpected way: say so in the status, keep going.
      setLive(false, err);
      if (window.console) console.error(err);
    } finally {
      running = false;
      schedule(view.interval);
    }
  }

  function setLive(ok, err) {
    const el = $("live-status");
    el.classList.toggle("ok", ok);
    el.classList.toggle("down", !ok);
    const now = new Date();
    $("live-text").textContent = ok ? `live · ${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())} UTC` : `worker unreachable (${describeError(err)})`;
  }

  function init() {
    $("brand-app").textContent = CONFIG.app_id;
    $("footer-version").textContent = `streamlearn ${CONFIG.version}`;
    const links = CONFIG.links || {};
    if (links.stats) $("link-stats").href = links.stats;
    if (links.assignment) $("link-assignment").href = links.assignment;
    if (links.metrics) $("link-metrics").href = links.metrics;
    initToken();
    initActions();
    for (const view of Object.values(VIEWS)) view.init();
    window.addEventListener("hashchange", route);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) schedule(0);
    });
    route();
  }

  // For tests and the curious: the views' state, read-only by convention.
  window.streamlearnDashboard = { config: CONFIG, views: VIEWS, refresh: () => schedule(0) };
  init();
})();
