// herald store page: one EventSource; a heatmap of the grid on a canvas, occupancy with Chart.js.
(function () {
  "use strict";
  if (document.body.dataset.page !== "retail") return;
  const runId = document.body.dataset.runId;
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  const minutes = (s) => (s === null || s === undefined ? "–" : `${(s / 60).toFixed(1)} min`);
  // What the page drew last, for whoever looks (the browser test reads it).
  const state = (window.heraldRetail = { events: 0, last: null, finished: false, heat: {}, max: 0, cell: 0, chart: null });

  // Cells from white (no event) through yellow to dark red (the busiest cell).
  const LOW = [255, 236, 179];
  const HIGH = [183, 28, 28];
  function rgb(n) {
    if (!n || !state.max) return [255, 255, 255];
    const t = Math.sqrt(n / state.max);
    return LOW.map((lo, i) => Math.round(lo + (HIGH[i] - lo) * t));
  }
  state.rgb = rgb;

  function drawHeatmap(store, figures) {
    const canvas = $("heatmap");
    const w = store.width;
    const h = store.height;
    const cell = Math.max(8, Math.min(48, Math.floor(520 / Math.max(w, h))));
    state.cell = cell;
    if (canvas.width !== w * cell || canvas.height !== h * cell) {
      canvas.width = w * cell;
      canvas.height = h * cell;
    }
    const heat = {};
    let max = 0;
    for (const [x, y, n] of figures.cells) {
      heat[`${x},${y}`] = n;
      if (n > max) max = n;
    }
    state.heat = heat;
    state.max = max;
    const ctx = canvas.getContext("2d");
    // Row 0 is the front wall, at the bottom.
    const top = (y) => (h - 1 - y) * cell;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const [r, g, b] = rgb(heat[`${x},${y}`] || 0);
        ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
        ctx.fillRect(x * cell, top(y), cell, cell);
      }
    }
    ctx.strokeStyle = "#e0e0e0";
    ctx.lineWidth = 1;
    for (let x = 0; x <= w; x++) { ctx.beginPath(); ctx.moveTo(x * cell + 0.5, 0); ctx.lineTo(x * cell + 0.5, h * cell); ctx.stroke(); }
    for (let y = 0; y <= h; y++) { ctx.beginPath(); ctx.moveTo(0, y * cell + 0.5); ctx.lineTo(w * cell, y * cell + 0.5); ctx.stroke(); }
    const [ex, ey] = store.entrance;
    ctx.strokeStyle = "#1565c0";
    ctx.lineWidth = 2;
    ctx.strokeRect(ex * cell + 1, top(ey) + 1, cell - 2, cell - 2);
    ctx.fillStyle = "#1565c0";
    ctx.font = `${Math.floor(cell / 2.5)}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText("E", ex * cell + cell / 2, top(ey) + cell / 2);
    // Customers inside: dots, side by side in a cell.
    const here = {};
    for (const [, x, y] of figures.customers) {
      const key = `${x},${y}`;
      const k = (here[key] = (here[key] || 0) + 1) - 1;
      const dx = ((k % 3) + 1) * (cell / 4);
      const dy = (Math.floor(k / 3) % 3 + 1) * (cell / 4);
      ctx.beginPath();
      ctx.arc(x * cell + dx, top(y) + dy, Math.max(2, cell / 10), 0, 2 * Math.PI);
      ctx.fillStyle = "#0d47a1";
      ctx.fill();
    }
  }

  function makeChart() {
    Chart.defaults.animation = false;
    state.chart = new Chart($("chart-occupancy"), {
      type: "line",
      data: { datasets: [
        { label: "inside", data: [], borderColor: "#2e7d32", backgroundColor: "#2e7d3233", fill: true, pointRadius: 0, stepped: true },
        { label: "configured average", data: [], borderColor: "#ef6c00", borderDash: [6, 4], pointRadius: 0 },
      ] },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        scales: {
          x: { type: "linear", title: { display: true, text: "simulated minutes since the start" } },
          y: { beginAtZero: true, title: { display: true, text: "customers" } },
        },
      },
    });
  }

  function drawOccupancy(store, figures) {
    const sets = state.chart.data.datasets;
    const t0 = store.starts;
    sets[0].data = figures.occupancy.map((p) => ({ x: (p.t + 60 - t0) / 60, y: p.inside }));
    sets[0].data.unshift({ x: 0, y: 0 });
    const end = (store.closes - t0) / 60;
    sets[1].data = [{ x: 0, y: store.average }, { x: end, y: store.average }];
    state.chart.update("none");
  }

  function render(data) {
    const f = data.figures;
    const status = $("run-status");
    status.className = `badge ${data.status}`;
    status.textContent = data.status;
    $("count-inside").textContent = fmt(f.inside);
    $("count-entered").textContent = fmt(f.entered);
    $("count-left").textContent = fmt(f.left);
    $("count-events").textContent = fmt(f.events);
    $("count-dwell").textContent = `${minutes(f.dwell_p50_secs)} / ${minutes(f.dwell_p95_secs)}`;
    $("count-backlog").textContent = fmt(f.backlog);
    $("count-clock").textContent = f.latest_ts === null ? "–" : new Date(f.latest_ts * 1000).toISOString().slice(11, 19);
    const s = data.store;
    $("store-text").textContent = `${s.width} × ${s.height} cells, ${fmt(f.events)} events; ` +
      `${f.moves_per_visit === null ? "–" : f.moves_per_visit.toFixed(1)} moves and ` +
      `${f.path_per_visit === null ? "–" : f.path_per_visit.toFixed(1)} cells walked a visit`;
    drawHeatmap(s, f);
    drawOccupancy(s, f);
  }

  function onEvent(ev) {
    const data = JSON.parse(ev.data);
    state.events += 1;
    state.last = data;
    render(data);
  }

  makeChart();
  const es = new EventSource(`/retail/runs/${encodeURIComponent(runId)}/events`);
  es.addEventListener("progress", onEvent);
  es.addEventListener("end", (ev) => {
    es.close();
    state.finished = true;
    onEvent(ev);
  });
  es.onerror = () => { if (!state.finished) $("store-text").textContent = "reconnecting…"; };
})();
