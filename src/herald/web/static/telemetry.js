// herald telemetry page: one EventSource; counters, a row per ship, a chart per ship (SoC and voltage).
(function () {
  "use strict";
  if (document.body.dataset.page !== "telemetry") return;
  const runId = document.body.dataset.runId;
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  const fixed = (n, d) => (n === null || n === undefined ? "–" : Number(n).toFixed(d));
  // What the page drew last, for whoever looks (the browser test reads it).
  const state = (window.heraldTelemetry = { events: 0, last: null, charts: {} });

  function chartFor(ship) {
    let chart = state.charts[ship];
    if (chart) return chart;
    const figure = document.createElement("figure");
    figure.dataset.ship = ship;
    const caption = document.createElement("figcaption");
    caption.textContent = ship;
    const box = document.createElement("div");
    box.className = "chart";
    const canvas = document.createElement("canvas");
    canvas.id = `chart-${ship}`;
    box.appendChild(canvas);
    figure.append(caption, box);
    $("telemetry-charts").appendChild(figure);
    chart = new Chart(canvas, {
      type: "line",
      data: {
        labels: [],
        datasets: [
          { label: "SoC %", data: [], yAxisID: "soc", borderColor: "#2e7d32", pointRadius: 0 },
          { label: "voltage V", data: [], yAxisID: "volts", borderColor: "#1565c0", pointRadius: 0 },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          soc: { type: "linear", position: "left", min: 0, max: 100 },
          volts: { type: "linear", position: "right", grid: { drawOnChartArea: false } },
        },
      },
    });
    state.charts[ship] = chart;
    return chart;
  }

  function render(data) {
    $("telemetry-active").textContent = fmt(data.streams_active);
    $("telemetry-rate").textContent = fixed(data.frames_per_sec, 1);
    $("telemetry-sent").textContent = fmt(data.sent);
    $("telemetry-stored").textContent = fmt(data.stored);
    $("telemetry-lost").textContent = data.due ? `${fmt(data.lost)} of ${fmt(data.due)} (${fixed(data.loss_pct, 2)}%)` : "–";
    const body = $("telemetry-ships").querySelector("tbody");
    body.replaceChildren();
    for (const s of data.ships) {
      const tr = document.createElement("tr");
      tr.dataset.ship = s.ship;
      const cells = [s.ship, fmt(s.active), fmt(s.sent), fmt(s.dropped), fmt(s.due), fmt(s.stored),
        fixed(s.loss_pct, 2), fixed(s.frames_per_sec, 1),
        s.soc === null ? "–" : `${(100 * s.soc).toFixed(1)}%`, s.voltage === null ? "–" : `${s.voltage.toFixed(2)} V`];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        if (i > 0) td.className = "num";
        td.textContent = text;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
    for (const [ship, points] of Object.entries(data.series || {})) {
      const chart = chartFor(ship);
      chart.data.labels = points.map((p) => new Date(p.t * 1000).toLocaleTimeString("en-GB"));
      chart.data.datasets[0].data = points.map((p) => 100 * p.soc);
      chart.data.datasets[1].data = points.map((p) => p.voltage);
      chart.update();
    }
    $("telemetry-status").textContent = data.ships.length ? "live" : "no streams in view yet";
  }

  const url = runId ? `/telemetry/events?run_id=${encodeURIComponent(runId)}` : "/telemetry/events";
  const es = new EventSource(url);
  es.addEventListener("telemetry", (ev) => { state.events += 1; state.last = JSON.parse(ev.data); render(state.last); });
  es.onerror = () => { $("telemetry-status").textContent = "reconnecting…"; };
})();
