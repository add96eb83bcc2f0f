"""The committed OpenAPI document is the one the code generates (no database, no broker)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from herald.web.app import openapi_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_document_matches_the_code() -> None:
    assert DOC.read_text() == openapi_text("json"), "run: poetry run invoke app.gen-api-spec"


def test_document_covers_every_operation_and_documents_422() -> None:
    doc = json.loads(openapi_text("json"))
    assert yaml.safe_load(openapi_text("yaml")) == doc
    operations = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert operations == {
        ("POST", "/api/runs"),
        ("GET", "/api/runs"),
        ("GET", "/api/runs/{run_id}"),
        ("GET", "/api/runs/{run_id}/outcomes"),
        ("GET", "/api/messages/{message_id}"),
        ("GET", "/api/health"),
        ("GET", "/api/lag"),
        ("GET", "/metrics"),
        ("POST", "/api/timers"),
        ("GET", "/api/timers"),
        ("GET", "/api/timers/{timer_id}"),
        ("DELETE", "/api/timers/{timer_id}"),
        ("POST", "/api/timers/{timer_id}/replay"),
        ("GET", "/api/timers/{timer_id}/attempts"),
        ("POST", "/timer"),
        ("GET", "/timer/{timer_id}"),
        ("GET", "/health"),
        ("POST", "/api/retail/events"),
        ("POST", "/produce_entry"),
        ("POST", "/produce_move"),
        ("POST", "/produce_exit"),
        ("POST", "/api/telemetry/schedules"),
        ("GET", "/api/telemetry/schedules"),
        ("GET", "/api/telemetry/schedules/{schedule_id}"),
        ("DELETE", "/api/telemetry/schedules/{schedule_id}"),
        ("GET", "/api/telemetry/streams"),
        ("GET", "/stream/"),
    }
    for path, item in doc["paths"].items():
        for op in item.values():
            schema = op["responses"]["422"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ValidationFailed"}, path
    # The document of a server with a token and open reads: writes need the bearer token.
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    secured = {
        (m.upper(), p)
        for p, item in doc["paths"].items()
        for m, op in item.items()
        if "security" in op
    }
    # Every timer route needs it, reads included: timers make the server call URLs.
    timer_routes = {op for op in operations if op[1].startswith(("/api/timers", "/timer"))}
    assert len(timer_routes) == 8
    retail_routes = {
        ("POST", "/api/retail/events"),
        ("POST", "/produce_entry"),
        ("POST", "/produce_move"),
        ("POST", "/produce_exit"),
    }
    telemetry_writes = {
        ("POST", "/api/telemetry/schedules"),
        ("DELETE", "/api/telemetry/schedules/{schedule_id}"),
    }
    assert secured == telemetry_writes | {("POST", "/api/runs")} | timer_routes | retail_routes
