"""Run states in Postgres: each write moves a run on, every run ends in one terminal state,
and the API shows what the row says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask_openapi3.openapi import OpenAPI
from sqlalchemy import text

from herald import runs
from herald.config import Settings
from herald.db import store
from herald.db.engine import make_engine
from tests.support.sms import record, results_for
from tests.support.web import app

__all__ = ["app"]  # the fixture


def _row(settings: Settings, run_id: str) -> Any:
    engine = make_engine(settings.database.url or "")
    try:
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT state, ended_at, state_reason, finished_at, expected, config, "
                    "succeeded + failed AS done FROM runs WHERE run_id = :r"
                ),
                {"r": run_id},
            ).one()
    finally:
        engine.dispose()


def _in_transaction(settings: Settings, work: Any) -> Any:
    engine = make_engine(settings.database.url or "")
    try:
        with engine.begin() as conn:
            return work(conn)
    finally:
        engine.dispose()


def _age(settings: Settings, run_id: str, days: int) -> None:
    _in_transaction(
        settings,
        lambda conn: conn.execute(
            text(
                "UPDATE runs SET updated_at = now() - make_interval(days => :d) WHERE run_id = :r"
            ),
            {"d": days, "r": run_id},
        ),
    )


def test_a_run_moves_from_requested_to_running_to_completed(settings: Settings) -> None:
    request = runs.make_request(settings, messages=10, seed=1)
    batch = results_for(request.run_id, 10)
    record(settings, [], [request])
    assert _row(settings, request.run_id).state == "requested"
    record(settings, batch[:4])
    row = _row(settings, request.run_id)
    assert (row.state, row.done, row.ended_at, row.state_reason) == ("running", 4, None, None)
    record(settings, batch[4:])
    row = _row(settings, request.run_id)
    assert (row.state, row.done) == ("completed", 10)
    assert row.ended_at is not None and row.finished_at is not None
    # A replay changes nothing, not even when it ended.
    record(settings, batch, [request])
    again = _row(settings, request.run_id)
    assert (again.state, again.done, again.ended_at) == ("completed", 10, row.ended_at)


def test_outcomes_before_their_request_make_a_running_run(settings: Settings) -> None:
    request = runs.make_request(settings, messages=6, seed=2)
    batch = results_for(request.run_id, 6)
    record(settings, batch[:2])
    row = _row(settings, request.run_id)
    assert (row.state, row.expected) == ("running", None)
    record(settings, batch[2:], [request])
    assert _row(settings, request.run_id).state == "completed"


def test_an_interrupted_run_keeps_its_counts_size_and_config(settings: Settings) -> None:
    request = runs.make_request(settings, messages=20, seed=3, config={"senders": [{"id": 0}]})
    record(settings, results_for(request.run_id, 7), [request])

    def end(conn: Any) -> store.Ended | None:
        store.upsert_run(conn, request)
        return store.end_run(conn, request.run_id, "interrupted", "stopped by a signal")

    ended = _in_transaction(settings, end)
    assert ended == store.Ended("interrupted", 7, 20, "stopped by a signal")
    row = _row(settings, request.run_id)
    assert (row.state, row.expected, row.config, row.done) == (
        "interrupted",
        20,
        {"senders": [{"id": 0}]},
        7,
    )
    assert row.ended_at is not None and row.finished_at is None
    # Ended: marking it again changes nothing.
    again = _in_transaction(
        settings, lambda conn: store.end_run(conn, request.run_id, "failed", "too late")
    )
    assert again == ended


def test_a_run_whose_every_outcome_is_in_is_completed_not_interrupted(
    settings: Settings,
) -> None:
    request = runs.make_request(settings, messages=5, seed=4)
    record(settings, results_for(request.run_id, 5), [request])
    ended = _in_transaction(
        settings, lambda conn: store.end_run(conn, request.run_id, "interrupted", "a signal")
    )
    assert ended == store.Ended("completed", 5, 5, None)


def test_end_run_of_an_unknown_run_is_none(settings: Settings) -> None:
    ended = _in_transaction(settings, lambda c: store.end_run(c, "no-such-run", "failed", "x"))
    assert ended is None


def test_abandoned_runs_by_time_of_change_and_by_age(settings: Settings) -> None:
    old, idle, fresh, done = (runs.make_request(settings, messages=8, seed=i) for i in range(4))
    record(settings, results_for(old.run_id, 3), [old])
    record(settings, [], [idle])
    record(settings, results_for(done.run_id, 8), [done])
    _age(settings, old.run_id, 3)
    _age(settings, idle.run_id, 2)
    _age(settings, done.run_id, 3)
    record(settings, [], [fresh])
    fresh_changed = _row(settings, fresh.run_id)
    cutoff = datetime.now(UTC) - timedelta(days=1)
    left = _in_transaction(
        settings,
        lambda conn: store.abandon_runs(conn, changed_before=cutoff, reason="services gone"),
    )
    # Other tests' runs in the session's database may be abandoned too; these are exact.
    assert {old.run_id, idle.run_id} <= set(left)
    assert fresh.run_id not in left and done.run_id not in left
    assert [_row(settings, r.run_id).state for r in (old, idle, fresh, done)] == [
        "abandoned",
        "abandoned",
        "requested",
        "completed",
    ]
    assert _row(settings, old.run_id).state_reason == "services gone"
    assert _row(settings, fresh.run_id).ended_at == fresh_changed.ended_at is None
    # By age: the idle limit's reason.
    _age(settings, fresh.run_id, 2)
    by_age = _in_transaction(
        settings,
        lambda conn: store.abandon_runs(conn, idle_secs=86400.0, reason=store.idle_reason(86400.0)),
    )
    assert fresh.run_id in by_age and old.run_id not in by_age  # abandoned once only
    assert _row(settings, fresh.run_id).state_reason == (
        "nothing recorded for 86400s (limits.stale_run_secs): its services are gone"
    )
    # Its services were there after all: outcomes bring it back, and it completes.
    record(settings, results_for(old.run_id, 8)[3:5])
    row = _row(settings, old.run_id)
    assert (row.state, row.done, row.ended_at, row.state_reason) == ("running", 5, None, None)
    record(settings, results_for(old.run_id, 8)[5:])
    assert _row(settings, old.run_id).state == "completed"


def test_the_api_shows_each_state_with_when_and_why(app: OpenAPI, settings: Settings) -> None:
    interrupted = runs.make_request(settings, messages=9, seed=5)
    abandoned = runs.make_request(settings, messages=9, seed=6)
    record(settings, results_for(interrupted.run_id, 4), [interrupted, abandoned])
    _in_transaction(
        settings,
        lambda conn: store.end_run(conn, interrupted.run_id, "interrupted", "stopped by a signal"),
    )
    _age(settings, abandoned.run_id, 2)
    _in_transaction(
        settings,
        lambda conn: store.abandon_runs(conn, idle_secs=86400.0, reason="its services are gone"),
    )
    client = app.test_client()
    first = client.get(f"/api/runs/{interrupted.run_id}").get_json()
    assert (first["status"], first["done"], first["expected"], first["state_reason"]) == (
        "interrupted",
        4,
        9,
        "stopped by a signal",
    )
    assert first["ended_at"] is not None and first["finished_at"] is None
    second = client.get(f"/api/runs/{abandoned.run_id}").get_json()
    assert (second["status"], second["state_reason"]) == ("abandoned", "its services are gone")
    listed = {
        r["run_id"]: r["status"]
        for r in client.get("/api/runs?per_page=100").get_json()["items"]
        if r["run_id"] in (interrupted.run_id, abandoned.run_id)
    }
    assert listed == {interrupted.run_id: "interrupted", abandoned.run_id: "abandoned"}
