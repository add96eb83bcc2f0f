"""Telemetry streams end to end on the real broker, database and UDP on loopback: the API
schedules, the scheduler starts, a spaceship streams, an ingestor receives, the recorder
stores (all in threads of this process, each through its own ``run``)."""

from __future__ import annotations

import json
import math
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from herald import contracts
from herald.config import Settings
from herald.db import store
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.services import ingestor, recorder, scheduler, spaceship
from herald.web import create_app
from herald.web.app import state
from tests.support.cluster import ServiceThread
from tests.support.timers import engine_for, timer_settings
from tests.support.topics import read_topic
from tests.support.waiting import wait_for


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def port() -> int:
    return _free_udp_port()


@pytest.fixture
def tsettings(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, port: int
) -> Settings:
    return timer_settings(
        broker, database, namespace, telemetry={"port_min": port, "port_max": port}
    )


@pytest.fixture
def engine(tsettings: Settings) -> Iterator[Engine]:
    eng = engine_for(tsettings)
    with eng.begin() as conn:
        conn.execute(
            text("TRUNCATE timers, telemetry_schedules, telemetry_frames, telemetry_ships")
        )
    yield eng
    eng.dispose()


@pytest.fixture
def web(tsettings: Settings, engine: Engine) -> Iterator[FlaskClient]:
    app = create_app(tsettings)
    app.config["TESTING"] = True
    yield app.test_client()
    state(app).close()


@pytest.fixture
def pipeline(tsettings: Settings, engine: Engine) -> Iterator[list[ServiceThread]]:
    started = [
        ServiceThread(ingestor.run, tsettings),
        ServiceThread(recorder.run, tsettings),
        ServiceThread(spaceship.run, tsettings),
        ServiceThread(scheduler.run, tsettings),
    ]
    try:
        yield started
    finally:
        for service in reversed(started):
            service.join()


def schedule(web: FlaskClient, port: int, **changes: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(seconds=1)
    response = web.post(
        "/api/telemetry/schedules",
        json={
            "ship": "voyager-1",
            "start_at": start.isoformat(),
            "duration_s": 2.0,
            "rate_hz": 20.0,
            "host": "127.0.0.1",
            "port": port,
            **changes,
        },
    )
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def _ended(web: FlaskClient, sid: str) -> dict[str, Any] | None:
    got: dict[str, Any] = web.get(f"/api/telemetry/schedules/{sid}").get_json()
    return got if got["state"] in ("done", "stopped", "failed") else None


def _frames(engine: Engine, sid: str) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT n FROM telemetry_frames WHERE schedule_id = :s ORDER BY n"), {"s": sid}
        )
        return [r.n for r in rows]


def _stored(engine: Engine, sid: str, count: int) -> list[int] | None:
    frames = _frames(engine, sid)
    return frames if len(frames) >= count else None


@pytest.mark.usefixtures("pipeline")
def test_a_stream_sends_exactly_rate_times_duration_packets_each_stored_once(
    web: FlaskClient, engine: Engine, port: int
) -> None:
    # 40 packets over 8 s: long enough that the recorder, however far behind on a loaded
    # machine, applies the stream's start before its end (a 2 s stream's could come in one batch).
    sid = schedule(web, port, duration_s=8.0, rate_hz=5.0)["id"]
    # The active-stream count rises while it streams...
    streams = wait_for(
        lambda: (s := web.get("/api/telemetry/streams").get_json())["active"] and s,
        30,
        "the stream to be active",
    )
    assert streams == {"active": 1, "ships": {"voyager-1": 1}}
    ended = wait_for(lambda: _ended(web, sid), 30, f"stream {sid} to end")
    assert (ended["state"], ended["packets_expected"], ended["packets_sent"]) == ("done", 40, 40)
    assert ended["dropped"] == 0 and ended["spaceship"].startswith("spaceship@")
    # ...and falls back to 0.
    assert web.get("/stream/").get_json() == {"active": 0, "ships": {}}
    assert wait_for(lambda: _stored(engine, sid, 40), 30, "40 frames") == list(range(40))
    with engine.connect() as conn:
        (figures,) = store.stream_figures(conn, [sid])
        (ship,) = store.ship_summaries(conn)
    assert (figures.stored, figures.distinct_stored, figures.reordered) == (40, 40, 0)
    assert (ship.ship, ship.frames) == ("voyager-1", 40)
    assert 0.0 <= ship.last_soc <= 1.0


@pytest.mark.usefixtures("pipeline")
def test_a_lossy_stream_is_reported_with_its_loss(
    web: FlaskClient, engine: Engine, port: int
) -> None:
    sid = schedule(web, port, rate_hz=100.0, duration_s=4.0, loss=0.2)["id"]
    ended = wait_for(lambda: _ended(web, sid), 40, f"stream {sid} to end")
    sent, dropped = ended["packets_sent"], ended["dropped"]
    assert sent + dropped == 400
    # Each packet is dropped with probability 0.2: 80 expected, binomial sd √(400·0.2·0.8) = 8;
    # four sd either way (the seed is the schedule's, different every run).
    assert abs(dropped - 80) <= 4 * math.sqrt(400 * 0.2 * 0.8)
    frames = wait_for(lambda: _stored(engine, sid, sent), 30, f"{sent} frames")
    # Loopback loses nothing more: what is stored is exactly what was sent, each once, and the
    # gaps in the numbers are the drops.
    assert len(frames) == len(set(frames)) == sent
    assert 400 - len(frames) == dropped
    assert max(frames) <= 399


@pytest.mark.usefixtures("pipeline")
def test_a_malformed_datagram_is_dead_lettered_and_the_stream_goes_on(
    web: FlaskClient, engine: Engine, port: int, tsettings: Settings
) -> None:
    sid = schedule(web, port, duration_s=3.0)["id"]
    wait_for(lambda: _stored(engine, sid, 5), 30, "the stream's first frames")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rogue:
        rogue.bind(("127.0.0.1", 0))
        rogue.sendto(b"not a space packet", ("127.0.0.1", port))
        sender = f"127.0.0.1:{rogue.getsockname()[1]}"
    (letter,) = read_topic(tsettings, contracts.DLQ.qualified(tsettings.kafka.namespace), 1)
    headers = {k: v.decode() for k, v in letter.headers() or []}
    assert letter.value() == b"not a space packet"
    assert headers[contracts.DLQ_REASON] == (
        "PacketError: too short: 18 bytes, a packet has at least 48"
    )
    assert headers[contracts.DLQ_SENDER] == sender
    assert (headers[contracts.DLQ_TOPIC], headers[contracts.DLQ_SERVICE]) == (
        f"udp:{port}",
        "ingestor",
    )
    ended = wait_for(lambda: _ended(web, sid), 30, f"stream {sid} to end")
    assert (ended["state"], ended["packets_sent"]) == ("done", 60)
    assert wait_for(lambda: _stored(engine, sid, 60), 30, "60 frames") == list(range(60))


@pytest.mark.usefixtures("pipeline")
def test_a_running_stream_is_stopped_by_delete(
    web: FlaskClient, engine: Engine, port: int, tsettings: Settings
) -> None:
    sid = schedule(web, port, duration_s=600.0, rate_hz=10.0)["id"]
    wait_for(lambda: _stored(engine, sid, 3), 30, "the stream's first frames")
    stopping = web.delete(f"/api/telemetry/schedules/{sid}")
    assert (stopping.status_code, stopping.get_json()["state"]) == (202, "stopping")
    ended = wait_for(lambda: _ended(web, sid), 30, f"stream {sid} to stop")
    assert ended["state"] == "stopped"
    assert 3 <= ended["packets_sent"] < 6000
    stored = wait_for(lambda: _stored(engine, sid, ended["packets_sent"]), 30, "the frames")
    assert stored == list(range(ended["packets_sent"]))
    assert web.get("/api/telemetry/streams").get_json()["active"] == 0
    events = read_topic(tsettings, f"{tsettings.kafka.namespace}.herald.telemetry.streams", 2)
    kinds = Counter(json.loads(m.value())["event"] for m in events)
    # Besides its start and its end, a progress report every telemetry.progress_secs.
    assert kinds - Counter({"progress": kinds["progress"]}) == Counter({"started": 1, "stopped": 1})
