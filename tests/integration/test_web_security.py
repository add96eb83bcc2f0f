"""The web app's limits, authentication, headers and binding, against the real database and
broker: Flask's test client for the rules, a real waitress server and raw sockets for what
happens on the wire, and ``herald web`` as a process for the refusal to start."""

from __future__ import annotations

import io
import json
import re
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3.openapi import OpenAPI
from pydantic import SecretStr
from sqlalchemy import text

from herald import contracts, runs
from herald.config import LimitsSettings, Settings, WebSettings, load_settings, resolved_json
from herald.db.engine import make_engine
from herald.errors import EXIT_CONFIG, ConfigError
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.web import create_app
from herald.web.app import openapi_text, state
from herald.web.security import CONTENT_SECURITY_POLICY, check_binding, is_loopback
from herald.web.server import serve
from tests.support.cluster import make_settings
from tests.support.processes import HERALD, ROOT, clean_env
from tests.support.sms import record
from tests.support.sms import results_for as results
from tests.support.topics import read_topic
from tests.support.waiting import wait_for
from tests.support.web import serving

TOKEN = "s3cret-token-for-the-tests-0123"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}
TEN_MB = 10 * 1024 * 1024

Factory = Callable[..., OpenAPI]


@pytest.fixture
def make_app(settings: Settings) -> Iterator[Factory]:
    """Apps on the session's broker and database with ``web`` and ``limits`` settings changed."""
    made: list[OpenAPI] = []

    def make(*, web: dict[str, Any] | None = None, limits: dict[str, Any] | None = None) -> OpenAPI:
        changed = settings.model_copy(
            update={
                "web": settings.web.model_copy(update=web or {}),
                "limits": settings.limits.model_copy(update=limits or {}),
            }
        )
        app = create_app(changed, stream_interval=0.05)
        app.config["TESTING"] = True
        made.append(app)
        return app

    yield make
    for app in made:
        state(app).close()


def client(app: OpenAPI) -> FlaskClient:
    return app.test_client()


def detail(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "invalid request"
    return list(body["detail"])


def published(settings: Settings, count: int) -> list[str]:
    """The run ids of exactly ``count`` requests on this test's ``herald.runs``, and of any
    extra one found in a short look after them."""
    topic = contracts.RUNS.qualified(settings.kafka.namespace)
    return sorted(m.key().decode() for m in read_topic(settings, topic, count))


def run_row_count(settings: Settings) -> int:
    engine = make_engine(settings.database.url or "")
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM runs")).scalar_one())
    finally:
        engine.dispose()


# -- limits ---------------------------------------------------------------------------------


def test_a_run_beyond_max_messages_gets_422_naming_the_field_and_the_limit(
    make_app: Factory, settings: Settings
) -> None:
    app = client(make_app())
    rows = run_row_count(settings)
    assert detail(app.post("/api/runs", json={"messages": 1_000_000_000})) == [
        {
            "field": "messages",
            "reason": "more than limits.max_messages = 5000000 [env HERALD_LIMITS_MAX_MESSAGES]",
            "type": "limit_exceeded",
        }
    ]
    assert run_row_count(settings) == rows  # nothing recorded
    # The limit itself is allowed; one more is not.
    small = client(make_app(limits={"max_messages": 100}))
    accepted = small.post("/api/runs", json={"messages": 100})
    assert accepted.status_code == 202
    assert [d["field"] for d in detail(small.post("/api/runs", json={"messages": 101}))] == [
        "messages"
    ]
    # Only the accepted request reached the broker.
    assert published(settings, 1) == [accepted.get_json()["run_id"]]
    assert run_row_count(settings) == rows + 1


def test_a_too_slow_run_gets_422_naming_the_rate_and_the_limit(make_app: Factory) -> None:
    app = client(make_app())
    assert detail(app.post("/api/runs", json={"messages": 10, "rate": 0.0001})) == [
        {
            "field": "rate",
            "reason": "less than limits.min_rate = 1.0 [env HERALD_LIMITS_MIN_RATE]",
            "type": "limit_exceeded",
        }
    ]
    # Fast enough per message, but the run would take 100,000 s to produce.
    assert detail(app.post("/api/runs", json={"messages": 1_000_000, "rate": 10})) == [
        {
            "field": "rate",
            "reason": "1000000 messages at 10.0/s take 100000.0 s, more than "
            "limits.max_run_secs = 3000.0 [env HERALD_LIMITS_MAX_RUN_SECS]; "
            "ask for at least 333.34/s or fewer messages",
            "type": "limit_exceeded",
        }
    ]
    # The rate the reason suggests passes; both breaches of one request are reported.
    assert app.post("/api/runs", json={"messages": 1_000_000, "rate": 333.34}).status_code == 202
    both = detail(app.post("/api/runs", json={"messages": 10**9, "rate": 0.5}))
    assert [d["field"] for d in both] == ["messages", "rate"]


def test_the_cli_and_sim_share_the_check_a_config_error_with_field_value_and_limit() -> None:
    limits = LimitsSettings(max_messages=1000, min_rate=2.0)
    limited = load_settings(overrides={"limits": limits.model_dump()})
    with pytest.raises(ConfigError) as raised:
        runs.make_request(limited, messages=5000, rate=1.5)
    assert raised.value.exit_code == EXIT_CONFIG
    assert str(raised.value) == (
        "run request beyond the limits (2 error(s)):\n"
        "  messages = 5000: more than limits.max_messages = 1000 [env HERALD_LIMITS_MAX_MESSAGES]\n"
        "  rate = 1.5: less than limits.min_rate = 2.0 [env HERALD_LIMITS_MIN_RATE]"
    )
    assert isinstance(raised.value, runs.RunLimitExceeded)
    assert [(b.field, b.value, b.setting, b.limit) for b in raised.value.breaches] == [
        ("messages", 5000, "max_messages", 1000),
        ("rate", 1.5, "min_rate", 2.0),
    ]
    assert runs.make_request(limited, messages=1000, rate=2.0).expected == 1000
    runs.check_limits(limits, messages=1000, rate=None)  # no rate: as fast as possible, no limit


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_LIMITS_MAX_MESSAGES", "250")
    monkeypatch.setenv("HERALD_LIMITS_MAX_CONCURRENT_RUNS", "2")
    monkeypatch.setenv("HERALD_WEB_MAX_BODY_BYTES", "2048")
    s = load_settings()
    assert (s.limits.max_messages, s.limits.max_concurrent_runs) == (250, 2)
    assert s.web.max_body_bytes == 2048


def _going_runs(settings: Settings, stale_secs: float) -> int:
    engine = make_engine(settings.database.url or "")
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT count(*) FROM runs WHERE state IN ('requested', 'running') "
                    "AND updated_at > now() - make_interval(secs => :s)"
                ),
                {"s": stale_secs},
            )
            return int(found.scalar_one())
    finally:
        engine.dispose()


def _age_run(settings: Settings, run_id: str, days: int) -> None:
    engine = make_engine(settings.database.url or "")
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE runs SET updated_at = now() - make_interval(days => :d) "
                    "WHERE run_id = :r"
                ),
                {"d": days, "r": run_id},
            )
    finally:
        engine.dispose()


def test_runs_beyond_max_concurrent_runs_get_429_until_one_finishes_or_goes_stale(
    make_app: Factory, settings: Settings
) -> None:
    # The database is the session's: other tests' unfinished runs count too, so the limit is
    # set relative to them. A week's staleness: none of theirs ages out during this test.
    week = 7 * 24 * 3600.0
    before = _going_runs(settings, week)
    app = client(make_app(limits={"max_concurrent_runs": before + 2, "stale_run_secs": week}))
    first = app.post("/api/runs", json={"messages": 40})
    second = app.post("/api/runs", json={"messages": 30})
    assert (first.status_code, second.status_code) == (202, 202)
    refused = app.post("/api/runs", json={"messages": 20})
    assert refused.status_code == 429
    assert refused.get_json() == {
        "error": f"{before + 2} runs are not finished; at most {before + 2} at once "
        "[limits.max_concurrent_runs, env HERALD_LIMITS_MAX_CONCURRENT_RUNS]: "
        "try again when one finishes",
        "status": 429,
    }
    # The refused request never reached the broker.
    assert published(settings, 2) == sorted(r.get_json()["run_id"] for r in (first, second))
    # The first run finishes (every outcome recorded): a place is free.
    first_id = first.get_json()["run_id"]
    assert record(settings, results(first_id, 40)).new == 40
    assert client(make_app()).get(f"/api/runs/{first_id}").get_json()["status"] == "completed"
    third = app.post("/api/runs", json={"messages": 20})
    assert third.status_code == 202
    assert app.post("/api/runs", json={"messages": 20}).status_code == 429
    # A run whose row has not changed for longer than stale_run_secs no longer counts.
    _age_run(settings, second.get_json()["run_id"], days=8)
    assert app.post("/api/runs", json={"messages": 20}).status_code == 202
    assert app.post("/api/runs", json={"messages": 20}).status_code == 429


def test_replicas_admit_runs_one_at_a_time_so_the_limit_holds_exactly(
    make_app: Factory, settings: Settings
) -> None:
    # Two apps are two replicas behind a load balancer. The test holds the admission lock,
    # lets both requests queue on it, then releases it: one place, one 202, one 429. Without
    # the lock both would count the same runs and both be accepted (and never queue here).
    from herald.db.store import ADMISSION_LOCK

    week = 7 * 24 * 3600.0
    limits = {"max_concurrent_runs": _going_runs(settings, week) + 1, "stale_run_secs": week}
    replicas = [client(make_app(limits=limits)), client(make_app(limits=limits))]
    statuses: list[int] = []
    engine = make_engine(settings.database.url or "")
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADMISSION_LOCK})
            threads = [
                threading.Thread(
                    target=lambda c=c: statuses.append(
                        c.post("/api/runs", json={"messages": 10}).status_code
                    )
                )
                for c in replicas
            ]
            for t in threads:
                t.start()

            def waiting() -> int:
                with engine.connect() as conn:
                    found = conn.execute(
                        text(
                            "SELECT count(*) FROM pg_locks "
                            "WHERE locktype = 'advisory' AND NOT granted"
                        )
                    )
                    return int(found.scalar_one())

            wait_for(lambda: waiting() == 2, 30, "both requests waiting on the admission lock")
            assert statuses == []
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADMISSION_LOCK})
            for t in threads:
                t.join(30)
                assert not t.is_alive()
    finally:
        engine.dispose()
    assert sorted(statuses) == [202, 429]


# -- request size and shape -----------------------------------------------------------------


class CountingStream(io.RawIOBase):
    """A request body of ``size`` bytes made on demand, counting what the server reads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # the test client measures the stream (seek and tell read nothing)

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = offset + (self.size if whence == io.SEEK_END else 0)
        return self.position

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.position)
        buffer[:n] = b" " * n
        self.position += n
        self.read_bytes += n
        return n


def test_a_body_larger_than_the_limit_gets_413_without_being_read(make_app: Factory) -> None:
    stream = CountingStream(TEN_MB)
    response = client(make_app()).post(
        "/api/runs", input_stream=stream, content_length=TEN_MB, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.get_json() == {
        "error": "request body larger than 65536 bytes [web.max_body_bytes]",
        "status": 413,
    }
    assert stream.read_bytes == 0
    # At the limit, the body is read: 64 KiB of whitespace around a valid request.
    at_limit = ('{"messages": 5}' + " " * 65536)[:65536]
    assert (
        client(make_app())
        .post("/api/runs", data=at_limit, content_type="application/json")
        .status_code
        == 202
    )


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[str, int]]:
    """A real waitress server (``serve``) on a free loopback port: (host, port)."""
    with serving(settings) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP response read from ``sock``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("Content-Length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the body"
        body += chunk
    return status, headers, body


def test_the_server_answers_413_before_a_10_mb_body_is_sent(server: tuple[str, int]) -> None:
    host, port = server
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {TEN_MB}\r\n\r\n".encode()
            + b'{"messages": 5'
        )
        # Not another byte is sent: an answer now proves the server did not wait for (nor
        # buffer) the other 10 MB.
        status, headers, body = _response(sock)
    assert status == 413
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "error": "request body larger than 65536 bytes [web.max_body_bytes]",
        "status": 413,
    }
    for key, value in HEADERS.items():
        assert headers[key] == value, key


def test_the_server_stops_a_chunked_body_at_the_limit(server: tuple[str, int]) -> None:
    host, port = server
    chunk = b"2000\r\n" + b" " * 0x2000 + b"\r\n"
    sent = 0
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        deadline = time.monotonic() + 30
        answered = False
        while sent < TEN_MB and not answered:
            assert time.monotonic() < deadline, f"no answer after {sent} bytes"
            answered = bool(select.select([sock], [], [], 0)[0])
            if not answered:
                try:
                    sock.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break  # closed after answering: the answer is waiting to be read
                sent += len(chunk)
        status, _, body = _response(sock)
    assert status == 413
    assert json.loads(body)["status"] == 413
    assert sent < TEN_MB  # it answered long before the client finished sending


def test_deeply_nested_json_gets_422_not_a_server_error(make_app: Factory) -> None:
    app = make_app()
    app.config["TESTING"] = False  # a server error would be a 500 response, not an exception
    api = client(app)
    deep = "[" * 30_000 + "]" * 30_000  # 60 KB: within the size limit
    assert detail(api.post("/api/runs", data=deep, content_type="application/json")) == [
        {
            "field": "body",
            "reason": "JSON nested deeper than 32 levels [web.max_json_depth]",
            "type": "json_too_deep",
        }
    ]
    objects = '{"a": ' * 33 + "1" + "}" * 33
    assert detail(api.post("/api/runs", data=objects, content_type="application/json"))[0][
        "type"
    ] == ("json_too_deep")
    # 32 levels are parsed (and rejected by the schema: a list is not a run request).
    within = "[" * 32 + "]" * 32
    assert detail(api.post("/api/runs", data=within, content_type="application/json")) == [
        {
            "field": "body",
            "reason": "Input should be a valid dictionary or instance of StartRun",
            "type": "model_type",
        }
    ]
    # Brackets inside strings are text, not nesting.
    quoted = json.dumps({"messages": 5, "note": "[" * 100 + '\\"{' * 50})
    assert detail(api.post("/api/runs", data=quoted, content_type="application/json")) == [
        {"field": "note", "reason": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]
    # The report's case, 200 KB of nesting: too large before it is too deep.
    report = "[" * 100_000 + "]" * 100_000
    assert api.post("/api/runs", data=report, content_type="application/json").status_code == 413


# -- authentication -------------------------------------------------------------------------


def test_writes_need_the_bearer_token(make_app: Factory, settings: Settings) -> None:
    api = client(make_app(web={"api_token": SecretStr(TOKEN)}))
    missing = api.post("/api/runs", json={"messages": 5})
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="herald"'
    assert missing.get_json() == {
        "error": "a bearer token is required: send Authorization: Bearer <web.api_token>",
        "status": 401,
    }
    for wrong in ("Bearer not-the-token", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer "):
        response = api.post("/api/runs", json={"messages": 5}, headers={"Authorization": wrong})
        assert response.status_code == 401, wrong
    invalid = api.post("/api/runs", json={"messages": 5}, headers={"Authorization": "Bearer nope"})
    assert invalid.headers["WWW-Authenticate"] == 'Bearer realm="herald", error="invalid_token"'
    assert invalid.get_json()["error"].startswith("the bearer token is not valid")
    accepted = api.post("/api/runs", json={"messages": 5}, headers=BEARER)
    assert accepted.status_code == 202
    # The scheme's name is case-insensitive (RFC 7235).
    lower = api.post(
        "/api/runs", json={"messages": 5}, headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert lower.status_code == 202
    # Only these two reached the broker: nothing refused got through.
    assert published(settings, 2) == sorted(r.get_json()["run_id"] for r in (accepted, lower))


def test_the_rule_is_by_method_so_routes_added_later_are_covered(make_app: Factory) -> None:
    api = client(make_app(web={"api_token": SecretStr(TOKEN)}))
    # No such routes (yet: the seed-compatible aliases will be added later), still guarded.
    for method, path in (
        ("POST", "/timer"),
        ("PUT", "/api/runs/abc"),
        ("PATCH", "/api/runs"),
        ("DELETE", "/api/runs"),
        ("POST", "/produce_entry"),
    ):
        assert api.open(path, method=method).status_code == 401, (method, path)
    # With the token, they get what they would without the rule: 404 and 405, in JSON.
    assert api.open("/api/runs/abc", method="PUT", headers=BEARER).status_code == 405
    gone = api.open("/api/nothing", method="POST", headers=BEARER)
    assert (gone.status_code, gone.get_json()["status"]) == (404, 404)
    # Reads stay open by default.
    assert api.get("/api/runs").status_code == 200
    assert api.get("/").status_code == 200
    assert api.get("/metrics").status_code == 200


def test_protect_reads_guards_every_read_except_the_health_probe(make_app: Factory) -> None:
    api = client(make_app(web={"api_token": SecretStr(TOKEN), "protect_reads": True}))
    for path in ("/api/runs", "/api/lag", "/metrics", "/api/openapi.json", "/", "/docs"):
        assert api.get(path).status_code == 401, path
        assert api.get(path, headers=BEARER).status_code == 200, path
    with api.get("/static/herald.js") as asset:
        assert asset.status_code == 401
    assert api.get("/api/health").status_code == 200
    # Without a token, protect_reads has nothing to require.
    assert client(make_app(web={"protect_reads": True})).get("/api/runs").status_code == 200


def test_the_token_never_shows_in_dumps_reprs_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_WEB_API_TOKEN", TOKEN)
    s = load_settings()
    assert s.web.api_token is not None and s.web.api_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(s) and TOKEN not in str(s)
    assert TOKEN not in resolved_json(s)  # the settings file child processes get
    assert TOKEN not in s.model_dump_json()
    monkeypatch.setenv("HERALD_WEB_API_TOKEN", "short-secret")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "web.api_token must be at least 16 characters" in str(raised.value)
    assert "short-secret" not in str(raised.value)


def test_the_served_document_states_what_this_server_requires(make_app: Factory) -> None:
    # A server with a token and default limits serves exactly the committed document.
    with_token = client(make_app(web={"api_token": SecretStr(TOKEN)}))
    assert with_token.get("/api/openapi.json").get_json() == json.loads(openapi_text("json"))
    guarded = client(make_app(web={"api_token": SecretStr(TOKEN), "protect_reads": True}))
    doc = guarded.get("/api/openapi.json", headers=BEARER).get_json()
    open_ops = {
        (m.upper(), p)
        for p, item in doc["paths"].items()
        for m, op in item.items()
        if "security" not in op
    }
    assert open_ops == {("GET", "/api/health"), ("GET", "/health")}  # /health: the seed's alias
    assert doc["paths"]["/api/runs"]["get"]["responses"]["401"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
    }
    limited = (
        client(make_app(limits={"max_messages": 777, "min_rate": 2.5}))
        .get("/api/openapi.json")
        .get_json()
    )
    fields = limited["components"]["schemas"]["StartRun"]["properties"]
    assert {"type": "integer", "minimum": 1, "maximum": 777} in fields["messages"]["anyOf"]
    assert {"type": "number", "minimum": 2.5, "maximum": 10_000_000} in fields["rate"]["anyOf"]


# -- headers and JSON errors ----------------------------------------------------------------


def test_every_kind_of_response_carries_the_security_headers(
    make_app: Factory, settings: Settings
) -> None:
    api = client(make_app(web={"api_token": SecretStr(TOKEN)}))
    request = runs.make_request(settings, messages=1)
    run_id = request.run_id
    record(settings, results(run_id, 1), [request])  # a finished run: its stream ends
    responses = {
        "API": api.get("/api/runs"),
        "page": api.get("/"),
        "run page": api.get(f"/runs/{run_id}"),
        "docs": api.get("/docs"),
        "static": api.get("/static/herald.js"),
        "swagger asset": api.get("/docs/assets/css/swagger-ui.css"),
        "API 404": api.get("/api/nothing"),
        "page 404": api.get("/nothing"),
        "405": api.open("/api/runs", method="DELETE", headers=BEARER),
        "401": api.post("/api/runs", json={"messages": 1}),
        "413": api.post(
            "/api/runs", data=" " * 70_000, content_type="application/json", headers=BEARER
        ),
        "422": api.post("/api/runs", json={"messages": 0}, headers=BEARER),
        "event stream": api.get(f"/runs/{run_id}/events"),
    }
    for name, response in responses.items():
        with response:
            for key, value in HEADERS.items():
                assert response.headers.get(key) == value, (name, key)


def test_every_api_path_answers_errors_in_json(make_app: Factory) -> None:
    api = client(make_app())
    for path in ("/api", "/api/", "/api/nothing", "/api/runs/abc/outcomes/extra", "/metrics/x"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "application/json", path
        assert response.get_json()["status"] == 404, path
    wrong = api.open("/api/health", method="POST")
    assert (wrong.status_code, wrong.mimetype, wrong.get_json()["status"]) == (
        405,
        "application/json",
        405,
    )
    assert wrong.headers["Allow"]
    # The dashboard's own pages keep Flask's HTML.
    assert api.get("/nothing").mimetype == "text/html"


class _Inline(HTMLParser):
    """Inline scripts, style elements and style attributes: what the CSP forbids."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not names.get("src"):
                self.found.append("script without src")
        if tag == "style":
            self.found.append("<style>")
        if "style" in names or any(n.startswith("on") for n in names):
            self.found.append(f"<{tag}> attribute {sorted(names)}")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline script {data.strip()[:40]!r}")


def test_pages_hold_nothing_inline_that_the_policy_would_block(
    make_app: Factory, settings: Settings
) -> None:
    request = runs.make_request(settings, messages=1)
    run_id = request.run_id
    record(settings, results(run_id, 1), [request])  # a finished run: its stream ends
    for token in (None, SecretStr(TOKEN)):
        api = client(make_app(web={"api_token": token}))
        for path in ("/", f"/runs/{run_id}", "/docs"):
            parser = _Inline()
            parser.feed(api.get(path).get_data(as_text=True))
            assert parser.found == [], (path, parser.found)
        # The start-a-run form asks for the token only when the server needs one.
        form = api.get("/").get_data(as_text=True)
        assert ('id="start-token"' in form) is (token is not None)


# -- binding --------------------------------------------------------------------------------


def test_herald_web_refuses_a_non_loopback_address_without_a_token(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.run(
        [HERALD, "web", "--host", "0.0.0.0", "--port", "0"],
        env=clean_env(HERALD_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == EXIT_CONFIG
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.search(
        r"ERROR .*refusing to serve on 0\.0\.0\.0 without authentication: it is not a loopback "
        r"address; set web\.api_token \(HERALD_WEB_API_TOKEN\)",
        lines[0],
    ), lines[0]
    assert not home.exists()  # nothing was started: no broker, no database, no logs


def test_binding_is_allowed_on_loopback_with_a_token_or_when_told() -> None:
    open_web = WebSettings()
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
        check_binding(host, open_web)
    for host in ("0.0.0.0", "::", "192.0.2.10", "no-such-host.invalid"):
        assert not is_loopback(host), host
        with pytest.raises(ConfigError, match=f"refusing to serve on {re.escape(host)} "):
            check_binding(host, open_web)
    check_binding("0.0.0.0", WebSettings(api_token=SecretStr(TOKEN)))
    check_binding("0.0.0.0", WebSettings(allow_unauthenticated=True))


def test_serve_refuses_before_it_listens(
    broker: EmbeddedBroker, database: EmbeddedDatabase
) -> None:
    s = make_settings(broker, database, "unused")
    with pytest.raises(ConfigError, match=r"refusing to serve on 0\.0\.0\.0 "):
        serve(s, host="0.0.0.0", port=0, stop=threading.Event())
