"""Helpers for the timer tests: settings with a known signing secret and short leases, the
scheduler and notifier in threads, the session database's timer tables emptied, and waits on
a timer's state."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, text

from herald import kafka
from herald.config import Settings
from herald.db import store
from herald.db.engine import make_engine
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.services import notifier, scheduler
from herald.webhooks import generate_secret
from tests.support.cluster import ServiceThread, make_settings
from tests.support.waiting import wait_for

SECRET = generate_secret()
OTHER_SECRET = generate_secret()

# Short leases and backoffs: a dead replica's claims lapse in a second, retries come quickly.
FAST = {
    "scheduler": {"lease_secs": 1.0, "poll_secs": 0.2, "lookahead_secs": 1.0},
    "notifier": {
        "timeout_secs": 2.0,
        "backoff_base_secs": 0.05,
        "backoff_cap_secs": 0.2,
        "delivery_lease_secs": 2.0,
        "max_attempts": 5,
    },
}


def timer_settings(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, **overrides: Any
) -> Settings:
    """Settings for timers on the session's broker and database, signing with SECRET."""
    merged: dict[str, Any] = {
        "timers": {"signing_secrets": [SECRET]},
        **{k: dict(v) for k, v in FAST.items()},
    }
    for key, value in overrides.items():
        merged[key] = {**merged.get(key, {}), **value}
    settings = make_settings(broker, database, namespace, **merged)
    kafka.ensure_topics(settings.kafka)
    return settings


def clear(engine: Engine) -> None:
    """Empty the timer tables (the session's database is shared by every test)."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE timers, timer_attempts, disabled_endpoints"))


@contextlib.contextmanager
def services(
    settings: Settings, *, schedulers: int = 1, notifiers: int = 1
) -> Iterator[list[ServiceThread]]:
    """Schedulers and notifiers running in threads until the block ends."""
    started = [ServiceThread(scheduler.run, settings) for _ in range(schedulers)]
    started += [ServiceThread(notifier.run, settings) for _ in range(notifiers)]
    try:
        yield started
    finally:
        for service in started:
            service.join()


def wait_for_state(engine: Engine, timer_id: str, states: set[str], timeout: float = 20.0) -> Any:
    """The timer's row once it is in one of ``states``."""

    def reached() -> Any:
        with engine.connect() as conn:
            row = store.get_timer(conn, timer_id)
        return row if row is not None and row.state in states else None

    return wait_for(reached, timeout, f"timer {timer_id} to be {sorted(states)}")


def engine_for(settings: Settings) -> Engine:
    assert settings.database.url is not None
    return make_engine(settings.database.url)
