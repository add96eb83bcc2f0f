"""Run requests: how a run is asked for, from the CLI, ``sim.run`` or the web."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from confluent_kafka import Producer

from herald import contracts, kafka
from herald.config import KafkaSettings, Settings
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
    neither gives one. Raises :class:`ConfigError` naming the field and the rule."""
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
    return checked


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
