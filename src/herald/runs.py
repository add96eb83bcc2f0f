"""Run requests: how a run is asked for, from the CLI, ``sim.run`` or the web."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from confluent_kafka import Producer

from herald import contracts, kafka
from herald.config import KafkaSettings
from herald.contracts import RunRequest
from herald.errors import BrokerError


def new_run_id() -> str:
    """A short, unique run id."""
    return uuid.uuid4().hex[:12]


def make_request(
    messages: int,
    *,
    run_id: str | None = None,
    seed: int | None = None,
    rate: float | None = None,
    config: dict[str, Any] | None = None,
) -> RunRequest:
    """A validated run request; a random seed is chosen (and recorded) when none is given."""
    request = RunRequest(
        run_id=run_id or new_run_id(),
        messages=messages,
        seed=seed if seed is not None else random.SystemRandom().randrange(2**63),
        rate=rate,
        requested_at=datetime.now(UTC),
        config=config or {},
    )
    # Constructing a Struct does not check constraints; a round trip does.
    return msgspec.json.decode(msgspec.json.encode(request), type=RunRequest)


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
