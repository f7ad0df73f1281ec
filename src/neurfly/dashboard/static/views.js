// The dashboard's pages. Each view has optional controls, drawn once per visit, and a
// load() that fetches its data and returns the content, redrawn on every refresh.

import { api } from "./api.js";
import { bars, lineChart, stackedArea, timeline } from "./charts.js";
import {
  PALETTE, badge, colourFor, finite, formatDuration, formatParams, formatTime, formatValue, h, stat, table,
} from "./dom.js";

const TRIAL_COLOURS = {
  completed: "#2f6fde", running: "#23834a", starting: "#23834a", preempting: "#c77a0a", pending: "#9ca3af",
  paused: "#e0a526", pruned: "#9ca3af", failed: "#c2362f", stopped: "#6b7280",
};
const ATTEMPT_COLOURS = {
  completed: "#2f6fde", running: "#23834a", starting: "#23834a", preempted: "#e07b39", paused: "#e0a526",
  pruned: "#9ca3af", failed: "#c2362f", killed: "#7f1d1d", lost: "#8e5cc2",
};

function go(hash) {
  window.location.hash = hash;
}

function legend(entries) {
  return h("div", { class: "legend" }, entries.map(([label, colour]) =>
    h("span", {}, h("span", { class: "swatch", style: { background: colour } }), label)));
}

function selectControl(label, options, value, onChange, testId) {
  const select = h("select", { "data-testid": testId, onchange: (event) => onChange(event.target.value) },
    options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === value }, text)));
  return h("label", {}, `${label} `, select);
}

// -- searches -----------------------------------------------------------------------------------

export const searchesView = {
  title: "Searches",
  controls(params, me) {
    const teams = [["", "all teams"], ...me.teams.map((t) => [t.team, t.team])];
    const states = [["", "any state"], ...["running", "completed", "failed", "cancelled"].map((v) => [v, v])];
    const update = (key) => (value) => {
      const query = new URLSearchParams(params);
      if (value) query.set(key, value); else query.delete(key);
      go(`#/searches?${query}`);
    };
    return h("div", { class: "row" },
      selectControl("Team", teams, params.team || "", update("team"), "team-filter"),
      selectControl("State", states, params.state || "", update("state"), "state-filter"));
  },
  async load(params) {
    const query = new URLSearchParams({ limit: "1000" });
    if (params.team) query.set("team", params.team);
    if (params.state) query.set("state", params.state);
    const page = await api(`/searches?${query}`);
    const rows = [...page.items].reverse();
    if (!rows.length) return h("div", { class: "panel muted" }, "No searches yet. Submit one with 'neurfly run SPEC --server URL'.");
    const columns = [
      { label: "id", numeric: true, cell: (r) => r.id },
      { label: "search", cell: (r) => h("a", { href: `#/searches/${r.id}` }, `${r.team}/${r.name}`) },
      { label: "state", cell: (r) => badge(r.cancel_requested && r.state === "running" ? "cancelling" : r.state) },
      { label: "strategy", cell: (r) => r.strategy },
      { label: "progress", cell: (r) => progress(r) },
      { label: "running", numeric: true, cell: (r) => (r.trials.running || 0) + (r.trials.starting || 0) },
      { label: "best", numeric: true, cell: (r) => (r.best ? `${formatValue(r.best.value)} (#${r.best.number})` : "–") },
      { label: "objective", cell: (r) => `${r.objective.metric} (${r.objective.direction})` },
      { label: "created", cell: (r) => formatTime(r.created_at) },
    ];
    return h("div", { class: "panel" }, table(columns, rows, { "data-testid": "searches-table" }),
      h("p", { class: "muted" }, `${page.total} searches`));
  },
};

function progress(search) {
  const done = (search.trials.completed || 0) + (search.trials.pruned || 0) + (search.trials.failed || 0) + (search.trials.stopped || 0);
  const share = Math.min(1, done / Math.max(1, search.max_trials));
  return h("span", {}, h("span", { class: "progress" }, h("span", { style: { width: `${(share * 100).toFixed(0)}%` } })), `${done}/${search.max_trials}`);
}

// -- one search ---------------------------------------------------------------------------------

const eventLogs = new Map();

export const searchView = {
  title: "Search",
  async load(params, me) {
    const id = params.id;
    const [search, curves, board, trials, attempts] = await Promise.all([
      api(`/searches/${id}`),
      api(`/searches/${id}/curves`),
      api(`/searches/${id}/leaderboard?limit=10`),
      api(`/searches/${id}/trials?limit=10000`),
      api(`/searches/${id}/attempts`),
    ]);
    const events = await newEvents(id);
    const best = board.find((row) => row.state === "completed");
    return h("div", {},
      header(search, me),
      h("div", { class: "grid" },
        h("div", { class: "panel" }, h("h2", {}, `Learning curves: ${curves.metric}`), curvesChart(curves, best)),
        h("div", { class: "panel" }, h("h2", {}, "Leaderboard"), leaderboardTable(board, search))),
      h("div", { class: "panel" }, h("h2", {}, "Attempts over time"), attemptsTimeline(attempts, (a) => `#${a.trial_number}`, `#/searches/${id}/trials/`)),
      h("div", { class: "panel" }, h("h2", {}, `Trials (${trials.total})`), trialsTable(trials.items, search, best, lastValues(curves))),
      h("div", { class: "panel" }, h("h2", {}, "Events"), eventsTable(events)));
  },
};

async function newEvents(searchId) {
  const log = eventLogs.get(searchId) || { last: 0, rows: [] };
  const fresh = await api(`/searches/${searchId}/events?after=${log.last}&limit=1000`);
  log.rows = [...log.rows, ...fresh].slice(-200);
  log.last = log.rows.length ? log.rows[log.rows.length - 1].id : log.last;
  eventLogs.set(searchId, log);
  return log.rows;
}

function header(search, me) {
  const role = me.platform_admin ? "admin" : (me.teams.find((t) => t.team === search.team) || {}).role;
  const canCancel = search.state === "running" && !search.cancel_requested && (role === "member" || role === "admin");
  const cancel = h("button", {
    class: "danger", type: "button", disabled: !canCancel, "data-testid": "cancel-search",
    onclick: async (event) => {
      if (!window.confirm(`Cancel search ${search.team}/${search.name}? Its running trials are stopped.`)) return;
      event.target.disabled = true;
      try {
        await api(`/searches/${search.id}/cancel`, { method: "POST" });
      } catch (error) {
        window.alert(error.message);
      }
      window.dispatchEvent(new Event("neurfly:refresh"));
    },
  }, search.cancel_requested && search.state === "running" ? "Cancelling…" : "Cancel search");
  const done = Object.entries(search.trials).map(([state, count]) => `${count} ${state}`).join(", ") || "no trials yet";
  return h("div", { class: "panel" },
    h("div", { class: "row" },
      h("h1", { "data-testid": "search-title" }, `${search.team}/${search.name}`), badge(search.state), h("span", { class: "spacer" }), cancel),
    h("div", { class: "stats" },
      stat("objective", `${search.objective.metric} (${search.objective.direction})`),
      stat("strategy", search.strategy),
      stat("trials", `${done} of ${search.max_trials}`),
      stat("best", search.best ? `${formatValue(search.best.value)} (#${search.best.number})` : "–"),
      stat("priority", search.priority),
      stat("running for", formatDuration((search.finished_at || Date.now() / 1000) - search.created_at))),
    search.message ? h("p", { class: "muted" }, search.message) : null);
}

function curvesChart(curves, best) {
  const series = curves.trials.map((trial) => ({
    name: String(trial.number),
    colour: best && trial.number === best.number ? "#111827" : (TRIAL_COLOURS[trial.state] || PALETTE[0]),
    className: best && trial.number === best.number ? "best" : "",
    title: `trial ${trial.number} (${trial.state}): ${formatValue(trial.value)}`,
    points: trial.points.map(([step, value]) => [step, finite(value) ? value : NaN]),
  }));
  const states = [...new Set(curves.trials.map((t) => t.state))];
  return h("div", { "data-testid": "curves" },
    lineChart(series, { xLabel: "step", yLabel: curves.metric, width: 600, className: "curves" }),
    legend([...states.map((state) => [state, TRIAL_COLOURS[state] || PALETTE[0]]), ...(best ? [[`best (#${best.number})`, "#111827"]] : [])]));
}

function leaderboardTable(board, search) {
  if (!board.length) return h("p", { class: "muted" }, "No trial has finished yet.");
  const columns = [
    { label: "rank", numeric: true, cell: (r) => r.__rank },
    { label: "trial", numeric: true, cell: (r) => h("a", { href: `#/searches/${search.id}/trials/${r.number}` }, `#${r.number}`) },
    { label: search.objective.metric, numeric: true, cell: (r) => formatValue(r.value) },
    { label: "state", cell: (r) => badge(r.state) },
    { label: "params", cell: (r) => h("span", { class: "params" }, formatParams(r.params)) },
  ];
  return table(columns, board.map((row, index) => ({ ...row, __rank: index + 1 })), { "data-testid": "leaderboard" });
}

// The last reported objective of each trial, shown while a trial runs and has no final value yet.
function lastValues(curves) {
  return new Map(curves.trials.filter((t) => t.points.length).map((t) => [t.number, t.points[t.points.length - 1][1]]));
}

function trialsTable(trials, search, best, latest) {
  if (!trials.length) return h("p", { class: "muted" }, "No trials yet.");
  const columns = [
    { label: "trial", numeric: true, cell: (r) => h("a", { href: `#/searches/${search.id}/trials/${r.number}` }, `#${r.number}`) },
    { label: "state", cell: (r) => badge(r.state) },
    { label: search.objective.metric, numeric: true, cell: (r) => (r.value === null && latest.has(r.number) ? h("span", { class: "muted", title: "last reported" }, formatValue(latest.get(r.number))) : formatValue(r.value)) },
    { label: "step", numeric: true, cell: (r) => r.step },
    { label: "attempts", numeric: true, cell: (r) => r.attempts },
    { label: "params", cell: (r) => h("span", { class: "params" }, formatParams(r.params)) },
    { label: "message", cell: (r) => h("span", { class: "muted" }, r.message || "") },
  ];
  const rows = trials.map((row) => ({ ...row, __attributes: { class: best && row.number === best.number ? "best" : null, "data-state": row.state } }));
  return table(columns, rows, { "data-testid": "trials-table" });
}

function attemptsTimeline(attempts, label, linkPrefix) {
  if (!attempts.length) return h("p", { class: "muted" }, "No attempt has started yet.");
  const now = Date.now() / 1000;
  const start = Math.min(...attempts.map((a) => a.started_at));
  const end = Math.max(...attempts.map((a) => a.ended_at || now), start + 1);
  const byRow = new Map();
  for (const attempt of attempts) {
    const key = label(attempt);
    if (!byRow.has(key)) byRow.set(key, []);
    byRow.get(key).push({
      start: attempt.started_at,
      end: attempt.ended_at || now,
      state: attempt.state,
      colour: ATTEMPT_COLOURS[attempt.state] || PALETTE[0],
      marker: attempt.state === "preempted" ? "preempted" : null,
      title: `trial ${attempt.trial_number}, attempt ${attempt.number}: ${attempt.state} on ${attempt.node} slots ${attempt.slots.join(",")}, ` +
        `steps ${attempt.start_step}→${attempt.end_step ?? "?"}${attempt.progress_lost ? `, ${attempt.progress_lost} steps lost` : ""}` +
        `${attempt.reason ? ` (${attempt.reason})` : ""}`,
    });
  }
  const rows = [...byRow.entries()].map(([rowLabel, rowBars]) => ({ label: rowLabel, bars: rowBars }));
  const states = [...new Set(attempts.map((a) => a.state))];
  const preempted = attempts.filter((a) => a.state === "preempted").length;
  return h("div", { "data-testid": "timeline" },
    timeline(rows, { start, end, width: 1100, className: "timeline" }),
    legend([...states.map((state) => [state, ATTEMPT_COLOURS[state] || PALETTE[0]]), ...(preempted ? [[`▼ preemption (${preempted})`, "#c2362f"]] : [])]));
}

function eventsTable(events) {
  if (!events.length) return h("p", { class: "muted" }, "No events.");
  const columns = [
    { label: "time", cell: (e) => formatTime(e.at) },
    { label: "event", cell: (e) => e.kind },
    { label: "trial", cell: (e) => e.trial_id ?? "" },
    { label: "message", cell: (e) => e.message },
  ];
  return h("div", { class: "events" }, table(columns, [...events].reverse(), { "data-testid": "events" }));
}

// -- one trial ----------------------------------------------------------------------------------

export const trialView = {
  title: "Trial",
  async load(params) {
    const [search, trial] = await Promise.all([
      api(`/searches/${params.id}`),
      api(`/searches/${params.id}/trials/${params.number}`),
    ]);
    const lost = trial.attempts.reduce((sum, a) => sum + (a.progress_lost || 0), 0);
    const preemptions = trial.attempts.filter((a) => a.state === "preempted").length;
    const metrics = Object.keys(trial.curves).sort((a, b) => Number(b === search.objective.metric) - Number(a === search.objective.metric));
    return h("div", {},
      h("div", { class: "panel" },
        h("div", { class: "row" },
          h("a", { href: `#/searches/${search.id}` }, `${search.team}/${search.name}`),
          h("h1", { "data-testid": "trial-title" }, `Trial #${trial.number}`), badge(trial.state)),
        h("div", { class: "stats" },
          stat(search.objective.metric, formatValue(trial.value)),
          stat("step", trial.step),
          stat("attempts", trial.attempts.length),
          stat("preemptions", preemptions),
          stat("steps lost", lost)),
        h("p", { class: "params" }, formatParams(trial.params)),
        trial.message ? h("p", { class: "muted" }, trial.message) : null),
      h("div", { class: "panel" }, h("h2", {}, "Attempts"),
        attemptsTimeline(trial.attempts.map((a) => ({ ...a, trial_number: trial.number })), (a) => `attempt ${a.number}`),
        attemptsTable(trial.attempts)),
      h("div", { class: "grid" }, metrics.map((metric) =>
        h("div", { class: "panel" }, h("h2", {}, metric),
          lineChart([{ name: metric, colour: PALETTE[0], points: trial.curves[metric].map(([step, value]) => [step, finite(value) ? value : NaN]) }],
            { xLabel: "step", yLabel: metric, width: 600, height: 240, className: "trial-curve" })))),
      trial.attempts.filter((a) => a.traceback).map((a) =>
        h("div", { class: "panel" }, h("h2", {}, `Traceback of attempt ${a.number}`), h("pre", { class: "traceback" }, a.traceback))));
  },
};

function attemptsTable(attempts) {
  const columns = [
    { label: "#", numeric: true, cell: (a) => a.number },
    { label: "state", cell: (a) => badge(a.state) },
    { label: "placement", cell: (a) => `${a.pool} / ${a.node} [${a.slots.join(",")}]` },
    { label: "steps", cell: (a) => `${a.start_step}→${a.end_step ?? "?"}` },
    { label: "lost", numeric: true, cell: (a) => a.progress_lost },
    { label: "started", cell: (a) => formatTime(a.started_at) },
    { label: "duration", cell: (a) => formatDuration((a.ended_at || Date.now() / 1000) - a.started_at) },
    { label: "reason", cell: (a) => a.reason || "" },
  ];
  return table(columns, attempts, { "data-testid": "attempts-table" });
}

// -- cluster ------------------------------------------------------------------------------------

const WINDOWS = [["900", "15 min"], ["3600", "1 h"], ["21600", "6 h"], ["86400", "24 h"], ["604800", "7 days"]];

export const clusterView = {
  title: "Cluster",
  controls(params) {
    const update = (key) => (value) => {
      const query = new URLSearchParams(params);
      query.set(key, value);
      go(`#/cluster?${query}`);
    };
    return h("div", { class: "row" },
      selectControl("Window", WINDOWS, params.window || "900", update("window"), "window"),
      selectControl("Group by", [["team", "team"], ["pool", "pool"]], params.by || "team", update("by"), "group-by"));
  },
  async load(params) {
    const window = params.window || "900";
    const by = params.by || "team";
    const [state, usage] = await Promise.all([
      api(`/cluster?window_s=${window}`),
      api(`/cluster/utilisation?window_s=${window}&buckets=90`),
    ]);
    const teams = [...new Set([...usage.series.map((s) => s.team), ...state.usage.map((u) => u.team)])].map((t) => t ?? "other teams");
    return h("div", {},
      h("div", { class: "panel" },
        h("div", { class: "row" }, h("h1", {}, "Cluster"),
          badge(state.controller.running ? "running" : "stopped"),
          h("span", { class: "muted" }, state.controller.running ? `controller ${state.controller.holder || "running"}` : "no controller holds the lease")),
        h("div", { class: "stats" },
          stat("devices", state.pools.reduce((sum, p) => sum + p.devices, 0)),
          stat("in use", state.pools.reduce((sum, p) => sum + p.devices_in_use, 0)),
          stat("running attempts (your teams)", state.running_attempts.length))),
      h("div", { class: "panel" }, h("h2", {}, `Devices in use by ${by}`), utilisationChart(usage, by, teams)),
      h("div", { class: "grid" },
        h("div", { class: "panel" }, h("h2", {}, "Pools and slots"), poolsPanel(state, teams)),
        h("div", { class: "panel" }, h("h2", {}, "Usage by team"), usageTable(state, teams))));
  },
};

function utilisationChart(usage, by, teams) {
  const groups = new Map();
  for (const serie of usage.series) {
    const key = by === "pool" ? serie.pool : (serie.team ?? "other teams");
    const values = groups.get(key) || usage.buckets.map(() => 0);
    serie.devices.forEach((value, index) => { values[index] += value; });
    groups.set(key, values);
  }
  const names = by === "pool" ? Object.keys(usage.capacity) : teams;
  const series = [...groups.entries()].map(([name, values]) => ({ name, values, colour: colourFor(name, names) }));
  const capacity = Object.values(usage.capacity).reduce((a, b) => a + b, 0);
  return h("div", { "data-testid": "utilisation" },
    stackedArea(usage.buckets, series, { capacity, width: 1100, className: "utilisation" }),
    legend([...series.map((s) => [s.name, s.colour]), ["capacity", "#111827"]]));
}

function poolsPanel(state, teams) {
  return state.pools.map((pool) => h("div", {},
    h("div", {}, h("strong", {}, pool.name), h("span", { class: "muted" },
      ` ${pool.region}, ${pool.hardware}, ${pool.price_per_device_hour}/device-hour: ${pool.devices_in_use} of ${pool.devices} in use`)),
    pool.nodes.map((node) => {
      const used = new Map(node.in_use.map((u) => [u.slot, u]));
      return h("div", { class: "node" }, h("div", { class: "name" }, node.name),
        h("div", { class: "slots" }, Array.from({ length: node.devices }, (_, slot) => {
          const use = used.get(slot);
          const team = use ? use.team ?? "other teams" : null;
          return h("div", {
            class: "slot", "data-testid": "slot", style: use ? { background: colourFor(team, teams) } : {},
            title: use ? `${team}${use.search_id ? `, search ${use.search_id}, attempt ${use.attempt_id}` : ""}` : `slot ${slot} free`,
          }, slot);
        })));
    })));
}

function usageTable(state, teams) {
  const columns = [
    { label: "team", cell: (u) => h("span", {}, h("span", { class: "swatch", style: { background: colourFor(u.team ?? "other teams", teams), display: "inline-block", width: "10px", height: "10px", marginRight: "6px" } }), u.team ?? "other teams") },
    { label: "in use now", numeric: true, cell: (u) => Object.values(u.devices_in_use).reduce((a, b) => a + b, 0) },
    { label: `device-hours (${formatDuration(state.window_s)})`, numeric: true, cell: (u) => formatValue(Object.values(u.device_seconds).reduce((a, b) => a + b, 0) / 3600) },
    { label: "by pool", cell: (u) => Object.entries(u.devices_in_use).map(([pool, n]) => `${pool}: ${n}`).join(", ") },
  ];
  if (!state.usage.length) return h("p", { class: "muted" }, "No device was used in this window.");
  return table(columns, state.usage, { "data-testid": "usage-table" });
}

// -- alerts -------------------------------------------------------------------------------------

export const alertsView = {
  title: "Alerts",
  controls(params) {
    const states = [["", "any state"], ["firing", "firing"], ["acknowledged", "acknowledged"], ["resolved", "resolved"]];
    return h("div", { class: "row" }, selectControl("State", states, params.state || "", (value) => go(value ? `#/alerts?state=${value}` : "#/alerts"), "alert-state"));
  },
  async load(params) {
    const alerts = await api(`/alerts${params.state ? `?state=${params.state}` : ""}`);
    if (!alerts.length) return h("div", { class: "panel muted" }, "No alerts.");
    const columns = [
      { label: "last seen", cell: (a) => formatTime(a.last_at) },
      { label: "severity", cell: (a) => badge(a.severity) },
      { label: "state", cell: (a) => badge(a.state) },
      { label: "category", cell: (a) => a.category },
      { label: "team", cell: (a) => a.team || "platform" },
      { label: "search", cell: (a) => (a.search_id ? h("a", { href: `#/searches/${a.search_id}` }, `#${a.search_id}`) : "") },
      { label: "message", cell: (a) => a.message },
      { label: "count", numeric: true, cell: (a) => a.count },
      { label: "", cell: (a) => alertActions(a) },
    ];
    return h("div", { class: "panel" }, h("h1", {}, "Alerts"), table(columns, alerts, { "data-testid": "alerts-table" }));
  },
};

function alertActions(alert) {
  const act = (action) => async (event) => {
    event.target.disabled = true;
    try {
      await api(`/alerts/${alert.id}/${action}`, { method: "POST" });
    } catch (error) {
      window.alert(error.message);
    }
    window.dispatchEvent(new Event("neurfly:refresh"));
  };
  if (alert.state === "resolved") return "";
  return h("span", {},
    alert.state === "firing" ? h("button", { type: "button", onclick: act("acknowledge"), "data-testid": "acknowledge" }, "Acknowledge") : null,
    " ",
    h("button", { type: "button", onclick: act("resolve"), "data-testid": "resolve" }, "Resolve"));
}

// -- costs ------------------------------------------------------------------------------------

export const costsView = {
  title: "Costs",
  controls(params, me) {
    if (me.platform_admin || me.teams.length <= 1) return null;
    const teams = me.teams.map((t) => [t.team, t.team]);
    return h("div", { class: "row" }, selectControl("Team", teams, params.team || teams[0][0], (value) => go(`#/costs?team=${value}`), "costs-team"));
  },
  async load(params, me) {
    const team = params.team || (!me.platform_admin && me.teams.length > 1 ? me.teams[0].team : "");
    const query = team ? `?team=${encodeURIComponent(team)}` : "";
    const [report, budgets] = await Promise.all([api(`/costs${query}`), api(`/budgets${query}`)]);
    const limits = new Map(budgets.filter((b) => b.scope.startsWith("team:")).map((b) => [b.team, Number(b.amount)]));
    const names = report.teams.map((t) => t.team);
    const items = report.teams.map((t) => ({ label: t.team, value: Number(t.total), limit: limits.get(t.team) || null, colour: colourFor(t.team, names) }));
    return h("div", {},
      h("div", { class: "panel" },
        h("h1", {}, "Costs against budgets"),
        h("p", { class: "muted" }, `${report.since.slice(0, 10)} to ${report.until.slice(0, 10)} (UTC); total ${report.total}` +
          (Number(report.platform_idle) ? `, idle devices paid by the platform ${report.platform_idle}` : "")),
        items.length ? h("div", { "data-testid": "costs-chart" }, bars(items, { width: 1100, className: "costs" }),
          legend([["spent this period", PALETTE[0]], ["budget", "#c2362f"]])) : h("p", { class: "muted" }, "No usage in this period."),
        report.warnings.map((warning) => h("p", { class: "error" }, warning))),
      h("div", { class: "panel" }, h("h2", {}, "Budgets"), budgetsTable(budgets)),
      h("div", { class: "panel" }, h("h2", {}, "Searches"), searchCostsTable(report.searches)));
  },
};

function budgetsTable(budgets) {
  if (!budgets.length) return h("p", { class: "muted" }, "No budgets. Platform admins set them with 'neurfly budget set' or PUT /api/v1/budgets/TEAM.");
  const columns = [
    { label: "scope", cell: (b) => b.scope },
    { label: "period", cell: (b) => (b.current_period ? `${b.current_period.start.slice(0, 10)} → ${b.current_period.end.slice(0, 10)}` : b.period) },
    { label: "amount", numeric: true, cell: (b) => b.amount },
    { label: "spent", numeric: true, cell: (b) => (b.spent ? `${b.spent} (${b.percent_spent}%)` : "–") },
    { label: "forecast", numeric: true, cell: (b) => (b.forecast ? `${b.forecast} (${b.percent_forecast}%)` : "–") },
    { label: "level", cell: (b) => badge(b.level || "inactive") },
  ];
  return table(columns, budgets, { "data-testid": "budgets-table" });
}

function searchCostsTable(searches) {
  if (!searches.length) return h("p", { class: "muted" }, "No search used devices in this period.");
  const columns = [
    { label: "search", cell: (r) => (r.search_id ? h("a", { href: `#/searches/${r.search_id}` }, `${r.team}/${r.search}`) : r.team) },
    { label: "device-hours", numeric: true, cell: (r) => r.device_hours },
    { label: "cost", numeric: true, cell: (r) => r.cost },
    { label: "lost to preemption and failures", numeric: true, cell: (r) => r.waste },
    { label: "attempts", numeric: true, cell: (r) => r.attempts },
  ];
  return table(columns, searches, { "data-testid": "search-costs" });
}
