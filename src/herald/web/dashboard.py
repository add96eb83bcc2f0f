"""The dashboard: pages, their server-sent event streams, and the interactive API docs.

One event stream per open page: the server reads Postgres once per ``stream_interval`` for
that stream and sends an event only when something changed, so a page costs one query
round per second however many charts it shows. A finished run's stream sends its final
state and ends.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, render_template
from sqlalchemy import Connection

from herald.db import store
from herald.web import queries, schemas
from herald.web.app import API_VERSION, WebState, state

dashboard = Blueprint("dashboard", __name__)

KEEPALIVE_SECS = 15.0
LAG_EVERY_SECS = 2.0
_RUN_ID = re.compile(schemas.RUN_ID_PATTERN)


def swagger_assets() -> Blueprint:
    """Swagger UI's JS and CSS, from the flask-openapi3-swagger package (no CDN)."""
    import importlib.util

    spec = importlib.util.find_spec("flask_openapi3_swagger")
    assert spec is not None and spec.origin is not None, "flask-openapi3-swagger is a dependency"
    folder = Path(spec.origin).parent / "templates" / "swagger"
    return Blueprint(
        "swagger_assets", __name__, static_folder=str(folder), static_url_path="/docs/assets"
    )


def redoc_assets() -> Blueprint:
    """Redoc's standalone JS, from the flask-openapi3-redoc package (no CDN)."""
    import importlib.util

    spec = importlib.util.find_spec("flask_openapi3_redoc")
    assert spec is not None and spec.origin is not None, "flask-openapi3-redoc is a dependency"
    folder = Path(spec.origin).parent / "templates" / "redoc"
    return Blueprint(
        "redoc_assets", __name__, static_folder=str(folder), static_url_path="/redoc/assets"
    )


@dashboard.context_processor
def _page_context() -> dict[str, Any]:
    # The start-a-run form asks for the token when the server requires one for writes.
    return {"token_required": state().settings.web.api_token is not None}


@dashboard.get("/")
def index() -> str:
    return render_template("index.html")


def _require_run(run_id: str) -> None:
    """404 unless ``run_id`` is a well-formed id of a run the database knows."""
    if not _RUN_ID.match(run_id):
        abort(404)
    with state().engine.connect() as conn:
        if queries.get_run(conn, run_id) is None:
            abort(404, description=f"no run {run_id}")


@dashboard.get("/runs/<run_id>")
def run_page(run_id: str) -> str:
    _require_run(run_id)
    return render_template("run.html", run_id=run_id)


@dashboard.get("/timers")
def timers_page() -> str:
    return render_template("timers.html")


@dashboard.get("/events/timers")
def timers_events() -> Response:
    """The timers page's figures, whenever they change (hosts only: no URL, no token)."""

    def snapshot(conn: Connection) -> tuple[str, dict[str, Any]]:
        return "timers", queries.timers_snapshot(conn)

    return _event_stream(state(), snapshot)


@dashboard.get("/docs")
def docs() -> str:
    return render_template("docs.html", version=API_VERSION)


@dashboard.get("/redoc")
def redoc() -> Response:
    """The API reference rendered by Redoc (served locally)."""
    from herald.web.security import REDOC_POLICY

    response = Response(render_template("redoc.html", version=API_VERSION))
    response.headers["Content-Security-Policy"] = REDOC_POLICY
    return response


@dashboard.get("/events/runs")
def runs_events() -> Response:
    """The first page of the runs list, whenever it changes."""

    def snapshot(conn: Connection) -> tuple[str, dict[str, Any]]:
        page = queries.list_runs(conn, 1, 20)
        return "runs", page.model_dump(mode="json")

    return _event_stream(state(), snapshot)


@dashboard.get("/runs/<run_id>/events")
def run_events(run_id: str) -> Response:
    """A run's progress, series and the senders' lag, whenever they change; ends with the run."""
    _require_run(run_id)
    web = state()
    last_bucket = [0]
    lag: dict[str, Any] = {"at": 0.0, "value": None}

    def snapshot(conn: Connection) -> tuple[str, dict[str, Any]]:
        run = queries.get_run(conn, run_id)
        assert run is not None  # runs are never deleted while the app runs
        detail = queries.run_detail(conn, run)
        # Re-read the last few seconds: outcomes completed in them may still be arriving.
        buckets = queries.series(conn, run, since=max(0, last_bucket[0] - 5))
        if buckets:
            last_bucket[0] = buckets[-1].t
        # The final event carries a fresh reading: the page keeps showing it.
        ended = detail.status in store.TERMINAL
        if ended or time.monotonic() - lag["at"] >= LAG_EVERY_SECS:
            lag["at"] = time.monotonic()
            lag["value"] = web.broker.lag(run.scenario).model_dump(mode="json")
        payload = {
            "run": detail.model_dump(mode="json"),
            "series": [b.as_json() for b in buckets],
            "lag": lag["value"],
        }
        return ("end" if ended else "progress"), payload

    return _event_stream(web, snapshot)


def _event_stream(
    web: WebState, snapshot: Callable[[Connection], tuple[str, dict[str, Any]]]
) -> Response:
    def events() -> Iterator[str]:
        yield "retry: 3000\n\n"
        last = ""
        quiet_since = time.monotonic()
        while True:
            with web.engine.connect() as conn:
                name, payload = snapshot(conn)
            data = json.dumps(payload, separators=(",", ":"))
            if data != last or name == "end":
                yield f"event: {name}\ndata: {data}\n\n"
                last, quiet_since = data, time.monotonic()
            elif time.monotonic() - quiet_since >= KEEPALIVE_SECS:
                yield ": keepalive\n\n"
                quiet_since = time.monotonic()
            if name == "end" or web.shutdown.wait(web.stream_interval):
                return

    response = Response(events(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy in front must not buffer events
    return response
