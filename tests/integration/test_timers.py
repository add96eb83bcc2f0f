"""Timers end to end on the real broker and database: the API (Flask's test client), the
scheduler and notifier (in threads), and a real HTTP receiver on loopback that counts
deliveries by ``webhook-id`` and verifies their signatures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from flask.testing import FlaskClient
from flask_openapi3.openapi import OpenAPI
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, text

from herald import contracts, kafka, timers
from herald.config import Settings
from herald.db import store
from herald.db.models import timer_attempts
from herald.db.models import timers as timers_table
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.services import notifier, scheduler
from herald.web import create_app
from herald.web.app import state
from tests.support.timers import (
    OTHER_SECRET,
    SECRET,
    clear,
    dead_letters,
    engine_for,
    services,
    timer_settings,
    wait_for_state,
)
from tests.support.topics import read_topic
from tests.support.waiting import wait_for
from tests.support.web import first_event
from tests.support.webhook_receiver import Respond, WebhookReceiver

TOKEN = "timer-test-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def tsettings(broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str) -> Settings:
    return timer_settings(broker, database, namespace)


@pytest.fixture
def engine(tsettings: Settings) -> Iterator[Engine]:
    eng = engine_for(tsettings)
    clear(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def web(tsettings: Settings, engine: Engine) -> Iterator[FlaskClient]:
    app = create_app(tsettings)
    app.config["TESTING"] = True
    yield app.test_client()
    state(app).close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secrets=[SECRET]) as rx:
        yield rx


def make_app(settings: Settings) -> OpenAPI:
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


def post(web: FlaskClient, body: dict[str, Any], **headers: str) -> Any:
    response = web.post("/api/timers", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def count_timers(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(timers_table)).scalar_one())


def ledger(engine: Engine, timer_id: str) -> list[tuple[int, int | None, str]]:
    with engine.connect() as conn:
        return [(r.number, r.status, r.outcome) for r in store.attempts_of(conn, timer_id)]


def ledger_rows(engine: Engine, timer_id: str) -> list[Any]:
    """The ledger's attempts of a timer, every column."""
    with engine.connect() as conn:
        return list(store.attempts_of(conn, timer_id))


def detail(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 422, response.get_data(as_text=True)
    return list(response.get_json()["detail"])


# -- the API --------------------------------------------------------------------------------


def in_future(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


URL = "http://127.0.0.1:9/hook"
BAD_BODIES = [
    ({"seconds": -1, "url": URL}, "seconds", "Input should be greater than or equal to 0"),
    ({"seconds": 1.5, "url": URL}, "seconds", "Input should be a valid integer"),
    ({"seconds": "3", "url": URL}, "seconds", "Input should be a valid integer"),
    ({"minutes": True, "url": URL}, "minutes", "Input should be a valid integer"),
    (
        {"hours": 0, "minutes": 0, "seconds": 0, "url": URL},
        "seconds",
        "hours, minutes and seconds add up to 0: a timer needs > 0 s",
    ),
    (
        {"hours": 721, "url": URL},
        "hours",
        "the delay, 2595600 s, is more than timers.max_delay_secs (2.592e+06 s)",
    ),
    ({"url": URL}, "seconds", "give hours, minutes and seconds (any of them), or fire_at"),
    (
        {"fire_at": in_future(60), "seconds": 5, "url": URL},
        "seconds",
        "give either fire_at or hours/minutes/seconds, not both",
    ),
    ({"fire_at": "2026-01-01T00:00:00", "url": URL}, "fire_at", "Input should have timezone info"),
    (
        {"seconds": 5, "url": "ftp://127.0.0.1/hook"},
        "url",
        "url scheme 'ftp' is not allowed: only http and https",
    ),
    ({"seconds": 5, "url": "http:///hook"}, "url", "url 'http:///hook' has no host"),
    (
        {"seconds": 5, "url": "http://169.254.169.254/latest/meta-data"},
        "url",
        "url host '169.254.169.254' is 169.254.169.254, in denied network "
        "169.254.169.254/32 (cloud metadata)",
    ),
    ({"seconds": 5, "url": URL, "mode": "exactly_once"}, "mode", None),
    ({"seconds": 5, "url": URL, "extra": 1}, "extra", "Extra inputs are not permitted"),
    ({"seconds": 5}, "url", "Field required"),
]


@pytest.mark.parametrize(("body", "field", "reason"), BAD_BODIES)
def test_every_bad_timer_gets_422_naming_the_field_and_nothing_is_stored(
    web: FlaskClient, engine: Engine, body: dict[str, Any], field: str, reason: str | None
) -> None:
    for route in ("/api/timers", "/timer"):
        [error] = detail(web.post(route, json=body))
        assert error["field"] == field
        if reason is not None:
            assert error["reason"] == reason
        else:
            assert error["reason"].startswith("Input should be 'at_least_once' or")
    assert count_timers(engine) == 0


def test_fire_at_in_the_past_too_far_ahead_and_not_after_before_due_get_422(
    web: FlaskClient, engine: Engine
) -> None:
    [past] = detail(web.post("/api/timers", json={"fire_at": in_future(-5), "url": URL}))
    assert past["field"] == "fire_at"
    assert "is not in the future" in past["reason"]
    [far] = detail(web.post("/api/timers", json={"fire_at": in_future(31 * 86400), "url": URL}))
    assert far == {
        "field": "fire_at",
        "reason": "is more than timers.max_delay_secs (2.592e+06 s) from now",
        "type": "limit_exceeded",
    }
    [early] = detail(
        web.post("/api/timers", json={"seconds": 60, "not_after": in_future(30), "url": URL})
    )
    assert early["field"] == "not_after"
    assert early["reason"].startswith("is before the due time ")
    assert count_timers(engine) == 0


def test_a_configured_deny_network_refuses_the_host(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, engine: Engine
) -> None:
    strict = timer_settings(broker, database, namespace, timers={"deny_networks": ["127.0.0.0/8"]})
    app = make_app(strict)
    try:
        [error] = detail(app.test_client().post("/api/timers", json={"seconds": 1, "url": URL}))
    finally:
        state(app).close()
    assert error == {
        "field": "url",
        "reason": "url host '127.0.0.1' is 127.0.0.1, in denied network "
        "127.0.0.0/8 (timers.deny_networks)",
        "type": "unsafe_url",
    }
    assert count_timers(engine) == 0


def test_a_timer_is_durable_at_once_and_any_replica_finds_it(
    web: FlaskClient, tsettings: Settings, engine: Engine
) -> None:
    response = web.post("/timer", json={"hours": 4, "minutes": 0, "seconds": 1, "url": URL})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/api/timers/{body['id']}"
    assert body["state"] == "scheduled"
    assert body["kind"] == "webhook"
    assert body["mode"] == "at_least_once"
    assert body["attempts"] == 0
    assert body["lateness_ms"] is None
    assert 4 * 3600 < body["time_left"] <= 4 * 3600 + 1
    due = datetime.fromisoformat(body["due_at"])
    created = datetime.fromisoformat(body["created_at"])
    assert due - created == timedelta(hours=4, seconds=1)
    # Another app (a replica, its own engine and pool) finds it at once, on both routes.
    other = make_app(tsettings)
    try:
        for route in (f"/api/timers/{body['id']}", f"/timer/{body['id']}"):
            found = other.test_client().get(route).get_json()
            assert found["id"] == body["id"]
            assert found["due_at"] == body["due_at"]
            assert 0 < found["time_left"] <= body["time_left"]
    finally:
        state(other).close()
    assert count_timers(engine) == 1


def test_an_idempotency_key_returns_the_same_timer_and_refuses_another_body(
    web: FlaskClient, engine: Engine
) -> None:
    body = {"seconds": 600, "url": URL}
    first = web.post("/api/timers", json=body, headers={"Idempotency-Key": "k-1"})
    again = web.post("/api/timers", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["due_at"] == first.get_json()["due_at"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    other = web.post(
        "/api/timers", json={"seconds": 601, "url": URL}, headers={"Idempotency-Key": "k-1"}
    )
    assert detail(other) == [
        {
            "field": "Idempotency-Key",
            "reason": f"was used for timer {first.get_json()['id']} with a different body: "
            "use a new key for a new timer",
            "type": "idempotency_key_reused",
        }
    ]
    # Without a key, the same body is a new timer.
    post(web, body)
    assert count_timers(engine) == 2
    [long_key] = detail(web.post("/api/timers", json=body, headers={"Idempotency-Key": "k" * 256}))
    assert long_key["field"] == "Idempotency-Key"


def test_concurrent_posts_with_one_key_make_one_timer(tsettings: Settings, engine: Engine) -> None:
    app = make_app(tsettings)
    ids: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        response = app.test_client().post(
            "/api/timers", json={"seconds": 600, "url": URL}, headers={"Idempotency-Key": "race"}
        )
        assert response.status_code == 201
        with lock:
            ids.append(response.get_json()["id"])

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state(app).close()
    assert len(ids) == 8
    assert len(set(ids)) == 1
    assert count_timers(engine) == 1


def test_timer_routes_need_the_token_for_reads_too(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, engine: Engine
) -> None:
    secured = timer_settings(broker, database, namespace)
    secured = secured.model_copy(
        update={"web": secured.web.model_copy(update={"api_token": SecretStr(TOKEN)})}
    )
    app = make_app(secured)
    client = app.test_client()
    try:
        body = {"seconds": 600, "url": URL}
        assert client.post("/api/timers", json=body).status_code == 401
        assert client.post("/timer", json=body).status_code == 401
        created = client.post("/api/timers", json=body, headers=BEARER)
        assert created.status_code == 201
        timer_id = created.get_json()["id"]
        for route in (f"/api/timers/{timer_id}", f"/timer/{timer_id}", "/api/timers"):
            refused = client.get(route)
            assert refused.status_code == 401, route
            assert refused.get_json()["error"].startswith("a bearer token is required")
            assert client.get(route, headers=BEARER).status_code == 200
        assert client.delete(f"/api/timers/{timer_id}").status_code == 401
        assert client.get(f"/api/timers/{timer_id}/attempts").status_code == 401
        # The health probes stay open; other reads too (web.protect_reads is off).
        assert client.get("/health").status_code in (200, 503)
        assert client.get("/api/runs").status_code == 200
        doc = client.get("/api/openapi.json").get_json()
        assert doc["paths"]["/api/timers/{timer_id}"]["get"]["security"] == [{"bearer": []}]
        assert "security" not in doc["paths"]["/api/runs"]["get"]
    finally:
        state(app).close()
    assert count_timers(engine) == 1


def test_list_paging_filter_cancel_replay_conflicts_and_404(
    web: FlaskClient, engine: Engine
) -> None:
    made = [post(web, {"seconds": 600 + i, "url": URL})["id"] for i in range(5)]
    cancelled = web.delete(f"/api/timers/{made[0]}")
    assert cancelled.status_code == 200
    assert cancelled.get_json()["state"] == "cancelled"
    assert cancelled.get_json()["finished_at"] is not None
    again = web.delete(f"/api/timers/{made[0]}")
    assert again.status_code == 409
    assert again.get_json()["error"] == f"timer {made[0]} is cancelled: it cannot be cancelled"
    replay = web.post(f"/api/timers/{made[1]}/replay")
    assert replay.status_code == 409
    assert replay.get_json()["error"] == (
        f"timer {made[1]} is scheduled: only a failed timer can be replayed"
    )
    page = web.get("/api/timers?state=scheduled&per_page=3").get_json()
    assert (page["total"], page["pages"], len(page["items"])) == (4, 2, 3)
    second = web.get("/api/timers?state=scheduled&per_page=3&page=2").get_json()
    listed = [t["id"] for t in page["items"] + second["items"]]
    assert sorted(listed) == sorted(made[1:])
    assert len(listed) == 4
    only = web.get("/api/timers?state=cancelled").get_json()
    assert [t["id"] for t in only["items"]] == [made[0]]
    assert detail(web.get("/api/timers?state=sleeping"))[0]["field"] == "state"
    missing = "no-such-timer"
    for response in (
        web.get(f"/api/timers/{missing}"),
        web.get(f"/timer/{missing}"),
        web.delete(f"/api/timers/{missing}"),
        web.post(f"/api/timers/{missing}/replay"),
        web.get(f"/api/timers/{missing}/attempts"),
    ):
        assert response.status_code == 404
        assert response.get_json()["error"] == f"no timer {missing}"
    assert detail(web.get("/api/timers/bad.id"))[0]["field"] == "timer_id"


# -- delivery -------------------------------------------------------------------------------


def test_a_timer_fires_once_at_its_time_signed_and_its_states_go_in_order(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    gate = threading.Event()
    receiver.script("/hook", [Respond(200, gate=gate)])
    body = post(web, {"seconds": 1, "url": receiver.url("/hook")})
    timer_id = body["id"]
    seen = [web.get(f"/api/timers/{timer_id}").get_json()["state"]]
    with services(tsettings):
        receiver.wait_for_requests(1, timeout=20)
        seen.append(web.get(f"/api/timers/{timer_id}").get_json()["state"])  # held by the gate
        gate.set()
        done = wait_for_state(engine, timer_id, {"delivered"})
        seen.append(web.get(f"/api/timers/{timer_id}").get_json()["state"])
    assert seen == ["scheduled", "firing", "delivered"]
    [request] = receiver.requests()
    assert request.method == "POST"
    assert json.loads(request.body) == {"id": timer_id}
    assert request.webhook_id == timer_id
    assert request.verified, request.verify_error
    assert request.headers["content-type"] == "application/json"
    # Never before its due time.
    due = datetime.fromisoformat(body["due_at"])
    assert request.arrived_at >= due.timestamp()
    assert done.first_attempt_at >= due
    assert ledger(engine, timer_id) == [(1, 200, "delivered")]
    final = web.get(f"/api/timers/{timer_id}").get_json()
    assert final["attempts"] == 1
    assert final["last_status"] == 200
    assert final["time_left"] == 0
    assert final["lateness_ms"] == (done.first_attempt_at - due) / timedelta(milliseconds=1)
    assert final["lateness_ms"] >= 0
    attempts = web.get(f"/api/timers/{timer_id}/attempts").get_json()
    assert [(a["number"], a["status"], a["outcome"], a["sent"]) for a in attempts["items"]] == [
        (1, 200, "delivered", True)
    ]
    assert receiver.deliveries() == {timer_id: 1}


def test_many_timers_are_each_delivered_once_never_early(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    made = {}
    for i in range(60):
        body = post(web, {"seconds": 1 + i % 3, "url": receiver.url(f"/many/{i % 4}")})
        made[body["id"]] = datetime.fromisoformat(body["due_at"]).timestamp()
    with services(tsettings, schedulers=2, notifiers=2):
        receiver.wait_for_requests(60, timeout=30)
        for timer_id in made:
            wait_for_state(engine, timer_id, {"delivered"})
    counts = receiver.deliveries()
    assert counts == {timer_id: 1 for timer_id in made}
    for request in receiver.requests():
        assert request.verified
        assert request.arrived_at >= made[str(request.webhook_id)]
    with engine.connect() as conn:
        delivered = conn.execute(
            select(timer_attempts.c.timer_id, func.count())
            .where(timer_attempts.c.outcome == "delivered")
            .group_by(timer_attempts.c.timer_id)
        ).all()
    assert sorted(delivered) == sorted((timer_id, 1) for timer_id in made)


def test_500_then_200_is_retried_with_the_same_webhook_id(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    receiver.script("/flaky", [Respond(500), Respond(503)])
    timer_id = post(web, {"seconds": 1, "url": receiver.url("/flaky")})["id"]
    with services(tsettings):
        wait_for_state(engine, timer_id, {"delivered"})
    assert receiver.ids() == [timer_id] * 3
    assert ledger(engine, timer_id) == [(1, 500, "retry"), (2, 503, "retry"), (3, 200, "delivered")]


def test_a_receiver_that_is_down_for_a_while_gets_it_when_it_is_back(
    broker: EmbeddedBroker,
    database: EmbeddedDatabase,
    namespace: str,
    engine: Engine,
    receiver: WebhookReceiver,
) -> None:
    patient = timer_settings(broker, database, namespace, notifier={"max_attempts": 100})
    app = make_app(patient)
    timer_id = post(app.test_client(), {"seconds": 1, "url": receiver.url("/later")})["id"]
    receiver.down()
    with services(patient):
        wait_for(lambda: len(ledger(engine, timer_id)) >= 4, 30, "four refused attempts")
        receiver.up()
        wait_for_state(engine, timer_id, {"delivered"})
    state(app).close()
    attempts = ledger(engine, timer_id)
    assert attempts[-1][1:] == (200, "delivered")
    assert all(a[1:] == (None, "retry") for a in attempts[:-1])
    assert [a[0] for a in attempts] == list(range(1, len(attempts) + 1))
    assert receiver.deliveries() == {timer_id: 1}


def test_410_fails_the_timer_disables_the_endpoint_and_dead_letters_it(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    receiver.script("/gone", then=Respond(410))
    first = post(web, {"seconds": 1, "url": receiver.url("/gone")})["id"]
    with services(tsettings):
        wait_for_state(engine, first, {"failed"})
        # The next timer for that URL fails without a request.
        second = post(web, {"seconds": 1, "url": receiver.url("/gone")})["id"]
        wait_for_state(engine, second, {"failed"})
    assert receiver.ids() == [first]
    assert ledger(engine, first) == [(1, 410, "gone")]
    assert ledger(engine, second) == []
    letters = sorted(dead_letters(tsettings, 2), key=lambda letter: letter[0] != first)
    assert letters == [
        (first, "gone: HTTP 410"),
        (second, f"endpoint disabled: 410 Gone from timer {first}"),
    ]


def test_other_4xx_fail_at_once_and_exhausted_retries_fail_then_replay_delivers(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    receiver.script("/bad", [Respond(400)])
    receiver.script("/down", [Respond(500)] * 5)  # max_attempts is 5 in these settings
    bad = post(web, {"seconds": 1, "url": receiver.url("/bad")})["id"]
    down = post(web, {"seconds": 1, "url": receiver.url("/down")})["id"]
    with services(tsettings):
        wait_for_state(engine, bad, {"failed"})
        wait_for_state(engine, down, {"failed"})
        assert ledger(engine, bad) == [(1, 400, "failed")]
        assert ledger(engine, down) == [(n, 500, "retry") for n in range(1, 5)] + [
            (5, 500, "expired")
        ]
        failed = web.get(f"/api/timers/{down}").get_json()
        assert (failed["state"], failed["attempts"], failed["last_status"]) == ("failed", 5, 500)
        replayed = web.post(f"/api/timers/{down}/replay")
        assert replayed.status_code == 200
        assert replayed.get_json()["state"] == "scheduled"
        wait_for_state(engine, down, {"delivered"})
    assert ledger(engine, down)[-1] == (6, 200, "delivered")
    assert len(ledger(engine, down)) == 6
    assert receiver.deliveries() == {bad: 1, down: 6}
    reasons = dict(dead_letters(tsettings, 2))
    assert reasons == {bad: "failed: HTTP 400", down: "expired: HTTP 500"}


def test_a_timer_past_not_after_expires_and_is_never_sent(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    # Stored as an outage would leave it: due and past its not_after before any scheduler ran.
    now = datetime.now(UTC)
    late = timers.webhook_row(
        tsettings,
        url=receiver.url("/late"),
        mode="at_least_once",
        due_at=now - timedelta(seconds=10),
        not_after=now - timedelta(seconds=5),
        now=now - timedelta(seconds=20),
    )
    on_time = post(web, {"seconds": 1, "url": receiver.url("/on-time")})["id"]
    with engine.begin() as conn:
        store.insert_timer(conn, late)
    with services(tsettings):
        wait_for_state(engine, late["id"], {"expired"})
        wait_for_state(engine, on_time, {"delivered"})
    assert receiver.ids() == [on_time]
    assert ledger(engine, late["id"]) == []
    expired = web.get(f"/api/timers/{late['id']}").get_json()
    assert expired["fired_at"] is None
    assert expired["finished_at"] is not None


def test_cancel_racing_the_fire_either_cancels_or_delivers_never_both(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    made = [post(web, {"seconds": 1, "url": receiver.url("/race")}) for _ in range(40)]
    outcome: dict[str, int] = {}
    with services(tsettings):
        # Cancel each one as its due time comes, when the scheduler may hold it already.
        for body in made:
            due = datetime.fromisoformat(body["due_at"])
            wait_for(lambda d=due: datetime.now(UTC) >= d - timedelta(milliseconds=5), 10, "due")
            outcome[body["id"]] = web.delete(f"/api/timers/{body['id']}").status_code
        for timer_id, status in outcome.items():
            wait_for_state(engine, timer_id, {"cancelled"} if status == 200 else {"delivered"})
    counts = receiver.deliveries()
    for timer_id, status in outcome.items():
        assert status in (200, 409)
        rows = ledger_rows(engine, timer_id)
        if status == 200:
            assert (counts.get(timer_id, 0), rows) == (0, []), timer_id
            continue
        # Delivered once. A retry after a timeout (at_least_once) may reach the receiver
        # too, and then it is in the ledger: every request that arrived was recorded.
        assert [r.outcome for r in rows].count("delivered") == 1, (timer_id, rows)
        assert counts[timer_id] == sum(1 for r in rows if r.sent), (timer_id, rows)
    assert set(counts) == {t for t, s in outcome.items() if s == 409}


class Locked:
    """A table lock held on a connection of its own, until :meth:`release`."""

    def __init__(self, engine: Engine, lock: str) -> None:
        self.engine = engine
        self.blocker = engine.connect()
        self.blocker.execute(text(lock))

    def blocked(self, statement: str, what: str) -> int:
        """Wait until a service's statement starting ``statement`` waits on the lock; its
        backend's pid."""
        waiting = text(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE :statement AND pid <> pg_backend_pid()"
        )

        def pid() -> Any:
            with self.engine.connect() as conn:  # a transaction each: a fresh view
                return conn.execute(waiting, {"statement": statement}).scalar()

        return int(wait_for(pid, 20, what))

    def release(self) -> None:
        """Release the lock (again: nothing)."""
        if not self.blocker.closed:
            self.blocker.rollback()
            self.blocker.close()


def cut(engine: Engine, pid: int) -> None:
    """Terminate the backend ``pid`` (its transaction fails)."""
    with engine.connect() as conn:
        done = conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert done.scalar_one() is True


def test_a_claim_cut_off_by_the_database_is_taken_again_and_delivered_once(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    # The notifier's claim reads the disabled endpoints as it takes the timer (after
    # locking its row): held there by a lock, its connection is terminated, and the
    # transaction fails. (Under load a deadlock did the same, and the claimed commands were
    # never taken again.)
    timer_id = post(web, {"seconds": 1, "url": receiver.url("/cut")})["id"]
    lock = Locked(engine, "LOCK TABLE disabled_endpoints IN ACCESS EXCLUSIVE MODE")
    try:
        with services(tsettings):
            cut(engine, lock.blocked("%disabled_endpoints%", "a claim blocked on the lock"))
            lock.release()
            row = wait_for_state(engine, timer_id, {"delivered"})
    finally:
        lock.release()
    assert row.attempts == 1
    assert receiver.deliveries() == {timer_id: 1}
    assert ledger(engine, timer_id) == [(1, 200, "delivered")]


def test_a_command_again_while_its_timer_is_being_delivered_does_not_send_it_twice(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    # The same fire command twice (as after a rebalance, before the first's offset was
    # committed), the second while the first delivery is held by the receiver: this
    # notifier's own lease would let it claim the timer again.
    from confluent_kafka import Consumer, Producer, TopicPartition

    gate = threading.Event()
    receiver.script("/held", [Respond(200, gate=gate)])
    timer_id = post(web, {"seconds": 1, "url": receiver.url("/held")})["id"]
    ks = tsettings.kafka
    topic = timers.FIRE.qualified(ks.namespace)
    # A marker behind the duplicate on the same partition: once it is delivered, the
    # duplicate has been taken (a partition's commands are taken in order).
    now = datetime.now(UTC)
    marker = _due(tsettings, receiver.url("/marker"), now + timedelta(hours=1), now)
    marker["fence"] = 1  # as if a scheduler had claimed it (it is not due for an hour)
    with engine.begin() as conn:
        store.insert_timer(conn, marker)
    with services(tsettings):
        receiver.wait_for_requests(1, timeout=20)
        with engine.connect() as conn:
            fence = store.get_timer(conn, timer_id).fence
        producer = Producer(kafka.producer_config(ks))
        offsets: list[int] = []
        for tid, url, f in ((timer_id, "/held", fence), (marker["id"], "/marker", 1)):
            command = timers.FireCommand(
                timer_id=tid, url=receiver.url(url), mode="at_least_once", due_at=now, fence=f
            )
            producer.produce(
                topic,
                msgspec.json.encode(command),
                tid.encode(),
                partition=0,
                on_delivery=lambda err, msg: offsets.append(-1 if err else msg.offset()),
            )
        assert producer.flush(10) == 0
        assert len(offsets) == 2 and offsets[0] >= 0 and offsets[1] == offsets[0] + 1
        wait_for_state(engine, marker["id"], {"delivered"})
        gate.set()
        wait_for_state(engine, timer_id, {"delivered"})
        group = Consumer(kafka.consumer_config(ks, contracts.group_id(ks.namespace, "notifiers")))
        try:

            def committed() -> bool:
                [tp] = group.committed([TopicPartition(topic, 0)], timeout=10)
                return bool(tp.offset > offsets[-1])  # a settled prefix: the duplicate's too

            wait_for(committed, 20, "the duplicate's offset committed")
        finally:
            group.close()
    assert receiver.deliveries() == {timer_id: 1, marker["id"]: 1}
    assert ledger(engine, timer_id) == [(1, 200, "delivered")]


def test_a_stopping_notifier_waits_for_a_post_under_way_no_longer_than_its_grace(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    """The drain's wait for deliveries under way and both deliverers' closes share one grace
    counted from when the loop saw the stop (they took 10 s, then 1 s each: with the leave,
    the dead letters' flush and the last announcement, past the 15 s a run gives). A delivery
    cut short is left to its lease: the next notifier delivers it."""
    gate = threading.Event()
    receiver.script("/held", [Respond(200, gate=gate)] * 10)  # every attempt held
    timer_id = post(web, {"seconds": 1, "url": receiver.url("/held")})["id"]
    n = notifier.Notifier(tsettings)
    stop = threading.Event()
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(n.run(stop)), daemon=True)
    try:
        with services(tsettings, notifiers=0):
            thread.start()
            receiver.wait_for_requests(1, timeout=20)
            assert n.wait_limit(notifier.CLOSE_SECS) == notifier.CLOSE_SECS  # running
            # As if the loop had seen the stop 0.5 s before the grace's end.
            n._stop_seen = time.monotonic() - (notifier.STOP_GRACE_SECS - 0.5)
            assert 0.1 < n.wait_limit(notifier.STOP_GRACE_SECS) <= 0.5
            started = time.monotonic()
            stop.set()
            thread.join(30)
            elapsed = time.monotonic() - started
            assert not thread.is_alive() and results == [0]
            # The old code waited its drain's full 10 s for the held POST, then 1 s a deliverer.
            assert elapsed < notifier.STOP_GRACE_SECS
            assert n.wait_limit(notifier.CLOSE_SECS) == 0.1  # past it: a last, short try
            assert timer_id in n.inflight  # left to its lease, its command not committed
            gate.set()
        # Losing nothing: the next notifier reads the command again and delivers it.
        with services(tsettings, schedulers=0):
            wait_for_state(engine, timer_id, {"delivered"})
    finally:
        gate.set()
        stop.set()
        thread.join(30)


def test_a_stopping_notifiers_grace_counts_from_when_its_loop_saw_the_stop(
    tsettings: Settings,
) -> None:
    """Not from when the drain begins: whatever the loop's last turn took is part of it."""
    n = notifier.Notifier(tsettings)
    stop = threading.Event()
    stop.set()
    before = time.monotonic()
    assert n.run(stop) == 0  # the loop sees the stop at once: drain (nothing), close
    assert n._stop_seen is not None and before <= n._stop_seen <= time.monotonic()


def test_a_ledger_write_cut_off_by_the_database_is_written_again_once(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    # The notifier's ledger thread writes a delivered timer's attempt: held there by a lock,
    # its connection is terminated. What the delivery reported is kept and written again.
    timer_id = post(web, {"seconds": 1, "url": receiver.url("/ledger-cut")})["id"]
    # SHARE: readers (the notifier's readiness check) pass, writers wait.
    lock = Locked(engine, "LOCK TABLE timer_attempts IN SHARE MODE")
    try:
        with services(tsettings):
            pid = lock.blocked("INSERT INTO timer_attempts%", "a ledger write blocked on the lock")
            assert receiver.deliveries() == {timer_id: 1}  # sent; not yet in the ledger
            cut(engine, pid)
            lock.release()
            row = wait_for_state(engine, timer_id, {"delivered"})
    finally:
        lock.release()
    assert row.attempts == 1
    assert receiver.deliveries() == {timer_id: 1}
    assert ledger(engine, timer_id) == [(1, 200, "delivered")]


def test_during_a_rotation_both_secrets_sign_and_either_verifies(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, engine: Engine
) -> None:
    rotating = timer_settings(
        broker, database, namespace, timers={"signing_secrets": [OTHER_SECRET, SECRET]}
    )
    app = make_app(rotating)
    with WebhookReceiver(secrets=[SECRET]) as old, WebhookReceiver(secrets=[OTHER_SECRET]) as new:
        to_old = post(app.test_client(), {"seconds": 1, "url": old.url("/o")})["id"]
        to_new = post(app.test_client(), {"seconds": 1, "url": new.url("/n")})["id"]
        with services(rotating):
            wait_for_state(engine, to_old, {"delivered"})
            wait_for_state(engine, to_new, {"delivered"})
    state(app).close()
    [o] = old.requests()
    [n] = new.requests()
    assert o.verified and n.verified
    assert o.headers["webhook-signature"].count("v1,") == 2


def test_a_receiver_with_another_secret_refuses_the_signature(
    web: FlaskClient, tsettings: Settings, engine: Engine
) -> None:
    with WebhookReceiver(secrets=[OTHER_SECRET]) as other:
        timer_id = post(web, {"seconds": 1, "url": other.url("/x")})["id"]
        with services(tsettings):
            wait_for_state(engine, timer_id, {"failed"})
    [x] = other.requests()
    assert not x.verified
    assert x.verify_error is not None
    assert ledger(engine, timer_id) == [(1, 401, "failed")]


# -- claims and fencing (the store's statements, on the real database) -----------------------


def _due(settings: Settings, url: str, due_at: datetime, now: datetime) -> dict[str, Any]:
    return timers.webhook_row(
        settings, url=url, mode="at_least_once", due_at=due_at, not_after=None, now=now
    )


def test_a_stale_claim_cannot_mark_or_deliver_after_another_took_it_over(
    tsettings: Settings, engine: Engine
) -> None:
    now = datetime.now(UTC)
    row = _due(tsettings, URL, now, now)
    with engine.begin() as conn:
        store.insert_timer(conn, row)
        [a] = store.claim_due(conn, owner="a", lease_secs=30, ahead_secs=0, batch=10)
    # A holds it: B cannot claim it while the lease holds.
    with engine.begin() as conn:
        assert store.claim_due(conn, owner="b", lease_secs=30, ahead_secs=0, batch=10) == []
    # A stalls past its lease (set in the database, not waited for: a short lease raced slow
    # machines, where B's first attempt came after it had lapsed); B takes the timer over.
    with engine.begin() as conn:
        lapse = "UPDATE timers SET lease_until = clock_timestamp() - interval '1 second'"
        conn.execute(text(lapse))
        [b] = store.claim_due(conn, owner="b", lease_secs=30, ahead_secs=0, batch=10)
    assert (a.id, a.fence) == (row["id"], 1)
    assert (b.id, b.fence) == (row["id"], 2)
    with engine.begin() as conn:
        assert store.renew_claims(conn, owner="a", ids=[a.id], lease_secs=30) == set()
        assert store.mark_fired_many(conn, [a], owner="a") == set()  # fenced
        taken, held, _ = store.claim_deliveries(conn, [(a.id, a.fence)], owner="n1", lease_secs=30)
        assert taken == []
        assert [(h.state, h.fence) for h in held] == [("scheduled", 2)]
        assert store.mark_fired_many(conn, [b], owner="b") == {b.id}
        taken, _, _ = store.claim_deliveries(conn, [(b.id, b.fence)], owner="n1", lease_secs=30)
        assert [t.id for t in taken] == [b.id]
        # Another notifier cannot take it while n1's lease holds.
        again, held, _ = store.claim_deliveries(conn, [(b.id, b.fence)], owner="n2", lease_secs=30)
        assert again == []
        assert [h.state for h in held] == ["firing"]
        assert store.finish_deliveries(conn, [(b.id, "delivered")], owner="n2") == set()
        assert store.finish_deliveries(conn, [(b.id, "delivered")], owner="n1") == {b.id}
        assert store.get_timer(conn, b.id).state == "delivered"


def test_a_mark_that_comes_after_the_notifier_delivered_counts_as_fired_not_fenced(
    tsettings: Settings, engine: Engine
) -> None:
    # The scheduler marks what the broker acknowledged every MARK_SECS: a notifier may take
    # the command, deliver it and finish before the mark comes.
    now = datetime.now(UTC)
    row = _due(tsettings, URL, now, now)
    with engine.begin() as conn:
        store.insert_timer(conn, row)
        [a] = store.claim_due(conn, owner="a", lease_secs=30, ahead_secs=0, batch=10)
        taken, _, _ = store.claim_deliveries(conn, [(a.id, a.fence)], owner="n1", lease_secs=30)
        assert [t.id for t in taken] == [a.id]
        assert store.finish_deliveries(conn, [(a.id, "delivered")], owner="n1") == {a.id}
        assert store.mark_fired_many(conn, [a], owner="a") == {a.id}
        timer = store.get_timer(conn, a.id)
    assert (timer.state, timer.lease_owner, timer.fence) == ("delivered", None, 1)


def _leases(engine: Engine) -> dict[str, datetime]:
    with engine.connect() as conn:
        rows = conn.execute(select(timers_table.c.id, timers_table.c.lease_until)).all()
    return {timer_id: until for timer_id, until in rows}


def test_a_claim_its_own_scheduler_took_again_fires_once_under_the_new_fence(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, engine: Engine
) -> None:
    settings = timer_settings(broker, database, namespace, scheduler={"lookahead_secs": 0})
    now = datetime.now(UTC)
    row = _due(settings, URL, now, now)
    with engine.begin() as conn:
        store.insert_timer(conn, row)
    sch = scheduler.Scheduler(settings)
    try:
        assert sch.claim() == 1
        # Its lease lapses before it fires (the replica stalled): it claims the timer again.
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE timers SET lease_until = clock_timestamp() - interval '1 second'")
            )
        assert sch.claim() == 1
        ready = sch.due(time.time())
        assert [(c.id, c.fence) for c in ready] == [(row["id"], 2)]
        sch.fire(ready)
        assert (sch.unacked, sch.fired) == (1, 0)  # published, not waited for
        sch.mark(timeout=10)
        assert (sch.unacked, sch.fired, sch.fenced, sch.heap, sch.held) == (0, 1, 0, [], {})
    finally:
        sch.producer.flush(5)
        sch.engine.dispose()
    with engine.connect() as conn:
        assert store.get_timer(conn, row["id"]).state == "firing"
    [record] = read_topic(settings, timers.FIRE.qualified(namespace), 1)
    command = json.loads(record.value() or b"")
    assert (command["timer_id"], command["fence"]) == (row["id"], 2)


def test_fire_commands_published_together_share_a_partition_and_keep_their_ids_as_keys(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, engine: Engine
) -> None:
    # Keyed by timer id, 12 partitions made a produce request per command; one partition per
    # STICKY_SECS makes one per batch.
    settings = timer_settings(broker, database, namespace, scheduler={"lookahead_secs": 0})
    now = datetime.now(UTC)
    rows = [_due(settings, URL, now, now) for _ in range(6)]
    with engine.begin() as conn:
        store.insert_timers(conn, rows)
    sch = scheduler.Scheduler(settings)
    try:
        assert sch.claim() == 6
        sch.fire(sch.due(time.time()))
        sch.mark(timeout=10)
        assert (sch.unacked, sch.fired, sch.fenced) == (0, 6, 0)
    finally:
        sch.engine.dispose()
    records = read_topic(settings, timers.FIRE.qualified(namespace), 6)
    assert sorted((r.key() or b"").decode() for r in records) == sorted(r["id"] for r in rows)
    assert len({r.partition() for r in records}) == 1
    assert sch._fire_partitions == settings.kafka.partitions


def test_the_scheduler_extends_only_the_leases_that_would_end_before_their_timer_fires(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, engine: Engine
) -> None:
    settings = timer_settings(
        broker, database, namespace, scheduler={"lease_secs": 10.0, "lookahead_secs": 60.0}
    )
    now = datetime.now(UTC)
    soon, later = (
        _due(settings, URL, now + timedelta(seconds=1), now),
        _due(settings, URL, now + timedelta(seconds=40), now),
    )
    with engine.begin() as conn:
        store.insert_timers(conn, [soon, later])
    sch = scheduler.Scheduler(settings)
    try:
        assert sch.claim() == 2
        before = _leases(engine)
        sch.renew()
        after = _leases(engine)
    finally:
        sch.engine.dispose()
    # Due in 1 s, its 10 s lease outlasts it: no statement. Due in 40 s: extended.
    assert after[soon["id"]] == before[soon["id"]]
    assert after[later["id"]] > before[later["id"]]
    assert set(sch.held) == {soon["id"], later["id"]}


def test_a_burst_larger_than_a_claim_batch_is_claimed_batch_after_batch_not_a_poll_apart(
    broker: EmbeddedBroker,
    database: EmbeddedDatabase,
    namespace: str,
    engine: Engine,
    receiver: WebhookReceiver,
) -> None:
    # A claim every 60 s at most, 10 at a time: 35 due at once would take 3 polls, 3 minutes.
    settings = timer_settings(
        broker, database, namespace, scheduler={"batch": 10, "poll_secs": 60.0}
    )
    now = datetime.now(UTC)
    rows = [_due(settings, receiver.url(f"/burst/{i}"), now, now) for i in range(35)]
    with services(settings):
        with engine.begin() as conn:
            store.insert_timers(conn, rows)
        receiver.wait_for_requests(35, timeout=30)
        for row in rows:
            wait_for_state(engine, row["id"], {"delivered"})
    assert receiver.deliveries() == {row["id"]: 1 for row in rows}


# -- operations: /metrics and the dashboard's timers page -----------------------------------


def test_metrics_and_the_timers_page_count_states_attempts_and_lateness(
    web: FlaskClient, tsettings: Settings, engine: Engine, receiver: WebhookReceiver
) -> None:
    receiver.script("/bad", then=Respond(400))
    ok = post(web, {"seconds": 1, "url": receiver.url("/ok?token=secret")})["id"]
    bad = post(web, {"seconds": 1, "url": receiver.url("/bad")})["id"]
    later = post(web, {"hours": 2, "url": receiver.url("/later")})["id"]
    gone = post(web, {"hours": 2, "url": receiver.url("/later")})["id"]
    assert web.delete(f"/api/timers/{gone}").status_code == 200
    with services(tsettings):
        wait_for_state(engine, ok, {"delivered"})
        wait_for_state(engine, bad, {"failed"})
    text = web.get("/metrics").get_data(as_text=True)
    lines = set(text.splitlines())
    for state_name, n in [
        ("scheduled", 1),
        ("firing", 0),
        ("delivered", 1),
        ("failed", 1),
        ("cancelled", 1),
        ("expired", 0),
    ]:
        assert f'herald_timers{{state="{state_name}"}} {n:.1f}' in lines
    assert "herald_timers_overdue 0.0" in lines
    assert 'herald_timer_attempts_total{outcome="delivered"} 1.0' in lines
    assert 'herald_timer_attempts_total{outcome="failed"} 1.0' in lines
    assert 'herald_timer_fire_lateness_seconds_bucket{le="+Inf"} 2.0' in lines
    assert "herald_timer_fire_lateness_seconds_count 2.0" in lines
    with engine.connect() as conn:
        rows = [store.get_timer(conn, i) for i in (ok, bad)]
    lateness = sorted((r.first_attempt_at - r.due_at).total_seconds() for r in rows)
    [total] = [x for x in lines if x.startswith("herald_timer_fire_lateness_seconds_sum ")]
    assert float(total.split()[1]) == pytest.approx(sum(lateness), abs=1e-6)

    page = web.get("/timers")
    assert page.status_code == 200
    assert 'data-page="timers"' in page.get_data(as_text=True)
    name, data = first_event(web, "/events/timers")
    assert name == "timers"
    assert data["by_state"] == {"scheduled": 1, "delivered": 1, "failed": 1, "cancelled": 1}
    assert (data["pending"], data["overdue"], data["due_soon"]) == (1, 0, 0)
    assert data["attempts"] == {"delivered": 1, "failed": 1}
    assert data["lateness"]["count"] == 2
    assert sum(data["lateness"]["counts"]) == 2
    host = f"127.0.0.1:{receiver.port}"
    assert sorted((a["timer_id"], a["host"], a["status"]) for a in data["recent"]) == sorted(
        [(ok, host, 200), (bad, host, 400)]
    )
    assert [(f["timer_id"], f["host"], f["attempts"]) for f in data["failures"]] == [(bad, host, 1)]
    assert "secret" not in json.dumps(data)  # hosts only: a URL's query may carry a secret
    assert later in {t["id"] for t in web.get("/api/timers").get_json()["items"]}


# -- scheduled runs: the same machinery publishes a run request at its start time -----------


def test_a_scheduled_run_is_published_at_its_start_time_by_the_scheduler(
    web: FlaskClient, tsettings: Settings, engine: Engine
) -> None:
    start_at = datetime.now(UTC) + timedelta(seconds=1)
    response = web.post(
        "/api/runs", json={"messages": 7, "seed": 3, "start_at": start_at.isoformat()}
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    accepted = response.get_json()
    run_id = accepted["run_id"]
    assert datetime.fromisoformat(accepted["start_at"]) == start_at
    timer = web.get(accepted["timer_url"]).get_json()
    assert (timer["kind"], timer["state"], timer["url"]) == ("run", "scheduled", None)
    assert web.get(f"/api/runs/{run_id}").status_code == 404  # it exists once it starts
    with services(tsettings, notifiers=0):
        wait_for_state(engine, timer["id"], {"delivered"})
    [record] = read_topic(tsettings, contracts.RUNS.qualified(tsettings.kafka.namespace), 1)
    assert record.key().decode() == run_id
    request = json.loads(record.value())
    assert (request["run_id"], request["messages"], request["seed"]) == (run_id, 7, 3)
    _kind, published_ms = record.timestamp()
    assert published_ms >= int(start_at.timestamp() * 1000)  # Kafka keeps whole milliseconds
    # Past, or too far: 422 on start_at, nothing stored.
    for when, reason in [
        (datetime.now(UTC) - timedelta(seconds=1), "is not in the future"),
        (datetime.now(UTC) + timedelta(days=31), "is more than timers.max_delay_secs"),
    ]:
        [error] = detail(web.post("/api/runs", json={"messages": 7, "start_at": when.isoformat()}))
        assert error["field"] == "start_at"
        assert reason in error["reason"]
    assert count_timers(engine) == 1


def test_herald_submit_start_at_schedules_the_run(
    tsettings: Settings, engine: Engine, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from herald import tools

    config = tmp_path / "herald.json"
    config.write_text(
        json.dumps(
            {
                "kafka": {
                    "bootstrap": tsettings.kafka.bootstrap,
                    "namespace": tsettings.kafka.namespace,
                },
                "database": {"url": tsettings.database.url},
            }
        )
    )
    start_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    code = tools.submit_main(["--config", str(config), "--messages", "5", "--start-at", start_at])
    assert code == 0
    run_id = capsys.readouterr().out.strip()
    with engine.connect() as conn:
        row = store.get_timer(conn, f"run-{run_id}")
    assert (row.kind, row.state, row.key) == ("run", "scheduled", run_id)
    assert row.due_at == datetime.fromisoformat(start_at)
    assert json.loads(row.payload)["messages"] == 5
    # In the past: exit 2 with the rule; naive: argparse refuses it (exit 2 as well).
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert tools.submit_main(["--config", str(config), "--start-at", past]) == 2
    assert "herald: --start-at " in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        tools.submit_main(["--config", str(config), "--start-at", "2026-12-01T09:00:00"])
    assert exit_info.value.code == 2
    assert "has no UTC offset" in capsys.readouterr().err
    assert count_timers(engine) == 1
