"""Load on the timers API, as a service that schedules callbacks makes it: each user creates
timers due a few seconds ahead, calling the load test's webhook receiver, and asks now and
then how long one of its timers has left.

Check afterwards (:func:`herald.load.timers.check_timers`): every timer created here reached
the receiver exactly once, signed, not before its due time; lateness at the receiver and in
the ledger.
"""

from __future__ import annotations

import os
import random
import uuid

from locust import tag, task

from herald.load import RECEIVER_ENV
from load.common import HeraldUser, between, created

# Due soon, so that the check after the load does not wait long, and several seconds ahead,
# so that each timer goes through the scheduler's claim (its lookahead is 2 s by default).
DUE_IN_SECS = (2, 5)


class TimersUser(HeraldUser):
    """Creates timers (``POST /api/timers``) and follows them (``GET /api/timers/{id}``)."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        super().on_start()
        self.receiver = os.environ[RECEIVER_ENV]  # set by the scenario's fixture
        self.mine: list[str] = []

    @tag("write")
    @task(2)
    def create_timer(self) -> None:
        body = {"seconds": random.randint(*DUE_IN_SECS), "url": self.receiver}
        # A key per timer, as a client that retries a POST must send: a retry gets the same
        # timer, never a second one.
        key = {"Idempotency-Key": str(uuid.uuid4())}
        timer = self.post_json(
            "/api/timers", body, expect=201, require=("id", "due_at"), name="/api/timers",
            headers=key,
        )  # fmt: skip
        if timer is None:
            return
        timer_id = str(timer["id"])
        self.mine.append(timer_id)
        created.add("timer", timer_id, due_at=timer["due_at"])

    @tag("read")
    @task(3)
    def time_left(self) -> None:
        if not self.mine:
            self.create_timer()  # nothing of its own to look at yet (see telemetry_schedules)
            return
        timer_id = random.choice(self.mine[-5:])
        self.get_json(
            f"/api/timers/{timer_id}", require=("state", "time_left"),
            name="/api/timers/{id}",
        )  # fmt: skip
