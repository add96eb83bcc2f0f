"""Property-based fuzzing of every API operation from the generated OpenAPI document:
no server error, and every response conforms to the document (status, content type, schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.openapi.loaders import from_wsgi

from herald.config import Settings
from herald.web import create_app
from herald.web.app import state

EXAMPLES = 40


@pytest.fixture
def web_schema(settings: Settings) -> Iterator[schemathesis.BaseSchema]:
    app = create_app(settings)
    try:
        yield from_wsgi("/api/openapi.json", app)
    finally:
        state(app).close()


schema = schemathesis.pytest.from_fixture("web_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_conforms_and_never_fails(case: schemathesis.Case) -> None:
    case.call_and_validate()
