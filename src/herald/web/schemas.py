"""The HTTP API's request and response bodies: pydantic models, from which the OpenAPI
document is generated and against which every request is validated (422 on a mismatch)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from herald.config import LimitsSettings

# The same rules as the Kafka contracts (herald.contracts): ids that pass here are ids that
# can exist, and nothing that reaches SQL can hold a NUL byte or overflow a column.
RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_:.-]{1,128}$"
MAX_MESSAGES = 1_000_000_000
MAX_SENDER = 1_000_000
MAX_PAGE = 1_000_000

RunStatus = Literal["requested", "running", "completed", "interrupted", "failed", "abandoned"]
SCENARIO_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
STATUS_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _scenario_names() -> list[str]:
    from herald.scenarios import base

    return sorted(base.scenarios())


_SCENARIOS: list[Any] = _scenario_names()  # the registry's: the OpenAPI document lists them


def _runnable_names() -> list[str]:
    from herald.scenarios import base

    return sorted(name for name, s in base.scenarios().items() if s.runs_api)


_RUNNABLE: list[Any] = _runnable_names()  # those POST /api/runs starts


def _known(scenario: str | None) -> str | None:
    """``scenario`` when it is a registered scenario's name (or None)."""
    from herald.scenarios import base

    if scenario is not None and scenario not in base.scenarios():
        raise ValueError(f"no scenario {scenario!r}; scenarios: {', '.join(base.scenarios())}")
    return scenario


def _runnable(scenario: str | None) -> str | None:
    """``scenario`` when ``POST /api/runs`` starts its runs (a telemetry stream is a schedule)."""
    from herald.scenarios import base

    known = _known(scenario)
    if known is not None and not base.get(known).runs_api:
        raise ValueError(f"{known} streams are scheduled, not run: POST /api/{known}/schedules")
    return known


# -- requests -------------------------------------------------------------------------------


class StartRun(_Model):
    """Ask for a run: the request travels over `herald.runs` to the producer."""

    @field_validator("messages", "rate", "seed", mode="before")
    @classmethod
    def _json_numbers_only(cls, value: object) -> object:
        # JSON `true` is not the number 1, nor "5" the number 5; 470.0 is the integer 470
        # (as JSON Schema has it), which pydantic's lax mode accepts.
        if isinstance(value, bool | str):
            raise ValueError("must be a JSON number")
        return value

    # The bounds here are the columns'; the server's own (`limits`) are narrower, checked by
    # the view and written into the document it serves (document_limits).
    messages: int | None = Field(
        None,
        ge=1,
        le=MAX_MESSAGES,
        description="Messages in the run, at most `limits.max_messages` (unset: "
        "`producer.num_messages`); only for a scenario with a count: one on a timeline "
        "(`retail`) refuses it with 422",
        examples=[10_000],
    )
    rate: float | None = Field(
        None,
        gt=0,
        le=10_000_000,
        allow_inf_nan=False,
        description="Producer rate limit, messages/s (unset: as fast as possible); at least "
        "`limits.min_rate`, and messages / rate at most `limits.max_run_secs` seconds",
    )
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="Seed for reproducible content (unset: random)"
    )
    # The enum is the string's: null (unset) is allowed too, as the document says.
    scenario: (
        Annotated[str, Field(pattern=SCENARIO_PATTERN, json_schema_extra={"enum": _RUNNABLE})]
        | None
    ) = Field(
        None, description="The scenario to run (unset: `producer.scenario`, `sms` by default)"
    )

    callback_url: str | None = Field(
        None,
        min_length=8,
        max_length=2048,
        description="POSTed once with the run's totals when it completes (signed like a "
        "timer's callback; `webhook-id` `run-<run_id>-completed`); the timers' URL rules apply",
    )
    status_callback_url: str | None = Field(
        None,
        min_length=8,
        max_length=2048,
        description="POSTed once per message outcome as it is recorded (`webhook-id` "
        "`<message id>-status`); at most `notifier.max_in_flight_per_host` at once per host",
    )
    start_at: AwareDatetime | None = Field(
        None,
        description="Start the run then, not now (RFC 3339 with a UTC offset; in the future, "
        "at most `timers.max_delay_secs` ahead): the scheduler publishes the request at that "
        "time; the run's resource exists from then, its timer (`timer_url`) from now.",
    )

    _known_scenario = field_validator("scenario")(classmethod(lambda cls, v: _runnable(v)))


def document_limits(doc: dict[str, Any], limits: LimitsSettings) -> None:
    """Write a server's ``limits`` into its OpenAPI document's :class:`StartRun` schema."""
    fields = doc["components"]["schemas"]["StartRun"]["properties"]
    for choice in fields["messages"]["anyOf"]:
        if choice.get("type") == "integer":
            choice["maximum"] = limits.max_messages
    for choice in fields["rate"]["anyOf"]:
        if choice.get("type") == "number":
            choice.pop("exclusiveMinimum", None)
            choice["minimum"] = limits.min_rate


class RunPath(_Model):
    run_id: str = Field(..., pattern=RUN_ID_PATTERN, description="Run id")


class MessagePath(_Model):
    message_id: str = Field(..., pattern=MESSAGE_ID_PATTERN, description="Message id")


class PageQuery(BaseModel):
    page: int = Field(1, ge=1, le=MAX_PAGE, description="Page number, from 1")
    per_page: int = Field(20, ge=1, le=500, description="Items per page")


class OutcomeQuery(PageQuery):
    # Optional, but never null: a query string cannot say null (SkipJsonSchema keeps it out).
    status: Annotated[str, Field(pattern=STATUS_PATTERN)] | SkipJsonSchema[None] = Field(
        None, description="Only this status (`sent`, `failed`, ... as the run's scenario says)"
    )
    sender: Annotated[int, Field(ge=0, le=MAX_SENDER)] | SkipJsonSchema[None] = Field(
        None, description="Only this worker's (sender's) outcomes"
    )
    per_page: int = Field(50, ge=1, le=500, description="Items per page")


class LagQuery(BaseModel):
    scenario: (
        Annotated[str, Field(pattern=SCENARIO_PATTERN, json_schema_extra={"enum": _SCENARIOS})]
        | SkipJsonSchema[None]
    ) = Field(None, description="Whose workers (unset: `producer.scenario`)")

    _known_scenario = field_validator("scenario")(classmethod(lambda cls, v: _known(v)))


class MetricsQuery(BaseModel):
    runs: int = Field(10, ge=1, le=100, description="How many of the most recent runs to export")


# -- responses ------------------------------------------------------------------------------


class FieldError(_Model):
    field: str = Field(..., description="The offending field (dotted path; empty: the body)")
    reason: str = Field(..., description="Why it was rejected")
    type: str = Field(..., description="Machine-readable error type")


class ValidationFailed(_Model):
    """422: the request did not match the schema."""

    error: Literal["invalid request"] = "invalid request"
    detail: list[FieldError]


class ErrorBody(_Model):
    """An error that is not a validation failure (404, 405, 503, ...)."""

    error: str = Field(..., description="What went wrong, for a human")
    status: int = Field(..., description="The HTTP status code")


class RunAccepted(_Model):
    run_id: str
    scenario: str
    messages: int | None = Field(..., description="Messages the run yields, when known")
    seed: int
    rate: float | None
    url: str = Field(..., description="The run's API resource")
    dashboard_url: str = Field(..., description="The run's live page")
    start_at: datetime | None = Field(None, description="When it starts (a scheduled run)")
    timer_url: str | None = Field(None, description="A scheduled run's timer (cancel it there)")


class RunSummary(_Model):
    run_id: str
    scenario: str
    status: RunStatus = Field(
        ...,
        description="requested: nothing recorded yet; running: outcomes arriving; then one "
        "terminal state: completed (every expected outcome recorded), interrupted (stopped by "
        "its user; the counts are what Postgres kept), failed (it could not complete: see "
        "`state_reason`) or abandoned (its services are gone: found at the next start of the "
        "embedded database, or after `limits.stale_run_secs` without an outcome)",
    )
    expected: int | None = Field(..., description="Messages asked for (unknown: null)")
    sent: int = Field(
        ..., description="Outcomes whose status counts as success (the default scenario's `sent`)"
    )
    failed: int = Field(..., description="Outcomes whose status counts as failure")
    done: int = Field(..., description="Outcomes recorded (sent + failed)")
    remaining: int | None
    percent: float | None = Field(..., description="done / expected * 100")
    requested_at: datetime | None
    started_at: datetime | None = Field(..., description="When its first message was created")
    finished_at: datetime | None = Field(
        ..., description="When every expected outcome was recorded"
    )
    ended_at: datetime | None = Field(..., description="When it reached its terminal state")
    state_reason: str | None = Field(
        ..., description="Why it ended so, when not completed (interrupted, failed, abandoned)"
    )
    url: str


class RunPage(_Model):
    items: list[RunSummary]
    page: int
    per_page: int
    total: int
    pages: int


class Latency(_Model):
    """Milliseconds, exact (percentile_cont over every outcome in Postgres)."""

    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class SenderStats(_Model):
    """One worker's figures (the default scenario's workers are its senders)."""

    sender_id: int
    sent: int
    failed: int
    failure_percent: float
    avg_latency_ms: float
    p95_latency_ms: float


class RunDetail(RunSummary):
    counts: dict[str, int] = Field(..., description="Outcomes in Postgres, by status")
    latency: Latency
    throughput: float | None = Field(
        ..., description="Outcomes per second: recorded / (last recorded - first created)"
    )
    elapsed_secs: float | None = Field(
        ..., description="From the first message created to the last outcome recorded"
    )
    senders: list[SenderStats]


class Outcome(_Model):
    message_id: str
    run_id: str
    scenario: str
    sender_id: int = Field(..., description="The worker (sender) that produced it")
    status: str = Field(..., description="The scenario's status (`sent`, `failed`, ...)")
    latency_ms: float
    attempts: int
    created_at: datetime
    received_at: datetime
    completed_at: datetime
    recorded_at: datetime
    failure_reason: str | None
    detail: dict[str, Any] | None = Field(..., description="What is particular to the scenario")


class OutcomePage(_Model):
    items: list[Outcome]
    page: int
    per_page: int
    total: int
    pages: int


class Reachability(_Model):
    ok: bool
    detail: str
    latency_ms: float | None


class Health(_Model):
    status: Literal["ok", "degraded"]
    broker: Reachability
    database: Reachability


class PartitionLag(_Model):
    partition: int
    committed: int | None = Field(..., description="The group's committed offset (null: none)")
    end: int | None = Field(..., description="End offset as the broker reports it")
    lag: int | None = Field(..., description="max(0, end - committed); null when unknown")


class ConsumerLag(_Model):
    """A scenario's workers' consumer-group lag on its work topic, per partition."""

    group: str
    topic: str
    partitions: list[PartitionLag]
    total: int | None
    note: str = Field(..., description="How the figures are computed and how far to trust them")


# -- timers ---------------------------------------------------------------------------------

TIMER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
TimerState = Literal["scheduled", "firing", "delivered", "failed", "cancelled", "expired"]
TimerMode = Literal["at_least_once", "at_most_once"]
# Bounds that keep the arithmetic finite; the server's own (timers.max_delay_secs) is narrower.
MAX_HOURS = 10_000_000
MAX_MINUTES = 600_000_000
MAX_SECONDS = 36_000_000_000


class CreateTimer(_Model):
    """A timer: a delay (`hours`, `minutes`, `seconds`, whole numbers, at least one given, more
    than 0 in all) or a time (`fire_at`), and the URL POSTed `{"id": "<timer id>"}` then."""

    hours: int | None = Field(
        None, ge=0, le=MAX_HOURS, strict=True, description="Hours from now", examples=[0]
    )
    minutes: int | None = Field(
        None, ge=0, le=MAX_MINUTES, strict=True, description="Minutes from now", examples=[0]
    )
    seconds: int | None = Field(
        None, ge=0, le=MAX_SECONDS, strict=True, description="Seconds from now", examples=[3]
    )
    fire_at: AwareDatetime | None = Field(
        None, description="When to fire (RFC 3339 with a UTC offset), instead of a delay"
    )
    url: str = Field(
        ...,
        min_length=1,
        max_length=2048,
        description="The callback: http(s), a host outside `timers.deny_networks`",
        examples=["http://127.0.0.1:8000/hook"],
    )
    not_after: AwareDatetime | None = Field(
        None,
        description="The latest acceptable firing time: past it the timer ends `expired`, "
        "never fired (unset: no limit)",
    )
    mode: TimerMode = Field(
        "at_least_once",
        description="`at_least_once`: retried until delivered, every attempt with the same "
        "`webhook-id`; `at_most_once`: never retried after an attempt whose outcome is unknown",
    )


class TimerPath(_Model):
    timer_id: str = Field(..., pattern=TIMER_ID_PATTERN, description="Timer id")


class TimersQuery(BaseModel):
    state: TimerState | SkipJsonSchema[None] = Field(None, description="Only timers in this state")
    page: int = Field(1, ge=1, le=MAX_PAGE, description="Page number, from 1")
    per_page: int = Field(50, ge=1, le=500, description="Items per page")


class Timer(_Model):
    """A timer and where it stands; rows stay after delivery."""

    id: str = Field(..., description="The timer id, also the callback's `webhook-id`")
    kind: Literal["webhook", "run", "publish"]
    state: TimerState = Field(
        ...,
        description="scheduled → firing (its callback is being delivered) → delivered | "
        "failed; or cancelled (before it fired), expired (past `not_after`, never fired)",
    )
    url: str | None = Field(..., description="The callback URL (a webhook timer's)")
    mode: TimerMode
    due_at: datetime
    not_after: datetime | None
    time_left: float = Field(..., description="Seconds until `due_at`, floored at 0")
    created_at: datetime
    fired_at: datetime | None = Field(..., description="When its fire command was published")
    first_attempt_at: datetime | None
    finished_at: datetime | None
    lateness_ms: float | None = Field(
        ..., description="First attempt - due time, milliseconds (null: not attempted yet)"
    )
    attempts: int
    last_status: int | None = Field(..., description="The last attempt's HTTP status")
    last_error: str | None
    attempts_url: str


class TimerPage(_Model):
    items: list[Timer]
    page: int
    per_page: int
    total: int
    pages: int


class TimerAttempt(_Model):
    """One HTTP attempt, from the ledger."""

    number: int
    url: str
    started_at: datetime
    duration_ms: float
    status: int | None
    error: str | None = Field(..., description="The kind of failure when no acceptable answer")
    detail: str | None
    sent: bool = Field(..., description="Whether the request may have reached the receiver")
    outcome: str = Field(
        ..., description="delivered | retry | failed | gone | outcome_unknown | expired"
    )
    retry_after: float | None
    next_attempt_at: datetime | None
    notifier: str


class TimerAttempts(_Model):
    timer_id: str
    items: list[TimerAttempt]
