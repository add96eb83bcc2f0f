"""The retail scenario on the real broker and Postgres: the producer publishes a run's
timeline, the recorder stores it, and what both hold is checked against the generator; events
injected over HTTP are refused (422, nothing changed) or journaled and replayed."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec
import pytest
from flask.testing import FlaskClient
from flask_openapi3.openapi import OpenAPI
from sqlalchemy import Engine, text

from herald import runs
from herald.config import Settings
from herald.db import store
from herald.db.engine import make_engine
from herald.scenarios.retail import (
    ENTER,
    EXIT,
    INJECTIONS,
    MOVE,
    SCENARIO,
    RetailEnter,
    RetailExit,
    RetailMove,
    RetailRun,
    RunTimeline,
    Store,
)
from herald.services import producer, recorder
from tests.support.cluster import ServiceThread
from tests.support.retail import assert_invariants, retail_request, seen
from tests.support.topics import read_topic
from tests.support.waiting import wait_for
from tests.support.web import app  # noqa: F401  # the fixture

DECODERS = {
    ENTER.name: msgspec.json.Decoder(RetailEnter),
    MOVE.name: msgspec.json.Decoder(RetailMove),
    EXIT.name: msgspec.json.Decoder(RetailExit),
}


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    e = make_engine(str(settings.database.url))
    yield e
    e.dispose()


def _read_events(settings: Settings, want: Counter[str]) -> list[RetailEnter | RetailMove]:
    """Every record of the run's three topics, in timeline order (``seq``)."""
    ns = settings.kafka.namespace
    out: list = []
    for topic in (ENTER, MOVE, EXIT):
        kind = topic.name.rsplit(".", 1)[1]
        for m in read_topic(settings, topic.qualified(ns), want[kind]):
            event = DECODERS[topic.name].decode(m.value())
            assert m.key().decode() == event.customer  # keyed by customer: in order per customer
            out.append(event)
    return sorted(out, key=lambda e: e.seq)


def _recorded(engine: Engine, run_id: str, n: int) -> None:
    def count() -> int:
        with engine.connect() as conn:
            return len(store.retail_events(conn, run_id))

    wait_for(lambda: count() == n, 60, f"{n} events of run {run_id} in Postgres")


def test_a_seeded_run_reaches_the_broker_and_postgres_exactly(
    settings: Settings, engine: Engine
) -> None:
    request = retail_request(
        settings,
        run_id=runs.new_run_id(),
        requested_at=datetime.now(UTC),
        consume_from="earliest",
        duration=1800,
        speed="max",
        consume_batch_size=40,
    )
    truth = list(RunTimeline(request).replay())
    want = Counter(e.kind for e in truth)
    runs.submit(settings.kafka, request)
    rec = ServiceThread(recorder.run, settings)
    prod = ServiceThread(producer.run, settings, max_runs=1)
    try:
        events = _read_events(settings, want)
        _recorded(engine, request.run_id, len(truth))
    finally:
        prod.join()
        rec.join()
    assert prod.result == 0 and rec.result == 0
    # The broker holds exactly the generator's events, each once, in its order.
    assert [e.seq for e in events] == list(range(len(truth)))
    assert [(e.status, e.customer, e.ts, e.x, e.y) for e in events] == [
        (t.kind, t.customer, t.ts, t.x, t.y) for t in truth
    ]
    kinds = assert_invariants(seen(events), Store.of(request))
    assert kinds == want and want["enter"] == want["exit"] > 5
    # Never more than consume_batch_size events a tick, and the backlog shows what waited.
    per_tick = Counter(e.tick for e in events)
    assert max(per_tick.values()) == 40 and sum(per_tick.values()) == len(truth)
    assert max(e.backlog for e in events) > 0
    # Postgres: every event, one visit row per enter, and the scenario's own check agrees.
    with engine.connect() as conn:
        stored = store.retail_events(conn, request.run_id)
        visits = store.retail_visits(conn, request.run_id)
        run_row = store.get_run(conn, request.run_id)
    assert [(r.seq, r.type, r.customer) for r in stored] == [
        (e.seq, e.status, e.customer) for e in events
    ]
    assert len(visits) == want["enter"]
    assert sum(v.moves for v in visits) == want["move"]
    assert all(v.left_at is not None and v.path_length >= v.moves for v in visits)
    assert run_row is not None and run_row.finished_at is not None
    verdict = SCENARIO.verify(engine, request)
    assert verdict.problems == []
    assert verdict.figures["entered"] == verdict.figures["left"] == want["enter"]
    # One move lost in Postgres: the check says so (and sim exits 1 on any problem).
    lost = next(e for e in events if e.status == "move")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM outcomes WHERE message_id = :m"), {"m": lost.id})
    problems = SCENARIO.verify(engine, request).problems
    n, moves = len(truth), want["move"]
    assert problems[:2] == [
        f"events: Postgres has {n - 1}, the generator {n}",
        f"events by type: Postgres has {{'enter': {want['enter']}, 'move': {moves - 1}, "
        f"'exit': {want['exit']}}}, the generator {{'enter': {want['enter']}, 'move': {moves}, "
        f"'exit': {want['exit']}}}",
    ]
    assert problems[-1].startswith("the sequence of events (digest): Postgres has ")


def test_consume_from_a_time_starts_at_the_first_visit_at_or_after_it(
    settings: Settings, engine: Engine
) -> None:
    now = datetime.now(UTC)
    start = now.replace(hour=9, minute=0, second=0, microsecond=0)
    request = retail_request(
        settings,
        run_id=runs.new_run_id(),
        requested_at=now,
        consume_from=start.isoformat(),
        duration=3 * 3600,  # 08:00 to 11:00
        speed="max",
        consume_batch_size=1000,
    )
    whole = retail_request(
        settings,
        run_id=request.run_id,
        requested_at=now,
        consume_from="earliest",
        duration=3 * 3600,
    )
    day = list(RunTimeline(whole).replay())
    began = {}
    expected = []
    for e in day:
        if e.kind == "enter":
            began[e.customer] = e.ts
        if began[e.customer] >= start.timestamp():
            expected.append(e)
    runs.submit(settings.kafka, request)
    prod = ServiceThread(producer.run, settings, max_runs=1)
    try:
        events = _read_events(settings, Counter(e.kind for e in expected))
    finally:
        prod.join()
    assert len(events) == len(expected) < len(day)
    first = events[0]
    assert first.status == "enter" and first.ts >= start.timestamp()
    assert first.ts == min(e.ts for e in day if e.kind == "enter" and e.ts >= start.timestamp())
    assert [(e.customer, e.ts) for e in events] == [(e.customer, e.ts) for e in expected]


# -- injections over HTTP -------------------------------------------------------------------


def _clocked_run(settings: Settings, engine: Engine) -> RetailRun:
    """A run on a clock at 600× real time over two simulated hours (12 s), asked for as
    ``POST /api/runs`` does: published, and recorded at once so that the web knows it."""
    request = retail_request(
        settings,
        run_id=runs.new_run_id(),
        requested_at=datetime.now(UTC),
        consume_from="earliest",
        duration=7200,
        speed=600,
        consume_frequency=0.1,
        consume_batch_size=1000,
    )
    runs.submit(settings.kafka, request)
    with engine.begin() as conn:
        store.upsert_run(conn, request)
    return request


def _journal(engine: Engine, settings: Settings, run_id: str, n: int) -> list[dict]:
    with engine.connect() as conn:
        rows = store.retail_injections_of(conn, run_id)
    on_topic = read_topic(settings, INJECTIONS.qualified(settings.kafka.namespace), n)
    assert len(on_topic) == len(rows) == n
    return rows


def test_every_refused_injection_gets_422_and_changes_nothing(
    settings: Settings,
    engine: Engine,
    app: OpenAPI,  # noqa: F811
) -> None:
    request = _clocked_run(settings, engine)
    client: FlaskClient = app.test_client()
    rid = request.run_id
    simulated = request.customers[0]
    closes = request.closes_at.timestamp()
    cases = [
        ("/api/retail/events", {"type": "move", "id": "900", "x": 2, "y": 2}, "id",
         "customer 900 is not inside"),
        ("/produce_move", {"id": "900", "x": 9, "y": 2}, "x",
         "(9, 2) is outside the store: 0 <= x < 6, 0 <= y < 10"),
        ("/produce_exit", {"id": "900"}, "id", "customer 900 is not inside"),
        ("/produce_entry", {"id": "900", "x": 0, "y": 5}, "x",
         "customers enter through the entrance (3, 0), not (0, 5)"),
        ("/produce_entry", {"id": simulated}, "id",
         f"customer {simulated} is one of run {rid}'s simulated customers; inject "
         "customers of your own"),
        ("/produce_entry", {"id": "900", "ts": closes + 1}, "ts",
         f"ts = {closes + 1:g}: the store closes at {closes:g}"),
        ("/api/retail/events", {"type": "jump", "id": "900"}, "type", None),
    ]  # fmt: skip
    for path, body, field, reason in cases:
        got = client.post(path, json={**body, "run_id": rid})
        assert got.status_code == 422, (path, body, got.get_json())
        detail = got.get_json()["detail"]
        assert [d["field"] for d in detail] == [field], (path, detail)
        if reason is not None:
            assert detail[0]["reason"].startswith(reason), (path, detail)
    assert _journal(engine, settings, rid, 0) == []
    # Inside, the customer may not enter again; the refused enter changes nothing.
    ok = client.post("/produce_entry", json={"id": "900", "run_id": rid})
    assert ok.status_code == 202, ok.get_json()
    again = client.post("/produce_entry", json={"id": "900", "run_id": rid})
    assert again.status_code == 422
    assert again.get_json()["detail"][0]["reason"].startswith(
        "customer 900 is already inside, at (3, 0)"
    )
    jump = client.post("/produce_move", json={"id": "900", "x": 3, "y": 2, "run_id": rid})
    assert jump.status_code == 422
    assert jump.get_json()["detail"][0]["reason"] == (
        "(3, 2) is not adjacent to customer 900's cell (3, 0)"
    )
    rows = _journal(engine, settings, rid, 1)
    assert [(r["number"], r["type"], r["customer"]) for r in rows] == [(1, "enter", "900")]


def test_an_injected_visit_is_published_recorded_and_replayed(
    settings: Settings,
    engine: Engine,
    app: OpenAPI,  # noqa: F811
) -> None:
    request = _clocked_run(settings, engine)
    client: FlaskClient = app.test_client()
    rid = request.run_id
    prod = ServiceThread(producer.run, settings, max_runs=1)
    rec = ServiceThread(recorder.run, settings)
    try:
        # A simulated 50 minutes (five seconds) ahead: the producer, started just now, merges
        # them in time even on a busy machine (one second was not always enough).
        ts = round(request.clock.at(time.time()) + 3000, 3)
        posted = [
            client.post(
                "/api/retail/events", json={"type": "enter", "id": "997", "ts": ts, "run_id": rid}
            ),
            client.post(
                "/produce_move", json={"id": "997", "x": 3, "y": 1, "ts": ts + 30, "run_id": rid}
            ),
            client.post(
                "/produce_move", json={"id": "997", "x": 3, "y": 0, "ts": ts + 60, "run_id": rid}
            ),
            client.post("/produce_exit", json={"id": "997", "ts": ts + 90, "run_id": rid}),
        ]
        assert [p.status_code for p in posted] == [202] * 4, [p.get_json() for p in posted]
        assert [p.get_json()["number"] for p in posted] == [1, 2, 3, 4]
        assert [r["number"] for r in _journal(engine, settings, rid, 4)] == [1, 2, 3, 4]
        truth = list(RunTimeline(request).replay())  # without the injections
        want = Counter(e.kind for e in truth) + Counter(enter=1, move=2, exit=1)
        events = _read_events(settings, want)
        _recorded(engine, rid, sum(want.values()))
    finally:
        prod.join()
        rec.join()
    mine = [(e.status, e.x, e.y, e.ts, e.source) for e in events if e.customer == "997"]
    assert mine == [
        ("enter", 3, 0, ts, "injected"),
        ("move", 3, 1, ts + 30, "injected"),
        ("move", 3, 0, ts + 60, "injected"),
        ("exit", 3, 0, ts + 90, "injected"),
    ]
    assert_invariants(seen(events), Store.of(request))
    # The check replays the run with its journal: the same events, in the same order.
    verdict = SCENARIO.verify(engine, request)
    assert verdict.problems == []
    assert verdict.figures["injections"] == 4
