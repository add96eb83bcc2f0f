"""Recorder against the real broker and database: exact rows, idempotent on replays, a run's
completion announced once."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from herald import contracts, control, runs
from herald.config import Settings, load_settings
from herald.contracts import RunCompleted, ServiceEvent
from herald.db.engine import make_engine, migrate
from herald.errors import StorageError
from herald.runtime.database import EmbeddedDatabase
from herald.scenarios import base
from herald.scenarios.sms import RESULTS, SCENARIO
from herald.services import recorder
from tests.support.cluster import ServiceThread
from tests.support.sms import encoded, results_for
from tests.support.topics import committed_total, produce_records, read_topic
from tests.support.waiting import wait_for


def db_counts(settings: Settings, run_id: str) -> tuple[int, int, int, int, int, object]:
    """(rows, sent rows, failed rows, the run's succeeded and failed totals, finished_at)."""
    engine = make_engine(settings.database.url)
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
                text("SELECT succeeded, failed, finished_at FROM runs WHERE run_id=:r"),
                {"r": run_id},
            ).first()
    finally:
        engine.dispose()
    if row is None:
        return n, sent, failed, -1, -1, None
    return n, sent, failed, row[0], row[1], row[2]


def test_outcomes_are_recorded_once_even_when_replayed_and_the_run_announced_once(
    settings: Settings,
) -> None:
    request = runs.make_request(settings, messages=3000, seed=1)
    rid = request.run_id
    results = results_for(rid, 3000)
    topic = RESULTS.qualified(settings.kafka.namespace)
    listener = control.Listener(settings.kafka, since=datetime.now(UTC))
    announcer = control.Announcer(settings.kafka, service="recorder", instance="recorder")
    runs.submit(settings.kafka, request)
    produce_records(settings, topic, encoded(results[:2000]))
    svc = ServiceThread(recorder.run, settings, announcer=announcer)
    events: list[contracts.ControlEvent] = []
    try:
        wait_for(lambda: db_counts(settings, rid)[0] == 2000, 60, "2000 outcomes")
        # A replay: the first 1000 again (as after a crash), plus the last 1000 new ones.
        produce_records(settings, topic, encoded(results[:1000] + results[2000:]))

        def completed() -> bool:
            events.extend(listener.poll(0.2))
            return any(isinstance(e, RunCompleted) for e in events)

        wait_for(completed, 60, "the run's completion on the control topic")
        # A late replay of records of a run already complete and announced: no second word.
        produce_records(settings, topic, encoded(results[:10]))
        # 2000 + 2000 + 10 records: every one committed means the late replay was handled.
        wait_for(
            lambda: committed_total(settings, "recorders", topic) == 4010,
            60,
            "every record committed",
        )
    finally:
        assert svc.join() == 0
        announcer.close()
    events.extend(listener.poll(1.0))
    listener.close()
    n, sent, failed, run_sent, run_failed, finished = db_counts(settings, rid)
    assert (n, sent, failed) == (3000, 2250, 750)
    assert (run_sent, run_failed) == (2250, 750)  # replayed rows were not counted twice
    assert finished is not None
    done = [e for e in events if isinstance(e, RunCompleted)]
    assert [(e.run_id, e.expected, e.counts) for e in done] == [
        (rid, 3000, {"failed": 750, "sent": 2250})
    ]
    ready = [e for e in events if isinstance(e, ServiceEvent) and e.state == "ready"]
    assert [e.instance for e in ready] == ["recorder"]
    engine = make_engine(settings.database.url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT run_id, scenario, worker_id, status, latency_ms, attempts, "
                "failure_reason, detail, created_at, completed_at FROM outcomes "
                "WHERE message_id=:m"
            ),
            {"m": f"{rid}-8"},
        ).one()
        run_row = conn.execute(
            text(
                "SELECT expected, seed, scenario, started_at, announced_at IS NOT NULL "
                "FROM runs WHERE run_id=:r"
            ),
            {"r": rid},
        ).one()
    engine.dispose()
    r8 = results[8]
    assert tuple(row) == (
        rid,
        "sms",
        2,
        "failed",
        8.0,
        1,
        "carrier rejected",
        None,
        r8.created_at,
        r8.completed_at,
    )
    assert tuple(run_row) == (3000, 1, "sms", results[0].created_at, True)


def test_invalid_results_are_dead_lettered_and_valid_ones_recorded(settings: Settings) -> None:
    rid = runs.new_run_id()
    topic = RESULTS.qualified(settings.kafka.namespace)
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
    url = db.url
    migrate(url)
    rid = runs.new_run_id()
    rows = [SCENARIO.outcome(r) for r in results_for(rid, 10)]
    engine = make_engine(url, connect_args={"connect_timeout": 2})
    stop = threading.Event()
    rec = recorder._Recorder(engine, base.by_facts_topic(load_settings()), None, stop)
    try:
        assert rec.writer.write(rows[:5]).new == 5
        db.stop()
        with pytest.raises(OperationalError):
            rec.writer.write(rows[5:])
        caplog.set_level(logging.INFO, logger="herald.services.recorder")
        retry = threading.Thread(target=rec._write_until_stored, args=(rows[5:], []))
        retry.start()
        wait_for(lambda: "database unavailable" in caplog.text, 30, "the outage log line")
        db.start()
        retry.join(60)
        assert not retry.is_alive()
    finally:
        engine.dispose()
        db.stop()
    outage = [r.getMessage() for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(outage) == 2  # one line when it began, one when it was over
    assert "over after" in outage[1] and "batch of 5 stored" in outage[1]
    db.start()
    try:
        engine = make_engine(url)
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM outcomes WHERE run_id=:r"), {"r": rid})
            assert n.scalar_one() == 10
        engine.dispose()
    finally:
        db.stop()


def test_recorder_joins_first_and_writes_once_its_database_is_up_and_migrated(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """sim.run's recorder starts before its database: it waits for it by itself."""
    db = EmbeddedDatabase(tmp_path / "late")  # not started: only its URL is known
    late = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": db.url})}
    )
    rid = runs.new_run_id()
    produce_records(
        settings, RESULTS.qualified(settings.kafka.namespace), encoded(results_for(rid, 40))
    )
    caplog.set_level(logging.INFO, logger="herald.db.pg")
    listener = control.Listener(settings.kafka, since=datetime.now(UTC))
    announcer = control.Announcer(settings.kafka, service="recorder", instance="late-recorder")
    svc = ServiceThread(recorder.run, late, announcer=announcer)
    events: list[contracts.ControlEvent] = []
    try:
        wait_for(lambda: "waiting for Postgres at" in caplog.text, 30, "the recorder waiting")
        db.start()
        wait_for(lambda: "not migrated yet" in caplog.text, 30, "the recorder seeing no tables")
        events.extend(listener.poll(0.5))
        assert [e for e in events if isinstance(e, ServiceEvent)] == []  # not ready: no tables
        migrate(db.url)
        wait_for(lambda: db_counts(late, rid)[0] == 40, 60, "40 outcomes")

        def ready() -> bool:
            events.extend(listener.poll(0.2))
            return any(isinstance(e, ServiceEvent) and e.state == "ready" for e in events)

        wait_for(ready, 30, "the recorder's readiness")
    finally:
        assert svc.join() == 0
        announcer.close()
        listener.close()
        db.stop()


def test_recorder_without_a_database_in_time_stops_with_a_clear_error(
    settings: Settings, tmp_path: Path
) -> None:
    never = EmbeddedDatabase(tmp_path / "never").url
    absent = settings.model_copy(
        update={
            "database": settings.database.model_copy(
                update={"url": never, "connect_timeout_secs": 0.3}
            )
        }
    )
    with pytest.raises(StorageError) as caught:
        recorder.run(absent, stop=threading.Event())
    assert str(caught.value).startswith(
        f"Postgres at {never} unreachable after 0.3s (database.connect_timeout_secs): "
    )
    unset = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": None})}
    )
    with pytest.raises(StorageError) as caught:
        recorder.run(unset, stop=threading.Event())
    assert str(caught.value) == "database.url is unset: the recorder needs a database"


def test_recorder_stopped_while_waiting_for_the_database_exits_cleanly(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    never = EmbeddedDatabase(tmp_path / "never").url
    absent = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": never})}
    )
    caplog.set_level(logging.INFO)
    svc = ServiceThread(recorder.run, absent)
    wait_for(lambda: "waiting for Postgres at" in caplog.text, 30, "the recorder waiting")
    assert svc.thread.is_alive()
    assert svc.join(10) == 0
    assert "recorder stopped while waiting for the database" in caplog.text


def test_outcomes_by_run_come_whole_from_the_bloom_index_when_runs_interleave(
    tmp_path: Path,
) -> None:
    """Migration 0009: ``outcomes_run_id`` is a BRIN bloom index. Three runs written through
    the recorder's writer in turns of 300 rows share every block range; a query by run that
    must use the index still counts each run's rows exactly (a Bloom filter may say a run is
    in a range when it is not, never the reverse, and Postgres rechecks every row)."""
    from alembic import command

    from herald.db.engine import alembic_config
    from herald.db.store import OutcomeWriter

    db = EmbeddedDatabase(tmp_path / "pg").start()
    engine = make_engine(db.url)
    index_def = text("SELECT indexdef FROM pg_indexes WHERE indexname = 'outcomes_run_id'")
    try:
        migrate(db.url)
        with engine.connect() as conn:
            assert conn.execute(index_def).scalar_one() == (
                "CREATE INDEX outcomes_run_id ON public.outcomes USING brin (run_id text_bloom_ops)"
            )
        run_ids = [runs.new_run_id() for _ in range(3)]
        rows = {rid: [SCENARIO.outcome(r) for r in results_for(rid, 9000)] for rid in run_ids}
        writer = OutcomeWriter(engine)
        for start in range(0, 9000, 300):
            for rid in run_ids:
                assert writer.write(rows[rid][start : start + 300]).new == 300
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))
            plan = conn.execute(
                text("EXPLAIN SELECT count(*) FROM outcomes WHERE run_id = :r"),
                {"r": run_ids[0]},
            ).scalars()
            assert "Bitmap Index Scan on outcomes_run_id" in "\n".join(plan)
            counts = [
                conn.execute(
                    text("SELECT count(*) FROM outcomes WHERE run_id = :r"), {"r": r}
                ).scalar_one()
                for r in [*run_ids, "never-written"]
            ]
            pages = conn.execute(
                text("SELECT pg_relation_size('outcomes') / 8192 / 128 + 1")
            ).scalar_one()
        assert counts == [9000, 9000, 9000, 0]
        assert pages >= 2  # the runs span several block ranges, each holding all three
        # Downgraded, the B-tree is back; upgraded again, the bloom index.
        command.downgrade(alembic_config(db.url), "0008")
        with engine.connect() as conn:
            assert conn.execute(index_def).scalar_one() == (
                "CREATE INDEX outcomes_run_id ON public.outcomes USING btree (run_id)"
            )
        migrate(db.url)
        with engine.connect() as conn:
            assert "USING brin (run_id text_bloom_ops)" in conn.execute(index_def).scalar_one()
    finally:
        engine.dispose()
        db.stop()
