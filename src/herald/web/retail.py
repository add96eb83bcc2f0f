"""The retail store on the web: events injected into a run's timeline, and the store's page.

``POST /api/retail/events`` (and the classic ``/produce_entry``, ``/produce_move``,
``/produce_exit``) checks an event against the run and against who is inside, then journals
it — in ``retail_injections`` (Postgres, for the next check) and on
``herald.retail.injections`` (keyed by run id, for the producer, which merges it into the
run's timeline at its time, and again when the run is produced again). The check and the
journal happen under the run's injection lock, in one transaction: a refused event (422)
changes nothing, and concurrent injections, from any replica, are numbered one after another.

Injections concern customers of their own, not the run's simulated ones, and are due at
least two ticks ahead on the run's clock, so that the producer has them before their time.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from flask import Blueprint, Response, abort, redirect, render_template
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import Field, field_validator
from sqlalchemy import Connection
from werkzeug.wrappers import Response as BaseResponse

from herald.db import store
from herald.errors import BrokerError
from herald.scenarios import retail
from herald.scenarios.retail import INJECTION_LEAD_TICKS, RetailInjection, RetailRun, Store
from herald.web import guards, schemas
from herald.web.app import db, state
from herald.web.dashboard import _event_stream

RETAIL = Tag(name="retail", description="The retail store: inject events into a run")
CUSTOMER_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
_RUN_ID = re.compile(schemas.RUN_ID_PATTERN)

api = APIBlueprint("retail_api", __name__, url_prefix="/api/retail")
classic = APIBlueprint("retail_classic", __name__)
pages = Blueprint("retail_pages", __name__, url_prefix="/retail")


# -- bodies -----------------------------------------------------------------------------------


class ClassicEvent(schemas._Model):
    """An event as the classic routes take it: its type is the route's."""

    @field_validator("ts", "x", "y", mode="before")
    @classmethod
    def _json_numbers_only(cls, value: object) -> object:
        if isinstance(value, bool | str):
            raise ValueError("must be a JSON number")
        return value

    id: str = Field(..., pattern=CUSTOMER_PATTERN, description="The customer", examples=["997"])
    ts: float | None = Field(
        None,
        ge=0,
        le=1e11,
        allow_inf_nan=False,
        description="When, epoch seconds on the run's (simulated) clock; at least two ticks "
        "ahead of it, before closing. Unset: as soon as accepted (two ticks ahead).",
        examples=[192326400],
    )
    x: int | None = Field(
        None,
        ge=0,
        le=999,
        description="Column of the cell (a move's; enter and exit: the entrance)",
    )
    y: int | None = Field(None, ge=0, le=999, description="Row of the cell")
    run_id: str | None = Field(
        None,
        pattern=schemas.RUN_ID_PATTERN,
        description="The run (unset: the retail run asked for most recently, not finished)",
    )


class RetailEvent(ClassicEvent):
    """An event to inject into a retail run's timeline."""

    type: Literal["enter", "move", "exit"] = Field(..., description="What happens")


class EventAccepted(schemas._Model):
    injection_id: str
    run_id: str
    number: int = Field(..., description="Its order among the run's injections, from 1")
    type: str
    id: str = Field(..., description="The customer")
    ts: float = Field(..., description="When, epoch seconds on the run's clock")
    x: int
    y: int
    at: datetime = Field(..., description="`ts` as a time")


RESPONSES: dict[str | int, Any] = {
    202: EventAccepted,
    404: schemas.ErrorBody,
    409: schemas.ErrorBody,
    413: schemas.ErrorBody,
    422: schemas.ValidationFailed,
    503: schemas.ErrorBody,
}
RULES = (
    "Refused with 422, naming the field and the reason, and changing nothing: a move outside "
    "the store or not to an adjacent cell, an enter or exit elsewhere than the entrance, a "
    "move or exit of a customer who is not inside, an enter of one who is, a customer of the "
    "run's simulated ones, a time in the run's past (less than two ticks ahead of its clock), "
    "before the customer's last event, or after closing. No retail run in progress (or the "
    "one named finished): 409."
)


@api.post(
    "/events",
    tags=[RETAIL],
    summary="Inject an event into a retail run",
    description="Journals the event on `herald.retail.injections`; the producer merges it into "
    f"the run's timeline at its time, and a replay of the run has it too. {RULES}",
    responses=RESPONSES,
)
def inject(body: RetailEvent) -> Response:
    return _inject(body.type, body)


def _classic(kind: str, what: str) -> Any:
    def view(body: ClassicEvent) -> Response:
        return _inject(kind, body)

    view.__name__ = f"produce_{kind}"
    return classic.post(
        f"/produce_{'entry' if kind == 'enter' else kind}",
        tags=[RETAIL],
        summary=f"{what} (the classic route; `POST /api/retail/events` with type `{kind}`)",
        description=RULES,
        responses=RESPONSES,
    )(view)


produce_entry = _classic("enter", "A customer enters")
produce_move = _classic("move", "A customer moves")
produce_exit = _classic("exit", "A customer leaves")


class _Refused(Exception):
    """An event that cannot happen: 422 with the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _inject(kind: str, body: ClassicEvent) -> Response:
    conn = db()
    try:
        run = _run(conn, body.run_id)
        ts, cell = _check(conn, run, kind, body)
    except _Refused as refused:
        return guards.invalid(refused.field, refused.reason, "value_error")
    except _NoRun as missing:
        return guards.json_error(missing.status, str(missing))
    injection = RetailInjection(
        injection_id=uuid.uuid4().hex,
        run_id=run.run_id,
        number=store.next_injection_number(conn, run.run_id),
        type=kind,  # type: ignore[arg-type]  # the route's or the body's Literal
        customer=body.id,
        ts=ts,
        x=cell[0],
        y=cell[1],
        requested_at=datetime.now(UTC),
    )
    store.insert_injection(
        conn,
        {
            "injection_id": injection.injection_id,
            "run_id": run.run_id,
            "number": injection.number,
            "type": kind,
            "customer": body.id,
            "ts": ts,
            "x": cell[0],
            "y": cell[1],
            "requested_at": injection.requested_at,
        },
    )
    try:
        _journal(injection)
    except BrokerError as exc:
        abort(503, description=str(exc))
    conn.commit()  # journaled in Kafka first: a failed publish leaves no row behind
    accepted = EventAccepted(
        injection_id=injection.injection_id,
        run_id=run.run_id,
        number=injection.number,
        type=kind,
        id=body.id,
        ts=ts,
        x=cell[0],
        y=cell[1],
        at=datetime.fromtimestamp(ts, UTC),
    )
    return Response(accepted.model_dump_json(), status=202, mimetype="application/json")


def _check(
    conn: Connection, run: RetailRun, kind: str, body: ClassicEvent
) -> tuple[float, tuple[int, int]]:
    """The event's time and cell, checked against the run's clock and store and who is
    inside; raises :class:`_Refused`. Takes the run's injection lock (held until the end of
    the request's transaction)."""
    if run.speed is None:
        raise _Refused("run_id", f"run {run.run_id} is published at maximum speed: its "
                       "timeline has no time to inject into")  # fmt: skip
    lead = INJECTION_LEAD_TICKS * run.consume_frequency * run.speed
    now = run.clock.at(time.time())
    floor = round(now + lead + 0.0005, 3)  # to the millisecond, not before now + lead
    ts = body.ts if body.ts is not None else floor
    closes = run.closes_at.timestamp()
    if ts < floor:
        raise _Refused(
            "ts",
            f"ts = {ts:g} is in the run's past or too close: its clock is at {_iso(now)}; the "
            f"earliest accepted now is {floor:g} ({_iso(floor)})",
        )
    if ts >= closes:
        raise _Refused("ts", f"ts = {ts:g}: the store closes at {closes:g} ({_iso(closes)})")
    who = body.id
    if who in run.customers:
        raise _Refused(
            "id",
            f"customer {who} is one of run {run.run_id}'s simulated customers; inject "
            "customers of your own",
        )
    shop = Store.of(run)
    if kind == "move" and (body.x is None or body.y is None):
        raise _Refused("x", "a move needs x and y")
    cell = (body.x, body.y) if body.x is not None and body.y is not None else shop.entrance
    store.lock_injections(conn, run.run_id)
    last = store.last_injection(conn, run.run_id, who)
    here = None if last is None or last.type == "exit" else (int(last.x), int(last.y))
    if last is not None and ts < last.ts:
        raise _Refused(
            "ts", f"ts = {ts:g} is before customer {who}'s last event ({last.type} at {last.ts:g})"
        )
    reason = shop.refusal(kind, cell, here, who)
    if reason is not None:
        raise _Refused("id" if reason.startswith(f"customer {who} is") else "x", reason)
    return ts, cell


class _NoRun(Exception):
    """No run to inject into: 404 (unknown) or 409 (none in progress, or finished)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _run(conn: Connection, run_id: str | None) -> RetailRun:
    """The run an injection is for; raises :class:`_NoRun` or :class:`_Refused`."""
    if run_id is None:
        current = store.current_retail_run(conn)
        if current is None:
            raise _NoRun(409, "no retail run is in progress")
        raw = current.request
    else:
        row = store.run_request(conn, run_id)
        if row is None:
            raise _NoRun(404, f"no run {run_id}")
        if row.scenario != retail.SCENARIO.name or row.request is None:
            raise _Refused("run_id", f"run {run_id} is not a retail run")
        if row.state in store.TERMINAL:
            raise _NoRun(409, f"run {run_id} is {row.state}")
        raw = row.request
    return msgspec.convert(raw, RetailRun, strict=False)


def _journal(injection: RetailInjection) -> None:
    """Publish the injection on its topic; raises BrokerError unless acknowledged."""
    web = state()
    producer = web.submitter()
    errors: list[str] = []
    producer.produce(
        retail.INJECTIONS.qualified(web.settings.kafka.namespace),
        msgspec.json.encode(injection),
        injection.run_id,
        on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
    )
    if producer.flush(10) or errors:
        raise BrokerError(f"injection not acknowledged: {errors or 'timeout'}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


# -- the store's page ---------------------------------------------------------------------------


def _retail_run(run_id: str) -> RetailRun:
    if not _RUN_ID.match(run_id):
        abort(404)
    with state().engine.connect() as conn:
        row = store.run_request(conn, run_id)
    if row is None or row.scenario != retail.SCENARIO.name or row.request is None:
        abort(404, description=f"no retail run {run_id}")
    return msgspec.convert(row.request, RetailRun, strict=False)


@pages.get("")
def current() -> BaseResponse:
    """The page of the retail run in progress (the most recent one asked for)."""
    with state().engine.connect() as conn:
        found = store.current_retail_run(conn)
    if found is None:
        abort(404, description="no retail run is in progress")
    return redirect(f"/retail/runs/{found.run_id}")


@pages.get("/runs/<run_id>")
def run_page(run_id: str) -> str:
    run = _retail_run(run_id)
    return render_template("retail.html", run_id=run_id, run=run)


@pages.get("/runs/<run_id>/events")
def run_events(run_id: str) -> Response:
    """The store's figures, heatmap and occupancy whenever they change; ends with the run."""
    run = _retail_run(run_id)
    shape = {
        "width": run.store_width,
        "height": run.store_height,
        "entrance": list(run.entrance),
        "average": run.customers_average_in_store,
        "opens": run.opens_at.timestamp(),
        "starts": run.starts_at.timestamp(),
        "closes": run.closes_at.timestamp(),
    }

    def snapshot(conn: Connection) -> tuple[str, dict[str, Any]]:
        row = store.get_run(conn, run_id)
        status = row.state if row is not None else "requested"
        finished = status in store.TERMINAL
        payload = {
            "run_id": run_id,
            "status": status,
            "store": shape,
            "figures": store.retail_store(conn, run_id),
        }
        return ("end" if finished else "progress"), payload

    return _event_stream(state(), snapshot)
