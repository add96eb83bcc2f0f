"""Run requests: how a run is asked for, from the CLI, ``sim.run`` or the web."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from confluent_kafka import Producer

from herald import contracts, kafka
from herald.config import ENV_PREFIX, KafkaSettings, LimitsSettings, Settings
from herald.contracts import RunRequest
from herald.errors import BrokerError, ConfigError
from herald.scenarios import base


def new_run_id() -> str:
    """A short, unique run id."""
    return uuid.uuid4().hex[:12]


def make_request(
    settings: Settings,
    *,
    scenario: str | None = None,
    run_id: str | None = None,
    seed: int | None = None,
    config: dict[str, Any] | None = None,
    **params: Any,
) -> RunRequest:
    """A validated run request of ``scenario`` (default ``producer.scenario``): the settings'
    defaults, the caller's ``params`` over them; a random seed is chosen (and recorded) when
    neither gives one. Raises :class:`ConfigError` naming the field and the rule, or
    :class:`RunLimitExceeded` (a ConfigError too) when the run is beyond ``settings.limits``."""
    chosen = base.get(scenario or settings.producer.scenario)
    if seed is None:
        seed = settings.producer.seed
    request = chosen.make_request(
        settings,
        run_id=run_id or new_run_id(),
        seed=seed if seed is not None else random.SystemRandom().randrange(2**63),
        requested_at=datetime.now(UTC),
        config=config or {},
        **params,
    )
    try:
        # Constructing a Struct does not check constraints; a round trip does.
        checked = base.checked(request)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid run request: {exc}") from None
    check_limits(
        settings.limits, messages=checked.expected or 0, rate=getattr(checked, "rate", None)
    )
    return checked


@dataclass(frozen=True)
class Breach:
    """One field of a run request beyond one of the limits."""

    field: str  # the run request's field: messages or rate
    value: float
    setting: str  # the limit's key under ``limits``
    limit: float
    reason: str  # what is wrong, naming the limit, its value and its variable

    def __str__(self) -> str:
        return f"{self.field} = {_number(self.value)}: {self.reason}"


class RunLimitExceeded(ConfigError):
    """A run request asks for more than ``limits`` allow; ``breaches`` says what and why."""

    def __init__(self, breaches: Sequence[Breach]) -> None:
        self.breaches = tuple(breaches)
        lines = "\n".join(f"  {b}" for b in self.breaches)
        super().__init__(f"run request beyond the limits ({len(self.breaches)} error(s)):\n{lines}")


def check_limits(limits: LimitsSettings, *, messages: int, rate: float | None) -> None:
    """Raise :class:`RunLimitExceeded` (a ConfigError: exit code 2) unless a run of
    ``messages`` at ``rate`` (None: as fast as possible) is within ``limits``."""
    breaches = []
    if messages > limits.max_messages:
        breaches.append(
            _breach("messages", messages, "max_messages", limits.max_messages, "more than")
        )
    if rate is not None and rate < limits.min_rate:
        breaches.append(_breach("rate", rate, "min_rate", limits.min_rate, "less than"))
    elif rate is not None and messages / rate > limits.max_run_secs:
        at_least = math.ceil(messages / limits.max_run_secs * 100) / 100
        takes = f"{messages} messages at {_number(rate)}/s take {messages / rate:.1f} s,"
        breach = _breach("rate", rate, "max_run_secs", limits.max_run_secs, "more than")
        reason = (
            f"{takes} {breach.reason}; ask for at least {_number(at_least)}/s or fewer messages"
        )
        breaches.append(dataclasses.replace(breach, reason=reason))
    if breaches:
        raise RunLimitExceeded(breaches)


def _breach(field: str, value: float, setting: str, limit: float, relation: str) -> Breach:
    env = f"{ENV_PREFIX}LIMITS_{setting}".upper()
    reason = f"{relation} limits.{setting} = {_number(limit)} [env {env}]"
    return Breach(field=field, value=value, setting=setting, limit=limit, reason=reason)


def _number(value: float) -> str:
    return json.dumps(value)


def submitter(settings: KafkaSettings) -> Producer:
    """A producer for run requests. Make it ahead of time where latency matters: an
    idempotent producer's first send waits (about 0.5 s) for its producer id, which it
    fetches as soon as it is made."""
    return Producer(kafka.producer_config(settings, **{"linger.ms": 0}))


def submit(
    settings: KafkaSettings,
    request: RunRequest,
    *,
    timeout: float = 15.0,
    producer: Producer | None = None,
) -> None:
    """Publish a run request on ``herald.runs`` and wait for the broker's acknowledgement."""
    producer = producer or submitter(settings)
    errors: list[str] = []
    producer.produce(
        contracts.RUNS.qualified(settings.namespace),
        msgspec.json.encode(request),
        request.run_id,
        on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
    )
    if producer.flush(timeout) or errors:
        raise BrokerError(f"run request {request.run_id} not acknowledged: {errors or 'timeout'}")


# -- scheduled runs: published by the scheduler at their start time ------------------------------


def start_at_problem(settings: Settings, start_at: datetime, now: datetime) -> str | None:
    """Why ``start_at`` cannot be a run's start time (None when it can)."""
    if start_at.tzinfo is None:
        return f"{start_at.isoformat()} has no UTC offset: write it as 2026-12-01T09:00:00Z"
    if start_at <= now:
        return f"{start_at.isoformat()} is not in the future"
    limit = settings.timers.max_delay_secs
    if (start_at - now).total_seconds() > limit:
        return f"is more than timers.max_delay_secs ({limit:g} s) from now"
    return None


def schedule(
    conn: Any, settings: Settings, request: RunRequest, *, start_at: datetime, now: datetime
) -> str:
    """Store ``request`` for the scheduler to publish on ``herald.runs`` at ``start_at``; the
    caller commits. Returns the timer's id. The run's row appears when it starts (the
    recorder records the request it reads), so that a run waiting for its time neither shows
    as going nor counts toward ``limits.max_concurrent_runs``."""
    from herald import timers
    from herald.db import store

    row = timers.scheduled_row(
        settings,
        kind="run",
        topic=contracts.RUNS.name,
        key=request.run_id,
        payload=msgspec.json.encode(request),
        due_at=start_at,
        now=now,
        item_id=f"run-{request.run_id}",
    )
    store.insert_timer(conn, row)
    return str(row["id"])
