"""Telemetry streams end to end on the real broker, database and UDP on loopback: the API
schedules, the scheduler starts, a spaceship streams, an ingestor receives, the recorder
stores (all in threads of this process, each through its own ``run``)."""

from __future__ import annotations

import json
import math
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from herald import contracts, kafka
from herald.config import Settings
from herald.db import store
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.services import ingestor, recorder, scheduler, spaceship
from herald.web import create_app
from herald.web.app import state
from tests.support.cluster import ServiceThread, make_settings
from tests.support.timers import FAST, engine_for, timer_settings
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


def _services(tsettings: Settings, *runs: Any) -> Iterator[list[ServiceThread]]:
    """Each service in a thread, stopped in reverse order."""
    started = [ServiceThread(run, tsettings) for run in runs]
    try:
        yield started
    finally:
        for service in reversed(started):
            service.join()


@pytest.fixture
def pipeline(tsettings: Settings, engine: Engine) -> Iterator[list[ServiceThread]]:
    yield from _services(tsettings, ingestor.run, recorder.run, spaceship.run, scheduler.run)


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


# -- streams that outlive their spaceship ------------------------------------------------------


@pytest.fixture
def ground(tsettings: Settings, engine: Engine) -> Iterator[list[ServiceThread]]:
    """The pipeline without a spaceship: each test starts and stops its own."""
    yield from _services(tsettings, ingestor.run, recorder.run, scheduler.run)


class Joined(threading.Event):
    """Stands in for a spaceship's announcer: set once it holds its first partitions."""

    def ready(self, partitions: Any = ()) -> None:
        self.set()


def _events(tsettings: Settings, sid: str, count: int) -> list[dict[str, Any]]:
    """The stream's events on herald.telemetry.streams, in order, progress reports aside."""
    topic = f"{tsettings.kafka.namespace}.herald.telemetry.streams"
    values = [json.loads(m.value()) for m in read_topic(tsettings, topic, count)]
    return [v for v in values if v["schedule_id"] == sid and v["event"] != "progress"]


def _received(tsettings: Settings, sid: str, count: int) -> Counter[int]:
    """How often each packet of the stream was published by the ingestor, duplicates counted."""
    topic = f"{tsettings.kafka.namespace}.herald.telemetry.frames"
    frames = [json.loads(m.value()) for m in read_topic(tsettings, topic, count)]
    return Counter(f["n"] for f in frames if f["schedule_id"] == sid)


@pytest.mark.usefixtures("ground")
def test_a_stream_handed_off_in_a_rebalance_is_resumed_and_no_packet_is_sent_twice(
    web: FlaskClient, engine: Engine, port: int, tsettings: Settings
) -> None:
    first = ServiceThread(spaceship.run, tsettings)
    sid = schedule(web, port, duration_s=20.0, rate_hz=10.0)["id"]
    wait_for(lambda: _stored(engine, sid, 10), 30, "the stream's first frames")
    # A second spaceship joins mid-stream (the rebalance may move the stream's partition to
    # it), then the first stops gracefully (every partition it held goes to the second):
    # either way the stream is handed off exactly once, from the first to the second.
    joined = Joined()
    second = ServiceThread(spaceship.run, tsettings, announcer=joined)
    try:
        wait_for(joined.is_set, 60, "the second spaceship to hold partitions")
        first.join()
        ended = wait_for(lambda: _ended(web, sid), 60, f"stream {sid} to end")
    finally:
        second.join()
    sent, dropped, missed = ended["packets_sent"], ended["dropped"], ended["missed"]
    assert (ended["state"], dropped) == ("done", 0)
    assert sent + dropped + missed == ended["packets_expected"] == 200
    events = _events(tsettings, sid, 4)
    assert [e["event"] for e in events] == ["started", "handed_off", "started", "finished"]
    handed, resumed, finished = events[1], events[2], events[3]
    handed_end = handed["first_k"] + handed["packets_sent"]
    assert (events[0]["first_k"], handed["first_k"]) == (0, 0)
    assert resumed["first_k"] == finished["first_k"] == handed_end + missed
    assert handed["packets_sent"] + finished["packets_sent"] == sent
    # Every packet sent arrived once (loopback): those of the first segment, those from the
    # resume point on; none of those in between, none twice.
    received = _received(tsettings, sid, sent)
    assert sorted(received) == [*range(handed_end), *range(resumed["first_k"], 200)]
    assert set(received.values()) == {1}
    assert sum(received.values()) == sent
    assert web.get("/api/telemetry/streams").get_json()["active"] == 0


@pytest.fixture
def one_partition(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, port: int
) -> Settings:
    # One partition: both streams' commands on it, the older one holding back its commit (and
    # one sender: a sender needs a partition of its own).
    settings = make_settings(
        broker,
        database,
        namespace,
        kafka={"partitions": 1},
        senders=[{}],
        scheduler=FAST["scheduler"],
        telemetry={"port_min": port, "port_max": port},
    )
    kafka.ensure_topics(settings.kafka)
    return settings


def test_a_command_read_again_after_its_time_fails_unless_its_stream_ended(
    one_partition: Settings, port: int
) -> None:
    tsettings = one_partition
    eng = engine_for(tsettings)
    with eng.begin() as conn:
        conn.execute(
            text("TRUNCATE timers, telemetry_schedules, telemetry_frames, telemetry_ships")
        )
    app = create_app(tsettings)
    web = app.test_client()
    services = [
        ServiceThread(ingestor.run, tsettings),
        ServiceThread(recorder.run, tsettings),
        ServiceThread(scheduler.run, tsettings),
    ]
    first = ServiceThread(spaceship.run, tsettings)
    try:
        long = schedule(web, port, duration_s=4.0, rate_hz=10.0)
        # Published after the long one's (the scheduler fires in due order): behind it.
        later = datetime.fromisoformat(long["start_at"]) + timedelta(seconds=0.6)
        short = schedule(
            web, port, duration_s=1.0, rate_hz=10.0, ship="voyager-2", start_at=later.isoformat()
        )
        done = wait_for(lambda: _ended(web, short["id"]), 30, "the short stream to end")
        assert (done["state"], done["packets_sent"]) == ("done", 10)
        wait_for(lambda: _stored(eng, long["id"], 3), 30, "the long stream's first frames")
        first.join()  # its streams handed off, and no spaceship left to resume them
        got = web.get(f"/api/telemetry/schedules/{long['id']}").get_json()
        assert got["state"] == "streaming"
        end = datetime.fromisoformat(long["start_at"]) + timedelta(seconds=4.0)
        # Waiting for the stream's time to pass: what the test is about, not a synchronisation.
        wait_for(lambda: datetime.now(UTC) > end, 30, "the long stream's time to pass")
        second = ServiceThread(spaceship.run, tsettings)
        try:
            failed = wait_for(lambda: _ended(web, long["id"]), 60, "the long stream to end")
        finally:
            second.join()
        assert (failed["state"], failed["reason"]) == (
            "failed",
            "its time passed while no spaceship held it",
        )
        assert failed["packets_sent"] + failed["dropped"] + failed["missed"] == 40
        assert failed["missed"] >= 1
        # The short stream's command was read again too (behind the long one): its end stays.
        again = web.get(f"/api/telemetry/schedules/{short['id']}").get_json()
        assert (again["state"], again["packets_sent"], again["missed"], again["reason"]) == (
            "done",
            10,
            0,
            None,
        )
        events = _events(tsettings, short["id"], 6)
        assert [e["event"] for e in events] == ["started", "finished", "failed"]
        assert events[2]["reason"] == "its time passed while no spaceship held it"
        long_events = _events(tsettings, long["id"], 6)
        assert [e["event"] for e in long_events] == ["started", "handed_off", "failed"]
    finally:
        if first.thread.is_alive():
            first.join()
        for service in reversed(services):
            service.join()
        state(app).close()
        eng.dispose()
