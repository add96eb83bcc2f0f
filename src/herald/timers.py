"""Timers: due items the scheduler fires at their time, and the notifier's webhook callbacks.

A **timer** is a row in Postgres (``timers``) with a due time and the record to publish then:

* ``webhook``: a :class:`FireCommand` on ``herald.timers.fire``; the notifier POSTs
  ``{"id": "<timer id>"}`` (or, for a run's callbacks, the body stored in ``payload``) to the
  timer's URL with Standard Webhooks headers;
* ``run``: a run request on ``herald.runs`` (``POST /api/runs`` with ``start_at``);
* ``publish``: any record on any topic (a scenario's scheduled command).

States: ``scheduled`` → ``firing`` (the fire command is out; the notifier delivers) →
``delivered`` | ``failed``; or ``cancelled`` (before it fired), ``expired`` (past
``not_after``, never fired). A ``run`` or ``publish`` timer goes from ``scheduled`` to
``delivered`` once its record is published.

The promise (docs/timers.md): a timer never fires before its due time; a webhook is POSTed at
least once (``at_least_once``, every retry with the same ``webhook-id``) or at most once
(``at_most_once``: never again after an attempt whose outcome is unknown); the ledger
(``timer_attempts``) records every attempt, and at most one ``delivered``. Never "exactly once".
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from msgspec import Meta, Struct

from herald.contracts import Timestamp, Topic

if TYPE_CHECKING:
    from herald.config import Settings
    from herald.webhooks.urls import CheckedUrl, NetworkRules

Kind = Literal["webhook", "run", "publish"]
State = Literal["scheduled", "firing", "delivered", "failed", "cancelled", "expired"]
STATES: Final[tuple[State, ...]] = (
    "scheduled",
    "firing",
    "delivered",
    "failed",
    "cancelled",
    "expired",
)
FINAL: Final = frozenset({"delivered", "failed", "cancelled", "expired"})
Mode = Literal["at_least_once", "at_most_once"]
TimerId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Timer id")]


class FireCommand(Struct, kw_only=True, forbid_unknown_fields=True):
    """A webhook timer is due: the notifier delivers its callback."""

    timer_id: TimerId
    url: Annotated[str, Meta(min_length=8, max_length=2048, description="The callback URL")]
    mode: Annotated[Mode, Meta(description="`at_least_once` or `at_most_once`")]
    due_at: Annotated[Timestamp, Meta(description="When it was due")]
    not_after: Annotated[Timestamp | None, Meta(description="Never delivered after this")] = None
    fence: Annotated[
        int,
        Meta(
            ge=1,
            description="The scheduler claim's fencing token: a notifier delivers only "
            "the command of the timer's latest claim",
        ),
    ]


FIRE: Final = Topic(
    "herald.timers.fire",
    "timer id",
    FireCommand,
    "Webhook timers that are due, published by the scheduler at their due time (work).",
    "work",
)
TOPICS: Final = (FIRE,)
NOTIFY_CHANNEL: Final = "herald_timers"  # Postgres LISTEN/NOTIFY: a timer due soon was added


def examples() -> list[tuple[str, str, FireCommand]]:
    """The fire command's examples (AsyncAPI): ``(name, summary, value)``."""
    from datetime import UTC

    due = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
    return [
        (
            "due",
            "A webhook timer is due: its first claim",
            FireCommand(
                timer_id="3b1f0c9e-6f1d-4c55-9a57-2a5d4f1e8b70",
                url="https://hooks.example.com/timers",
                mode="at_least_once",
                due_at=due,
                fence=1,
            ),
        ),
        (
            "taken-over",
            "Fired by the replica that took over a dead one's claim, with a latest time",
            FireCommand(
                timer_id="a6c2e0f4-1b7d-4e0a-8c3b-5d9f2e7a1c46",
                url="https://hooks.example.com/timers",
                mode="at_most_once",
                due_at=due,
                not_after=due + timedelta(minutes=5),
                fence=2,
            ),
        ),
    ]


def new_id() -> str:
    """A timer id: a UUID (its hex form: no dot, as Standard Webhooks ids must not have one)."""
    return str(uuid.uuid4())


def digest(body: dict[str, object]) -> str:
    """A stable digest of a request body, for idempotent POSTs (the same key, the same body)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def time_left(due_at: datetime, now: datetime) -> float:
    """Seconds until ``due_at``, floored at 0."""
    return max(0.0, (due_at - now).total_seconds())


def lateness_ms(due_at: datetime, at: datetime | None) -> float | None:
    """How late ``at`` was for ``due_at``, in milliseconds (None when it has not happened).
    Divided in whole microseconds, so 49,181 µs is 49.181, not 49.181000000000004."""
    return None if at is None else (at - due_at) / timedelta(milliseconds=1)


def url_rules(settings: Settings) -> tuple[NetworkRules, NetworkRules | None]:
    """The networks callbacks may not reach (the built-in rules and ``timers.deny_networks``)
    and those allowed all the same (``timers.allow_networks``): the API's check and the
    notifier's, at connect time, are the same."""
    from herald.webhooks import DEFAULT_DENY, networks

    deny = DEFAULT_DENY + networks(settings.timers.deny_networks, "timers.deny_networks")
    allow = networks(settings.timers.allow_networks, "timers.allow_networks") or None
    return deny, allow


def check_callback(settings: Settings, url: str) -> CheckedUrl:
    """``url`` checked for use as a callback (:class:`herald.webhooks.UnsafeUrl` if not)."""
    from herald.webhooks import check_url

    deny, allow = url_rules(settings)
    return check_url(url, deny_networks=deny, allow_networks=allow)


def wakes_scheduler(settings: Settings, due_at: datetime, now: datetime) -> bool:
    """Whether an item due at ``due_at`` is due before the schedulers' next claim would see
    it: they are told at once (NOTIFY) instead."""
    cfg = settings.scheduler
    return due_at - now <= timedelta(seconds=cfg.lookahead_secs + cfg.poll_secs)


def webhook_row(
    settings: Settings,
    *,
    url: str,
    mode: Mode,
    due_at: datetime,
    not_after: datetime | None,
    now: datetime,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
) -> dict[str, Any]:
    """The ``timers`` row of a new webhook timer (its fire command is built when it fires)."""
    timer_id = new_id()
    return {
        "id": timer_id,
        "kind": "webhook",
        "state": "scheduled",
        "url": url,
        "mode": mode,
        "topic": FIRE.name,
        "key": timer_id,
        "payload": b"",
        "due_at": due_at,
        "not_after": not_after,
        "created_at": now,
        "idempotency_key": idempotency_key,
        "request_digest": request_digest,
        "soon": wakes_scheduler(settings, due_at, now),
    }


def callback_row(*, timer_id: str, url: str, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The ``timers`` row of a callback due now with its own body (a run's completion, a
    message's outcome): ``{"id": <timer id>, **body}``, POSTed by the notifier like a timer's.
    """
    return {
        "id": timer_id,
        "kind": "webhook",
        "state": "scheduled",
        "url": url,
        "mode": "at_least_once",
        "topic": FIRE.name,
        "key": timer_id,
        "payload": json.dumps({"id": timer_id, **body}, separators=(",", ":")).encode(),
        "due_at": now,
        "not_after": None,
        "created_at": now,
        "soon": True,
    }


def scheduled_row(
    settings: Settings,
    *,
    kind: Kind,
    topic: str,
    key: str,
    payload: bytes,
    due_at: datetime,
    now: datetime,
    item_id: str | None = None,
    not_after: datetime | None = None,
) -> dict[str, Any]:
    """The ``timers`` row of a record to publish at ``due_at`` (a scheduled run's request, a
    scenario's scheduled command; never after ``not_after``: ``expired``); ``topic``
    unqualified (the scheduler adds the namespace)."""
    return {
        "id": item_id or new_id(),
        "kind": kind,
        "state": "scheduled",
        "topic": topic,
        "key": key,
        "payload": payload,
        "due_at": due_at,
        "not_after": not_after,
        "created_at": now,
        "soon": wakes_scheduler(settings, due_at, now),
    }
