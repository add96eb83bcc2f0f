// herald dashboard: one EventSource per page; the server pushes a snapshot when it changes.
(function () {
  "use strict";
  // What the page shows, from its <body data-page data-run-id> (no inline script: the
  // Content-Security-Policy allows scripts from the app only).
  const page = { kind: document.body.dataset.page, runId: document.body.dataset.runId };
  const state = (window.herald = { charts: {}, events: 0, last: null, finished: false });
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  const ms = (n) => (n === null || n === undefined ? "–" : Number(n).toFixed(1));

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  // -- the start-a-run form (every page) -------------------------------------------------
  const form = $("start-run");
  // Shown when the server has web.api_token: kept for this tab only (sessionStorage), so it
  // is typed once per tab and forgotten when the tab closes.
  const token = $("start-token");
  const TOKEN_KEY = "herald.api_token";
  if (token) token.value = sessionStorage.getItem(TOKEN_KEY) || "";
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { messages: Number($("start-messages").value) };
      if ($("start-rate").value) body.rate = Number($("start-rate").value);
      if ($("start-seed").value) body.seed = Number($("start-seed").value);
      $("start-error").textContent = "";
      $("start-submit").disabled = true;
      try {
        const headers = { "Content-Type": "application/json" };
        if (token) {
          sessionStorage.setItem(TOKEN_KEY, token.value);
          headers.Authorization = `Bearer ${token.value}`;
        }
        const res = await fetch("/api/runs", { method: "POST", headers, body: JSON.stringify(body) });
        const data = await res.json();
        if (res.status === 202) {
          window.location.assign(data.dashboard_url);
          return;
        }
        $("start-error").textContent = data.detail
          ? data.detail.map((d) => `${d.field}: ${d.reason}`).join("; ")
          : data.error || `HTTP ${res.status}`;
      } catch (err) {
        $("start-error").textContent = String(err);
      }
      $("start-submit").disabled = false;
    });
  }

  function badge(status) {
    const span = document.createElement("span");
    span.className = `badge ${status}`;
    span.textContent = status;
    return span;
  }

  // -- runs list -----------------------------------------------------------------------------
  function renderRuns(data) {
    const body = $("runs").querySelector("tbody");
    body.replaceChildren();
    for (const r of data.items) {
      const tr = document.createElement("tr");
      const a = document.createElement("a");
      a.href = `/runs/${r.run_id}`;
      a.textContent = r.run_id;
      cell(tr, "").appendChild(a);
      cell(tr, "").appendChild(badge(r.status));
      const bar = document.createElement("div");
      bar.className = "progress small";
      const fill = document.createElement("div");
      fill.style.width = `${r.percent || 0}%`;
      bar.appendChild(fill);
      const td = cell(tr, "");
      td.appendChild(bar);
      td.append(r.percent === null ? "" : ` ${r.percent.toFixed(1)}%`);
      cell(tr, fmt(r.sent), "num");
      cell(tr, fmt(r.failed), "num");
      cell(tr, fmt(r.expected), "num");
      cell(tr, r.requested_at ? new Date(r.requested_at).toLocaleString() : "–");
      body.appendChild(tr);
    }
    $("runs-status").textContent = `${fmt(data.total)} run(s); live`;
  }

  // -- one run ---------------------------------------------------------------------------------
  function makeCharts() {
    Chart.defaults.animation = false; // live data: draw at once, no easing between updates
    const common = {
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      scales: { x: { type: "linear", title: { display: true, text: "seconds since start" } } },
    };
    state.charts.throughput = new Chart($("chart-throughput"), {
      type: "line",
      data: { datasets: [
        { label: "sent/s", data: [], borderColor: "#2e7d32", backgroundColor: "#2e7d3233", fill: true, pointRadius: 0 },
        { label: "failed/s", data: [], borderColor: "#c62828", backgroundColor: "#c6282833", fill: true, pointRadius: 0 },
      ] },
      options: { ...common, scales: { ...common.scales, y: { beginAtZero: true } } },
    });
    state.charts.latency = new Chart($("chart-latency"), {
      type: "line",
      data: { datasets: [
        { label: "p50", data: [], borderColor: "#1565c0", pointRadius: 0 },
        { label: "p95", data: [], borderColor: "#ef6c00", pointRadius: 0 },
        { label: "p99", data: [], borderColor: "#6a1b9a", pointRadius: 0 },
      ] },
      options: { ...common, scales: { ...common.scales, y: { beginAtZero: true, title: { display: true, text: "ms" } } } },
    });
    state.buckets = new Map();
  }

  function renderSeries(series) {
    for (const b of series) state.buckets.set(b.t, b); // later snapshots overwrite a second
    const all = [...state.buckets.values()].sort((a, b) => a.t - b.t);
    if (!all.length) return;
    const t0 = all[0].t;
    const th = state.charts.throughput.data.datasets;
    th[0].data = all.map((b) => ({ x: b.t - t0, y: b.n - b.failed }));
    th[1].data = all.map((b) => ({ x: b.t - t0, y: b.failed }));
    const lat = state.charts.latency.data.datasets;
    lat[0].data = all.map((b) => ({ x: b.t - t0, y: b.p50 }));
    lat[1].data = all.map((b) => ({ x: b.t - t0, y: b.p95 }));
    lat[2].data = all.map((b) => ({ x: b.t - t0, y: b.p99 }));
    state.charts.throughput.update("none");
    state.charts.latency.update("none");
  }

  function renderRun(run) {
    const status = $("run-status");
    status.className = `badge ${run.status}`;
    status.textContent = run.status;
    status.title = run.state_reason || "";
    $("progress-bar").style.width = `${run.percent || 0}%`;
    $("progress-text").textContent = run.percent === null
      ? `${fmt(run.done)} outcomes recorded`
      : `${fmt(run.done)} of ${fmt(run.expected)} (${run.percent.toFixed(1)}%)`;
    $("count-total").textContent = fmt(run.expected);
    $("count-sent").textContent = fmt(run.sent);
    $("count-failed").textContent = fmt(run.failed);
    $("count-remaining").textContent = fmt(run.remaining);
    $("count-throughput").textContent = run.throughput === null ? "–" : `${fmt(Math.round(run.throughput))}/s`;
    const l = run.latency;
    $("count-latency").textContent = `${ms(l.avg_ms)} / ${ms(l.p50_ms)} / ${ms(l.p95_ms)} / ${ms(l.p99_ms)} ms`;
    const body = $("senders").querySelector("tbody");
    body.replaceChildren();
    for (const s of run.senders) {
      const tr = document.createElement("tr");
      cell(tr, String(s.sender_id));
      cell(tr, fmt(s.sent), "num");
      cell(tr, fmt(s.failed), "num");
      cell(tr, s.failure_percent.toFixed(2), "num");
      cell(tr, ms(s.avg_latency_ms), "num");
      cell(tr, ms(s.p95_latency_ms), "num");
      body.appendChild(tr);
    }
  }

  function renderLag(lag) {
    if (!lag) return;
    $("lag-group").textContent = `${lag.group} on ${lag.topic}`;
    const body = $("lag").querySelector("tbody");
    body.replaceChildren();
    for (const p of lag.partitions) {
      const tr = document.createElement("tr");
      cell(tr, String(p.partition));
      cell(tr, fmt(p.committed), "num");
      cell(tr, fmt(p.end), "num");
      cell(tr, fmt(p.lag), "num");
      body.appendChild(tr);
    }
    $("lag-total").textContent = fmt(lag.total);
    $("lag-note").textContent = lag.note;
  }

  function onRunEvent(ev) {
    const data = JSON.parse(ev.data);
    state.events += 1;
    state.last = data;
    renderRun(data.run);
    renderSeries(data.series);
    renderLag(data.lag);
  }

  // -- timers ----------------------------------------------------------------------------------
  function renderTimers(data) {
    const states = data.by_state;
    $("timers-pending").textContent = fmt(data.pending);
    $("timers-due-soon").textContent = fmt(data.due_soon);
    $("timers-overdue").textContent = fmt(data.overdue);
    $("timers-firing").textContent = fmt(states.firing || 0);
    $("timers-delivered").textContent = fmt(states.delivered || 0);
    $("timers-failed").textContent = fmt(states.failed || 0);
    $("timers-ended").textContent = `${fmt(states.cancelled || 0)} / ${fmt(states.expired || 0)}`;
    const l = data.lateness;
    $("timers-lateness").textContent = l.count ? `${ms(l.mean_ms)} ms over ${fmt(l.count)}` : "–";
    if (!state.charts.lateness) {
      Chart.defaults.animation = false;
      const labels = l.bounds_ms.map((b) => `≤ ${b} ms`).concat([`> ${l.bounds_ms[l.bounds_ms.length - 1]} ms`]);
      state.charts.lateness = new Chart($("chart-lateness"), {
        type: "bar",
        data: { labels, datasets: [{ label: "timers", data: [], backgroundColor: "#1565c0" }] },
        options: { responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
      });
    }
    state.charts.lateness.data.datasets[0].data = l.counts;
    state.charts.lateness.update("none");
    const recent = $("timers-recent").querySelector("tbody");
    recent.replaceChildren();
    for (const a of data.recent) {
      const tr = document.createElement("tr");
      cell(tr, a.timer_id);
      cell(tr, String(a.number), "num");
      cell(tr, a.host);
      cell(tr, new Date(a.started_at).toLocaleString());
      cell(tr, ms(a.lateness_ms), "num");
      cell(tr, a.status === null ? "–" : String(a.status), "num");
      cell(tr, "").appendChild(badge(a.outcome));
      recent.appendChild(tr);
    }
    const failures = $("timers-failures").querySelector("tbody");
    failures.replaceChildren();
    for (const f of data.failures) {
      const tr = document.createElement("tr");
      cell(tr, f.timer_id);
      cell(tr, f.host);
      cell(tr, f.finished_at ? new Date(f.finished_at).toLocaleString() : "–");
      cell(tr, fmt(f.attempts), "num");
      cell(tr, f.reason || "–");
      failures.appendChild(tr);
    }
    $("timers-status").textContent = "live";
  }

  if (page.kind === "timers") {
    const es = new EventSource("/events/timers");
    es.addEventListener("timers", (ev) => { state.events += 1; state.last = JSON.parse(ev.data); renderTimers(state.last); });
    es.onerror = () => { $("timers-status").textContent = "reconnecting…"; };
  } else if (page.kind === "runs") {
    const es = new EventSource("/events/runs");
    es.addEventListener("runs", (ev) => { state.events += 1; renderRuns(JSON.parse(ev.data)); });
    es.onerror = () => { $("runs-status").textContent = "reconnecting…"; };
  } else if (page.kind === "run") {
    makeCharts();
    const es = new EventSource(`/runs/${encodeURIComponent(page.runId)}/events`);
    es.addEventListener("progress", onRunEvent);
    es.addEventListener("end", (ev) => {
      es.close(); // the run is finished: nothing more will change
      state.finished = true;
      onRunEvent(ev);
    });
    es.onerror = () => { if (!state.finished) $("progress-text").textContent = "reconnecting…"; };
  }
})();
