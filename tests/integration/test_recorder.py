"""Recorder against the real broker and database: exact rows, idempotent on replays."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import psycopg
import pytest
from sqlalchemy import text

from herald import contracts, runs
from herald.config import Settings
from herald.contracts import SmsResult
from herald.db.engine import make_engine, migrate
from herald.errors import StorageError
from herald.runtime.database import EmbeddedDatabase
from herald.services import recorder
from tests.conftest import ServiceThread, produce_records, read_topic, wait_for


def results_for(run_id: str, n: int, failed_every: int = 4) -> list[SmsResult]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        SmsResult(
            message_id=f"{run_id}-{i}",
            run_id=run_id,
            seq=i,
            sender_id=i % 3,
            status="failed" if i % failed_every == 0 else "sent",
            latency_ms=float(i % 100),
            attempts=1,
            created_at=t0 + timedelta(milliseconds=i),
            received_at=t0 + timedelta(milliseconds=i + 1),
            completed_at=t0 + timedelta(milliseconds=i + 1 + i % 100),
            failure_reason="carrier rejected" if i % failed_every == 0 else None,
        )
        for i in range(n)
    ]


def encoded(results: list[SmsResult]) -> list[tuple[bytes | None, bytes]]:
    return [(r.message_id.encode(), msgspec.json.encode(r)) for r in results]


def db_counts(settings: Settings, run_id: str) -> tuple[int, int, int, int, int, object]:
    engine = make_engine(settings.database.url or "")
    try:
        with engine.connect() as conn:
            n, sent, failed = conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE status='sent'), "
                    "count(*) FILTER (WHERE status='failed') FROM outcomes WHERE run_id=:r"
                ),
                {"r": run_id},
            ).one()
            row = conn.execute(
                text("SELECT sent, failed, finished_at FROM runs WHERE run_id=:r"), {"r": run_id}
            ).first()
    finally:
        engine.dispose()
    if row is None:
        return n, sent, failed, -1, -1, None
    return n, sent, failed, row[0], row[1], row[2]


def test_outcomes_are_recorded_once_even_when_replayed(settings: Settings) -> None:
    request = runs.make_request(3000, seed=1)
    rid = request.run_id
    results = results_for(rid, 3000)
    topic = contracts.RESULTS.qualified(settings.kafka.namespace)
    runs.submit(settings.kafka, request)
    produce_records(settings, topic, encoded(results[:2000]))
    svc = ServiceThread(recorder.run, settings)
    try:
        wait_for(lambda: db_counts(settings, rid)[0] == 2000, 60, "2000 outcomes")
        # A replay: the first 1000 again (as after a crash), plus the last 1000 new ones.
        produce_records(settings, topic, encoded(results[:1000] + results[2000:]))
        wait_for(
            lambda: db_counts(settings, rid)[3] + db_counts(settings, rid)[4] == 3000,
            60,
            "run totals of 3000",
        )
    finally:
        assert svc.join() == 0
    n, sent, failed, run_sent, run_failed, finished = db_counts(settings, rid)
    assert (n, sent, failed) == (3000, 2250, 750)
    assert (run_sent, run_failed) == (2250, 750)  # replayed rows were not counted twice
    assert finished is not None
    engine = make_engine(settings.database.url or "")
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT run_id, sender_id, status, latency_ms, attempts, failure_reason, "
                "created_at, completed_at FROM outcomes WHERE message_id=:m"
            ),
            {"m": f"{rid}-8"},
        ).one()
        run_row = conn.execute(
            text("SELECT expected, seed, scenario, started_at FROM runs WHERE run_id=:r"),
            {"r": rid},
        ).one()
    engine.dispose()
    r8 = results[8]
    assert tuple(row) == (
        rid,
        2,
        "failed",
        8.0,
        1,
        "carrier rejected",
        r8.created_at,
        r8.completed_at,
    )
    assert tuple(run_row) == (3000, 1, "sms", results[0].created_at)


def test_invalid_results_are_dead_lettered_and_valid_ones_recorded(settings: Settings) -> None:
    rid = runs.new_run_id()
    topic = contracts.RESULTS.qualified(settings.kafka.namespace)
    produce_records(settings, topic, [(b"bad", b"{}"), *encoded(results_for(rid, 10))])
    svc = ServiceThread(recorder.run, settings)
    try:
        wait_for(lambda: db_counts(settings, rid)[0] == 10, 60, "10 outcomes")
        dead = read_topic(settings, contracts.DLQ.qualified(settings.kafka.namespace), 1)
    finally:
        svc.join()
    assert len(dead) == 1
    headers = dict(dead[0].headers())
    assert headers[contracts.DLQ_SERVICE] == b"recorder"
    assert headers[contracts.DLQ_REASON].startswith(b"ValidationError: Object missing required")


def test_database_outage_is_retried_without_loss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = EmbeddedDatabase(tmp_path / "pg").start()
    url = db.url or ""
    migrate(url)
    rid = runs.new_run_id()
    results = results_for(rid, 10)
    writer = recorder.OutcomeWriter(url)
    try:
        assert writer.write(results[:5]) == 5
        db.stop()
        with pytest.raises(psycopg.OperationalError):
            writer.write(results[5:])
        caplog.set_level(logging.INFO, logger="herald.services.recorder")
        retry = threading.Thread(
            target=recorder._write_until_stored,
            args=(writer, results[5:], [], threading.Event()),
        )
        retry.start()
        wait_for(lambda: "database unavailable" in caplog.text, 30, "the outage log line")
        db.start()
        retry.join(60)
        assert not retry.is_alive()
    finally:
        writer.close()
        db.stop()
    assert caplog.text.count("database unavailable") == 1  # one line per outage
    assert "database back after" in caplog.text
    db.start()
    try:
        engine = make_engine(url)
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM outcomes WHERE run_id=:r"), {"r": rid})
            assert n.scalar_one() == 10
        engine.dispose()
    finally:
        db.stop()


def test_recorder_joins_first_and_writes_once_the_database_url_arrives(
    settings: Settings, tmp_path: Path
) -> None:
    """sim.run's recorder starts before its database: it waits for the URL file."""
    url_file = tmp_path / "database-url"
    ready = tmp_path / "ready"
    no_url = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": None})}
    )
    rid = runs.new_run_id()
    produce_records(
        settings,
        contracts.RESULTS.qualified(settings.kafka.namespace),
        encoded(results_for(rid, 40)),
    )
    svc = ServiceThread(recorder.run, no_url, ready_file=ready, url_file=url_file)
    try:
        time.sleep(1.0)  # the recorder is waiting: nothing may be written, nor partitions taken
        assert svc.thread.is_alive()
        assert not ready.exists()
        assert db_counts(settings, rid)[0] == 0
        url_file.write_text(settings.database.url or "")
        wait_for(lambda: db_counts(settings, rid)[0] == 40, 60, "40 outcomes")
        assert ready.exists()
    finally:
        assert svc.join() == 0


def test_recorder_without_a_database_url_in_time_stops_with_a_clear_error(
    settings: Settings, tmp_path: Path
) -> None:
    no_url = settings.model_copy(
        update={
            "database": settings.database.model_copy(
                update={"url": None, "connect_timeout_secs": 0.3}
            )
        }
    )
    missing = tmp_path / "never-written"
    with pytest.raises(StorageError) as caught:
        recorder.run(no_url, stop=threading.Event(), url_file=missing)
    assert str(caught.value) == (
        f"no database URL in {missing} after 0.3s (database.connect_timeout_secs); "
        "did the database start?"
    )
    with pytest.raises(StorageError) as caught:
        recorder.run(no_url, stop=threading.Event())
    assert str(caught.value) == "database.url is unset and no embedded database was started"


def test_recorder_stopped_while_waiting_for_the_database_url_exits_cleanly(
    settings: Settings, tmp_path: Path
) -> None:
    no_url = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": None})}
    )
    svc = ServiceThread(recorder.run, no_url, url_file=tmp_path / "never-written")
    time.sleep(0.5)
    assert svc.thread.is_alive()
    assert svc.join(10) == 0
