"""What the web shows from Postgres: runs, their progress and outcomes, as the API's models.

The SQL is :mod:`herald.db.store`'s; this module only maps its rows to
:mod:`herald.web.schemas`. Counters come from the ``runs`` row, which the recorder updates in
the same transaction as the outcome rows; latency figures are exact (``percentile_cont``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Row

from herald.contracts import RunRequest
from herald.db import store
from herald.web import schemas


def pages(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


def summary(run: Row[Any]) -> schemas.RunSummary:
    """A run's counters and state from its row."""
    done = run.succeeded + run.failed
    expected = run.expected
    return schemas.RunSummary(
        run_id=run.run_id,
        scenario=run.scenario,
        status=run.state,
        expected=expected,
        sent=run.succeeded,
        failed=run.failed,
        done=done,
        remaining=max(0, expected - done) if expected is not None else None,
        percent=round(min(100.0, 100.0 * done / expected), 2) if expected else None,
        requested_at=run.requested_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        ended_at=run.ended_at,
        state_reason=run.state_reason,
        url=f"/api/runs/{run.run_id}",
    )


def list_runs(conn: Connection, page: int, per_page: int) -> schemas.RunPage:
    total = store.count_runs(conn)
    rows = store.list_runs(conn, offset=(page - 1) * per_page, limit=per_page)
    return schemas.RunPage(
        items=[summary(r) for r in rows],
        page=page,
        per_page=per_page,
        total=total,
        pages=pages(total, per_page),
    )


def get_run(conn: Connection, run_id: str) -> Row[Any] | None:
    return store.get_run(conn, run_id)


def run_detail(conn: Connection, run: Row[Any]) -> schemas.RunDetail:
    """Counters, counts by status, exact latency percentiles, throughput, per-worker figures."""
    fig = store.run_figures(conn, run.run_id, run.scenario)
    workers = [
        schemas.SenderStats(
            sender_id=w.worker,
            sent=w.succeeded,
            failed=w.failed,
            failure_percent=round(100.0 * w.failed / (w.succeeded + w.failed), 2),
            avg_latency_ms=w.avg_ms,
            p95_latency_ms=w.p95_ms,
        )
        for w in store.worker_figures(conn, run.run_id, run.scenario)
    ]
    span = fig.span_secs if fig.n else None
    return schemas.RunDetail(
        **summary(run).model_dump(),
        counts=fig.by_status,
        latency=schemas.Latency(
            avg_ms=fig.avg_ms,
            p50_ms=fig.p50_ms,
            p95_ms=fig.p95_ms,
            p99_ms=fig.p99_ms,
            max_ms=fig.max_ms,
        ),
        throughput=round(fig.n / span, 1) if span else None,
        elapsed_secs=span,
        senders=workers,
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


def series(conn: Connection, run: Row[Any], since: float = 0.0, limit: int = 900) -> list[Bucket]:
    """Per-second buckets from ``since`` (epoch seconds), the most recent ``limit`` of them."""
    return [
        Bucket(int(r[0]), int(r[1]), int(r[2]), *(float(x) for x in r[3]))
        for r in store.series(conn, run.run_id, run.scenario, since=since, limit=limit)
    ]


def outcomes(
    conn: Connection,
    run_id: str,
    *,
    status: str | None,
    sender: int | None,
    page: int,
    per_page: int,
) -> schemas.OutcomePage:
    total, rows = store.outcome_page(
        conn, run_id, status=status, worker=sender, offset=(page - 1) * per_page, limit=per_page
    )
    return schemas.OutcomePage(
        items=[outcome(o) for o in rows],
        page=page,
        per_page=per_page,
        total=total,
        pages=pages(total, per_page),
    )


def outcome(o: Row[Any]) -> schemas.Outcome:
    return schemas.Outcome(
        message_id=o.message_id,
        run_id=o.run_id,
        scenario=o.scenario,
        sender_id=o.worker_id,
        status=o.status,
        latency_ms=o.latency_ms,
        attempts=o.attempts,
        created_at=o.created_at,
        received_at=o.received_at,
        completed_at=o.completed_at,
        recorded_at=o.recorded_at,
        failure_reason=o.failure_reason,
        detail=o.detail,
    )


def get_outcome(conn: Connection, message_id: str) -> Row[Any] | None:
    return store.get_outcome(conn, message_id)


def record_request(conn: Connection, request: RunRequest) -> None:
    """The runs row for a request just published (the store's one statement for it)."""
    store.upsert_run(conn, request)
    conn.commit()


def recent_run_ids(conn: Connection, limit: int) -> list[str]:
    return store.recent_run_ids(conn, limit)


def admit_run(conn: Connection, *, stale_after_secs: float) -> int:
    """Take the run-admission lock (held until the transaction ends) and count the runs still
    going (see :func:`herald.db.store.admit_run`)."""
    return store.admit_run(conn, stale_after_secs=stale_after_secs)


# -- timers -----------------------------------------------------------------------------------

# Fire lateness (first attempt - due time) bounds, seconds: the histogram's, on /metrics too.
LATENESS_BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _host(url: str | None) -> str:
    """A callback URL's host and port only: paths and queries may carry secrets."""
    import urllib.parse

    if not url:
        return "–"
    parts = urllib.parse.urlsplit(url)
    return parts.netloc.rpartition("@")[2] or "–"


def timers_snapshot(conn: Connection, *, recent: int = 20) -> dict[str, Any]:
    """The timers page: counts by state, pending and due soon, the lateness histogram, recent
    attempts and failures (hosts only, never full URLs)."""
    figures = store.timer_figures(conn)
    count, total, cumulative = store.lateness_buckets(conn, LATENESS_BOUNDS)
    per_bucket = [c - p for c, p in zip(cumulative, [0, *cumulative[:-1]], strict=True)]
    return {
        "by_state": figures["by_state"],
        "pending": figures["by_state"].get("scheduled", 0),
        "overdue": figures["overdue"],
        "due_soon": figures["due_soon"],
        "attempts": figures["attempts"],
        "lateness": {
            "count": count,
            "mean_ms": round(total / count * 1000, 3) if count else None,
            "bounds_ms": [b * 1000 for b in LATENESS_BOUNDS],
            "counts": [*per_bucket, count - (cumulative[-1] if cumulative else 0)],
        },
        "recent": [
            {
                "timer_id": r.timer_id,
                "number": r.number,
                "host": _host(r.url),
                "started_at": r.started_at.isoformat(),
                "lateness_ms": round((r.started_at - r.due_at).total_seconds() * 1000, 1),
                "status": r.status,
                "outcome": r.outcome,
            }
            for r in store.recent_deliveries(conn, limit=recent)
        ],
        "failures": [
            {
                "timer_id": r.id,
                "host": _host(r.url),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "attempts": r.attempts,
                "last_status": r.last_status,
                "reason": r.last_error or (f"HTTP {r.last_status}" if r.last_status else None),
            }
            for r in store.recent_failures(conn, limit=recent)
        ],
    }
