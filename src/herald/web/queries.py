"""What the web reads from Postgres: runs, their progress and outcomes (SQLAlchemy 2.0 style).

Counters come from the ``runs`` row, which the recorder updates in the same transaction as
the outcome rows; latency figures are exact, computed with ``percentile_cont`` over the
run's outcomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from herald.contracts import RunRequest
from herald.db.models import Outcome, Run
from herald.web import schemas

_ORDER = (func.coalesce(Run.requested_at, Run.started_at, Run.updated_at).desc(), Run.run_id)

_LATENCY = text(
    """
    SELECT count(*) AS n,
           avg(latency_ms) AS avg_ms,
           max(latency_ms) AS max_ms,
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) AS pct,
           extract(epoch FROM max(recorded_at) - min(created_at)) AS span
    FROM outcomes WHERE run_id = :r
    """
)
_SENDERS = text(
    """
    SELECT sender_id,
           count(*) FILTER (WHERE status = 'sent') AS sent,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           avg(latency_ms) AS avg_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
    FROM outcomes WHERE run_id = :r GROUP BY sender_id ORDER BY sender_id
    """
)
_SERIES = text(
    """
    SELECT t, n, failed, pct FROM (
        SELECT floor(extract(epoch FROM completed_at))::bigint AS t,
               count(*) AS n,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) AS pct
        FROM outcomes
        WHERE run_id = :r AND completed_at >= to_timestamp(:since)
        GROUP BY 1 ORDER BY 1 DESC LIMIT :limit
    ) AS recent ORDER BY t
    """
)


def pages(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


def summary(run: Run) -> schemas.RunSummary:
    """A run's counters and status from its row."""
    done = run.sent + run.failed
    if run.finished_at is not None:
        status: schemas.RunStatus = "finished"
    elif done:
        status = "running"
    else:
        status = "requested"
    expected = run.expected
    return schemas.RunSummary(
        run_id=run.run_id,
        scenario=run.scenario,
        status=status,
        expected=expected,
        sent=run.sent,
        failed=run.failed,
        done=done,
        remaining=max(0, expected - done) if expected is not None else None,
        percent=round(min(100.0, 100.0 * done / expected), 2) if expected else None,
        requested_at=run.requested_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        url=f"/api/runs/{run.run_id}",
    )


def list_runs(session: Session, page: int, per_page: int) -> schemas.RunPage:
    total = session.scalar(select(func.count()).select_from(Run)) or 0
    rows = session.scalars(
        select(Run).order_by(*_ORDER).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return schemas.RunPage(
        items=[summary(r) for r in rows],
        page=page,
        per_page=per_page,
        total=total,
        pages=pages(total, per_page),
    )


def get_run(session: Session, run_id: str) -> Run | None:
    return session.get(Run, run_id, populate_existing=True)


def run_detail(session: Session, run: Run) -> schemas.RunDetail:
    """Counters, exact latency percentiles, throughput and per-sender figures."""
    lat = session.execute(_LATENCY, {"r": run.run_id}).one()
    p50, p95, p99 = (float(x) for x in lat.pct) if lat.n else (None, None, None)
    span = float(lat.span) if lat.n and lat.span is not None else None
    senders = [
        schemas.SenderStats(
            sender_id=row.sender_id,
            sent=row.sent,
            failed=row.failed,
            failure_percent=round(100.0 * row.failed / (row.sent + row.failed), 2),
            avg_latency_ms=float(row.avg_ms),
            p95_latency_ms=float(row.p95),
        )
        for row in session.execute(_SENDERS, {"r": run.run_id})
    ]
    return schemas.RunDetail(
        **summary(run).model_dump(),
        latency=schemas.Latency(
            avg_ms=float(lat.avg_ms) if lat.n else None,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            max_ms=float(lat.max_ms) if lat.n else None,
        ),
        throughput=round(lat.n / span, 1) if span else None,
        elapsed_secs=span,
        senders=senders,
    )


@dataclass(frozen=True)
class Bucket:
    """One second of a run (by completion time): outcomes and latency percentiles."""

    t: int
    n: int
    failed: int
    p50: float
    p95: float
    p99: float

    def as_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "n": self.n,
            "failed": self.failed,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
        }


def series(session: Session, run_id: str, since: float = 0.0, limit: int = 900) -> list[Bucket]:
    """Per-second buckets from ``since`` (epoch seconds), the most recent ``limit`` of them."""
    return [
        Bucket(int(r[0]), int(r[1]), int(r[2]), *(float(x) for x in r[3]))
        for r in session.execute(_SERIES, {"r": run_id, "since": since, "limit": limit})
    ]


def outcomes(
    session: Session,
    run_id: str,
    *,
    status: str | None,
    sender: int | None,
    page: int,
    per_page: int,
) -> schemas.OutcomePage:
    where = [Outcome.run_id == run_id]
    if status is not None:
        where.append(Outcome.status == status)
    if sender is not None:
        where.append(Outcome.sender_id == sender)
    total = session.scalar(select(func.count()).select_from(Outcome).where(*where)) or 0
    rows = session.scalars(
        select(Outcome)
        .where(*where)
        .order_by(Outcome.completed_at, Outcome.message_id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return schemas.OutcomePage(
        items=[outcome(o) for o in rows],
        page=page,
        per_page=per_page,
        total=total,
        pages=pages(total, per_page),
    )


def outcome(o: Outcome) -> schemas.Outcome:
    return schemas.Outcome(
        message_id=o.message_id,
        run_id=o.run_id,
        sender_id=o.sender_id,
        status="sent" if o.status == "sent" else "failed",
        latency_ms=o.latency_ms,
        attempts=o.attempts,
        created_at=o.created_at,
        received_at=o.received_at,
        completed_at=o.completed_at,
        recorded_at=o.recorded_at,
        failure_reason=o.failure_reason,
    )


def get_outcome(session: Session, message_id: str) -> Outcome | None:
    return session.get(Outcome, message_id)


def record_request(session: Session, request: RunRequest) -> None:
    """The runs row for a request just published, unless the recorder was first."""
    from sqlalchemy.dialects.postgresql import insert

    session.execute(
        insert(Run)
        .values(
            run_id=request.run_id,
            scenario=request.scenario,
            expected=request.messages,
            seed=request.seed,
            rate=request.rate,
            config=request.config,
            requested_at=request.requested_at,
            sent=0,
            failed=0,
        )
        .on_conflict_do_nothing(index_elements=[Run.run_id])
    )
    session.commit()


def recent_run_ids(session: Session, limit: int) -> list[str]:
    return list(session.scalars(select(Run.run_id).order_by(*_ORDER).limit(limit)))


# pg_advisory_xact_lock key of run admission (any constant; "herald" in ASCII).
ADMISSION_LOCK = 0x686572616C64


def admit_run(session: Session, *, stale_after_secs: float) -> int:
    """Take the run-admission lock (held until the session's transaction ends) and count the
    runs still going: not finished, and changed within ``stale_after_secs``."""
    session.execute(select(func.pg_advisory_xact_lock(ADMISSION_LOCK)))
    cutoff = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stale_after_secs)
    going = (
        select(func.count())
        .select_from(Run)
        .where(Run.finished_at.is_(None), Run.updated_at > cutoff)
    )
    return session.scalar(going) or 0
