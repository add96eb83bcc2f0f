"""Telemetry schedules on the real broker and database: the API (Flask's test client), the
scheduler (in threads) publishing start commands, stream events and frames in Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from herald.config import Settings
from herald.db import store
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.scenarios import telemetry
from herald.scenarios.telemetry import StreamCommand, StreamEvent, TelemetryFrame
from herald.services import scheduler, spaceship
from herald.web import create_app
from herald.web.app import state
from tests.support.cluster import ServiceThread
from tests.support.timers import engine_for, timer_settings, wait_for_state
from tests.support.topics import read_topic
from tests.support.waiting import wait_for
from tests.support.web import first_event


@pytest.fixture
def tsettings(broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str) -> Settings:
    return timer_settings(broker, database, namespace, telemetry={"not_after_secs": 1.0})


@pytest.fixture
def engine(tsettings: Settings) -> Iterator[Engine]:
    eng = engine_for(tsettings)
    clear(eng)
    yield eng
    eng.dispose()


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("TRUNCATE timers, telemetry_schedules, telemetry_frames, telemetry_ships")
        )


@pytest.fixture
def web(tsettings: Settings, engine: Engine) -> Iterator[FlaskClient]:
    app = create_app(tsettings)
    app.config["TESTING"] = True
    yield app.test_client()
    state(app).close()


def body(**changes: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(seconds=60)
    return {
        "ship": "voyager-1",
        "start_at": start.isoformat(),
        "duration_s": 2.0,
        "rate_hz": 10.0,
        "host": "127.0.0.1",
        "port": 47100,
        **changes,
    }


def fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.get_json()
    return {d["field"]: d["reason"] for d in response.get_json()["detail"]}


def test_a_bad_schedule_gets_422_naming_the_field(web: FlaskClient) -> None:
    post = lambda **c: web.post("/api/telemetry/schedules", json=body(**c))  # noqa: E731
    assert fields(post(ship="9lives")) == {
        "ship": "String should match pattern '^[A-Za-z][A-Za-z0-9_-]{0,31}$'"
    }
    past = (datetime.now(UTC) - timedelta(seconds=60)).replace(microsecond=0)
    assert fields(post(start_at=past.isoformat())) == {
        "start_at": f"{past.isoformat()} is more than telemetry.start_grace_secs (5 s) in the past"
    }
    # No UTC form (found by the API fuzzer: it was a 500).
    assert fields(post(start_at="0001-01-01T00:00:00+00:01")) == {
        "start_at": "0001-01-01T00:00:00+00:01 is more than telemetry.start_grace_secs (5 s) "
        "in the past"
    }
    assert fields(post(start_at="9999-12-31T23:59:00-00:01")) == {
        "start_at": "is more than timers.max_delay_secs (2.592e+06 s) ahead"
    }
    assert fields(post(duration_s=0)) == {"duration_s": "Input should be greater than 0"}
    assert fields(post(rate_hz=-1)) == {"rate_hz": "Input should be greater than 0"}
    assert fields(post(rate_hz="fast")) == {"rate_hz": "Value error, must be a JSON number"}
    assert fields(post(port=70000)) == {"port": "Input should be less than or equal to 65535"}
    assert fields(post(port=0)) == {"port": "Input should be greater than or equal to 1"}
    assert fields(post(host="10.1.2.3")) == {
        "host": "10.1.2.3 is outside the allowed networks (127.0.0.0/8, ::1/128)"
    }
    assert fields(post(host="ground.example")) == {
        "host": "'ground.example' is not an IP address (or localhost)"
    }
    assert fields(post(rate_hz=5000)) == {
        "rate_hz": "5000 Hz is more than telemetry.max_rate_hz (1000 Hz)"
    }
    assert fields(post(loss=1)) == {"loss": "Input should be less than 1"}
    assert fields(post(colour="red")) == {"colour": "Extra inputs are not permitted"}
    assert fields(web.post("/api/runs", json={"messages": 5, "scenario": "telemetry"})) == {
        "scenario": "Value error, telemetry streams are scheduled, not run: "
        "POST /api/telemetry/schedules"
    }


def test_a_schedule_is_stored_listed_and_cancelled(web: FlaskClient, engine: Engine) -> None:
    created = web.post("/api/telemetry/schedules", json=body(rate_hz=20.0, duration_s=1.5))
    assert created.status_code == 201, created.get_json()
    schedule = created.get_json()
    sid = schedule["id"]
    assert created.headers["Location"] == f"/api/telemetry/schedules/{sid}"
    assert (schedule["state"], schedule["packets_expected"], schedule["packets_sent"]) == (
        "scheduled",
        30,
        0,
    )
    assert web.get(f"/api/telemetry/schedules/{sid}").get_json() == schedule
    other = web.post("/api/telemetry/schedules", json=body(ship="pioneer-10")).get_json()
    page = web.get("/api/telemetry/schedules?per_page=1").get_json()
    assert (page["total"], page["pages"], [s["id"] for s in page["items"]]) == (2, 2, [other["id"]])
    mine = web.get("/api/telemetry/schedules?ship=voyager-1").get_json()
    assert [s["id"] for s in mine["items"]] == [sid]
    # Its start is a due item of the scheduler's, with the start command as its record.
    with engine.connect() as conn:
        timer = store.get_timer(conn, sid)
    assert timer is not None and (timer.kind, timer.topic, timer.key) == (
        "publish",
        "herald.telemetry.commands",
        sid,
    )
    command = msgspec.json.decode(timer.payload, type=StreamCommand)
    assert (command.action, command.ship, command.rate_hz, command.port) == (
        "start",
        "voyager-1",
        20.0,
        47100,
    )
    cancelled = web.delete(f"/api/telemetry/schedules/{sid}")
    assert (cancelled.status_code, cancelled.get_json()["state"]) == (200, "cancelled")
    again = web.delete(f"/api/telemetry/schedules/{sid}")
    assert (again.status_code, again.get_json()["error"]) == (
        409,
        f"schedule {sid} is cancelled: it cannot be stopped",
    )
    with engine.connect() as conn:
        assert store.get_timer(conn, sid).state == "cancelled"  # type: ignore[union-attr]
    listed = web.get("/api/telemetry/schedules?state=cancelled").get_json()
    assert [s["id"] for s in listed["items"]] == [sid]
    missing = web.get(f"/api/telemetry/schedules/{'0' * 32}")
    assert (missing.status_code, missing.get_json()["error"]) == (404, f"no schedule {'0' * 32}")
    assert web.delete(f"/api/telemetry/schedules/{'0' * 32}").status_code == 404


def _commands(settings: Settings, count: int) -> list[StreamCommand]:
    topic = telemetry.COMMANDS.qualified(settings.kafka.namespace)
    return [
        msgspec.json.decode(m.value(), type=StreamCommand)
        for m in read_topic(settings, topic, count)
    ]


def test_the_scheduler_starts_a_stream_at_its_time_even_across_a_restart(
    web: FlaskClient, engine: Engine, tsettings: Settings
) -> None:
    start = datetime.now(UTC) + timedelta(seconds=1.5)
    sid = web.post("/api/telemetry/schedules", json=body(start_at=start.isoformat())).get_json()[
        "id"
    ]
    # A scheduler that claims it, then stops before it is due: its claim lapses, and the next
    # scheduler publishes it.
    first = ServiceThread(scheduler.run, tsettings)
    wait_for(lambda: _lease_owner(engine, sid), 10, "the first scheduler's claim")
    first.join()
    with engine.connect() as conn:
        assert store.get_timer(conn, sid).state == "scheduled"  # type: ignore[union-attr]
    second = ServiceThread(scheduler.run, tsettings)
    try:
        fired = wait_for_state(engine, sid, {"delivered"})
    finally:
        second.join()
    assert fired.fired_at >= start
    (command,) = _commands(tsettings, 1)
    assert (command.action, command.schedule_id, command.ship) == ("start", sid, "voyager-1")
    assert command.start_at == start.replace(microsecond=start.microsecond)
    # Published, not yet started by a spaceship: still scheduled to its readers.
    assert web.get(f"/api/telemetry/schedules/{sid}").get_json()["state"] == "scheduled"


def _lease_owner(engine: Engine, sid: str) -> str | None:
    with engine.connect() as conn:
        row = store.get_timer(conn, sid)
    return row.lease_owner if row is not None else None


def test_a_stream_not_started_by_its_not_after_expires(
    web: FlaskClient, engine: Engine, tsettings: Settings
) -> None:
    # Stored while no scheduler ran: by the time one does, its start is 3 s past, beyond
    # telemetry.not_after_secs (1 s).
    now = datetime.now(UTC)
    row, timer = telemetry.schedule_rows(
        tsettings,
        ship="ship-1",
        start_at=now - timedelta(seconds=3),
        duration_s=1.0,
        rate_hz=5.0,
        host="127.0.0.1",
        port=47100,
        now=now,
    )
    with engine.begin() as conn:
        store.insert_schedule(conn, row, timer)
    running = ServiceThread(scheduler.run, tsettings)
    try:
        wait_for_state(engine, row["id"], {"expired"})
    finally:
        running.join()
    got = web.get(f"/api/telemetry/schedules/{row['id']}").get_json()
    assert (got["state"], got["packets_sent"]) == ("expired", 0)
    assert _commands(tsettings, 0) == []  # never started
    listed = web.get("/api/telemetry/schedules?state=expired").get_json()
    assert [s["id"] for s in listed["items"]] == [row["id"]]


def _figures(web: FlaskClient, sid: str) -> tuple[str, int, int, int]:
    got = web.get(f"/api/telemetry/schedules/{sid}").get_json()
    return got["state"], got["packets_sent"], got["dropped"], got["missed"]


def test_a_stream_in_segments_adds_them_up_and_counts_the_packets_between_as_missed(
    web: FlaskClient, engine: Engine
) -> None:
    # 200 packets: a first segment from 0 handed off after 40 sent and 3 dropped, a second
    # resumed at packet 50 that finishes the stream: 7 missed in between.
    sid = web.post("/api/telemetry/schedules", json=body(duration_s=20.0)).get_json()["id"]
    at = datetime.now(UTC)

    def event(kind: Any, first_k: int, sent: int = 0, dropped: int = 0, **more: Any) -> Any:
        return StreamEvent(
            schedule_id=sid,
            ship="voyager-1",
            event=kind,
            packets_sent=sent,
            dropped=dropped,
            first_k=first_k,
            spaceship=f"spaceship@test:{1 if first_k == 0 else 2}",
            at=at,
            **more,
        )

    first = [
        event("started", 0),
        event("progress", 0, 12, 1),
        event("progress", 0, 30, 2),
    ]
    with engine.begin() as conn:
        store.record_stream_events(conn, first)
        store.record_stream_events(conn, first)  # read twice: adds nothing
    assert _figures(web, sid) == ("streaming", 30, 2, 0)
    with engine.begin() as conn:
        store.record_stream_events(conn, [event("handed_off", 0, 40, 3, reason="moved")])
    assert _figures(web, sid) == ("streaming", 40, 3, 0)
    second = [event("started", 50), event("progress", 50, 60, 1)]
    with engine.begin() as conn:
        store.record_stream_events(conn, second)
        # The first segment's report, late: an older segment changes nothing.
        store.record_stream_events(conn, [event("progress", 0, 45, 3)])
    assert _figures(web, sid) == ("streaming", 100, 4, 7)
    got = web.get(f"/api/telemetry/schedules/{sid}").get_json()
    assert (got["spaceship"], got["reason"]) == ("spaceship@test:2", None)
    with engine.begin() as conn:
        store.record_stream_events(conn, [*second, event("finished", 50, 148, 2)])
    assert _figures(web, sid) == ("done", 188, 5, 7)
    assert 188 + 5 + 7 == 200
    with engine.begin() as conn:
        # Its command read again after its time: the end stays the first one.
        failed = event("failed", 200, reason=spaceship.TIME_PASSED)
        store.record_stream_events(conn, [failed, *first, *second])
        (figures,) = store.stream_figures(conn, [sid])
    assert _figures(web, sid) == ("done", 188, 5, 7)
    assert (figures.packets_sent, figures.dropped, figures.missed) == (188, 5, 7)


def test_a_stream_whose_time_passed_while_no_spaceship_held_it_fails_with_its_misses(
    web: FlaskClient, engine: Engine
) -> None:
    sid = web.post("/api/telemetry/schedules", json=body()).get_json()["id"]
    at = datetime.now(UTC)
    common = {"schedule_id": sid, "ship": "voyager-1", "spaceship": "spaceship@test:1", "at": at}
    with engine.begin() as conn:
        store.record_stream_events(
            conn,
            [
                StreamEvent(event="started", **common),
                # killed after this report: 6 sent, 1 dropped
                StreamEvent(event="progress", packets_sent=6, dropped=1, **common),
                StreamEvent(event="failed", first_k=20, reason=spaceship.TIME_PASSED, **common),
            ],
        )
    got = web.get(f"/api/telemetry/schedules/{sid}").get_json()
    assert _figures(web, sid) == ("failed", 6, 1, 13)
    assert got["reason"] == "its time passed while no spaceship held it"
    assert got["packets_expected"] == 6 + 1 + 13


def test_a_stream_event_of_before_segments_decodes_as_a_first_segment() -> None:
    old = (
        b'{"schedule_id":"%s","ship":"voyager-1","event":"finished","packets_sent":5,'
        b'"dropped":0,"spaceship":"spaceship@a:1","at":"2026-12-01T09:00:00Z"}' % (b"a" * 32)
    )
    event = msgspec.json.decode(old, type=StreamEvent)
    assert (event.event, event.packets_sent, event.first_k) == ("finished", 5, 0)


def test_stream_events_move_a_schedule_on_and_count_its_active_streams(
    web: FlaskClient, engine: Engine, tsettings: Settings
) -> None:
    sid = web.post("/api/telemetry/schedules", json=body()).get_json()["id"]
    other = web.post("/api/telemetry/schedules", json=body()).get_json()["id"]
    at = datetime.now(UTC)

    def event(schedule_id: str, kind: Any, sent: int = 0, **more: Any) -> StreamEvent:
        return StreamEvent(
            schedule_id=schedule_id,
            ship="voyager-1",
            event=kind,
            packets_sent=sent,
            spaceship="spaceship@test:1",
            at=at,
            **more,
        )

    with engine.begin() as conn:
        store.record_stream_events(conn, [event(sid, "started"), event(other, "started")])
    streams = web.get("/api/telemetry/streams").get_json()
    assert streams == {"active": 2, "ships": {"voyager-1": 2}}
    assert web.get("/stream/").get_json() == streams
    got = web.get(f"/api/telemetry/schedules/{sid}").get_json()
    assert (got["state"], got["spaceship"]) == ("streaming", "spaceship@test:1")
    with engine.begin() as conn:
        # The end, then its start read again (a replay): the end is final.
        store.record_stream_events(conn, [event(sid, "finished", 20), event(sid, "started")])
    got = web.get(f"/api/telemetry/schedules/{sid}").get_json()
    assert (got["state"], got["packets_sent"]) == ("done", 20)
    assert got["finished_at"] is not None
    assert web.get("/stream/").get_json() == {"active": 1, "ships": {"voyager-1": 1}}
    # Stopping a running stream: its stop command is out before the 202.
    stopping = web.delete(f"/api/telemetry/schedules/{other}")
    assert (stopping.status_code, stopping.get_json()["state"]) == (202, "stopping")
    (stop,) = _commands(tsettings, 1)
    assert (stop.action, stop.schedule_id) == ("stop", other)
    with engine.begin() as conn:
        store.record_stream_events(conn, [event(other, "stopped", 7, dropped=1)])
    got = web.get(f"/api/telemetry/schedules/{other}").get_json()
    assert (got["state"], got["packets_sent"], got["dropped"]) == ("stopped", 7, 1)
    assert web.get("/api/telemetry/streams").get_json() == {"active": 0, "ships": {}}
    done = web.delete(f"/api/telemetry/schedules/{sid}")
    assert (done.status_code, done.get_json()["error"]) == (
        409,
        f"schedule {sid} is done: it cannot be stopped",
    )


def _frame(sid: str, n: int, ship: str = "voyager-1", **changes: Any) -> TelemetryFrame:
    values: dict[str, Any] = {
        "id": f"{sid}:{n}",
        "schedule_id": sid,
        "ship": ship,
        "apid": telemetry.apid_of(ship),
        "seq": n % 16384,
        "n": n,
        "t": 1_800_000_000.0 + n / 10,
        "voltage": 28.0 + n / 100,
        "current": 8.0,
        "temperature": 12.0,
        "soc": 0.5 + n / 1000,
        "sunlit": False,
        "reordered": False,
        "sender": "127.0.0.1:5000",
        "ingestor": "ingestor@test:1",
        "received_at": datetime.now(UTC),
        **changes,
    }
    return TelemetryFrame(**values)


def test_each_frame_is_stored_once_and_counted_once_per_ship(engine: Engine) -> None:
    sid, other = "a" * 32, "b" * 32
    batch = [_frame(sid, n) for n in (0, 1, 3)] + [_frame(sid, 2, reordered=True)]
    batch += [_frame(other, 0, ship="pioneer-10")]
    with engine.begin() as conn:
        assert store.write_frames(conn, batch) == 5
    with engine.begin() as conn:
        # The same batch again (a replay after a crash), and a duplicate within one batch.
        assert store.write_frames(conn, [*batch, _frame(sid, 4), _frame(sid, 4)]) == 1
    with engine.connect() as conn:
        ships = {r.ship: r for r in store.ship_summaries(conn)}
        rows = conn.execute(
            text("SELECT n FROM telemetry_frames WHERE schedule_id = :s ORDER BY n"), {"s": sid}
        ).all()
    assert [r.n for r in rows] == [0, 1, 2, 3, 4]
    voyager = ships["voyager-1"]
    assert (voyager.frames, voyager.reordered) == (5, 1)
    assert (voyager.last_soc, voyager.last_voltage) == (0.504, 28.04)
    assert (ships["pioneer-10"].frames, ships["pioneer-10"].reordered) == (1, 0)
    assert json.dumps(sorted(ships)) == '["pioneer-10", "voyager-1"]'


def test_the_telemetry_monitor_counts_streams_frames_and_loss_per_ship(
    web: FlaskClient, engine: Engine
) -> None:
    voyager = web.post("/api/telemetry/schedules", json=body()).get_json()["id"]
    pioneer = web.post("/api/telemetry/schedules", json=body(ship="pioneer-10")).get_json()["id"]
    at = datetime.now(UTC)

    def event(sid: str, ship: str, kind: Any, sent: int = 0, dropped: int = 0) -> StreamEvent:
        return StreamEvent(
            schedule_id=sid,
            ship=ship,
            event=kind,
            packets_sent=sent,
            dropped=dropped,
            spaceship="spaceship@test:1",
            at=at,
        )

    # voyager-1: packets 0, 1 and 3 arrive (2 lost so far); pioneer-10: 0..4, none lost.
    frames = [_frame(voyager, n, received_at=at) for n in (0, 1, 3)]
    frames += [_frame(pioneer, n, ship="pioneer-10", received_at=at) for n in range(5)]
    with engine.begin() as conn:
        store.record_stream_events(
            conn, [event(voyager, "voyager-1", "started"), event(pioneer, "pioneer-10", "started")]
        )
        assert store.write_frames(conn, frames) == 8
    with engine.connect() as conn:
        rows = {r.ship: r for r in store.telemetry_figures(conn, recent=3600)}
    assert {
        ship: (r.active, r.expected, r.due, r.stored, r.recent) for ship, r in rows.items()
    } == {
        "pioneer-10": (1, 20, 5, 5, 5),
        "voyager-1": (1, 20, 4, 3, 3),
    }
    # voyager-1 ends having sent 5 and dropped 1 on purpose: its last two never arrived, so
    # 6 were due and 3 are lost (the drop included); pioneer-10 streams on.
    with engine.begin() as conn:
        store.record_stream_events(conn, [event(voyager, "voyager-1", "finished", 5, 1)])
    name, snap = first_event(web, "/telemetry/events")
    assert name == "telemetry"
    assert {
        k: snap[k] for k in ("streams_active", "streams", "sent", "dropped", "due", "stored")
    } == {
        "streams_active": 1,
        "streams": 2,
        "sent": 5,
        "dropped": 1,
        "due": 11,
        "stored": 8,
    }
    assert (snap["lost"], snap["loss_pct"]) == (3, round(100 * 3 / 11, 3))
    by_ship = {s["ship"]: s for s in snap["ships"]}
    assert [(s["ship"], s["active"], s["due"], s["stored"], s["lost"]) for s in snap["ships"]] == [
        ("pioneer-10", 1, 5, 5, 0),
        ("voyager-1", 0, 6, 3, 3),
    ]
    assert (by_ship["voyager-1"]["soc"], by_ship["voyager-1"]["voltage"]) == (0.503, 28.03)
    # The charts: each ship's samples averaged per second (these all fall in one second).
    assert snap["series"] == {
        "pioneer-10": [{"t": 1_800_000_000, "soc": 0.502, "voltage": 28.02, "temperature": 12.0}],
        "voyager-1": [{"t": 1_800_000_000, "soc": 0.5013, "voltage": 28.013, "temperature": 12.0}],
    }
    # One run's streams only: these schedules belong to none.
    assert first_event(web, "/telemetry/events?run_id=9d2b4f6a8c0e")[1]["ships"] == []
    page = web.get("/telemetry?run_id=9d2b4f6a8c0e")
    assert page.status_code == 200
    assert 'data-run-id="9d2b4f6a8c0e"' in page.get_data(as_text=True)
    assert web.get("/telemetry?run_id=../etc").status_code == 404
