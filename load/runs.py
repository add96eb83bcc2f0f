"""Load on the runs API, as the dashboard's users make it: each user starts a small run now
and then and follows its progress in between, glancing at the list of runs.

Check afterwards (:func:`herald.load.check_runs`): every run started here finished, with
``done == expected``, within the check's deadline.
"""

from __future__ import annotations

import random

from locust import tag, task

from load.common import HeraldUser, between, created

# Small runs: the load is on the API, and each run must still finish for the check.
MESSAGES = (10, 100)


class RunsUser(HeraldUser):
    """Starts runs (``POST /api/runs``) and follows them (``GET /api/runs/{id}``)."""

    # A person reading a progress page, not a script: one to three seconds between requests.
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        super().on_start()
        self.mine: list[str] = []
        self.start_run()  # someone opens the dashboard to start a run, then follows it

    @tag("write")
    @task(1)
    def start_run(self) -> None:
        messages = random.randint(*MESSAGES)
        body = self.post_json(
            "/api/runs", {"messages": messages}, require=("run_id", "messages"), name="/api/runs"
        )
        if body is None:
            return
        run_id = str(body["run_id"])
        self.mine.append(run_id)
        created.add("run", run_id, expected=body.get("messages"), url=body.get("url"))

    @tag("read")
    @task(4)
    def follow_run(self) -> None:
        # Its own recent runs (those still moving), or else the newest run anyone started.
        run_id = random.choice(self.mine[-5:]) if self.mine else self._newest_run()
        if run_id is not None:
            self.get_json(f"/api/runs/{run_id}", require=("status",), name="/api/runs/{id}")

    @tag("read")
    @task(1)
    def list_runs(self) -> None:
        self._newest_run()

    def _newest_run(self) -> str | None:
        page = self.get_json("/api/runs?page=1&per_page=20", require=("items",), name="/api/runs")
        items = page.get("items") if page else None
        return str(items[0]["run_id"]) if items else None
