"""What herald's locustfiles share: a user that speaks herald's JSON API (bearer token,
expected status, failures that say why), the record of what a load test created (its check
reads it afterwards), and wait times a benchmark can scale down to zero.

Locust runs these in its own process (gevent-patched), started by :mod:`herald.load`; they
import nothing of herald but the names of the variables it sets.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import gevent
from locust import HttpUser, events
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from herald.load import CREATED_ENV, PACE_ENV, TOKEN_ENV, WAIT_SCALE_ENV

logger = logging.getLogger(__name__)

# Problems are reported with the start of the body: enough to read an error, not a page.
BODY_EXCERPT = 200


@events.init.add_listener
def _refresh_clock(**_kwargs: Any) -> None:
    # gevent's loop caches "now" and has not run since Locust imported it, seconds ago on a
    # busy machine: --run-time, a timer started next, would otherwise end the load that much
    # early (measured here: 2.3 s into a 5 s run).
    gevent.get_hub().loop.update_now()


@events.test_stop.add_listener
def _write_final_csv(environment: Any, **_kwargs: Any) -> None:
    # Locust rewrites its CSV files every second, and not once more at the end (its issues
    # #1806 and #2299): the requests of the last moments, those the users finished after the
    # run time was up, would be missing, and the check would count more than the CSV. This
    # runs once every user has stopped.
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if not prefix:
        return
    figures = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, write in (
        ("_stats.csv", figures.requests_csv),
        ("_failures.csv", figures.failures_csv),
    ):
        with open(f"{prefix}{suffix}", "w", newline="", encoding="utf-8") as f:
            write(csv.writer(f))


def between(low: float, high: float) -> Callable[[Any], float]:
    """Locust's ``between(low, high)``, scaled by ``$HERALD_LOAD_WAIT_SCALE`` (default 1; 0:
    each user sends its next request at once); with ``$HERALD_LOAD_PACE`` set, each user runs
    that many tasks a second instead (a benchmark offering a known rate)."""

    def wait(user: Any) -> float:
        pace, scale = os.environ.get(PACE_ENV), os.environ.get(WAIT_SCALE_ENV)
        if pace:
            return _paced(user, 1.0 / float(pace))
        return random.uniform(low, high) * (float(scale) if scale else 1.0)

    return wait


def _paced(user: Any, period: float) -> float:
    # One task every ``period``, at a phase drawn once per user, so that the users' tasks are
    # spread over the period rather than sent together; a user that falls behind goes on at
    # once, without a burst to catch up (unlike Locust's constant_pacing, no phase either).
    now = time.monotonic()
    due = getattr(user, "_herald_due", None)
    due = now + random.uniform(0.0, period) if due is None else max(due + period, now)
    user._herald_due = due
    return due - now


class _Created:
    """``created.jsonl``: one JSON line per thing a user created, appended as it is created."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._opened = False

    def add(self, kind: str, id_: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, "id": id_, "at": time.time(), **fields})
        with self._lock:
            if not self._opened:
                self._opened = True
                path = os.environ.get(CREATED_ENV)
                if path:
                    # Line-buffered, in append mode: each line is one write, whole.
                    self._file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
                else:
                    logger.warning(
                        "%s is not set: what this load creates is not recorded", CREATED_ENV
                    )
            if self._file is not None:
                self._file.write(line + "\n")


created = _Created()


class HeraldUser(HttpUser):
    """A user of herald's HTTP API; subclasses add the tasks of one scenario."""

    abstract = True

    def on_start(self) -> None:
        token = os.environ.get(TOKEN_ENV)
        if token:
            self.client.headers["Authorization"] = f"Bearer {token}"
        pace = os.environ.get(PACE_ENV)
        if pace:
            # A paced user (a benchmark) starts at a random phase of its period, as its later
            # tasks keep to: Locust runs a user's first task at once, and every user's first
            # request would go out together, a burst the offered rate does not have (measured
            # here: 8 users' first POSTs at 110-190 ms, every later one about 15 ms).
            self._herald_due = time.monotonic() + random.uniform(0.0, 1.0 / float(pace))
            gevent.sleep(self._herald_due - time.monotonic())

    def post_json(
        self,
        path: str,
        body: dict[str, Any],
        *,
        expect: int = 202,
        require: tuple[str, ...] = (),
        name: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """POST ``body`` (with ``headers`` besides the session's); the response's JSON object,
        or None (counted as a failure) unless the status is ``expect`` and the body a JSON
        object with every key in ``require``."""
        with self.client.post(
            path, json=body, name=name, headers=headers, catch_response=True
        ) as response:
            return _json_object(response, expect, require)

    def get_json(
        self,
        path: str,
        *,
        expect: int = 200,
        require: tuple[str, ...] = (),
        name: str | None = None,
    ) -> dict[str, Any] | None:
        """GET ``path``; as :meth:`post_json`."""
        with self.client.get(path, name=name, catch_response=True) as response:
            return _json_object(response, expect, require)


def _json_object(response: Any, expect: int, require: tuple[str, ...]) -> dict[str, Any] | None:
    if response.status_code != expect:
        response.failure(
            f"expected {expect}, got {response.status_code}: {response.text[:BODY_EXCERPT]}"
        )
        return None
    try:
        body = response.json()
    except ValueError:
        response.failure(
            f"{response.status_code} without a JSON body: {response.text[:BODY_EXCERPT]}"
        )
        return None
    if not isinstance(body, dict):
        response.failure(
            f"{response.status_code}: not a JSON object: {response.text[:BODY_EXCERPT]}"
        )
        return None
    missing = [key for key in require if key not in body]
    if missing:
        response.failure(
            f"{response.status_code} without {', '.join(missing)}: {response.text[:BODY_EXCERPT]}"
        )
        return None
    response.success()
    return body
