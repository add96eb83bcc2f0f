"""The telemetry schedules API: ``/api/telemetry/schedules`` (create, read, list, cancel or
stop), ``/api/telemetry/streams`` (the streams under way, per ship) and the old service's
``GET /stream/``.

A schedule is durable in Postgres before the 201, with its start as a due item the scheduler
publishes at ``start_at`` (a start command on ``herald.telemetry.commands``). ``DELETE``
cancels a schedule whose start is not out yet (nothing is ever sent), or stops a stream: its
stop command is acknowledged by the broker before the 202, and the spaceship running it ends
it (``stopped``). See docs/telemetry.md.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from flask import Blueprint, Response, abort, render_template, request
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import AwareDatetime, BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import Connection
from sqlalchemy.engine import Row

from herald.db import store
from herald.errors import BrokerError
from herald.scenarios import telemetry
from herald.web import guards, schemas
from herald.web.api import INVALID, Responses, _json
from herald.web.app import db, state
from herald.web.dashboard import _event_stream
from herald.web.timers import ALIASES

TELEMETRY = Tag(name="telemetry", description="Spacecraft telemetry: schedules of streams")

api = APIBlueprint("telemetry_api", __name__, url_prefix="/api/telemetry")
aliases = APIBlueprint("telemetry_aliases", __name__)
pages = Blueprint("telemetry_pages", __name__, url_prefix="/telemetry")

FOUND: Responses = {404: schemas.ErrorBody, **INVALID}
ScheduleState = Literal[
    "scheduled", "streaming", "stopping", "done", "stopped", "expired", "failed", "cancelled"
]
FINAL = frozenset({"done", "stopped", "expired", "failed", "cancelled"})


# -- bodies -------------------------------------------------------------------------------------


class CreateSchedule(schemas._Model):
    """A stream to schedule: which ship, when, for how long, how often, where to."""

    @field_validator("duration_s", "rate_hz", "port", "loss", "seed", mode="before")
    @classmethod
    def _json_numbers_only(cls, value: object) -> object:
        if isinstance(value, bool | str):
            raise ValueError("must be a JSON number")
        return value

    ship: str = Field(
        ..., pattern=telemetry.SHIP_PATTERN, description="The ship", examples=["voyager-1"]
    )
    start_at: AwareDatetime = Field(
        ...,
        description="When the stream starts (RFC 3339 with an offset); at most "
        "`telemetry.start_grace_secs` in the past (then it starts at once), at most "
        "`timers.max_delay_secs` ahead",
    )
    duration_s: float = Field(
        ..., gt=0, le=7 * 86_400, allow_inf_nan=False, description="Seconds of streaming"
    )
    rate_hz: float = Field(
        ..., gt=0, le=100_000, allow_inf_nan=False, description="Samples (datagrams) a second"
    )
    host: str = Field(
        ...,
        min_length=1,
        max_length=253,
        description="Where the datagrams go: an IP address (or `localhost`) in "
        "`telemetry.allowed_networks`",
        examples=["127.0.0.1"],
    )
    port: int = Field(..., ge=1, le=65535, description="The UDP port", examples=[47100])
    loss: float = Field(
        0.0,
        ge=0,
        lt=1,
        allow_inf_nan=False,
        description="The fraction of datagrams the spaceship drops before sending (a lossy "
        "link, on purpose; counted)",
    )
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="The battery model's seed (unset: from the id)"
    )


class SchedulePath(schemas._Model):
    schedule_id: str = Field(
        ..., pattern=telemetry.SCHEDULE_ID_PATTERN, description="Schedule id (32 hex digits)"
    )


class SchedulesQuery(BaseModel):
    state: ScheduleState | SkipJsonSchema[None] = Field(
        None, description="Only schedules in this state"
    )
    ship: Annotated[str, Field(pattern=telemetry.SHIP_PATTERN)] | SkipJsonSchema[None] = Field(
        None, description="Only this ship's"
    )
    page: int = Field(1, ge=1, le=schemas.MAX_PAGE, description="Page number, from 1")
    per_page: int = Field(50, ge=1, le=500, description="Items per page")


class Schedule(schemas._Model):
    """A schedule and where its stream stands; rows stay after it ends."""

    id: str
    ship: str
    state: ScheduleState = Field(
        ...,
        description="scheduled → streaming → done; or stopping → stopped (DELETE while it "
        "streams), cancelled (DELETE before it started), expired (not started by "
        "`not_after`), failed (the spaceship could not stream it)",
    )
    start_at: datetime
    not_after: datetime = Field(..., description="Never started after this")
    duration_s: float
    rate_hz: float
    host: str
    port: int
    loss: float
    seed: int
    packets_expected: int = Field(..., description="rate_hz × duration_s")
    packets_sent: int = Field(
        ..., description="Sent by the spaceships, every segment (as they last reported)"
    )
    dropped: int = Field(..., description="Dropped on purpose before sending (`loss`)")
    missed: int = Field(
        ...,
        description="Sent by no spaceship: skipped when the stream was resumed after a "
        "hand-off or a crash (packets_sent + dropped + missed = packets_expected once done)",
    )
    spaceship: str | None = Field(..., description="The spaceship instance streaming it")
    reason: str | None = Field(..., description="Why it failed")
    run_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SchedulePage(schemas._Model):
    items: list[Schedule]
    page: int
    per_page: int
    total: int
    pages: int


class ActiveStreams(schemas._Model):
    """The streams under way: their number, and per ship."""

    active: int = Field(..., description="Streams under way (streaming or stopping)")
    ships: dict[str, int] = Field(..., description="Streams under way, per ship")


# -- the routes ---------------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, field: str, reason: str, kind: str = "value_error") -> None:
        super().__init__(reason)
        self.field, self.reason, self.kind = field, reason, kind


def _refused(exc: _Refused) -> Response:
    body = schemas.ValidationFailed(
        detail=[schemas.FieldError(field=exc.field, reason=exc.reason, type=exc.kind)]
    )
    return _json(body, 422)


def _detail(row: Row[Any]) -> Schedule:
    m = row._mapping
    fields = {k: m[k] for k in Schedule.model_fields if k != "state"}
    return Schedule(state=m["effective_state"], **fields)


def _check(body: CreateSchedule, now: datetime) -> datetime:
    """The body against the server's rules (:class:`_Refused`); the start time, in UTC."""
    settings = state().settings
    cfg = settings.telemetry
    # Compared as given, converted only once within range: 0001-01-01T00:00+00:01 has no
    # UTC form (OverflowError).
    grace = timedelta(seconds=cfg.start_grace_secs)
    if body.start_at < now - grace:
        raise _Refused(
            "start_at",
            f"{body.start_at.isoformat()} is more than telemetry.start_grace_secs "
            f"({cfg.start_grace_secs:g} s) in the past",
        )
    if (body.start_at - now).total_seconds() > settings.timers.max_delay_secs:
        raise _Refused(
            "start_at",
            f"is more than timers.max_delay_secs ({settings.timers.max_delay_secs:g} s) ahead",
            "limit_exceeded",
        )
    start = body.start_at.astimezone(UTC)
    if body.duration_s > cfg.max_duration_secs:
        raise _Refused(
            "duration_s",
            f"{body.duration_s:g} s is more than telemetry.max_duration_secs "
            f"({cfg.max_duration_secs:g} s)",
            "limit_exceeded",
        )
    if body.rate_hz > cfg.max_rate_hz:
        raise _Refused(
            "rate_hz",
            f"{body.rate_hz:g} Hz is more than telemetry.max_rate_hz ({cfg.max_rate_hz:g} Hz)",
            "limit_exceeded",
        )
    refusal = telemetry.host_refusal(body.host, cfg.allowed_networks)
    if refusal is not None:
        raise _Refused("host", refusal, "host_not_allowed")
    return max(start, now)


@api.post(
    "/schedules",
    tags=[TELEMETRY],
    summary="Schedule a telemetry stream",
    description="Stored in Postgres before the 201; at `start_at` the scheduler publishes the "
    "stream's start command and a spaceship streams `rate_hz × duration_s` CCSDS packets over "
    "UDP to `host:port`. 422 names the field: a ship name that is not `[A-Za-z][A-Za-z0-9_-]`, "
    "a start too far in the past, a duration or rate not above 0 or above the server's "
    "limits, a port out of range, a host outside `telemetry.allowed_networks`.",
    responses={201: Schedule, **INVALID},
)
def create_schedule(body: CreateSchedule) -> Response:
    now = datetime.now(UTC)
    try:
        start = _check(body, now)
    except _Refused as exc:
        return _refused(exc)
    row, timer = telemetry.schedule_rows(
        state().settings,
        ship=body.ship,
        start_at=start,
        duration_s=body.duration_s,
        rate_hz=body.rate_hz,
        host="127.0.0.1" if body.host == "localhost" else body.host,
        port=body.port,
        loss=body.loss,
        seed=body.seed,
        now=now,
    )
    conn = db()
    store.insert_schedule(conn, row, timer)
    conn.commit()
    stored = store.get_schedule(conn, row["id"])
    assert stored is not None
    response = _json(_detail(stored), 201)
    response.headers["Location"] = f"/api/telemetry/schedules/{row['id']}"
    return response


@api.get(
    "/schedules",
    tags=[TELEMETRY],
    summary="List telemetry schedules, newest first",
    responses={200: SchedulePage, **INVALID},
)
def list_schedules(query: SchedulesQuery) -> Response:
    offset = (query.page - 1) * query.per_page
    total, rows = store.list_schedules(
        db(), state=query.state, ship=query.ship, offset=offset, limit=query.per_page
    )
    page = SchedulePage(
        items=[_detail(r) for r in rows],
        page=query.page,
        per_page=query.per_page,
        total=total,
        pages=math.ceil(total / query.per_page),
    )
    return _json(page)


@api.get(
    "/schedules/<schedule_id>",
    tags=[TELEMETRY],
    summary="A telemetry schedule: its state and the packets sent",
    responses={200: Schedule, **FOUND},
)
def get_schedule(path: SchedulePath) -> Response:
    row = store.get_schedule(db(), path.schedule_id)
    if row is None:
        return guards.json_error(404, f"no schedule {path.schedule_id}")
    return _json(_detail(row))


@api.delete(
    "/schedules/<schedule_id>",
    tags=[TELEMETRY],
    summary="Cancel a scheduled stream, or stop a running one",
    description="Before its start is published: `cancelled` (200), nothing is ever sent. "
    "Once it is out or streaming: its stop command is published (acknowledged before the "
    "answer) and the schedule is `stopping` (202) until the spaceship ends the stream "
    "(`stopped`). 409 once it has ended.",
    responses={
        200: Schedule,
        202: Schedule,
        409: schemas.ErrorBody,
        503: schemas.ErrorBody,
        **FOUND,
    },
)
def delete_schedule(path: SchedulePath) -> Response:
    conn = db()
    cancelled = store.cancel_schedule(conn, path.schedule_id)
    conn.commit()
    row = store.get_schedule(conn, path.schedule_id)
    if row is None:
        return guards.json_error(404, f"no schedule {path.schedule_id}")
    if cancelled:
        return _json(_detail(row))
    if row.effective_state in FINAL:
        return guards.json_error(
            409, f"schedule {row.id} is {row.effective_state}: it cannot be stopped"
        )
    try:
        _publish_stop(row)
    except BrokerError as exc:
        return guards.json_error(503, f"the stop command was not acknowledged: {exc}")
    store.mark_stopping(conn, row.id)
    conn.commit()
    row = store.get_schedule(conn, path.schedule_id)
    assert row is not None
    return _json(_detail(row), 202)


def _publish_stop(row: Row[Any]) -> None:
    web = state()
    producer = web.submitter()
    errors: list[str] = []
    producer.produce(
        telemetry.COMMANDS.qualified(web.settings.kafka.namespace),
        msgspec.json.encode(telemetry.stop_command(row)),
        row.id,
        on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
    )
    if producer.flush(10) or errors:
        raise BrokerError(str(errors or "timeout"))


def _active() -> Response:
    ships = store.active_streams(db())
    return _json(ActiveStreams(active=sum(ships.values()), ships=ships))


@api.get(
    "/streams",
    tags=[TELEMETRY],
    summary="The telemetry streams under way, per ship",
    responses={200: ActiveStreams, **INVALID},
)
def active_streams() -> Response:
    return _active()


@aliases.get(
    "/stream/",
    tags=[ALIASES],
    summary="The streams under way (alias of GET /api/telemetry/streams)",
    responses={200: ActiveStreams, **INVALID},
)
def active_streams_alias() -> Response:
    return _active()


# -- the telemetry page -------------------------------------------------------------------------

SERIES_SECS = 120.0  # the charts show the last two minutes of each ship's samples
_RUN_ID = schemas.RUN_ID_PATTERN


def _run_id() -> str | None:
    run_id = request.args.get("run_id") or None
    if run_id is not None and not re.match(_RUN_ID, run_id):
        abort(404, description=f"no run {run_id}")
    return run_id


@pages.get("")
def page() -> str:
    """The telemetry monitor: streams active, frames/s, per ship its counts and charts (the
    streams under way or started in the last 15 minutes, or one run's with ``?run_id=``)."""
    return render_template("telemetry.html", run_id=_run_id())


@pages.get("/events")
def events() -> Response:
    """The telemetry monitor's figures and each ship's last two minutes, when they change."""
    from herald import telemetry_monitor

    run_id = _run_id()

    def snapshot(conn: Connection) -> tuple[str, dict[str, Any]]:
        return "telemetry", telemetry_monitor.snapshot(conn, run_id=run_id, series_secs=SERIES_SECS)

    return _event_stream(state(), snapshot)
