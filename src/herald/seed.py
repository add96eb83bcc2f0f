"""Sample data: ``invoke seed.database`` (runs and outcomes) and ``seed.kafka`` (records on
every topic). Generated from a seed file (default: ``herald/data/seed.json``, shipped in the
package): the same file gives the same rows and records, and seeding twice adds nothing (ids
are stable; writes are idempotent).

Each sample run is made the way a real one is, by its scenario: the request, the source's
records, and each record's result from the scenario's worker step (with the run's worker
profiles, seeded), at fixed times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from msgspec import Struct

from herald import contracts
from herald.config import KafkaSettings, Settings, WorkerSettings
from herald.contracts import RunRequest
from herald.errors import BrokerError, ConfigError
from herald.scenarios import base

# Fixed, so that a seeded run looks the same every time it is seeded.
EPOCH = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


def default_file() -> Path:
    """The sample file shipped with herald."""
    return Path(str(resources.files("herald") / "data" / "seed.json"))


class SeedRun(msgspec.Struct, forbid_unknown_fields=True):
    run_id: contracts.RunId
    messages: int
    seed: int
    senders: list[dict[str, Any]]  # worker profiles (herald.config.WorkerSettings)
    scenario: str = base.DEFAULT


class SeedFile(msgspec.Struct, forbid_unknown_fields=True, rename={"comment": "_comment"}):
    runs: list[SeedRun]
    comment: str = ""


@dataclass(frozen=True)
class SampleRun:
    """One seeded run: its request, its records and one result per record."""

    scenario: base.Scenario
    request: RunRequest
    records: list[base.Emit]
    results: list[Struct]


def load_seed(path: Path | None = None) -> list[SampleRun]:
    """The sample runs of a seed file (default :func:`default_file`)."""
    path = path or default_file()
    try:
        spec = msgspec.json.decode(path.read_bytes(), type=SeedFile)
        samples = [_sample(run) for run in spec.runs]
    except (OSError, msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"seed file {path}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"seed file {path}: {exc}") from None
    return samples


def _profiles(run: SeedRun) -> list[WorkerSettings]:
    from pydantic import ValidationError

    if not run.senders:
        raise ConfigError(f"run {run.run_id}: needs at least one worker profile (senders)")
    try:
        return [WorkerSettings(**p) for p in run.senders]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"run {run.run_id}: senders: {where}: {first['msg']}") from None


def _sample(run: SeedRun) -> SampleRun:
    scenario = base.get(run.scenario)
    profiles = _profiles(run)
    request = scenario.make_request(
        Settings.model_construct(),  # the defaults alone: no environment, no config file
        run_id=run.run_id,
        seed=run.seed,
        requested_at=EPOCH,
        config={"senders": [p.model_dump() for p in profiles], "seeded": True},
        messages=run.messages,
    )
    source = scenario.source(request)
    if not isinstance(source, base.CountSource):
        raise ConfigError(f"run {run.run_id}: the {run.scenario} scenario cannot be seeded")
    rng = random.Random(run.seed)
    spec = scenario.worker
    steps = [spec.make_step(p, i, rng) for i, p in enumerate(profiles)] if spec else []
    records: list[base.Emit] = []
    results: list[Struct] = []
    for i, emit in enumerate(source.records(0, source.total)):
        created = EPOCH + timedelta(milliseconds=10 * i)
        value = emit.value
        if "created_at" in value.__struct_fields__:
            value = msgspec.structs.replace(value, created_at=created)
        records.append(base.Emit(emit.topic, emit.key, value))
        if steps and spec is not None and emit.topic is spec.work:
            result, _delay = steps[i % len(steps)](value, created + timedelta(milliseconds=5))
            results.append(result)
    sample = SampleRun(scenario, request, records, results)
    for value in (request, *(e.value for e in records), *results):
        base.checked(value)  # a round trip checks every constraint
    return sample


def seed_database(url: str, runs: list[SampleRun]) -> dict[str, int]:
    """Insert the sample runs and their outcomes (existing ids are left alone)."""
    from herald.db import store
    from herald.db.engine import make_engine

    engine = make_engine(url)
    counts = {"runs": 0, "outcomes": 0}
    try:
        with engine.begin() as conn:
            for sample in runs:
                rows = [sample.scenario.outcome(r) for r in sample.results]
                ok = sum(1 for r in rows if sample.scenario.succeeded(r[4]))
                r = sample.request
                run_row = {
                    "run_id": r.run_id,
                    "scenario": r.scenario,
                    "expected": r.expected,
                    "seed": r.seed,
                    "rate": getattr(r, "rate", None),
                    "config": r.config,
                    "requested_at": r.requested_at,
                    "started_at": min((row[8] for row in rows), default=None),
                    "finished_at": max((row[9] for row in rows), default=None),
                    "announced_at": max((row[9] for row in rows), default=None),
                    "succeeded": ok,
                    "failed": len(rows) - ok,
                }
                new_runs, new_outcomes = store.insert_seed(conn, [run_row], rows)
                counts["runs"] += new_runs
                counts["outcomes"] += new_outcomes
    finally:
        engine.dispose()
    return counts


def seed_kafka(settings: KafkaSettings, runs: list[SampleRun]) -> dict[str, int]:
    """Publish each sample run's request, records and results, and one dead letter."""
    from confluent_kafka import Producer

    from herald import kafka

    kafka.wait_for_broker(settings)
    kafka.ensure_topics(settings)
    producer = Producer(kafka.producer_config(settings))
    errors: list[str] = []
    counts = {t.qualified(settings.namespace): 0 for t in kafka.all_topics()}

    def send(topic: contracts.Topic, key: str, value: bytes | None, **extra: Any) -> None:
        name = topic.qualified(settings.namespace)
        producer.produce(
            name,
            value,
            key,
            on_delivery=lambda e, _m: errors.append(str(e)) if e else None,
            **extra,
        )
        producer.poll(0)
        counts[name] += 1

    encode = msgspec.json.Encoder().encode
    for sample in runs:
        send(contracts.RUNS, sample.request.run_id, encode(sample.request))
        for emit in sample.records:
            send(emit.topic, emit.key, encode(emit.value))
        spec = sample.scenario.worker
        for result in sample.results:
            assert spec is not None  # a sample has results only from a worker's step
            send(spec.results, result.id, encode(result))  # type: ignore[attr-defined]
    _dead_letter(runs, send, settings.namespace)
    left = producer.flush(30)
    if left or errors:
        raise BrokerError(f"seed records not acknowledged: {left} left, errors {errors[:3]}")
    return counts


def _dead_letter(runs: list[SampleRun], send: Any, namespace: str) -> None:
    """A dead letter as a worker writes one: the original bytes, the reason in headers."""
    sample = next((s for s in runs if s.scenario.worker is not None), None)
    if sample is None or sample.scenario.worker is None:
        return
    spec = sample.scenario.worker
    assert spec.work.payload is not None
    poison = b'{"id": "seed-poison-0", "text": 42}'
    try:
        msgspec.json.decode(poison, type=spec.work.payload)
    except msgspec.ValidationError as exc:
        reason = f"{type(exc).__name__}: {exc}"
    else:  # pragma: no cover - the poison is invalid by construction
        return
    send(
        contracts.DLQ,
        "seed-poison-0",
        poison,
        headers=[
            (contracts.DLQ_REASON, reason.encode()),
            (contracts.DLQ_TOPIC, spec.work.qualified(namespace).encode()),
            (contracts.DLQ_PARTITION, b"0"),
            (contracts.DLQ_OFFSET, b"0"),
            (contracts.DLQ_SERVICE, f"{spec.service}-0".encode()),
        ],
    )
