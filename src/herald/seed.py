"""Sample data: ``invoke seed.database`` (runs and outcomes) and ``seed.kafka`` (records on
every topic). Generated from ``seed/seed.json``: the same file gives the same rows and records,
and seeding twice adds nothing (ids are stable; writes are idempotent)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from herald import contracts
from herald.config import KafkaSettings
from herald.contracts import RunRequest, SmsMessage, SmsResult
from herald.errors import BrokerError, ConfigError
from herald.scenarios.sms import SmsGenerator

DEFAULT_FILE = Path(__file__).parents[2] / "seed" / "seed.json"
# Fixed, so that a seeded run looks the same every time it is seeded.
EPOCH = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


class SenderProfile(msgspec.Struct, forbid_unknown_fields=True):
    mean_wait_time: float
    failure_rate: float  # checked in load_seed: 0..1


class SeedRun(msgspec.Struct, forbid_unknown_fields=True):
    run_id: contracts.RunId
    messages: int
    seed: int
    senders: list[SenderProfile]


class SeedFile(msgspec.Struct, forbid_unknown_fields=True, rename={"comment": "_comment"}):
    runs: list[SeedRun]
    comment: str = ""


@dataclass(frozen=True)
class SampleRun:
    """One seeded run: its request, its messages and one result per message."""

    request: RunRequest
    messages: list[SmsMessage]
    results: list[SmsResult]


def load_seed(path: Path | None = None) -> list[SampleRun]:
    """The sample runs of a seed file (default ``seed/seed.json``)."""
    path = path or DEFAULT_FILE
    try:
        spec = msgspec.json.decode(path.read_bytes(), type=SeedFile)
    except (OSError, msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"seed file {path}: {exc}") from None
    for run in spec.runs:
        if not run.senders or not all(0 <= s.failure_rate <= 1 for s in run.senders):
            raise ConfigError(f"seed file {path}: run {run.run_id}: senders need failure_rate 0-1")
    return [_sample(run) for run in spec.runs]


def _sample(run: SeedRun) -> SampleRun:
    rng = random.Random(run.seed)
    request = RunRequest(
        run_id=run.run_id,
        messages=run.messages,
        seed=run.seed,
        requested_at=EPOCH,
        config={"senders": [msgspec.to_builtins(s) for s in run.senders], "seeded": True},
    )
    messages = []
    results = []
    for i, generated in enumerate(SmsGenerator(run.run_id, run.seed).messages(run.messages)):
        created = EPOCH + timedelta(milliseconds=10 * i)
        msg = msgspec.structs.replace(generated, created_at=created)
        sender_id = i % len(run.senders)
        profile = run.senders[sender_id]
        latency = (
            rng.expovariate(1 / profile.mean_wait_time) * 1000 if profile.mean_wait_time else 0
        )
        failed = rng.random() < profile.failure_rate
        received = created + timedelta(milliseconds=5)
        messages.append(msg)
        results.append(
            SmsResult(
                message_id=msg.id,
                run_id=run.run_id,
                seq=msg.seq,
                sender_id=sender_id,
                status="failed" if failed else "sent",
                latency_ms=round(latency, 3),
                attempts=1,
                created_at=created,
                received_at=received,
                completed_at=received + timedelta(milliseconds=latency),
                failure_reason="simulated carrier error" if failed else None,
            )
        )
    sample = SampleRun(request, messages, results)
    _check(sample)
    return sample


def _check(sample: SampleRun) -> None:
    # Constructing a Struct checks no constraint; a round trip through JSON does.
    for value in (sample.request, *sample.messages, *sample.results):
        msgspec.json.decode(msgspec.json.encode(value), type=type(value))


def seed_database(url: str, runs: list[SampleRun]) -> dict[str, int]:
    """Insert the sample runs and their outcomes (existing ids are left alone)."""
    from sqlalchemy.dialects.postgresql import insert

    from herald.db.engine import make_engine
    from herald.db.models import Outcome, Run

    engine = make_engine(url)
    counts = {"runs": 0, "outcomes": 0}
    try:
        with engine.begin() as conn:
            for sample in runs:
                r = sample.request
                sent = sum(1 for x in sample.results if x.status == "sent")
                row = {
                    "run_id": r.run_id,
                    "scenario": r.scenario,
                    "expected": r.messages,
                    "seed": r.seed,
                    "rate": r.rate,
                    "config": r.config,
                    "requested_at": r.requested_at,
                    "started_at": min(x.received_at for x in sample.results),
                    "finished_at": max(x.completed_at for x in sample.results),
                    "sent": sent,
                    "failed": len(sample.results) - sent,
                }
                done = conn.execute(
                    insert(Run).values(row).on_conflict_do_nothing().returning(Run.run_id)
                )
                counts["runs"] += len(done.all())
                outcomes = [_outcome(x) for x in sample.results]
                done = conn.execute(
                    insert(Outcome)
                    .values(outcomes)
                    .on_conflict_do_nothing()
                    .returning(Outcome.message_id)
                )
                counts["outcomes"] += len(done.all())
    finally:
        engine.dispose()
    return counts


def seed_kafka(settings: KafkaSettings, runs: list[SampleRun]) -> dict[str, int]:
    """Publish each sample run's request, messages and results, and one dead letter."""
    from confluent_kafka import Producer

    from herald import kafka

    kafka.wait_for_broker(settings)
    kafka.ensure_topics(settings)
    producer = Producer(kafka.producer_config(settings))
    errors: list[str] = []
    counts = {t.qualified(settings.namespace): 0 for t in contracts.ALL_TOPICS}

    def send(topic: contracts.Topic, key: str, value: bytes, **extra: Any) -> None:
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

    for sample in runs:
        send(contracts.RUNS, sample.request.run_id, msgspec.json.encode(sample.request))
        for msg in sample.messages:
            send(contracts.OUTBOUND, msg.id, msgspec.json.encode(msg))
        for res in sample.results:
            send(contracts.RESULTS, res.message_id, msgspec.json.encode(res))
    # A dead letter as a sender writes one: the original bytes, the reason in headers.
    send(
        contracts.DLQ,
        "seed-poison-0",
        b'{"id": "seed-poison-0", "text": 42}',
        headers=[
            (contracts.DLQ_REASON, b"invalid SmsMessage: Expected `str`, got `int` - at `$.text`"),
            (contracts.DLQ_TOPIC, contracts.OUTBOUND.qualified(settings.namespace).encode()),
            (contracts.DLQ_PARTITION, b"0"),
            (contracts.DLQ_OFFSET, b"0"),
            (contracts.DLQ_SERVICE, b"sender-0"),
        ],
    )
    left = producer.flush(30)
    if left or errors:
        raise BrokerError(f"seed records not acknowledged: {left} left, errors {errors[:3]}")
    return counts


def _outcome(result: SmsResult) -> dict[str, Any]:
    row: dict[str, Any] = msgspec.to_builtins(result, builtin_types=(datetime,))
    del row["seq"]  # outcomes are keyed by message id; seq is not a column
    return row
