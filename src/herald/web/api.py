"""The REST API under ``/api`` (and ``/metrics``): validated by the models in
:mod:`herald.web.schemas`, documented from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from flask_openapi3.openapi import OpenAPI
from pydantic import BaseModel

from herald import runs
from herald.errors import BrokerError, ConfigError
from herald.scenarios.base import UnknownParameters
from herald.web import guards, metrics, queries, schemas
from herald.web.app import db, openapi_document, state

RUNS = Tag(name="runs", description="Start runs and follow them")
OUTCOMES = Tag(name="outcomes", description="One row per message")
OPS = Tag(name="operations", description="Health, consumer lag and metrics")

api = APIBlueprint("api", __name__, url_prefix="/api")

Responses = dict[str | int, type[BaseModel] | dict[str, Any] | None]
INVALID: Responses = {422: schemas.ValidationFailed}
NOT_FOUND: Responses = {404: schemas.ErrorBody, **INVALID}


def _json(model: schemas._Model, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status=status, mimetype="application/json")


def _invalid(field: str, reason: str) -> Response:
    """422 for a request that passed the schema but not the run's own checks."""
    body = schemas.ValidationFailed(
        detail=[schemas.FieldError(field=field, reason=reason, type="value_error")]
    )
    return _json(body, 422)


def _refused(exc: ConfigError) -> Response:
    """The 422 for a run request :func:`runs.make_request` refused, naming its fields."""
    if isinstance(exc, runs.CallbackRefused):
        return _invalid(exc.field, exc.reason)
    if isinstance(exc, runs.RunLimitExceeded):
        detail = [
            schemas.FieldError(field=b.field, reason=b.reason, type="limit_exceeded")
            for b in exc.breaches
        ]
    elif isinstance(exc, UnknownParameters):
        detail = [
            schemas.FieldError(field=f, reason=str(exc), type="extra_forbidden") for f in exc.fields
        ]
    else:
        return _invalid("body", str(exc))
    return _json(schemas.ValidationFailed(detail=detail), 422)


@api.post(
    "/runs",
    tags=[RUNS],
    summary="Start a run",
    description="Publishes a run request on `herald.runs`; the producer picks it up. "
    "The run's row exists at once (status `requested`); the recorder fills it in. "
    "A run beyond the server's `limits` gets 422 naming the field and the limit; "
    "with `limits.max_concurrent_runs` runs unfinished, 429. With `start_at` the run is "
    "scheduled: the scheduler publishes its request then (cancel it at its `timer_url`).",
    responses={
        202: schemas.RunAccepted,
        413: schemas.ErrorBody,
        429: schemas.ErrorBody,
        503: schemas.ErrorBody,
        **INVALID,
    },
)
def start_run(body: schemas.StartRun) -> Response:
    web = state()
    params: dict[str, Any] = {
        k: v for k, v in (("messages", body.messages), ("rate", body.rate)) if v is not None
    }
    try:
        request = runs.make_request(
            web.settings,
            scenario=body.scenario,
            seed=body.seed,
            config={"source": "web"},
            callback_url=body.callback_url,
            status_callback_url=body.status_callback_url,
            **params,
        )
    except ConfigError as exc:
        return _refused(exc)
    if body.start_at is not None:
        return _schedule_run(request, body.start_at)
    limits = web.settings.limits
    conn = db()
    # Held until the run's row is committed below: concurrent requests, from any replica,
    # are admitted one at a time, so the limit holds exactly.
    active = queries.admit_run(conn, stale_after_secs=limits.stale_run_secs)
    if active >= limits.max_concurrent_runs:
        return guards.json_error(
            429,
            f"{active} runs are not finished; at most {limits.max_concurrent_runs} at once "
            "[limits.max_concurrent_runs, env HERALD_LIMITS_MAX_CONCURRENT_RUNS]: "
            "try again when one finishes",
        )
    try:
        runs.submit(web.settings.kafka, request, timeout=10.0, producer=web.submitter())
    except BrokerError as exc:
        abort(503, description=str(exc))
    queries.record_request(conn, request)
    accepted = schemas.RunAccepted(
        run_id=request.run_id,
        scenario=request.scenario,
        messages=request.expected,
        seed=request.seed,
        rate=getattr(request, "rate", None),
        url=f"/api/runs/{request.run_id}",
        dashboard_url=f"/runs/{request.run_id}",
    )
    response = _json(accepted, 202)
    response.headers["Location"] = accepted.url
    return response


def _schedule_run(request: Any, start_at: datetime) -> Response:
    """A run that starts later: a timer the scheduler fires at ``start_at``."""
    web = state()
    now = datetime.now(UTC)
    problem = runs.start_at_problem(web.settings, start_at, now)
    if problem is not None:
        return _invalid("start_at", problem)
    conn = db()
    timer_id = runs.schedule(conn, web.settings, request, start_at=start_at, now=now)
    conn.commit()
    accepted = schemas.RunAccepted(
        run_id=request.run_id,
        scenario=request.scenario,
        messages=request.expected,
        seed=request.seed,
        rate=getattr(request, "rate", None),
        url=f"/api/runs/{request.run_id}",
        dashboard_url=f"/runs/{request.run_id}",
        start_at=start_at,
        timer_url=f"/api/timers/{timer_id}",
    )
    response = _json(accepted, 202)
    response.headers["Location"] = accepted.url
    return response


@api.get(
    "/runs",
    tags=[RUNS],
    summary="List runs, most recent first",
    responses={200: schemas.RunPage, **INVALID},
)
def list_runs(query: schemas.PageQuery) -> Response:
    return _json(queries.list_runs(db(), query.page, query.per_page))


@api.get(
    "/runs/<run_id>",
    tags=[RUNS],
    summary="A run's progress",
    description="Counts, percent done, exact latency percentiles, throughput, per-sender "
    "figures and status, all from Postgres.",
    responses={200: schemas.RunDetail, **NOT_FOUND},
)
def get_run(path: schemas.RunPath) -> Response:
    conn = db()
    run = queries.get_run(conn, path.run_id)
    if run is None:
        abort(404, description=f"no run {path.run_id}")
    return _json(queries.run_detail(conn, run))


@api.get(
    "/runs/<run_id>/outcomes",
    tags=[OUTCOMES],
    summary="A run's outcomes, filtered and paged",
    responses={200: schemas.OutcomePage, **NOT_FOUND},
)
def list_outcomes(path: schemas.RunPath, query: schemas.OutcomeQuery) -> Response:
    conn = db()
    if queries.get_run(conn, path.run_id) is None:
        abort(404, description=f"no run {path.run_id}")
    page = queries.outcomes(
        conn,
        path.run_id,
        status=query.status,
        sender=query.sender,
        page=query.page,
        per_page=query.per_page,
    )
    return _json(page)


@api.get(
    "/messages/<message_id>",
    tags=[OUTCOMES],
    summary="One message's outcome",
    responses={200: schemas.Outcome, **NOT_FOUND},
)
def get_message(path: schemas.MessagePath) -> Response:
    found = queries.get_outcome(db(), path.message_id)
    if found is None:
        abort(404, description=f"no outcome for message {path.message_id}")
    return _json(queries.outcome(found))


@api.get(
    "/health",
    tags=[OPS],
    summary="Broker and database reachability",
    description="200 when both answer, 503 (same body) when either does not.",
    responses={200: schemas.Health, 503: schemas.Health, **INVALID},
)
def health() -> Response:
    return health_response()


def health_response() -> Response:
    """200 when the broker and the database answer, 503 (the same body) when either does not."""
    from sqlalchemy import text

    web = state()
    broker = web.broker.reachable()
    import time

    started = time.monotonic()
    try:
        with web.engine.connect() as conn:
            version: str = conn.execute(text("SHOW server_version")).scalar_one()
        database = schemas.Reachability(
            ok=True,
            detail=f"PostgreSQL {version}",
            latency_ms=round((time.monotonic() - started) * 1000, 2),
        )
    except Exception as exc:  # any failure to answer is "unreachable", with its reason
        database = schemas.Reachability(
            ok=False, detail=str(exc).strip().splitlines()[0], latency_ms=None
        )
    ok = broker.ok and database.ok
    body = schemas.Health(status="ok" if ok else "degraded", broker=broker, database=database)
    return _json(body, 200 if ok else 503)


@api.get(
    "/lag",
    tags=[OPS],
    summary="A scenario's workers' consumer-group lag per partition",
    responses={200: schemas.ConsumerLag, **INVALID},
)
def lag(query: schemas.LagQuery) -> Response:
    web = state()
    return _json(web.broker.lag(query.scenario or web.settings.producer.scenario))


@api.get("/openapi.json", doc_ui=False)
def openapi_json() -> Response:
    from flask import current_app

    app: OpenAPI = current_app  # type: ignore[assignment]
    return jsonify(openapi_document(app))


def register_metrics(app: OpenAPI) -> None:
    """``/metrics`` sits at the root, where Prometheus looks by default."""

    @app.get(
        "/metrics",
        tags=[OPS],
        summary="Prometheus metrics",
        description="Outcome counters and send-latency histograms per run and sender, "
        "computed from Postgres at scrape time.",
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **INVALID,
        },
    )
    def prometheus(query: schemas.MetricsQuery) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(db(), query.runs), content_type=CONTENT_TYPE_LATEST)
