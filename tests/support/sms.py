"""The SMS scenario's test data: outbound messages, results, and writing them as the recorder
does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from herald import kafka
from herald.config import Settings
from herald.contracts import RunRequest
from herald.db.engine import make_engine
from herald.db.store import OutcomeWriter, Written
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.scenarios.sms import SCENARIO, SmsGenerator, SmsResult
from tests.support.cluster import make_settings


def outbound_records(run_id: str, n: int, seed: int = 1) -> list[tuple[bytes | None, bytes]]:
    """``n`` messages of a run as (key, value) records of the outbound topic."""
    return [(m.id.encode(), msgspec.json.encode(m)) for m in SmsGenerator(run_id, seed).messages(n)]


def sender_settings(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, *senders: dict
) -> Settings:
    """Settings with these sender profiles, their topics created."""
    s = make_settings(broker, database, namespace, senders=list(senders))
    kafka.ensure_topics(s.kafka)
    return s


def results_for(
    run_id: str,
    n: int,
    *,
    failed_every: int = 4,
    senders: int = 3,
    t0: datetime | None = None,
) -> list[SmsResult]:
    """``n`` results: every ``failed_every``-th failed, latencies 0..99 ms, senders round
    robin, created a millisecond apart from ``t0``."""
    t0 = t0 or datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        failed = i % failed_every == 0
        created = t0 + timedelta(milliseconds=i)
        out.append(
            SmsResult(
                id=f"{run_id}-{i}",
                run_id=run_id,
                seq=i,
                worker=i % senders,
                status="failed" if failed else "sent",
                latency_ms=float(i % 100),
                attempts=1,
                created_at=created,
                received_at=created + timedelta(milliseconds=1),
                completed_at=created + timedelta(milliseconds=1 + i % 100),
                failure_reason="carrier rejected" if failed else None,
            )
        )
    return out


def encoded(results: Sequence[SmsResult]) -> list[tuple[bytes | None, bytes]]:
    """Results as (key, value) records of the results topic."""
    return [(r.id.encode(), msgspec.json.encode(r)) for r in results]


def record(
    settings: Settings, batch: Sequence[SmsResult], requests: Sequence[RunRequest] = ()
) -> Written:
    """Store results (and run requests) exactly as the recorder does."""
    engine = make_engine(settings.database.url or "")
    try:
        return OutcomeWriter(engine).write([SCENARIO.outcome(r) for r in batch], requests)
    finally:
        engine.dispose()
