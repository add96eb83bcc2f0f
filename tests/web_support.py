"""Helpers shared by the web tests: an app on the session's real broker and database, and
realistic outcome rows written through the recorder's own writer."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from flask_openapi3.openapi import OpenAPI

from herald.config import Settings
from herald.contracts import RunRequest, SmsResult
from herald.services.recorder import OutcomeWriter
from herald.web import create_app
from herald.web.app import state


@pytest.fixture
def app(settings: Settings) -> Iterator[OpenAPI]:
    web = create_app(settings, stream_interval=0.05)
    web.config["TESTING"] = True
    yield web
    state(web).close()


def results(
    run_id: str, n: int, *, senders: int = 3, t0: datetime | None = None
) -> list[SmsResult]:
    """``n`` results: every 4th failed, latencies 0..99 ms, senders round robin."""
    t0 = t0 or datetime.now(UTC) - timedelta(seconds=10)
    out = []
    for i in range(n):
        failed = i % 4 == 0
        created = t0 + timedelta(milliseconds=i)
        out.append(
            SmsResult(
                message_id=f"{run_id}-{i}",
                run_id=run_id,
                seq=i,
                sender_id=i % senders,
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


def record(
    settings: Settings, batch: Sequence[SmsResult], requests: Sequence[RunRequest] = ()
) -> int:
    """Store results (and run requests) exactly as the recorder does."""
    writer = OutcomeWriter(settings.database.url or "")
    try:
        return writer.write(batch, requests)
    finally:
        writer.close()


def percentile_cont(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the nearest ranks."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
