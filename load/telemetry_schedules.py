"""Load on the telemetry schedules API, as a ground station's planners make it: each user
schedules short streams a second or two ahead, to the load test's UDP receiver, and asks now
and then how one of its schedules stands.

Check afterwards (:func:`herald.load.telemetry.check_schedules`): every schedule accepted here
ran: ``done``, ``packets_sent`` = ``packets_expected`` = rate × duration, and exactly that many
packets of it reached the receiver.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta

from locust import tag, task

from herald.load import UDP_PORT_ENV
from load.common import HeraldUser, between, created

START_IN_SECS = (1.0, 2.0)  # soon, so that the check after the load does not wait long
DURATION_SECS = (1.0, 2.0)
RATE_HZ = 10.0


class ScheduleUser(HeraldUser):
    """Schedules streams (``POST /api/telemetry/schedules``) and follows them
    (``GET /api/telemetry/schedules/{id}``)."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        super().on_start()
        self.port = int(os.environ[UDP_PORT_ENV])  # set by the scenario's fixture
        self.mine: list[str] = []

    @tag("write")
    @task(2)
    def schedule(self) -> None:
        start = datetime.now(UTC) + timedelta(seconds=random.uniform(*START_IN_SECS))
        body = {
            "ship": f"load-{random.randint(1, 20)}",
            "start_at": start.isoformat(),
            "duration_s": random.choice(DURATION_SECS),
            "rate_hz": RATE_HZ,
            "host": "127.0.0.1",
            "port": self.port,
        }
        row = self.post_json(
            "/api/telemetry/schedules", body, expect=201,
            require=("id", "packets_expected", "start_at"), name="/api/telemetry/schedules",
        )  # fmt: skip
        if row is None:
            return
        schedule_id = str(row["id"])
        self.mine.append(schedule_id)
        created.add("schedule", schedule_id, packets=row["packets_expected"],
                    start_at=row["start_at"], duration_s=row["duration_s"])  # fmt: skip

    @tag("read")
    @task(3)
    def look(self) -> None:
        if not self.mine:
            # Nothing of its own to follow yet: schedule one (a short run whose every user
            # drew "look" first made no request at all: CI failed once on exactly that).
            self.schedule()
            return
        schedule_id = random.choice(self.mine[-5:])
        self.get_json(
            f"/api/telemetry/schedules/{schedule_id}", require=("state", "packets_sent"),
            name="/api/telemetry/schedules/{id}",
        )  # fmt: skip
