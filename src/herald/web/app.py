"""The Flask app factory: the engine and the Kafka view in ``app.extensions``; one database
connection per request (SQLAlchemy Core: the statements are :mod:`herald.db.store`'s)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer
from flask import Flask, Response, current_app, g, request
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI
from pydantic import SecretStr, ValidationError
from sqlalchemy import Connection, Engine
from werkzeug.exceptions import HTTPException

from herald import runs
from herald.config import Settings
from herald.db.engine import make_engine
from herald.errors import ConfigError
from herald.web import guards, schemas, security
from herald.web.broker import BrokerView

EXTENSION = "herald"
API_TITLE = "herald"
API_VERSION = "1.0.0"


@dataclass
class WebState:
    """What every request and event stream shares."""

    settings: Settings
    engine: Engine
    broker: BrokerView
    # Set when the server stops: open event streams end at their next tick.
    shutdown: threading.Event = field(default_factory=threading.Event)
    stream_interval: float = 1.0
    _submitter: Producer | None = None
    _submitter_lock: threading.Lock = field(default_factory=threading.Lock)

    def submitter(self) -> Producer:
        """The producer of run requests, made once: an idempotent producer's first send
        waits about 0.5 s for its producer id, which would otherwise slow every POST."""
        with self._submitter_lock:
            if self._submitter is None:
                self._submitter = runs.submitter(self.settings.kafka)
            return self._submitter

    def close(self) -> None:
        self.shutdown.set()
        self.broker.close()
        self.engine.dispose()
        if self._submitter is not None:
            self._submitter.close()


def state(app: Flask | None = None) -> WebState:
    """The app's :class:`WebState`."""
    target: Any = app or current_app
    web: WebState = target.extensions[EXTENSION]
    return web


def db() -> Connection:
    """This request's database connection (closed when the app context ends)."""
    if "db_connection" not in g:
        g.db_connection = state().engine.connect()
    conn: Connection = g.db_connection
    return conn


def create_app(settings: Settings, *, stream_interval: float = 1.0) -> OpenAPI:
    """The web app for ``settings`` (``database.url`` and ``kafka.bootstrap`` must be set)."""
    if settings.database.url is None:
        raise ConfigError("database.url is unset: the web app needs a database")
    app = OpenAPI(
        __name__,
        info=Info(
            title=API_TITLE,
            version=API_VERSION,
            description="Start runs of herald's scenarios, follow their progress and query "
            "outcomes.",
        ),
        validation_error_status=422,
        validation_error_model=schemas.ValidationFailed,
        validation_error_callback=_validation_failed,
        doc_ui=False,  # /docs is ours, with the Swagger UI assets served locally
    )
    # Werkzeug refuses to read more than this of a body (one without a declared length too).
    app.config["MAX_CONTENT_LENGTH"] = settings.web.max_body_bytes
    engine = make_engine(
        settings.database.url,
        pool_size=10,
        max_overflow=20,
        connect_args={"connect_timeout": max(1, int(settings.database.connect_timeout_secs))},
    )
    app.extensions[EXTENSION] = WebState(
        settings=settings,
        engine=engine,
        broker=BrokerView(settings.kafka),
        stream_interval=stream_interval,
    )

    @app.teardown_appcontext
    def _close_connection(_exc: BaseException | None) -> None:
        conn = g.pop("db_connection", None)
        if conn is not None:
            conn.close()

    @app.before_request
    def _guard() -> Response | None:
        # Cheapest first; the body is read (for its depth) only once the caller is known.
        web = settings.web
        return (
            guards.check_size(request, web)
            or security.authenticate(request, web)
            or guards.check_json(request, web)
        )

    app.after_request(security.add_headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException:
        # JSON for the API (and /metrics); the dashboard keeps Flask's HTML pages.
        if isinstance(exc.response, Response):  # flask-openapi3's 422, already a response
            return exc.response
        if not _is_api(request.path):
            return exc
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return guards.json_error(exc.code or 500, exc.description or exc.name, headers)

    from herald.web import retail, telemetry, timers
    from herald.web.api import api, register_metrics
    from herald.web.dashboard import dashboard, redoc_assets, swagger_assets

    app.register_api(api)
    app.register_api(timers.api)
    app.register_api(timers.aliases)
    app.register_api(retail.api)
    app.register_api(retail.classic)
    app.register_api(telemetry.api)
    app.register_api(telemetry.aliases)
    register_metrics(app)
    app.register_blueprint(dashboard)
    app.register_blueprint(retail.pages)
    app.register_blueprint(telemetry.pages)
    app.register_blueprint(swagger_assets())
    app.register_blueprint(redoc_assets())
    return app


def _is_api(path: str) -> bool:
    return path in ("/api", "/metrics", "/timer", "/health") or path.startswith(
        ("/api/", "/metrics/", "/timer/")
    )


def _validation_failed(exc: ValidationError) -> Response:
    # Request models are flat: the field is the first part of the location. An optional
    # field's error comes once per member of its union (``status.literal[...]``,
    # ``status.none``); the first member's is the one that explains the rule.
    detail: dict[str, schemas.FieldError] = {}
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        name = str(err["loc"][0]) if err["loc"] else "body"
        detail.setdefault(name, schemas.FieldError(field=name, reason=err["msg"], type=err["type"]))
    body = schemas.ValidationFailed(detail=list(detail.values()))
    return Response(body.model_dump_json(), status=422, mimetype="application/json")


def openapi_document(app: OpenAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app``, as generated from its routes and models."""
    doc: dict[str, Any] = json.loads(json.dumps(app.api_doc))
    # flask-openapi3 writes "securitySchemes": null when there are none; OpenAPI wants an
    # object or nothing.
    components = doc.get("components", {})
    for key in [k for k, v in components.items() if v is None]:
        del components[key]
    settings = state(app).settings
    security.document(doc, settings.web)
    schemas.document_limits(doc, settings.limits)
    return doc


def openapi_text(fmt: str = "json") -> str:
    """The OpenAPI document as JSON or YAML (no database or broker is contacted)."""
    from herald.config import DatabaseSettings, KafkaSettings, WebSettings

    # Placeholders: building the app connects to nothing; the document does not depend on them.
    # It is the document of a server with a token (and open reads), default limits.
    settings = Settings(
        database=DatabaseSettings(url="postgresql://openapi@localhost/openapi"),
        kafka=KafkaSettings(bootstrap="localhost:9092"),
        web=WebSettings(api_token=SecretStr("placeholder-not-a-secret")),
    )
    app = create_app(settings)
    try:
        doc = openapi_document(app)
    finally:
        state(app).close()
    if fmt == "json":
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "yaml":
        import importlib

        yaml = importlib.import_module("yaml")  # no type stubs installed
        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    raise ValueError(f"unknown format {fmt!r}: json or yaml")
