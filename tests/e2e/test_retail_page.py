"""The retail store's page in headless Chromium: a finished run's heatmap has one shade per
cell for its events, as the generator made them, and the occupancy chart draws the day."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from selenium.webdriver.common.by import By

from herald import runs
from herald.config import Settings
from herald.db import store
from herald.db.engine import make_engine
from herald.scenarios.retail import RunTimeline, Truth
from herald.services import producer, recorder
from tests.support.browser import chromium
from tests.support.cluster import ServiceThread
from tests.support.retail import retail_request
from tests.support.waiting import wait_for
from tests.support.web import web_url  # noqa: F401 - a fixture

HIGH = [183, 28, 28]  # the busiest cell's shade (retail.js)
WHITE = [255, 255, 255]


def test_the_heatmap_shades_each_cell_by_its_events(
    settings: Settings,
    web_url: str,  # noqa: F811 - the fixture
) -> None:
    request = retail_request(
        settings,
        run_id=runs.new_run_id(),
        requested_at=datetime.now(UTC),
        consume_from="earliest",
        duration=3600,
        speed="max",
        consume_batch_size=500,
        store_width=8,
        store_height=12,
    )
    truth = list(RunTimeline(request).replay())
    per_cell = Counter((e.x, e.y) for e in truth)
    occupancy_max = Truth.of(truth, 0, 1).occupancy_max
    runs.submit(settings.kafka, request)
    services = [
        ServiceThread(recorder.run, settings),
        ServiceThread(producer.run, settings, max_runs=1),
    ]
    engine = make_engine(str(settings.database.url))
    try:

        def finished() -> bool:
            with engine.connect() as conn:
                row = store.get_run(conn, request.run_id)
            return row is not None and row.finished_at is not None

        wait_for(finished, 90, f"run {request.run_id} to finish")
    finally:
        engine.dispose()
        for svc in services:
            svc.join(60)

    with chromium() as browser:
        browser.get(f"{web_url}/retail/runs/{request.run_id}")
        wait_for(
            lambda: browser.execute_script("return window.heraldRetail.finished"),
            30,
            "the page's last update",
        )
        assert browser.find_element(By.ID, "run-status").text == "completed"
        assert browser.find_element(By.ID, "count-inside").text == "0"
        assert browser.find_element(By.ID, "count-events").text == f"{len(truth):,}"
        page: Any = browser.execute_script(
            """
            const s = window.heraldRetail, canvas = document.getElementById('heatmap');
            const ctx = canvas.getContext('2d'), c = s.cell, h = 12, out = [];
            for (let y = 0; y < h; y++) for (let x = 0; x < 8; x++) {
              // Near the cell's far corner: clear of the grid lines, dots and the E.
              const px = ctx.getImageData(x * c + c - 4, (h - 1 - y) * c + c - 4, 1, 1).data;
              const n = s.heat[`${x},${y}`] || 0;
              out.push([x, y, n, [px[0], px[1], px[2]], s.rgb(n)]);
            }
            const sets = s.chart.data.datasets;
            return {cells: out, width: canvas.width, height: canvas.height, cell: c,
                    inside: sets[0].data, average: sets[1].data};
            """
        )  # fmt: skip
    cells = page["cells"]
    assert (page["width"], page["height"]) == (8 * page["cell"], 12 * page["cell"])
    # The heat of every cell is its events in Postgres, which are the generator's.
    assert {(x, y): n for x, y, n, _px, _rgb in cells if n} == dict(per_cell)
    # Each cell is painted its count's shade: the busiest the darkest, empty ones white.
    assert all(px == shade for _x, _y, _n, px, shade in cells), cells
    busiest = max(per_cell.values())
    assert next(px for _x, _y, n, px, _s in cells if n == busiest) == HIGH
    assert all(px == WHITE for _x, _y, n, px, _s in cells if n == 0)
    assert len({tuple(px) for *_r, px, _s in cells}) > 5  # shades, not two colours
    # Occupancy: from the start, a point at the end of each simulated minute with an enter
    # or an exit, never above the day's maximum, ending with the store empty.
    inside = page["inside"]
    minutes = [p["x"] for p in inside]
    assert minutes == sorted(set(minutes)) and minutes[0] == 0 and minutes[-1] <= 61
    assert inside[-1]["y"] == 0 and 0 < max(p["y"] for p in inside) <= occupancy_max
    assert [p["y"] for p in page["average"]] == [6, 6]
