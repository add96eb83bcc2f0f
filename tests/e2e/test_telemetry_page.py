"""The telemetry page in headless Chromium: a row per ship with its counts, and a chart per
ship whose points are that ship's samples in Postgres averaged per second."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from selenium.webdriver.common.by import By
from sqlalchemy import text

from herald import runs
from herald.config import Settings
from herald.db import store
from herald.db.engine import make_engine
from herald.scenarios import telemetry
from herald.scenarios.telemetry import StreamEvent, TelemetryFrame
from tests.support.browser import chromium
from tests.support.waiting import wait_for
from tests.support.web import web_url  # noqa: F401 - a fixture


def frames(sid: str, ship: str, start: float, count: int, skip: set[int]) -> list[TelemetryFrame]:
    battery = telemetry.Battery(ship, 7)
    out = []
    for n in range(count):
        voltage, current, temperature, soc, sunlit = battery.step(0.1)
        if n in skip:
            continue
        out.append(
            TelemetryFrame(
                id=f"{sid}:{n}",
                schedule_id=sid,
                ship=ship,
                apid=telemetry.apid_of(ship),
                seq=n,
                n=n,
                t=start + n / 10,
                voltage=voltage,
                current=current,
                temperature=temperature,
                soc=soc,
                sunlit=sunlit,
                reordered=False,
                sender="127.0.0.1:5000",
                ingestor="ingestor@test:1",
                received_at=datetime.now(UTC),
            )
        )
    return out


def per_second(batch: list[TelemetryFrame]) -> list[tuple[int, float, float]]:
    """What the page should draw: per second of sample time, SoC % and voltage (averaged)."""
    buckets: dict[int, list[TelemetryFrame]] = defaultdict(list)
    for f in batch:
        buckets[int(f.t // 1)].append(f)
    return [
        (
            t,
            100 * round(sum(f.soc for f in fs) / len(fs), 4),
            round(sum(f.voltage for f in fs) / len(fs), 3),
        )
        for t, fs in sorted(buckets.items())
    ]


def test_the_page_shows_each_ship_its_counts_and_its_chart(
    settings: Settings,
    web_url: str,  # noqa: F811 - the fixture
) -> None:
    run_id = runs.new_run_id()
    tag = uuid.uuid4().hex[:6]
    ships = [f"probe-{tag}-a", f"probe-{tag}-b"]
    now = datetime.now(UTC)
    start = int(now.timestamp()) - 30.0
    engine = make_engine(str(settings.database.url))
    batches = {}
    try:
        with engine.begin() as conn:
            for i, ship in enumerate(ships):
                # Starting in an hour: no scheduler of another test takes it meanwhile.
                row, timer = telemetry.schedule_rows(
                    settings,
                    ship=ship,
                    start_at=now + timedelta(hours=1),
                    duration_s=10.0,
                    rate_hz=10.0,
                    host="127.0.0.1",
                    port=47100,
                    run_id=run_id,
                    now=now,
                )
                store.insert_schedules(conn, [row], [timer])
                event = StreamEvent(
                    schedule_id=row["id"],
                    ship=ship,
                    event="started",
                    spaceship="spaceship@test:1",
                    at=now,
                )
                store.record_stream_events(conn, [event])
                # Ship a: 10 s of samples, 4 lost; ship b: 5 s, none lost.
                lost = {3, 4, 50, 99} if i == 0 else set()
                batch = frames(row["id"], ship, start, 100 if i == 0 else 50, lost)
                store.write_frames(conn, batch)
                batches[ship] = batch
            conn.execute(
                text("DELETE FROM timers WHERE id = ANY(:ids)"),
                {"ids": [r.id for r in store.schedules_of_run(conn, run_id)]},
            )
    finally:
        engine.dispose()

    with chromium() as browser:
        browser.get(f"{web_url}/telemetry?run_id={run_id}")
        wait_for(
            lambda: browser.execute_script(
                "const s = window.heraldTelemetry;"
                "return s.last && Object.keys(s.charts).length === 2"
            ),
            30,
            "the page's first update",
        )
        assert browser.find_element(By.ID, "telemetry-active").text == "2"
        assert browser.find_element(By.ID, "telemetry-stored").text == "146"
        rows = [
            [td.text for td in tr.find_elements(By.TAG_NAME, "td")][:7]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#telemetry-ships tbody tr")
        ]
        page: Any = browser.execute_script(
            """
            const out = {};
            for (const [ship, chart] of Object.entries(window.heraldTelemetry.charts)) {
              out[ship] = {labels: chart.data.labels.length,
                           soc: chart.data.datasets[0].data, volts: chart.data.datasets[1].data,
                           drawn: chart.canvas.width > 0};
            }
            return out;
            """
        )
    # a: its latest frame is 98 (99 was lost), so 99 are due, 96 stored, 3 lost so far.
    assert rows == [
        [ships[0], "1", "0", "0", "99", "96", "3.03"],
        [ships[1], "1", "0", "0", "50", "50", "0.00"],
    ]
    for ship in ships:
        want = per_second(batches[ship])
        assert page[ship]["labels"] == len(want)
        assert page[ship]["soc"] == [soc for _t, soc, _v in want]
        assert page[ship]["volts"] == [v for _t, _soc, v in want]
        assert page[ship]["drawn"]
