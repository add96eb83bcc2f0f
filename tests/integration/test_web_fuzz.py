"""Property-based fuzzing of every API operation from the generated OpenAPI document:
no server error, and every response conforms to the document (status, content type, schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.openapi.loaders import from_wsgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from herald import kafka
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.web import create_app
from herald.web.app import state
from tests.support.cluster import make_settings

EXAMPLES = 25  # per operation; most findings come in the first few
TIMER_CREATION = ("/api/timers", "/timer")
RETAIL_INJECTION = ("/api/retail/events", "/produce_entry", "/produce_move", "/produce_exit")
TELEMETRY_SCHEDULES = ("/api/telemetry/schedules",)
BEYOND_THE_SCHEMA = (*TIMER_CREATION, *RETAIL_INJECTION, *TELEMETRY_SCHEDULES)
CALLBACKS = ("callback_url", "status_callback_url")
TOKEN = "fuzzing-token-0123456789"


@pytest.fixture
def web_schema(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str
) -> Iterator[schemathesis.BaseSchema]:
    # A server as deployed beyond loopback: writes need the token, so schemathesis also checks
    # that they are refused without it and with a wrong one. Limits small enough that every
    # run the served document allows is also within max_run_secs (3,000 messages at >= 1/s),
    # and no concurrency limit between the generated requests and their 202s; a run asked
    # without its size takes the producer's, within the limit too.
    s = make_settings(
        broker,
        database,
        namespace,
        web={"api_token": TOKEN},
        limits={"max_messages": 3000, "max_concurrent_runs": 100_000},
        producer={"num_messages": 3000},
    )
    kafka.ensure_topics(s.kafka)
    app = create_app(s)
    try:
        yield from_wsgi("/api/openapi.json", app)
    finally:
        state(app).close()


schema = schemathesis.pytest.from_fixture("web_schema")


@schema.auth()
class BearerToken:
    def get(self, case: schemathesis.Case, ctx: object) -> str:
        return TOKEN

    def set(self, case: schemathesis.Case, data: str, ctx: object) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_conforms_and_never_fails(case: schemathesis.Case) -> None:
    post = case.operation.method.upper() == "POST"
    body = case.body if isinstance(case.body, dict) else {}
    # A scheduled run, or a run with callbacks: the timers' rules apply to those fields too.
    timed = any(body.get(k) is not None for k in ("start_at", *CALLBACKS))
    # A run of another scenario than the default takes that scenario's own parameters.
    other = body.get("scenario") not in (None, "sms")
    if post and (case.operation.path in BEYOND_THE_SCHEMA or timed or other):
        # Rules beyond the schema: a delay above 0 in all, a due time (or a run's start_at) in
        # the future, a host that resolves outside the deny-list; an injected event within its
        # run's timeline; a telemetry stream's start not long past, its host in the allowed
        # networks. A schema-valid body may get 422 (with the field: test_timers and
        # test_retail check each), never a 5xx or an undocumented answer.
        case.call_and_validate(excluded_checks=[positive_data_acceptance])
        return
    case.call_and_validate()
