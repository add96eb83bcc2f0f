"""A spaceship SIGKILLed mid-stream: ``herald spaceship`` processes on the session's broker,
the rest of the pipeline (ingestor, recorder, scheduler) in threads of this test. The
survivor resumes the stream, which ends ``done``; every packet from the resume point on is
published once, and none twice at all (counted on the frames topic, duplicates included)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.services import ingestor, recorder, scheduler
from herald.web import create_app
from herald.web.app import state
from tests.support.cluster import ServiceThread
from tests.support.processes import HERALD, external
from tests.support.timers import engine_for, timer_settings
from tests.support.topics import read_topic
from tests.support.waiting import wait_for

RATE_HZ, SECS = 10.0, 20.0
TOTAL = round(RATE_HZ * SECS)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _spaceship(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [HERALD, "spaceship"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _says(proc: subprocess.Popen[bytes], log: Path, words: str) -> bool:
    assert proc.poll() is None, log.read_text()
    return words in log.read_text()


def test_a_spaceship_killed_mid_stream_leaves_its_stream_to_the_survivor(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, tmp_path: Path
) -> None:
    port = _free_udp_port()
    settings = timer_settings(
        broker, database, namespace, telemetry={"port_min": port, "port_max": port}
    )
    engine = engine_for(settings)
    with engine.begin() as conn:
        conn.execute(
            text("TRUNCATE timers, telemetry_schedules, telemetry_frames, telemetry_ships")
        )
    env = external(broker, database, namespace, tmp_path)
    logs = [tmp_path / "spaceship-0.log", tmp_path / "spaceship-1.log"]
    ships: list[subprocess.Popen[bytes]] = []
    services: list[ServiceThread] = []
    app = create_app(settings)
    try:
        ships.append(_spaceship(env, logs[0]))
        wait_for(lambda: _says(ships[0], logs[0], ": assigned "), 60, "the first spaceship")
        ships.append(_spaceship(env, logs[1]))
        # The group of two settled: the first gave some partitions up, the second holds them.
        wait_for(lambda: _says(ships[1], logs[1], ": assigned "), 60, "the second spaceship")
        wait_for(lambda: _says(ships[0], logs[0], ": revoked "), 60, "the first to give some up")
        services += [
            ServiceThread(ingestor.run, settings),
            ServiceThread(recorder.run, settings),
            ServiceThread(scheduler.run, settings),
        ]
        start = datetime.now(UTC) + timedelta(seconds=1)
        created = app.test_client().post(
            "/api/telemetry/schedules",
            json={
                "ship": "voyager-1",
                "start_at": start.isoformat(),
                "duration_s": SECS,
                "rate_hz": RATE_HZ,
                "host": "127.0.0.1",
                "port": port,
            },
        )
        assert created.status_code == 201, created.get_json()
        sid = created.get_json()["id"]

        def schedule() -> Any:
            with engine.connect() as conn:
                return conn.execute(
                    text(
                        "SELECT s.*, (SELECT count(*) FROM telemetry_frames f"
                        " WHERE f.schedule_id = s.id) AS stored"
                        " FROM telemetry_schedules s WHERE s.id = :s"
                    ),
                    {"s": sid},
                ).one()

        # Under way, with a progress report in Postgres: then its holder is killed.
        running = wait_for(
            lambda: (r := schedule()).packets_sent >= 10 and r.stored >= 10 and r,
            30,
            "the stream under way",
        )
        pid = int(running.spaceship.rsplit(":", 1)[1])
        holder = next(p for p in ships if p.pid == pid)
        survivor = next(p for p in ships if p.pid != pid)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        ended = wait_for(
            lambda: (r := schedule()).state in ("done", "failed", "stopped") and r,
            90,
            "the stream to end",
        )
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(30) == 0
    finally:
        for proc in ships:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for service in reversed(services):
            service.join()
        state(app).close()
        engine.dispose()
    assert (ended.state, ended.reason) == ("done", None)
    assert ended.packets_sent + ended.dropped + ended.missed == ended.packets_expected == TOTAL
    ns = settings.kafka.namespace
    events = [
        json.loads(m.value())
        for m in read_topic(settings, f"{ns}.herald.telemetry.streams", 3)
        if json.loads(m.value())["schedule_id"] == sid
    ]
    killed = [e for e in events if e["spaceship"].endswith(f":{pid}")]
    resumed = [e for e in events if not e["spaceship"].endswith(f":{pid}")]
    # The killed one said it started and how far it got, never that it gave the stream up.
    assert {e["event"] for e in killed} == {"started", "progress"}
    assert [e["event"] for e in resumed if e["event"] != "progress"] == ["started", "finished"]
    k0 = resumed[0]["first_k"]
    last_report = max(e["packets_sent"] for e in killed)
    # Missed: from the killed one's last report to the resume point (its packets sent after
    # that report count as missed: the report is all Postgres knew of them).
    assert ended.missed == k0 - last_report
    assert resumed[-1]["packets_sent"] == TOTAL - k0
    frames = read_topic(settings, f"{ns}.herald.telemetry.frames", last_report + TOTAL - k0)
    received = Counter(json.loads(m.value())["n"] for m in frames)
    assert set(received.values()) == {1}  # no packet published twice
    # The killed one's packets, from 0 up to wherever it was killed (at least its last
    # report, never past the resume point); then every packet from the resume point on.
    before = sorted(n for n in received if n < k0)
    assert before == list(range(len(before)))
    assert last_report <= len(before) <= k0
    assert sorted(n for n in received if n >= k0) == list(range(k0, TOTAL))
