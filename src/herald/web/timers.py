"""The timers API: ``/api/timers`` (create, read, cancel, replay, list, attempts) and the
seed-compatible aliases ``POST /timer``, ``GET /timer/{id}``, ``GET /health``.

A timer is durable in Postgres before the 201 (the row is committed first), so a ``GET`` on
any replica finds it at once. Every timer route needs the API token whenever the server has
one, reads included (:data:`herald.web.security.PROTECTED_PREFIXES`): timers make the
server call the URLs it is given. See docs/timers.md.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, request
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from sqlalchemy.engine import Row

from herald import timers
from herald.db import store
from herald.web import guards, schemas
from herald.web.api import INVALID, Responses, _json, health_response
from herald.web.app import db, state

TIMERS = Tag(name="timers", description="Scheduled webhook callbacks")
ALIASES = Tag(name="compatibility", description="The routes of the timer service herald absorbed")
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255

api = APIBlueprint("timers", __name__, url_prefix="/api")
aliases = APIBlueprint("timer_aliases", __name__)

FOUND: Responses = {404: schemas.ErrorBody, **INVALID}
CONFLICT: Responses = {409: schemas.ErrorBody, **FOUND}


class _Refused(Exception):
    """A request that passed the schema but not the server's rules: 422 on ``field``."""

    def __init__(self, field: str, reason: str, kind: str = "value_error") -> None:
        super().__init__(reason)
        self.field, self.reason, self.kind = field, reason, kind


def _refused(exc: _Refused) -> Response:
    body = schemas.ValidationFailed(
        detail=[schemas.FieldError(field=exc.field, reason=exc.reason, type=exc.kind)]
    )
    return _json(body, 422)


def _due(body: schemas.CreateTimer, now: datetime, max_delay: float) -> datetime:
    """The due time a request asks for, within the server's rules (:class:`_Refused`)."""
    parts = {"hours": body.hours, "minutes": body.minutes, "seconds": body.seconds}
    given = [name for name, v in parts.items() if v is not None]
    limit = f"timers.max_delay_secs ({max_delay:g} s)"
    if body.fire_at is not None:
        if given:
            raise _Refused(given[0], "give either fire_at or hours/minutes/seconds, not both")
        if body.fire_at <= now:
            raise _Refused(
                "fire_at", f"{body.fire_at.isoformat()} is not in the future (now {now:%H:%M:%S})"
            )
        if (body.fire_at - now).total_seconds() > max_delay:
            raise _Refused("fire_at", f"is more than {limit} from now", "limit_exceeded")
        return body.fire_at.astimezone(UTC)
    if not given:
        raise _Refused("seconds", "give hours, minutes and seconds (any of them), or fire_at")
    total = (body.hours or 0) * 3600 + (body.minutes or 0) * 60 + (body.seconds or 0)
    if total == 0:
        raise _Refused(given[-1], "hours, minutes and seconds add up to 0: a timer needs > 0 s")
    if total > max_delay:
        raise _Refused(given[0], f"the delay, {total} s, is more than {limit}", "limit_exceeded")
    return now + timedelta(seconds=total)


def _detail(row: Row[Any], now: datetime) -> schemas.Timer:
    return schemas.Timer(
        id=row.id,
        kind=row.kind,
        state=row.state,
        url=row.url,
        mode=row.mode,
        due_at=row.due_at,
        not_after=row.not_after,
        time_left=round(timers.time_left(row.due_at, now), 3),
        created_at=row.created_at,
        fired_at=row.fired_at,
        first_attempt_at=row.first_attempt_at,
        finished_at=row.finished_at,
        lateness_ms=timers.lateness_ms(row.due_at, row.first_attempt_at),
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        attempts_url=f"/api/timers/{row.id}/attempts",
    )


def create(body: schemas.CreateTimer) -> Response:
    """Validate, store (committed before the answer), answer 201 with ``Location``."""
    from herald.webhooks import UnsafeUrl

    settings = state().settings
    now = datetime.now(UTC)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    try:
        if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
            raise _Refused(IDEMPOTENCY_HEADER, f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        due = _due(body, now, settings.timers.max_delay_secs)
        if body.not_after is not None and body.not_after < due:
            raise _Refused("not_after", f"is before the due time {due.isoformat()}")
        try:
            timers.check_callback(settings, body.url)
        except UnsafeUrl as exc:
            raise _Refused("url", exc.reason, "unsafe_url") from exc
    except _Refused as exc:
        return _refused(exc)
    wanted = timers.digest(body.model_dump(mode="json", exclude_none=True))
    row = timers.webhook_row(
        settings,
        url=body.url,
        mode=body.mode,
        due_at=due,
        not_after=body.not_after,
        now=now,
        idempotency_key=key,
        request_digest=wanted if key is not None else None,
    )
    conn = db()
    stored, created = store.insert_timer(conn, row)
    conn.commit()
    if not created and stored.request_digest != wanted:
        return _refused(
            _Refused(
                IDEMPOTENCY_HEADER,
                f"was used for timer {stored.id} with a different body: "
                "use a new key for a new timer",
                "idempotency_key_reused",
            )
        )
    response = _json(_detail(stored, now), 201)
    response.headers["Location"] = f"/api/timers/{stored.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _found(timer_id: str) -> Row[Any]:
    row = store.get_timer(db(), timer_id)
    if row is None:
        raise _NotFound(timer_id)
    return row


class _NotFound(Exception):
    pass


def _not_found(timer_id: str) -> Response:
    return guards.json_error(404, f"no timer {timer_id}")


_CREATE_DOC = (
    "A delay (`hours`, `minutes`, `seconds`: whole numbers, not negative, more than 0 in all, "
    "at most `timers.max_delay_secs`) or a time (`fire_at`, in the future); the `url` must be "
    "http(s) and its host outside `timers.deny_networks`. At the due time the notifier POSTs "
    '`{"id": "<timer id>"}` there, signed (Standard Webhooks). With an `Idempotency-Key` '
    "header a retried POST returns the same timer (header `Idempotent-Replayed: true`); the "
    "same key with a different body gets 422. The timer is in Postgres before the 201."
)


@api.post(
    "/timers",
    tags=[TIMERS],
    summary="Create a timer",
    description=_CREATE_DOC,
    responses={201: schemas.Timer, **INVALID},
)
def create_timer(body: schemas.CreateTimer) -> Response:
    return create(body)


@api.get(
    "/timers",
    tags=[TIMERS],
    summary="List timers, newest first",
    responses={200: schemas.TimerPage, **INVALID},
)
def list_timers(query: schemas.TimersQuery) -> Response:
    offset = (query.page - 1) * query.per_page
    total, rows = store.list_timers(db(), state=query.state, offset=offset, limit=query.per_page)
    now = datetime.now(UTC)
    page = schemas.TimerPage(
        items=[_detail(r, now) for r in rows],
        page=query.page,
        per_page=query.per_page,
        total=total,
        pages=math.ceil(total / query.per_page),
    )
    return _json(page)


@api.get(
    "/timers/<timer_id>",
    tags=[TIMERS],
    summary="A timer: time left, state, attempts",
    responses={200: schemas.Timer, **FOUND},
)
def get_timer(path: schemas.TimerPath) -> Response:
    return _get(path.timer_id)


def _get(timer_id: str) -> Response:
    try:
        return _json(_detail(_found(timer_id), datetime.now(UTC)))
    except _NotFound:
        return _not_found(timer_id)


@api.delete(
    "/timers/<timer_id>",
    tags=[TIMERS],
    summary="Cancel a timer",
    description="Only a `scheduled` timer can be cancelled: 409 once it is firing or done. "
    "A cancel that wins the race with the scheduler is final: nothing is sent.",
    responses={200: schemas.Timer, **CONFLICT},
)
def cancel_timer(path: schemas.TimerPath) -> Response:
    conn = db()
    row = store.cancel_timer(conn, path.timer_id)
    conn.commit()
    if row is not None:
        return _json(_detail(row, datetime.now(UTC)))
    try:
        current = _found(path.timer_id)
    except _NotFound:
        return _not_found(path.timer_id)
    return guards.json_error(409, f"timer {current.id} is {current.state}: it cannot be cancelled")


@api.post(
    "/timers/<timer_id>/replay",
    tags=[TIMERS],
    summary="Deliver a failed timer again",
    description="A `failed` timer is scheduled again, due now, with a fresh budget of "
    "attempts; its ledger goes on. 409 for a timer in any other state.",
    responses={200: schemas.Timer, **CONFLICT},
)
def replay_timer(path: schemas.TimerPath) -> Response:
    conn = db()
    row = store.replay_timer(conn, path.timer_id)
    conn.commit()
    if row is not None:
        return _json(_detail(row, datetime.now(UTC)))
    try:
        current = _found(path.timer_id)
    except _NotFound:
        return _not_found(path.timer_id)
    return guards.json_error(
        409, f"timer {current.id} is {current.state}: only a failed timer can be replayed"
    )


@api.get(
    "/timers/<timer_id>/attempts",
    tags=[TIMERS],
    summary="A timer's delivery attempts (the ledger)",
    responses={200: schemas.TimerAttempts, **FOUND},
)
def timer_attempts(path: schemas.TimerPath) -> Response:
    try:
        _found(path.timer_id)
    except _NotFound:
        return _not_found(path.timer_id)
    items = [
        schemas.TimerAttempt.model_validate(
            {k: v for k, v in r._mapping.items() if k != "timer_id"}
        )
        for r in store.attempts_of(db(), path.timer_id)
    ]
    return _json(schemas.TimerAttempts(timer_id=path.timer_id, items=items))


# -- the absorbed service's routes ----------------------------------------------------------


@aliases.post(
    "/timer",
    tags=[ALIASES],
    summary="Create a timer (alias of POST /api/timers)",
    description=_CREATE_DOC,
    responses={201: schemas.Timer, **INVALID},
)
def create_timer_alias(body: schemas.CreateTimer) -> Response:
    return create(body)


@aliases.get(
    "/timer/<timer_id>",
    tags=[ALIASES],
    summary="A timer's time left (alias of GET /api/timers/{timer_id})",
    responses={200: schemas.Timer, **FOUND},
)
def get_timer_alias(path: schemas.TimerPath) -> Response:
    return _get(path.timer_id)


@aliases.get(
    "/health",
    tags=[ALIASES],
    summary="Broker and database reachability (alias of GET /api/health)",
    responses={200: schemas.Health, 503: schemas.Health, **INVALID},
)
def health_alias() -> Response:
    return health_response()
