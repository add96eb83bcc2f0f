"""The dashboard in headless Chromium (Debian's chromium + chromedriver): start a run from
the form, watch the counters reach the total and the charts draw, save a screenshot."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from herald import kafka
from herald.config import Settings
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.services import producer, recorder, worker
from tests.support.browser import chromium
from tests.support.cluster import ServiceThread, make_settings
from tests.support.waiting import wait_for
from tests.support.web import serving

ROOT = Path(__file__).resolve().parents[2]
# The README's picture is refreshed with DASHBOARD_SCREENSHOT=docs/img/dashboard.png; other
# runs keep theirs in the test's temporary folder, so that a test run changes no tracked file.
SCREENSHOT_ENV = "DASHBOARD_SCREENSHOT"
MESSAGES = 3000


@pytest.fixture
def stack(broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str) -> Iterator[Settings]:
    """Producer, two senders and the recorder, in threads, on the session's broker and database."""
    s = make_settings(
        broker,
        database,
        namespace,
        senders=[
            {"mean_wait_time": 0.4, "failure_rate": 0.05, "max_in_flight": 400},
            {"mean_wait_time": 0.6, "failure_rate": 0.2, "max_in_flight": 400},
        ],
    )
    kafka.ensure_topics(s.kafka)
    services = [
        ServiceThread(worker.run, s, worker_id=0),
        ServiceThread(worker.run, s, worker_id=1),
        ServiceThread(producer.run, s),
        ServiceThread(recorder.run, s),
    ]
    try:
        yield s
    finally:
        for svc in services:
            svc.join(60)


@pytest.fixture
def web_url(stack: Settings) -> Iterator[str]:
    with serving(stack, threads=8) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def test_start_a_run_from_the_form_and_watch_it_finish(
    browser: webdriver.Chrome, web_url: str, tmp_path: Path
) -> None:
    browser.get(web_url + "/")
    wait_for(lambda: "run(s); live" in text(browser, "runs-status"), 30, "the runs list stream")
    messages = browser.find_element(By.ID, "start-messages")
    messages.clear()
    messages.send_keys(str(MESSAGES))
    browser.find_element(By.ID, "start-seed").send_keys("11")
    browser.find_element(By.ID, "start-submit").click()
    wait_for(lambda: "/runs/" in browser.current_url, 30, "the run's page")
    run_id = browser.current_url.rsplit("/", 1)[1]
    assert text(browser, "run-id") == run_id

    # Live while it runs: at least one update shows the run partly done.
    wait_for(
        lambda: browser.execute_script("return window.herald.events") >= 1, 60, "a first event"
    )
    wait_for(lambda: text(browser, "count-total") == f"{MESSAGES:,}", 30, "the total")
    wait_for(lambda: text(browser, "run-status") == "completed", 120, "the run to finish")

    sent, failed = (
        int(text(browser, "count-sent").replace(",", "")),
        int(text(browser, "count-failed").replace(",", "")),
    )
    assert sent + failed == MESSAGES
    assert failed > 0
    assert text(browser, "count-remaining") == "0"
    assert text(browser, "progress-text") == f"{MESSAGES:,} of {MESSAGES:,} (100.0%)"
    assert browser.find_element(By.ID, "progress-bar").get_attribute("style") == "width: 100%;"
    rows = browser.find_elements(By.CSS_SELECTOR, "#senders tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["0", "1"]
    per_sender = sum(
        int(c.text.replace(",", "")) for r in rows for c in r.find_elements(By.TAG_NAME, "td")[1:3]
    )
    assert per_sender == MESSAGES
    lag_rows = browser.find_elements(By.CSS_SELECTOR, "#lag tbody tr")
    assert len(lag_rows) == 4  # one per partition of the outbound topic

    charts: Any = browser.execute_script(
        """
        const out = {};
        for (const [name, chart] of Object.entries(window.herald.charts)) {
          const canvas = chart.canvas;
          const pixels = canvas.getContext('2d')
            .getImageData(0, 0, canvas.width, canvas.height).data;
          let painted = 0;
          for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
          const sum = (d) => d.data.reduce((a, p) => a + p.y, 0);
          const sets = chart.data.datasets;
          out[name] = {
            points: sets.map(d => d.data.length),
            // throughput: sent/s + failed/s over every second is every outcome
            total: name === 'throughput' ? sum(sets[0]) + sum(sets[1]) : null,
            painted: painted,
          };
        }
        return out;
        """
    )
    # The throughput chart's points add up to every outcome; both charts have drawn pixels.
    assert charts["throughput"]["total"] == MESSAGES
    assert min(charts["throughput"]["points"]) >= 1
    assert min(charts["latency"]["points"]) >= 1
    assert charts["throughput"]["painted"] > 1000 and charts["latency"]["painted"] > 1000

    screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "dashboard.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    browser.get(web_url + "/")
    wait_for(
        lambda: run_id in text(browser, "runs") and "completed" in text(browser, "runs"),
        30,
        "the run, finished, in the runs list",
    )
