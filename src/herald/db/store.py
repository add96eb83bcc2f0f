"""The one owner of herald's SQL (SQLAlchemy Core): the recorder, the report, the web app's
queries and metrics, and the seed all go through these statements.

Writes:

* :func:`upsert_run` — the only statement that writes a run's request into ``runs`` (the
  recorder from ``herald.runs``; the web app right after publishing one, so its page exists
  at once; both the same statement, so either may come first).
* :class:`OutcomeWriter` — a batch of outcomes per database transaction: COPY (the fast
  path), or, when a batch is replayed, a staging table with ``ON CONFLICT DO NOTHING``; the
  runs' totals are incremented in the same transaction by the rows actually inserted, so
  they always equal the rows.

* :func:`set_expected` — a run's size announced by the producer once it is produced (a
  timeline's), which completes the run when its totals are there already.
* A run's ``state``: each of these writes moves it on (``requested`` → ``running`` →
  ``completed``) in the same statement as its counters; :func:`end_run` gives it the terminal
  state its owner saw (``interrupted``, ``failed``) and :func:`abandon_runs` marks those whose
  services are gone.

Reads: a run's row, its outcomes by status and by worker (exact percentiles), per-second
series, pages of runs and outcomes, metrics; the retail store's figures, heatmap and
occupancy (the ``retail_events`` and ``retail_visits`` views), and its injections journal.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, bindparam, case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row

from herald.contracts import RunCompleted, RunProduced, RunRequest
from herald.db.models import outcomes, retail_injections, runs
from herald.scenarios import base

logger = logging.getLogger(__name__)

# The outcome envelope's fields (herald.scenarios.base.OUTCOME_FIELDS) -> outcomes' columns.
_COLUMN_OF = {"id": "message_id", "worker": "worker_id"}
OUTCOME_COLUMNS = tuple(_COLUMN_OF.get(f, f) for f in base.OUTCOME_FIELDS)


def _binary_type(column: str) -> str:
    """The Postgres type name COPY BINARY needs for an outcomes column."""
    kind = type(outcomes.c[column].type).__name__
    return {
        "String": "text",
        "Text": "text",
        "Integer": "int4",
        "SmallInteger": "int2",
        "BigInteger": "int8",
        "Double": "float8",
        "DateTime": "timestamptz",
        "JSONB": "jsonb",
    }[kind]


COPY_TYPES = tuple(_binary_type(c) for c in OUTCOME_COLUMNS)
_COLS = ", ".join(OUTCOME_COLUMNS)
COPY_OUTCOMES = f"COPY outcomes ({_COLS}) FROM STDIN (FORMAT BINARY)"
COPY_STAGING = f"COPY outcomes_staging ({_COLS}) FROM STDIN (FORMAT BINARY)"
STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS outcomes_staging "
    "(LIKE outcomes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
# Built from the constant column list above, nothing from outside.
MERGE_STAGING = text(
    f"INSERT INTO outcomes ({_COLS}) SELECT {_COLS} FROM outcomes_staging "  # noqa: S608
    "ON CONFLICT (message_id) DO NOTHING RETURNING run_id, scenario, status, created_at"
)


# -- runs ---------------------------------------------------------------------------------------

GOING = ("requested", "running")
TERMINAL = ("completed", "interrupted", "failed", "abandoned")


def _state_after(total: Any, expected: Any, *, recording: bool = False) -> Any:
    """A run's state after a write: ``completed`` once every expected outcome is recorded
    (from any state: it did complete); ``running`` when outcomes are being recorded for a run
    ``requested`` or ``abandoned`` (its services turned out to be there); else unchanged."""
    whens: list[tuple[Any, Any]] = [(expected.is_not(None) & (total >= expected), "completed")]
    if recording:
        whens.append((runs.c.state.in_(("requested", "abandoned")), "running"))
    return case(*whens, else_=runs.c.state)


def _state_columns(state: Any) -> dict[str, Any]:
    """``state`` and what goes with it: when it ended (kept while the state stays), why."""
    same = state == runs.c.state
    return {
        "state": state,
        "ended_at": case(
            (same, runs.c.ended_at),
            (state.in_(TERMINAL), func.clock_timestamp()),
            else_=None,
        ),
        "state_reason": case((same, runs.c.state_reason), else_=None),
    }


def upsert_run(conn: Connection, request: RunRequest) -> None:
    """Record a run's request (again: the request's fields win, the totals stay)."""
    values = {
        "run_id": request.run_id,
        "scenario": request.scenario,
        "expected": request.expected,
        "seed": request.seed,
        "rate": getattr(request, "rate", None),
        "config": request.config,
        "requested_at": request.requested_at,
        "callback_url": request.callback_url,
        "status_callback_url": request.status_callback_url,
        "request": msgspec.to_builtins(request),
    }
    stmt = insert(runs).values(**values)
    excluded = stmt.excluded
    total = runs.c.succeeded + runs.c.failed
    # A size the producer announced (set_expected) outlives a request read again without one.
    expected = func.coalesce(excluded.expected, runs.c.expected)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[runs.c.run_id],
            set_={
                "scenario": excluded.scenario,
                "expected": expected,
                "seed": excluded.seed,
                "rate": excluded.rate,
                "config": excluded.config,
                "requested_at": excluded.requested_at,
                "callback_url": excluded.callback_url,
                "status_callback_url": excluded.status_callback_url,
                "request": excluded.request,
                "finished_at": func.coalesce(
                    runs.c.finished_at,
                    _when(total >= expected, func.clock_timestamp()),
                ),
                **_state_columns(_state_after(total, expected)),
                "updated_at": func.clock_timestamp(),
            },
        )
    )


def set_expected(conn: Connection, event: RunProduced) -> None:
    """A run's size, announced once it is produced (again: the same size); the run is
    finished now if its outcomes are all stored already."""
    stmt = insert(runs).values(
        run_id=event.run_id, scenario=event.scenario, expected=event.produced
    )
    total = runs.c.succeeded + runs.c.failed
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[runs.c.run_id],
            set_={
                "expected": stmt.excluded.expected,
                "finished_at": func.coalesce(
                    runs.c.finished_at,
                    _when(total >= stmt.excluded.expected, func.clock_timestamp()),
                ),
                **_state_columns(_state_after(total, stmt.excluded.expected)),
                "updated_at": func.clock_timestamp(),
            },
        )
    )


def _when(condition: Any, value: Any) -> Any:
    return case((condition, value), else_=None)


@dataclass(frozen=True)
class Ended:
    """A run's row once it has ended: its state and what Postgres holds of it."""

    state: str
    recorded: int
    expected: int | None
    reason: str | None


def end_run(conn: Connection, run_id: str, state: str, reason: str) -> Ended | None:
    """Give a run that is still going the terminal ``state`` its owner saw (``interrupted``,
    ``failed``), with ``reason``; ``completed`` instead if every expected outcome is recorded
    after all. A run that has ended already keeps its state. None: no such run."""
    assert state in TERMINAL, state
    total = runs.c.succeeded + runs.c.failed
    complete = runs.c.expected.is_not(None) & (total >= runs.c.expected)
    new = case((complete, "completed"), else_=state)
    conn.execute(
        update(runs)
        .where(runs.c.run_id == run_id, runs.c.state.in_(GOING))
        .values(
            state=new,
            ended_at=func.clock_timestamp(),
            state_reason=case((new == state, reason), else_=None),
            updated_at=func.clock_timestamp(),
        )
    )
    row = conn.execute(
        select(runs.c.state, total, runs.c.expected, runs.c.state_reason).where(
            runs.c.run_id == run_id
        )
    ).first()
    if row is None:
        return None
    expected = int(row[2]) if row[2] is not None else None
    return Ended(str(row[0]), int(row[1]), expected, row[3])


def abandon_runs(
    conn: Connection,
    *,
    reason: str,
    changed_before: datetime | None = None,
    idle_secs: float | None = None,
) -> list[str]:
    """Mark ``abandoned`` the runs still going whose row last changed before
    ``changed_before``, or longer than ``idle_secs`` ago: their services are gone. Their ids."""
    where: list[Any] = [runs.c.state.in_(GOING)]
    if changed_before is not None:
        where.append(runs.c.updated_at < changed_before)
    if idle_secs is not None:
        where.append(
            runs.c.updated_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, idle_secs)
        )
    done = conn.execute(
        update(runs)
        .where(*where)
        .values(state="abandoned", ended_at=func.clock_timestamp(), state_reason=reason)
        .returning(runs.c.run_id)
    )
    return sorted(str(r[0]) for r in done)


@dataclass
class _Totals:
    scenario: str = ""
    succeeded: int = 0
    failed: int = 0
    started: datetime | None = None

    def add(self, ok: bool, created: datetime) -> None:
        if ok:
            self.succeeded += 1
        else:
            self.failed += 1
        if self.started is None or created < self.started:
            self.started = created


@cache
def _add_totals_statement() -> Any:
    """The upsert that adds a batch's counts to its run's row (built once: constructing it
    cost more than running it, once per batch)."""
    stmt = insert(runs).values(
        run_id=bindparam("run_id"),
        scenario=bindparam("scenario"),  # its request's upsert_run writes the same
        succeeded=bindparam("succeeded"),
        failed=bindparam("failed"),
        started_at=bindparam("started_at"),
        state="running",
    )
    total = runs.c.succeeded + runs.c.failed + stmt.excluded.succeeded + stmt.excluded.failed
    return stmt.on_conflict_do_update(
        index_elements=[runs.c.run_id],
        set_={
            "succeeded": runs.c.succeeded + stmt.excluded.succeeded,
            "failed": runs.c.failed + stmt.excluded.failed,
            "started_at": func.least(runs.c.started_at, stmt.excluded.started_at),
            "finished_at": func.coalesce(
                runs.c.finished_at,
                _when(
                    runs.c.expected.is_not(None) & (total >= runs.c.expected),
                    func.clock_timestamp(),
                ),
            ),
            **_state_columns(_state_after(total, runs.c.expected, recording=True)),
            "updated_at": func.clock_timestamp(),
        },
    )


def _add_totals(conn: Connection, run_id: str, totals: _Totals) -> None:
    conn.execute(
        _add_totals_statement(),
        {
            "run_id": run_id,
            "scenario": totals.scenario,
            "succeeded": totals.succeeded,
            "failed": totals.failed,
            "started_at": totals.started,
        },
    )


_UNANNOUNCED = text(
    """
    SELECT r.run_id, r.scenario, r.expected,
           (SELECT jsonb_object_agg(status, n) FROM
              (SELECT status, count(*) AS n FROM outcomes o WHERE o.run_id = r.run_id
               GROUP BY status) s) AS counts
    FROM runs r
    WHERE r.run_id IN :ids AND r.finished_at IS NOT NULL AND r.announced_at IS NULL
    ORDER BY r.run_id
    """
).bindparams(bindparam("ids", expanding=True))


def completed_unannounced(conn: Connection, run_ids: Iterable[str]) -> list[RunCompleted]:
    """Runs among ``run_ids`` that are complete and whose completion is not announced yet,
    with their outcomes counted by status (exactly, in this transaction's snapshot)."""

    ids = sorted(set(run_ids))
    if not ids:
        return []
    now = datetime.now(UTC)
    return [
        RunCompleted(
            run_id=row.run_id,
            scenario=row.scenario,
            expected=int(row.expected or 0),
            counts={k: int(v) for k, v in (row.counts or {}).items()},
            at=now,
        )
        for row in conn.execute(_UNANNOUNCED, {"ids": ids})
    ]


def mark_announced(conn: Connection, run_ids: Iterable[str]) -> None:
    """Note that these runs' completion is published."""
    ids = sorted(set(run_ids))
    if ids:
        conn.execute(
            update(runs)
            .where(runs.c.run_id.in_(ids), runs.c.announced_at.is_(None))
            .values(announced_at=func.clock_timestamp())
        )


# -- outcomes -----------------------------------------------------------------------------------


@dataclass
class Written:
    """What one batch wrote."""

    new: int = 0  # outcome rows inserted (a replayed row is not new)
    duplicates: int = 0
    completed: list[RunCompleted] = field(default_factory=list)


class OutcomeWriter:
    """Writes batches of outcomes and run requests, one database transaction each."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.written = 0
        self.duplicates = 0

    def write(
        self,
        rows: Sequence[base.OutcomeRow],
        requests: Sequence[RunRequest] = (),
        produced: Sequence[RunProduced] = (),
    ) -> Written:
        """Store a batch. Raises SQLAlchemy's errors (OperationalError: the database is away)."""
        out = Written()
        touched = {r.run_id for r in requests} | {p.run_id for p in produced}
        with self._engine.begin() as conn:
            for req in requests:
                upsert_run(conn, req)
            for event in produced:
                set_expected(conn, event)
            if rows:
                totals = self._insert(conn, rows)
                for run_id in sorted(totals):  # a fixed order: no deadlock between recorders
                    _add_totals(conn, run_id, totals[run_id])
                out.new = sum(t.succeeded + t.failed for t in totals.values())
                touched.update(totals)
                touched.update(r[1] for r in rows)
                _queue_status_callbacks(conn, rows)
            out.completed = completed_unannounced(conn, touched)
            _queue_completion_callbacks(conn, out.completed)
        out.duplicates = len(rows) - out.new
        self.written += out.new
        self.duplicates += out.duplicates
        return out

    def mark_announced(self, run_ids: Iterable[str]) -> None:
        with self._engine.begin() as conn:
            mark_announced(conn, run_ids)

    def _insert(self, conn: Connection, rows: Sequence[base.OutcomeRow]) -> dict[str, _Totals]:
        from psycopg import errors as pgerrors
        from sqlalchemy.exc import IntegrityError

        raw: Any = conn.connection.driver_connection
        try:
            # A savepoint: on a conflict only the COPY is undone, and the fallback runs.
            with conn.begin_nested(), raw.cursor() as cur, cur.copy(COPY_OUTCOMES) as copy:
                copy.set_types(COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
            return _totals((row[1], row[2], row[4], row[7]) for row in rows)
        except (pgerrors.UniqueViolation, IntegrityError):
            pass
        conn.execute(text(STAGING))
        with raw.cursor() as cur, cur.copy(COPY_STAGING) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        return _totals(conn.execute(MERGE_STAGING).all())


def _callback_urls(conn: Connection, run_ids: Iterable[str], column: str) -> dict[str, str]:
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    col = runs.c[column]
    found = conn.execute(select(runs.c.run_id, col).where(runs.c.run_id.in_(ids), col.is_not(None)))
    return {str(r[0]): str(r[1]) for r in found}


def _queue_status_callbacks(conn: Connection, rows: Sequence[base.OutcomeRow]) -> None:
    """A webhook timer per outcome of a run with a ``status_callback_url``, due now, in the
    outcomes' transaction: queued once (a replayed outcome's timer exists already)."""
    from herald.timers import callback_row

    urls = _callback_urls(conn, (r[1] for r in rows), "status_callback_url")
    if not urls:
        return
    now = datetime.now(UTC)
    queued = [
        callback_row(
            timer_id=f"{r[0]}-status",
            url=urls[r[1]],
            now=now,
            body={
                "type": "message.outcome",
                "run_id": r[1],
                "message_id": r[0],
                "scenario": r[2],
                "worker": r[3],
                "status": r[4],
                "latency_ms": r[5],
                "attempts": r[6],
            },
        )
        for r in rows
        if r[1] in urls
    ]
    insert_timers(conn, queued)


def _queue_completion_callbacks(conn: Connection, completed: Sequence[RunCompleted]) -> None:
    """The completion callback of each newly complete run with a ``callback_url``: one webhook
    timer each (a completion seen again, before it was announced, queues nothing more)."""
    from herald.timers import callback_row

    urls = _callback_urls(conn, (c.run_id for c in completed), "callback_url")
    now = datetime.now(UTC)
    queued = [
        callback_row(
            timer_id=f"run-{c.run_id}-completed",
            url=urls[c.run_id],
            now=now,
            body={
                "type": "run.completed",
                "run_id": c.run_id,
                "scenario": c.scenario,
                "expected": c.expected,
                "counts": c.counts,
                "completed_at": c.at.isoformat(),
            },
        )
        for c in completed
        if c.run_id in urls
    ]
    insert_timers(conn, queued)


def _totals(rows: Iterable[Any]) -> dict[str, _Totals]:
    known = base.scenarios()
    totals: dict[str, _Totals] = defaultdict(_Totals)
    for run_id, scenario, status, created_at in rows:
        t = totals[run_id]
        t.scenario = scenario
        t.add(known[scenario].succeeded(status), created_at)
    return totals


# -- reads ----------------------------------------------------------------------------------------

_RECENT = (
    func.coalesce(runs.c.requested_at, runs.c.started_at, runs.c.updated_at).desc(),
    runs.c.run_id,
)


def get_run(conn: Connection, run_id: str) -> Row[Any] | None:
    """A run's row."""
    return conn.execute(select(runs).where(runs.c.run_id == run_id)).first()


def count_runs(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(runs)).scalar_one())


def list_runs(conn: Connection, *, offset: int, limit: int) -> list[Row[Any]]:
    """Runs, most recent first."""
    return list(conn.execute(select(runs).order_by(*_RECENT).offset(offset).limit(limit)))


def recent_run_ids(conn: Connection, limit: int) -> list[str]:
    return [r[0] for r in conn.execute(select(runs.c.run_id).order_by(*_RECENT).limit(limit))]


def recorded(conn: Connection, run_id: str) -> int:
    """Outcomes the run's totals count (the recorder's committed figure)."""
    row = conn.execute(
        select(runs.c.succeeded + runs.c.failed).where(runs.c.run_id == run_id)
    ).first()
    return int(row[0]) if row else 0


def _ok_statuses(scenario: str) -> list[str]:
    known = base.scenarios().get(scenario)
    return [s for s, ok in known.statuses.items() if ok] if known else []


_OUTCOME_FIGURES = text(
    """
    SELECT count(*) AS n,
           count(*) FILTER (WHERE NOT (status = ANY(:ok))) AS failed,
           avg(latency_ms) AS avg_ms,
           max(latency_ms) AS max_ms,
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) AS pct,
           extract(epoch FROM min(created_at)) AS first_created,
           extract(epoch FROM min(received_at)) AS first_received,
           extract(epoch FROM max(recorded_at)) AS last_recorded,
           extract(epoch FROM max(recorded_at) - min(created_at)) AS span
    FROM outcomes WHERE run_id = :r
    """
)
_BY_STATUS = text(
    "SELECT status, count(*) FROM outcomes WHERE run_id = :r GROUP BY status ORDER BY status"
)
_BY_WORKER = text(
    """
    SELECT worker_id,
           count(*) FILTER (WHERE status = ANY(:ok)) AS succeeded,
           count(*) FILTER (WHERE NOT (status = ANY(:ok))) AS failed,
           avg(latency_ms) AS avg_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
    FROM outcomes WHERE run_id = :r GROUP BY worker_id ORDER BY worker_id
    """
)
_SERIES = text(
    """
    SELECT t, n, failed, pct FROM (
        SELECT floor(extract(epoch FROM completed_at))::bigint AS t,
               count(*) AS n,
               count(*) FILTER (WHERE NOT (status = ANY(:ok))) AS failed,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) AS pct
        FROM outcomes
        WHERE run_id = :r AND completed_at >= to_timestamp(:since)
        GROUP BY 1 ORDER BY 1 DESC LIMIT :limit
    ) AS recent ORDER BY t
    """
)


@dataclass(frozen=True)
class RunFigures:
    """A run's outcomes in Postgres, counted exactly."""

    n: int
    failed: int
    by_status: dict[str, int]
    avg_ms: float | None
    max_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    first_created: float | None  # epoch seconds
    first_received: float | None
    last_recorded: float | None
    span_secs: float | None  # last recorded - first created


@dataclass(frozen=True)
class WorkerFigures:
    worker: int
    succeeded: int
    failed: int
    avg_ms: float
    p95_ms: float


def run_figures(conn: Connection, run_id: str, scenario: str) -> RunFigures:
    """Counts, by status, exact latency percentiles and times of a run's outcomes."""
    ok = _ok_statuses(scenario)
    row = conn.execute(_OUTCOME_FIGURES, {"r": run_id, "ok": ok}).one()
    by_status = {str(r[0]): int(r[1]) for r in conn.execute(_BY_STATUS, {"r": run_id})}
    p50, p95, p99 = (float(x) for x in row.pct) if row.n else (None, None, None)

    def f(value: Any) -> float | None:
        return float(value) if value is not None else None

    return RunFigures(
        n=int(row.n),
        failed=int(row.failed),
        by_status=by_status,
        avg_ms=f(row.avg_ms),
        max_ms=f(row.max_ms),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        first_created=f(row.first_created),
        first_received=f(row.first_received),
        last_recorded=f(row.last_recorded),
        span_secs=f(row.span),
    )


def worker_figures(conn: Connection, run_id: str, scenario: str) -> list[WorkerFigures]:
    """Per worker: outcomes that succeeded and failed, average and p95 latency."""
    ok = _ok_statuses(scenario)
    return [
        WorkerFigures(
            worker=int(r.worker_id),
            succeeded=int(r.succeeded),
            failed=int(r.failed),
            avg_ms=float(r.avg_ms),
            p95_ms=float(r.p95),
        )
        for r in conn.execute(_BY_WORKER, {"r": run_id, "ok": ok})
    ]


def series(conn: Connection, run_id: str, scenario: str, *, since: float, limit: int) -> list[Any]:
    """Per-second buckets by completion time: (t, n, failed, [p50, p95, p99])."""
    params = {"r": run_id, "ok": _ok_statuses(scenario), "since": since, "limit": limit}
    return list(conn.execute(_SERIES, params))


def outcome_page(
    conn: Connection,
    run_id: str,
    *,
    status: str | None,
    worker: int | None,
    offset: int,
    limit: int,
) -> tuple[int, list[Row[Any]]]:
    """A run's outcomes, filtered, in completion order: (total matching, this page)."""
    where = [outcomes.c.run_id == run_id]
    if status is not None:
        where.append(outcomes.c.status == status)
    if worker is not None:
        where.append(outcomes.c.worker_id == worker)
    total = conn.execute(select(func.count()).select_from(outcomes).where(*where)).scalar_one()
    rows = conn.execute(
        select(outcomes)
        .where(*where)
        .order_by(outcomes.c.completed_at, outcomes.c.message_id)
        .offset(offset)
        .limit(limit)
    )
    return int(total), list(rows)


def get_outcome(conn: Connection, message_id: str) -> Row[Any] | None:
    return conn.execute(select(outcomes).where(outcomes.c.message_id == message_id)).first()


def metric_rows(conn: Connection, run_ids: Sequence[str], bounds_ms: Sequence[float]) -> list[Any]:
    """Per (run, worker, status): count, total latency, and counts at or under each bound."""
    filters = ", ".join(
        f"count(*) FILTER (WHERE latency_ms <= :b{i})" for i in range(len(bounds_ms))
    )
    # Built from the bound count alone; the values are bound parameters.
    stmt = text(
        f"""
        SELECT run_id, worker_id, status, count(*) AS n, sum(latency_ms) AS total_ms, {filters}
        FROM outcomes WHERE run_id IN :runs
        GROUP BY run_id, worker_id, status ORDER BY run_id, worker_id, status
        """  # noqa: S608
    ).bindparams(bindparam("runs", expanding=True))
    params: dict[str, Any] = {"runs": list(run_ids)}
    params.update({f"b{i}": b for i, b in enumerate(bounds_ms)})
    return list(conn.execute(stmt, params))


def run_states(conn: Connection, run_ids: Sequence[str]) -> list[Any]:
    """(run_id, expected, finished) of each run."""
    return list(
        conn.execute(
            select(runs.c.run_id, runs.c.expected, runs.c.finished_at.is_not(None)).where(
                runs.c.run_id.in_(list(run_ids))
            )
        )
    )


# -- seeding ----------------------------------------------------------------------------------


def insert_seed(
    conn: Connection, run_rows: Sequence[Mapping[str, Any]], outcome_rows: Sequence[base.OutcomeRow]
) -> tuple[int, int]:
    """Insert sample runs and outcomes unless their ids exist; (runs, outcomes) inserted."""
    new_runs = 0
    for row in run_rows:
        done = conn.execute(
            insert(runs).values(**row).on_conflict_do_nothing().returning(runs.c.run_id)
        )
        new_runs += len(done.all())
    new_outcomes = 0
    if outcome_rows:
        values = [dict(zip(OUTCOME_COLUMNS, r, strict=True)) for r in outcome_rows]
        done = conn.execute(
            insert(outcomes)
            .values(values)
            .on_conflict_do_nothing()
            .returning(outcomes.c.message_id)
        )
        new_outcomes = len(done.all())
    return new_runs, new_outcomes


def worker_status_counts(conn: Connection, run_id: str) -> list[Any]:
    """(worker_id, status, n) of a run's outcomes."""
    return list(
        conn.execute(
            select(outcomes.c.worker_id, outcomes.c.status, func.count().label("n"))
            .where(outcomes.c.run_id == run_id)
            .group_by(outcomes.c.worker_id, outcomes.c.status)
            .order_by(outcomes.c.worker_id, outcomes.c.status)
        )
    )


# pg_advisory_xact_lock key of run admission (any constant; "herald" in ASCII).
ADMISSION_LOCK = 0x686572616C64


def admit_run(conn: Connection, *, stale_after_secs: float) -> int:
    """Take the run-admission lock (held until the connection's transaction ends), mark
    ``abandoned`` the runs unchanged for ``stale_after_secs`` and count those still going."""
    conn.execute(select(func.pg_advisory_xact_lock(ADMISSION_LOCK)))
    abandon_runs(conn, idle_secs=stale_after_secs, reason=idle_reason(stale_after_secs))
    going = select(func.count()).select_from(runs).where(runs.c.state.in_(GOING))
    return int(conn.execute(going).scalar_one())


def idle_reason(secs: float) -> str:
    """Why a run idle for ``secs`` is abandoned."""
    return f"nothing recorded for {secs:g}s (limits.stale_run_secs): its services are gone"


# -- the retail store (the retail_events and retail_visits views; retail_injections) ----------

_RETAIL_EVENTS = text(
    """
    SELECT count(*) AS events,
           count(*) FILTER (WHERE type = 'enter') AS enters,
           count(*) FILTER (WHERE type = 'move') AS moves,
           count(*) FILTER (WHERE type = 'exit') AS exits,
           encode(sha256(convert_to(coalesce(string_agg(
               concat_ws(',', seq, type, customer, round(ts * 1000)::bigint, x, y),
               ';' ORDER BY seq), ''), 'UTF8')), 'hex') AS digest
    FROM retail_events WHERE run_id = :r
    """
)
_RETAIL_OCCUPANCY_MAX = text(
    """
    SELECT coalesce(max(n), 0) FROM (
        SELECT sum(CASE WHEN type = 'enter' THEN 1 ELSE -1 END) OVER (ORDER BY seq) AS n
        FROM retail_events WHERE run_id = :r AND type <> 'move'
    ) AS running
    """
)
_RETAIL_VISITS = text(
    """
    SELECT coalesce(sum(dwell_secs), 0) AS dwell_total,
           count(*) FILTER (WHERE dwell_secs IS NULL) AS open_visits,
           coalesce(sum(:end - extract(epoch FROM entered_at)) FILTER (WHERE dwell_secs IS NULL),
                    0) AS open_total,
           percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY dwell_secs) AS pct
    FROM retail_visits WHERE run_id = :r
    """
)


def retail_truth(conn: Connection, run_id: str, *, start: float, end: float) -> dict[str, Any]:
    """A retail run's figures from its stored events (the same as the generator's ground
    truth, :class:`herald.scenarios.retail.Truth`): counts, occupancy over ``[start, end]``,
    dwell percentiles and a digest of the sequence of events."""
    ev = conn.execute(_RETAIL_EVENTS, {"r": run_id}).one()
    top: Any = conn.execute(_RETAIL_OCCUPANCY_MAX, {"r": run_id}).scalar_one()
    visits = conn.execute(_RETAIL_VISITS, {"r": run_id, "end": end}).one()
    area = float(visits.dwell_total) + float(visits.open_total)
    p50, p95 = (float(x) if x is not None else None for x in (visits.pct or (None, None)))
    return {
        "events": int(ev.events),
        "by_type": {"enter": int(ev.enters), "move": int(ev.moves), "exit": int(ev.exits)},
        "entered": int(ev.enters),
        "left": int(ev.exits),
        "occupancy_mean": area / (end - start) if end > start else 0.0,
        "occupancy_max": int(top),
        "dwell_p50_secs": p50,
        "dwell_p95_secs": p95,
        "digest": str(ev.digest),
    }


_RETAIL_NOW = text(
    """
    SELECT count(*) AS events,
           count(*) FILTER (WHERE type = 'enter') AS entered,
           count(*) FILTER (WHERE type = 'exit') AS left,
           max(ts) AS latest,
           (array_agg(backlog ORDER BY seq DESC))[1] AS backlog,
           max(lateness_ms) AS lateness_max_ms
    FROM retail_events WHERE run_id = :r
    """
)
_RETAIL_DWELL = text(
    """
    SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY dwell_secs) AS pct,
           avg(moves) AS moves, avg(path_length) AS path
    FROM retail_visits WHERE run_id = :r AND dwell_secs IS NOT NULL
    """
)
_RETAIL_CELLS = text(
    "SELECT x, y, count(*) AS n FROM retail_events WHERE run_id = :r GROUP BY x, y ORDER BY x, y"
)
_RETAIL_WHERE = text(
    """
    SELECT customer, x, y FROM (
        SELECT DISTINCT ON (customer) customer, type, x, y FROM retail_events
        WHERE run_id = :r ORDER BY customer, seq DESC
    ) AS latest WHERE type <> 'exit' ORDER BY customer
    """
)
_RETAIL_MINUTES = text(
    """
    SELECT (floor(ts / :step) * :step)::float8 AS t,
           count(*) FILTER (WHERE type = 'enter') AS enters,
           count(*) FILTER (WHERE type = 'exit') AS exits
    FROM retail_events WHERE run_id = :r AND type <> 'move'
    GROUP BY 1 ORDER BY 1
    """
)


def retail_store(conn: Connection, run_id: str, *, step: float = 60.0) -> dict[str, Any]:
    """A retail run as its dashboard draws it: counters, events per cell (the heatmap), who is
    where now, and occupancy at the end of each ``step`` simulated seconds."""
    now = conn.execute(_RETAIL_NOW, {"r": run_id}).one()
    dwell = conn.execute(_RETAIL_DWELL, {"r": run_id}).one()
    p50, p95 = (float(x) if x is not None else None for x in (dwell.pct or (None, None)))
    inside, series = 0, []
    for row in conn.execute(_RETAIL_MINUTES, {"r": run_id, "step": step}):
        enters, exits = int(row.enters), int(row.exits)
        inside += enters - exits
        series.append({"t": float(row[0]), "enters": enters, "exits": exits, "inside": inside})
    return {
        "events": int(now.events),
        "entered": int(now.entered),
        "left": int(now.left),
        "inside": int(now.entered) - int(now.left),
        "latest_ts": float(now.latest) if now.latest is not None else None,
        "backlog": int(now.backlog) if now.backlog is not None else 0,
        "lateness_max_ms": float(now.lateness_max_ms) if now.lateness_max_ms is not None else None,
        "dwell_p50_secs": p50,
        "dwell_p95_secs": p95,
        "moves_per_visit": float(dwell.moves) if dwell.moves is not None else None,
        "path_per_visit": float(dwell.path) if dwell.path is not None else None,
        "cells": [
            [int(r.x), int(r.y), int(r.n)] for r in conn.execute(_RETAIL_CELLS, {"r": run_id})
        ],
        "customers": [
            [str(r.customer), int(r.x), int(r.y)]
            for r in conn.execute(_RETAIL_WHERE, {"r": run_id})
        ],
        "occupancy": series,
    }


def retail_visits(conn: Connection, run_id: str) -> list[Row[Any]]:
    """A retail run's visits (customer, visit, entered_at, left_at, dwell_secs, moves,
    path_length), in order of entry."""
    return list(
        conn.execute(
            text("SELECT * FROM retail_visits WHERE run_id = :r ORDER BY entered_at, customer"),
            {"r": run_id},
        )
    )


def retail_events(conn: Connection, run_id: str) -> list[Row[Any]]:
    """A retail run's events in timeline order (seq)."""
    return list(
        conn.execute(
            text("SELECT * FROM retail_events WHERE run_id = :r ORDER BY seq"), {"r": run_id}
        )
    )


def current_retail_run(conn: Connection) -> Row[Any] | None:
    """The retail run asked for most recently that is still going: (run_id, request)."""
    return conn.execute(
        select(runs.c.run_id, runs.c.request)
        .where(
            runs.c.scenario == "retail",
            runs.c.state.in_(GOING),
            runs.c.request.is_not(None),
        )
        .order_by(runs.c.requested_at.desc(), runs.c.run_id)
        .limit(1)
    ).first()


def run_request(conn: Connection, run_id: str) -> Row[Any] | None:
    """(scenario, request, finished_at, state) of a run."""
    return conn.execute(
        select(runs.c.scenario, runs.c.request, runs.c.finished_at, runs.c.state).where(
            runs.c.run_id == run_id
        )
    ).first()


# pg_advisory_xact_lock class of a retail run's injections (any constant; "inject").
INJECTION_LOCK = 0x696E6A65


def lock_injections(conn: Connection, run_id: str) -> None:
    """Take the run's injection lock (until the transaction ends): checks and numbers of
    concurrent injections, from any web replica, come one after another."""
    conn.execute(select(func.pg_advisory_xact_lock(INJECTION_LOCK, func.hashtext(run_id))))


def last_injection(conn: Connection, run_id: str, customer: str) -> Row[Any] | None:
    """The latest injected event of a customer in a run (type, ts, x, y, number)."""
    t = retail_injections.c
    return conn.execute(
        select(t.type, t.ts, t.x, t.y, t.number)
        .where(t.run_id == run_id, t.customer == customer)
        .order_by(t.number.desc())
        .limit(1)
    ).first()


def next_injection_number(conn: Connection, run_id: str) -> int:
    t = retail_injections.c
    found: Any = conn.execute(
        select(func.coalesce(func.max(t.number), 0)).where(t.run_id == run_id)
    ).scalar_one()
    return int(found) + 1


def insert_injection(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(insert(retail_injections).values(**row))


def retail_injections_of(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    """A run's injections in their order."""
    t = retail_injections.c
    rows = conn.execute(
        select(retail_injections).where(t.run_id == run_id).order_by(t.number)
    ).mappings()
    return [dict(r) for r in rows]


# -- timers: due items, their claims and their callbacks' ledger ---------------------------------


@dataclass(frozen=True)
class Claimed:
    """A due item claimed by a scheduler: fire it at ``due_at`` unless it is fenced."""

    id: str
    kind: str
    topic: str
    key: str
    payload: bytes
    due_at: datetime
    not_after: datetime | None
    fence: int
    url: str | None = None  # a webhook's
    mode: str = "at_least_once"


def insert_timer(conn: Connection, row: Mapping[str, Any]) -> tuple[Row[Any], bool]:
    """Store a timer; with an idempotency key already used, the timer stored then (and False).

    A timer due within ``soon_secs`` (in ``row``) wakes the schedulers (NOTIFY, delivered at
    the commit)."""
    from herald.db.models import timers
    from herald.timers import NOTIFY_CHANNEL

    values = {k: v for k, v in row.items() if k != "soon"}
    stmt = insert(timers).values(**values, updated_at=func.clock_timestamp())
    if values.get("idempotency_key") is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=[timers.c.idempotency_key])
    created = conn.execute(stmt.returning(*timers.c)).first()
    if created is None:
        existing = conn.execute(
            select(timers).where(timers.c.idempotency_key == values["idempotency_key"])
        ).one()
        return existing, False
    if row.get("soon"):
        conn.execute(text("SELECT pg_notify(:c, :id)"), {"c": NOTIFY_CHANNEL, "id": created.id})
    return created, True


def insert_timers(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Store many timers at once, their ids chosen by the caller: one already stored is left
    as it is (so a batch written again adds nothing). How many were new; wakes the
    schedulers once when any is due soon."""
    from herald.db.models import timers
    from herald.timers import NOTIFY_CHANNEL

    if not rows:
        return 0
    values = [{k: v for k, v in row.items() if k != "soon"} for row in rows]
    stmt = (
        insert(timers)
        .values(updated_at=func.clock_timestamp())
        .on_conflict_do_nothing(index_elements=[timers.c.id])
        .returning(timers.c.id)
    )
    new = len(conn.execute(stmt, values).all())
    if new and any(row.get("soon") for row in rows):
        conn.execute(text("SELECT pg_notify(:c, :id)"), {"c": NOTIFY_CHANNEL, "id": "batch"})
    return new


def get_timer(conn: Connection, timer_id: str) -> Row[Any] | None:
    from herald.db.models import timers

    return conn.execute(select(timers).where(timers.c.id == timer_id)).first()


def list_timers(
    conn: Connection, *, state: str | None, offset: int, limit: int
) -> tuple[int, list[Row[Any]]]:
    """Timers, newest first, optionally of one state: (total, this page)."""
    from herald.db.models import timers

    where = [timers.c.state == state] if state is not None else []
    total = conn.execute(select(func.count()).select_from(timers).where(*where)).scalar_one()
    rows = conn.execute(
        select(timers)
        .where(*where)
        .order_by(timers.c.created_at.desc(), timers.c.id)
        .offset(offset)
        .limit(limit)
    )
    return int(total), list(rows)


def cancel_timer(conn: Connection, timer_id: str) -> Row[Any] | None:
    """Cancel a timer that has not fired; None when it has (or does not exist)."""
    from herald.db.models import timers

    return conn.execute(
        update(timers)
        .where(timers.c.id == timer_id, timers.c.state == "scheduled")
        .values(
            state="cancelled",
            finished_at=func.clock_timestamp(),
            lease_owner=None,
            lease_until=None,
            updated_at=func.clock_timestamp(),
        )
        .returning(*timers.c)
    ).first()


def replay_timer(conn: Connection, timer_id: str) -> Row[Any] | None:
    """Schedule a failed timer again, due now, with a fresh budget of attempts (its ledger
    stays, numbered on); None unless it failed. The schedulers are told at once."""
    from herald.db.models import timers
    from herald.timers import NOTIFY_CHANNEL

    row = conn.execute(
        update(timers)
        .where(timers.c.id == timer_id, timers.c.state == "failed")
        .values(
            state="scheduled",
            attempt_base=timers.c.attempts,
            due_at=func.clock_timestamp(),
            fired_at=None,
            finished_at=None,
            lease_owner=None,
            lease_until=None,
            updated_at=func.clock_timestamp(),
        )
        .returning(*timers.c)
    ).first()
    if row is not None:
        conn.execute(text("SELECT pg_notify(:c, :id)"), {"c": NOTIFY_CHANNEL, "id": timer_id})
    return row


_LOCK_TIMERS = text(
    "SELECT id FROM timers WHERE id = ANY(CAST(:ids AS text[])) ORDER BY id FOR UPDATE"
)


def lock_timers(conn: Connection, ids: Iterable[str]) -> None:
    """Lock these timers' rows, in id order. A transaction that updates several timers (the
    scheduler's marks and renewals, the notifier's claims, ends and renewals) calls this
    first, once, for every timer it will touch, so that no two wait on each other: each
    statement locking rows in its own order, they deadlocked at 1,000 timers due per second.
    The functions below that update several timers leave it to their caller."""
    wanted = sorted(set(ids))
    if wanted:
        conn.execute(_LOCK_TIMERS, {"ids": wanted})


_CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM timers
        WHERE state = 'scheduled' AND due_at <= clock_timestamp() + make_interval(secs => :ahead)
          AND (lease_until IS NULL OR lease_until < clock_timestamp())
        ORDER BY due_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE timers t
    SET lease_owner = :owner,
        lease_until = clock_timestamp() + make_interval(secs => :lease),
        fence = t.fence + 1,
        updated_at = clock_timestamp()
    FROM due WHERE t.id = due.id
    RETURNING t.id, t.kind, t.topic, t.key, t.payload, t.due_at, t.not_after, t.fence,
              t.url, t.mode
    """
)


def claim_due(
    conn: Connection, *, owner: str, lease_secs: float, ahead_secs: float, batch: int
) -> list[Claimed]:
    """Claim due items (within ``ahead_secs``) nobody holds, under a lease: each claim bumps
    the item's fencing token, so a replica whose claim was taken over cannot fire it."""
    rows = conn.execute(
        _CLAIM, {"owner": owner, "lease": lease_secs, "ahead": ahead_secs, "batch": batch}
    )
    return [
        Claimed(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6], int(r[7]), r[8], r[9])
        for r in rows
    ]


def renew_claims(
    conn: Connection, *, owner: str, ids: Sequence[str], lease_secs: float
) -> set[str]:
    """Extend this owner's leases; the ids it still holds (the others were taken over)."""
    from herald.db.models import timers

    if not ids:
        return set()
    rows = conn.execute(
        update(timers)
        .where(
            timers.c.id.in_(list(ids)),
            timers.c.lease_owner == owner,
            timers.c.state == "scheduled",
        )
        .values(
            lease_until=func.clock_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, lease_secs)
        )
        .returning(timers.c.id)
    )
    return {r[0] for r in rows}


_MARK_FIRED = text(
    """
    WITH c AS (
        SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:fences AS bigint[])) AS c(id, fence)
    ), marked AS (
    UPDATE timers t
    SET state = CASE WHEN t.kind = 'webhook' THEN 'firing' ELSE 'delivered' END,
        fired_at = coalesce(t.fired_at, clock_timestamp()),
        finished_at = CASE WHEN t.kind = 'webhook' THEN t.finished_at ELSE clock_timestamp() END,
        -- The scheduler's lease ends here; a notifier's (it took the command before this
        -- mark) stays.
        lease_owner = CASE WHEN t.lease_owner = :owner THEN NULL ELSE t.lease_owner END,
        lease_until = CASE WHEN t.lease_owner = :owner THEN NULL ELSE t.lease_until END,
        updated_at = clock_timestamp()
    FROM c
    WHERE t.id = c.id AND t.fence = c.fence AND t.state IN ('scheduled', 'firing')
    )
    -- (Runs whatever reads it.) Under its fence still: marked now, or finished by a notifier
    -- that took the command before this mark came.
    SELECT t.id FROM timers t JOIN c ON t.id = c.id AND t.fence = c.fence
    """
)


def mark_fired_many(conn: Connection, claims: Sequence[Claimed], *, owner: str) -> set[str]:
    """Mark ``owner``'s published claims fired (a webhook ``firing``: the notifier goes on;
    anything else ``delivered``), each only under its own fencing token; the ids still under
    it (marked, or already delivered by a notifier quicker than the mark): the others were
    taken over."""
    if not claims:
        return set()
    params = {"ids": [c.id for c in claims], "fences": [c.fence for c in claims], "owner": owner}
    return {r[0] for r in conn.execute(_MARK_FIRED, params)}


def expire_claim(conn: Connection, claim: Claimed) -> bool:
    """The claim is past its ``not_after``: ``expired``, never fired."""
    from herald.db.models import timers

    now = func.clock_timestamp()
    done = conn.execute(
        update(timers)
        .where(timers.c.id == claim.id, timers.c.fence == claim.fence)
        .where(timers.c.state == "scheduled")
        .values(
            state="expired", finished_at=now, updated_at=now, lease_owner=None, lease_until=None
        )
        .returning(timers.c.id)
    ).first()
    return done is not None


_CLAIM_DELIVERIES = text(
    """
    UPDATE timers t
    SET state = 'firing',
        fired_at = coalesce(t.fired_at, clock_timestamp()),
        lease_owner = :owner,
        lease_until = clock_timestamp() + make_interval(secs => :lease),
        updated_at = clock_timestamp()
    FROM unnest(CAST(:ids AS text[]), CAST(:fences AS bigint[])) AS c(id, fence)
    WHERE t.id = c.id AND t.fence = c.fence AND t.state IN ('scheduled', 'firing')
      AND (t.state = 'scheduled'  -- fired: the scheduler's mark may still be on its way
           OR t.lease_until IS NULL OR t.lease_until < clock_timestamp()
           OR t.lease_owner = :owner)
    RETURNING t.id, t.url, t.mode, t.not_after, t.attempts, t.attempt_base, t.first_attempt_at,
              t.payload,
              (SELECT d.reason FROM disabled_endpoints d WHERE d.url = t.url) AS disabled
    """
)


# An at_most_once timer that a notifier took and then lost (it died, or stopped mid-request,
# and its lease lapsed): whether its callback went out is unknown, so it is never sent again.
_LOSE_UNKNOWN = text(
    """
    UPDATE timers t
    SET state = 'failed',
        finished_at = clock_timestamp(),
        last_error = 'outcome unknown: ' || t.lease_owner || ' stopped while delivering it',
        lease_owner = NULL,
        lease_until = NULL,
        updated_at = clock_timestamp()
    FROM unnest(CAST(:ids AS text[]), CAST(:fences AS bigint[])) AS c(id, fence)
    WHERE t.id = c.id AND t.fence = c.fence AND t.mode = 'at_most_once' AND t.state = 'firing'
      AND t.lease_owner IS NOT NULL AND t.lease_owner <> :owner
      AND t.lease_until < clock_timestamp()
    RETURNING t.id, t.last_error
    """
)


@dataclass(frozen=True)
class Delivery:
    """A fired webhook timer a notifier has taken to deliver."""

    id: str
    url: str
    mode: str
    not_after: datetime | None
    attempts: int  # made so far, replays included (the ledger's numbers go on from here)
    attempt_base: int  # made before the latest replay (its budget starts from here)
    first_attempt_at: datetime | None
    payload: bytes = b""  # the body to POST; empty: a timer's own, {"id": "<timer id>"}
    disabled: str | None = None  # why its URL is disabled (it answered 410), if it is


@dataclass(frozen=True)
class Held:
    """A fire command's timer that a notifier could not take: who holds it, until when."""

    id: str
    state: str
    fence: int
    lease_until: datetime | None


def claim_deliveries(
    conn: Connection,
    commands: Sequence[tuple[str, int]],
    *,
    owner: str,
    lease_secs: float,
) -> tuple[list[Delivery], list[Held], dict[str, str]]:
    """A notifier takes fired timers to deliver, each under its command's fencing token
    (``(timer id, fence)``): the deliveries it took; the others' current state (held by
    another notifier, done, cancelled, expired, or the command is a stale claim's); and the
    ``at_most_once`` timers another notifier lost mid-delivery, now ``failed`` (id -> why)."""
    from herald.db.models import timers

    if not commands:
        return [], [], {}
    params = {
        "ids": [c[0] for c in commands],
        "fences": [c[1] for c in commands],
        "owner": owner,
        "lease": lease_secs,
    }
    lost = {str(r.id): str(r.last_error) for r in conn.execute(_LOSE_UNKNOWN, params)}
    taken = [Delivery(**r._mapping) for r in conn.execute(_CLAIM_DELIVERIES, params)]
    ids = {d.id for d in taken} | set(lost)
    rest = [c[0] for c in commands if c[0] not in ids]
    held = []
    if rest:
        cols = (timers.c.id, timers.c.state, timers.c.fence, timers.c.lease_until)
        held = [
            Held(**r._mapping) for r in conn.execute(select(*cols).where(timers.c.id.in_(rest)))
        ]
    return taken, held, lost


_RECORD_COUNTERS = text(
    """
    UPDATE timers t
    SET attempts = greatest(t.attempts, c.number),
        first_attempt_at = coalesce(t.first_attempt_at, c.first_at),
        last_status = c.status,
        last_error = c.detail,
        updated_at = clock_timestamp()
    FROM unnest(CAST(:ids AS text[]), CAST(:numbers AS integer[]),
                CAST(:firsts AS timestamptz[]), CAST(:statuses AS integer[]),
                CAST(:details AS text[])) AS c(id, number, first_at, status, detail)
    WHERE t.id = c.id
    """
)


_ATTEMPT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("timer_id", "text"),
    ("number", "integer"),
    ("url", "text"),
    ("started_at", "timestamptz"),
    ("duration_ms", "double precision"),
    ("status", "integer"),
    ("error", "text"),
    ("detail", "text"),
    ("sent", "boolean"),
    ("outcome", "text"),
    ("retry_after", "double precision"),
    ("next_attempt_at", "timestamptz"),
    ("notifier", "text"),
)
# One statement whatever the batch's size (arrays, not a VALUES list compiled per batch).
_RECORD_ATTEMPTS = text(
    "INSERT INTO timer_attempts ({names}) SELECT * FROM unnest({arrays}) "  # noqa: S608 - constants
    "ON CONFLICT DO NOTHING".format(
        names=", ".join(name for name, _ in _ATTEMPT_COLUMNS),
        arrays=", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _ATTEMPT_COLUMNS),
    )
)


def record_attempts(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Ledger rows, one per attempt (a replayed row is kept once); the timers' counters (the
    attempts made, the first one's time, the latest one's status)."""
    if not rows:
        return
    conn.execute(
        _RECORD_ATTEMPTS, {name: [row[name] for row in rows] for name, _ in _ATTEMPT_COLUMNS}
    )
    latest: dict[str, Mapping[str, Any]] = {}
    first: dict[str, datetime] = {}
    for row in rows:
        tid = row["timer_id"]
        if tid not in latest or row["number"] > latest[tid]["number"]:
            latest[tid] = row
        if tid not in first or row["started_at"] < first[tid]:
            first[tid] = row["started_at"]
    ids = list(latest)
    conn.execute(
        _RECORD_COUNTERS,
        {
            "ids": ids,
            "numbers": [latest[i]["number"] for i in ids],
            "firsts": [first[i] for i in ids],
            "statuses": [latest[i]["status"] for i in ids],
            "details": [latest[i]["detail"] for i in ids],
        },
    )


_FINISH = text(
    """
    UPDATE timers t
    SET state = c.state, finished_at = clock_timestamp(), updated_at = clock_timestamp(),
        lease_owner = NULL, lease_until = NULL
    FROM unnest(CAST(:ids AS text[]), CAST(:states AS text[])) AS c(id, state)
    WHERE t.id = c.id AND t.lease_owner = :owner AND t.state = 'firing'
    RETURNING t.id
    """
)


def finish_deliveries(conn: Connection, ends: Sequence[tuple[str, str]], *, owner: str) -> set[str]:
    """Deliveries' ends, ``(timer id, state)``: ``delivered``, ``failed`` or ``expired``;
    the ids finished (the others are no longer this owner's)."""
    if not ends:
        return set()
    params = {"ids": [e[0] for e in ends], "states": [e[1] for e in ends], "owner": owner}
    return {r[0] for r in conn.execute(_FINISH, params)}


def attempts_of(conn: Connection, timer_id: str) -> list[Row[Any]]:
    from herald.db.models import timer_attempts

    return list(
        conn.execute(
            select(timer_attempts)
            .where(timer_attempts.c.timer_id == timer_id)
            .order_by(timer_attempts.c.number)
        )
    )


def disable_endpoint(conn: Connection, url: str, reason: str) -> None:
    from herald.db.models import disabled_endpoints

    conn.execute(
        insert(disabled_endpoints)
        .values(url=url, disabled_at=func.clock_timestamp(), reason=reason)
        .on_conflict_do_nothing()
    )


_TIMER_FIGURES = text(
    """
    SELECT state, count(*) AS n FROM timers GROUP BY state ORDER BY state
    """
)
_OVERDUE = text(
    "SELECT count(*) FROM timers WHERE state = 'scheduled' AND due_at < clock_timestamp()"
)
_DUE_SOON = text(
    "SELECT count(*) FROM timers WHERE state = 'scheduled' "
    "AND due_at < clock_timestamp() + make_interval(secs => :secs)"
)
_LATENESS = text(
    """
    SELECT count(*) AS n, sum(extract(epoch FROM first_attempt_at - due_at)) AS total, {buckets}
    FROM timers WHERE first_attempt_at IS NOT NULL
    """
)
_ATTEMPT_OUTCOMES = text(
    "SELECT outcome, count(*) FROM timer_attempts GROUP BY outcome ORDER BY outcome"
)


def timer_figures(conn: Connection, *, soon_secs: float = 60.0) -> dict[str, Any]:
    """Counts by state, overdue and due soon, attempts by outcome."""
    return {
        "by_state": {str(r[0]): int(r[1]) for r in conn.execute(_TIMER_FIGURES)},
        "overdue": int(conn.execute(_OVERDUE).scalar_one()),
        "due_soon": int(conn.execute(_DUE_SOON, {"secs": soon_secs}).scalar_one()),
        "attempts": {str(r[0]): int(r[1]) for r in conn.execute(_ATTEMPT_OUTCOMES)},
    }


def lateness_buckets(
    conn: Connection, bounds_secs: Sequence[float]
) -> tuple[int, float, list[int]]:
    """The fire lateness (first attempt - due time) of every timer fired: (count, total
    seconds, count at or under each bound)."""
    filters = ", ".join(
        f"count(*) FILTER (WHERE first_attempt_at - due_at <= make_interval(secs => :b{i}))"
        for i in range(len(bounds_secs))
    )
    # Built from the bound count alone; the values are bound parameters.
    stmt = text(_LATENESS.text.format(buckets=filters or "0"))
    row = conn.execute(stmt, {f"b{i}": b for i, b in enumerate(bounds_secs)}).one()
    return int(row[0]), float(row[1] or 0.0), [int(x) for x in row[2:]]


_LATENESS_PERCENTILES = text(
    """
    SELECT count(*) AS n,
           percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY lateness) AS p,
           max(lateness) AS worst
    FROM (SELECT extract(epoch FROM {column} - due_at) * 1000 AS lateness
          FROM timers WHERE {column} IS NOT NULL AND id LIKE :prefix) l
    """
)


def lateness_percentiles(
    conn: Connection, *, column: str = "first_attempt_at", prefix: str = "%"
) -> tuple[int, float | None, float | None, float | None]:
    """Exact lateness of the timers whose id matches ``prefix`` (a LIKE pattern), in ms:
    ``(count, p50, p99, max)`` of ``column`` - due time (``first_attempt_at``: the callback's
    first attempt; ``fired_at``: the scheduler's publication)."""
    if column not in ("first_attempt_at", "fired_at"):
        raise ValueError(f"lateness of {column!r}: first_attempt_at or fired_at")
    stmt = text(_LATENESS_PERCENTILES.text.format(column=column))  # one of two names
    row = conn.execute(stmt, {"prefix": prefix}).one()
    p50, p99 = row.p if row.p is not None else (None, None)
    return int(row.n), p50, p99, None if row.worst is None else float(row.worst)


def recent_deliveries(conn: Connection, *, limit: int) -> list[Row[Any]]:
    """The latest attempts, newest first, with their timers' due time."""
    from herald.db.models import timer_attempts, timers

    return list(
        conn.execute(
            select(
                timer_attempts.c.timer_id,
                timer_attempts.c.number,
                timer_attempts.c.url,
                timer_attempts.c.started_at,
                timer_attempts.c.status,
                timer_attempts.c.outcome,
                timer_attempts.c.detail,
                timers.c.due_at,
            )
            .join(timers, timers.c.id == timer_attempts.c.timer_id)
            .order_by(timer_attempts.c.started_at.desc())
            .limit(limit)
        )
    )


def renew_deliveries(
    conn: Connection, *, owner: str, ids: Sequence[str], lease_secs: float
) -> None:
    """Extend a notifier's leases on the timers it is delivering."""
    from herald.db.models import timers

    conn.execute(
        update(timers)
        .where(timers.c.id.in_(list(ids)), timers.c.lease_owner == owner)
        .where(timers.c.state == "firing")
        .values(
            lease_until=func.clock_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, lease_secs)
        )
    )


def recent_failures(conn: Connection, *, limit: int) -> list[Row[Any]]:
    """The latest timers that ended ``failed``, newest first, with the last attempt's reason."""
    from herald.db.models import timers

    return list(
        conn.execute(
            select(
                timers.c.id,
                timers.c.url,
                timers.c.finished_at,
                timers.c.attempts,
                timers.c.last_status,
                timers.c.last_error,
            )
            .where(timers.c.state == "failed")
            .order_by(timers.c.finished_at.desc())
            .limit(limit)
        )
    )


# -- telemetry: schedules of streams, the frames received, per ship ---------------------------


def _schedules_query() -> Any:
    """Schedules with the state their readers see: until its stream starts, its start's
    timer says whether it was cancelled or expired."""
    from sqlalchemy import case

    from herald.db.models import telemetry_schedules as s
    from herald.db.models import timers as t

    waiting = (s.c.state == "scheduled") & t.c.state.in_(("cancelled", "expired"))
    state = case((waiting, t.c.state), else_=s.c.state)
    return select(*s.c, state.label("effective_state"), t.c.state.label("timer_state")).select_from(
        s.outerjoin(t, t.c.id == s.c.id)
    )


def insert_schedule(conn: Connection, row: Mapping[str, Any], timer: Mapping[str, Any]) -> None:
    """Store a schedule and its start's due item (one id), in the caller's transaction."""
    from herald.db.models import telemetry_schedules

    conn.execute(insert(telemetry_schedules).values(**row, updated_at=func.clock_timestamp()))
    insert_timer(conn, timer)


def insert_schedules(
    conn: Connection, rows: Sequence[Mapping[str, Any]], timers_: Sequence[Mapping[str, Any]]
) -> None:
    """Store many schedules and their starts at once (``sim.run``'s streams)."""
    from herald.db.models import telemetry_schedules

    if rows:
        conn.execute(
            insert(telemetry_schedules).values(updated_at=func.clock_timestamp()), list(rows)
        )
        insert_timers(conn, timers_)


def get_schedule(conn: Connection, schedule_id: str) -> Row[Any] | None:
    from herald.db.models import telemetry_schedules as s

    return conn.execute(_schedules_query().where(s.c.id == schedule_id)).first()


def list_schedules(
    conn: Connection, *, state: str | None, ship: str | None, offset: int, limit: int
) -> tuple[int, list[Row[Any]]]:
    """Schedules, newest first, optionally of one (effective) state or ship: (total, page)."""
    query = _schedules_query().subquery()
    where = []
    if state is not None:
        where.append(query.c.effective_state == state)
    if ship is not None:
        where.append(query.c.ship == ship)
    total = conn.execute(select(func.count()).select_from(query).where(*where)).scalar_one()
    rows = conn.execute(
        select(query)
        .where(*where)
        .order_by(query.c.created_at.desc(), query.c.id)
        .offset(offset)
        .limit(limit)
    )
    return int(total), list(rows)


def schedules_of_run(conn: Connection, run_id: str) -> list[Row[Any]]:
    from herald.db.models import telemetry_schedules as s

    return list(conn.execute(_schedules_query().where(s.c.run_id == run_id).order_by(s.c.ship)))


def cancel_schedule(conn: Connection, schedule_id: str) -> bool:
    """Cancel a schedule whose start has not been published: its timer and itself."""
    from herald.db.models import telemetry_schedules

    waiting = conn.execute(
        select(telemetry_schedules.c.state)
        .where(telemetry_schedules.c.id == schedule_id)
        .with_for_update()
    ).scalar_one_or_none()
    if waiting != "scheduled" or cancel_timer(conn, schedule_id) is None:
        return False
    conn.execute(
        update(telemetry_schedules)
        .where(telemetry_schedules.c.id == schedule_id, telemetry_schedules.c.state == "scheduled")
        .values(
            state="cancelled",
            finished_at=func.clock_timestamp(),
            updated_at=func.clock_timestamp(),
        )
    )
    return True


def mark_stopping(conn: Connection, schedule_id: str) -> bool:
    """A stream asked to stop (its stop command is being published): ``stopping``."""
    from herald.db.models import telemetry_schedules as s

    done = conn.execute(
        update(s)
        .where(s.c.id == schedule_id, s.c.state.in_(("scheduled", "streaming")))
        .values(state="stopping", updated_at=func.clock_timestamp())
        .returning(s.c.id)
    ).first()
    return done is not None


# What each stream event makes of a schedule: its state, and the states it may come from; its
# figures, added up over the stream's segments (one spaceship's run of it each, from packet
# ``first_k``). An event of the latest segment adds what it reports beyond that segment's
# last report (read twice, it adds nothing); an event of a new segment (a higher first_k)
# adds its figures, and the packets between the end of the latest segment's last report and
# its first_k as missed; an event of an older segment changes nothing. An end is final.
_STREAM_EVENT = text(
    """
    UPDATE telemetry_schedules s
    SET state = CASE
            WHEN e.event IN ('started', 'progress', 'handed_off') AND s.state = 'stopping'
                THEN 'stopping'
            WHEN e.event IN ('started', 'progress', 'handed_off') THEN 'streaming'
            WHEN e.event = 'finished' THEN 'done'
            ELSE e.event END,
        packets_sent = s.packets_sent + CASE WHEN e.first_k > coalesce(s.segment_k0, -1)
            THEN e.packets_sent ELSE greatest(0, e.packets_sent - s.segment_sent) END,
        dropped = s.dropped + CASE WHEN e.first_k > coalesce(s.segment_k0, -1)
            THEN e.dropped ELSE greatest(0, e.dropped - s.segment_dropped) END,
        missed = s.missed + CASE WHEN e.first_k > coalesce(s.segment_k0, -1)
            THEN greatest(0, e.first_k
                             - coalesce(s.segment_k0 + s.segment_sent + s.segment_dropped, 0))
            ELSE 0 END,
        segment_k0 = e.first_k,
        segment_sent = CASE WHEN e.first_k > coalesce(s.segment_k0, -1) THEN e.packets_sent
            ELSE greatest(s.segment_sent, e.packets_sent) END,
        segment_dropped = CASE WHEN e.first_k > coalesce(s.segment_k0, -1) THEN e.dropped
            ELSE greatest(s.segment_dropped, e.dropped) END,
        spaceship = e.spaceship,
        reason = CASE WHEN e.event IN ('finished', 'stopped', 'failed')
            THEN coalesce(e.reason, s.reason) ELSE s.reason END,
        started_at = coalesce(s.started_at, CASE WHEN e.event = 'started' THEN e.at END),
        finished_at = CASE WHEN e.event IN ('finished', 'stopped', 'failed') THEN e.at
            ELSE s.finished_at END,
        updated_at = clock_timestamp()
    FROM unnest(CAST(:ids AS text[]), CAST(:events AS text[]), CAST(:sent AS bigint[]),
                CAST(:dropped AS bigint[]), CAST(:first_ks AS bigint[]),
                CAST(:spaceships AS text[]), CAST(:reasons AS text[]),
                CAST(:ats AS timestamptz[]))
         AS e(id, event, packets_sent, dropped, first_k, spaceship, reason, at)
    WHERE s.id = e.id
      AND (s.state IN ('scheduled', 'stopping', 'streaming')
           OR (s.state = 'cancelled' AND e.event IN ('finished', 'stopped', 'failed')))
      AND e.first_k >= coalesce(s.segment_k0, 0)
    """
)


def record_stream_events(conn: Connection, events: Sequence[Any]) -> None:
    """Apply spaceships' stream events (:class:`herald.scenarios.telemetry.StreamEvent`) in
    order: a start (or a resume) makes a schedule ``streaming``, an end ``done``, ``stopped``
    or ``failed``; an end is final (a start read again after it changes nothing). The
    figures add up over the stream's segments (see :data:`_STREAM_EVENT`)."""
    # A progress report followed in the batch by another event of its segment adds nothing
    # that one does not (a segment's figures only grow): skipped, one statement less.
    last = {(e.schedule_id, e.first_k): i for i, e in enumerate(events)}
    for i, e in enumerate(events):  # in order: a start and its end may be in one batch
        if e.event == "progress" and last[(e.schedule_id, e.first_k)] != i:
            continue
        conn.execute(
            _STREAM_EVENT,
            {
                "ids": [e.schedule_id],
                "events": [e.event],
                "sent": [e.packets_sent],
                "dropped": [e.dropped],
                "first_ks": [e.first_k],
                "spaceships": [e.spaceship],
                "reasons": [e.reason],
                "ats": [e.at],
            },
        )


FRAME_COLUMNS = (
    "schedule_id",
    "n",
    "ship",
    "apid",
    "seq",
    "t",
    "voltage",
    "current",
    "temperature",
    "soc",
    "sunlit",
    "reordered",
    "sender",
    "received_at",
)
# The frames not stored yet, and their ships' totals incremented by exactly those rows.
_INSERT_FRAMES = text(
    """
    WITH inserted AS (
        INSERT INTO telemetry_frames (schedule_id, n, ship, apid, seq, t, voltage, current,
                                      temperature, soc, sunlit, reordered, sender, received_at)
        SELECT * FROM unnest(
            CAST(:schedule_id AS text[]), CAST(:n AS bigint[]), CAST(:ship AS text[]),
            CAST(:apid AS smallint[]), CAST(:seq AS int[]), CAST(:t AS timestamptz[]),
            CAST(:voltage AS float8[]), CAST(:current AS float8[]),
            CAST(:temperature AS float8[]), CAST(:soc AS float8[]), CAST(:sunlit AS bool[]),
            CAST(:reordered AS bool[]), CAST(:sender AS text[]),
            CAST(:received_at AS timestamptz[]))
        ON CONFLICT (schedule_id, n) DO NOTHING
        RETURNING ship, t, soc, voltage, reordered
    ), totals AS (
        INSERT INTO telemetry_ships AS s (ship, frames, reordered, last_t, last_soc,
                                          last_voltage, updated_at)
        SELECT ship, count(*), count(*) FILTER (WHERE reordered), max(t),
               (array_agg(soc ORDER BY t DESC))[1], (array_agg(voltage ORDER BY t DESC))[1],
               clock_timestamp()
        FROM inserted GROUP BY ship
        ON CONFLICT (ship) DO UPDATE SET
            frames = s.frames + excluded.frames,
            reordered = s.reordered + excluded.reordered,
            last_soc = CASE WHEN excluded.last_t >= coalesce(s.last_t, excluded.last_t)
                            THEN excluded.last_soc ELSE s.last_soc END,
            last_voltage = CASE WHEN excluded.last_t >= coalesce(s.last_t, excluded.last_t)
                                THEN excluded.last_voltage ELSE s.last_voltage END,
            last_t = greatest(s.last_t, excluded.last_t),
            updated_at = clock_timestamp()
        RETURNING 1
    )
    SELECT count(*) FROM inserted
    """
)


def write_frames(conn: Connection, frames: Sequence[Any]) -> int:
    """Store frames (:class:`herald.scenarios.telemetry.TelemetryFrame`) once each, and add
    those actually inserted to their ships' totals in the same statement: the frames new."""
    if not frames:
        return 0
    columns: dict[str, list[Any]] = {c: [] for c in FRAME_COLUMNS}
    for f in frames:
        for c in FRAME_COLUMNS:
            columns[c].append(getattr(f, c))
    columns["t"] = [datetime.fromtimestamp(t, UTC) for t in columns["t"]]
    return int(conn.execute(_INSERT_FRAMES, columns).scalar_one())


def active_streams(conn: Connection) -> dict[str, int]:
    """Streams under way (``streaming`` or ``stopping``), per ship."""
    from herald.db.models import telemetry_schedules as s

    rows = conn.execute(
        select(s.c.ship, func.count())
        .where(s.c.state.in_(("streaming", "stopping")))
        .group_by(s.c.ship)
        .order_by(s.c.ship)
    )
    return {r[0]: int(r[1]) for r in rows}


_STREAM_FIGURES = text(
    """
    SELECT s.id, s.ship, s.packets_expected, s.packets_sent, s.dropped, s.missed,
           count(f.n) AS stored, count(f.n) FILTER (WHERE f.reordered) AS reordered,
           count(DISTINCT f.n) AS distinct_stored
    FROM telemetry_schedules s LEFT JOIN telemetry_frames f ON f.schedule_id = s.id
    WHERE s.id = ANY(CAST(:ids AS text[]))
    GROUP BY s.id, s.ship, s.packets_expected, s.packets_sent, s.dropped, s.missed
    ORDER BY s.ship, s.id
    """
)


def stream_figures(conn: Connection, schedule_ids: Sequence[str]) -> list[Row[Any]]:
    """Per stream: packets expected, sent (the spaceships' count), dropped, missed (sent by
    no spaceship, as far as their reports tell), frames stored."""
    return list(conn.execute(_STREAM_FIGURES, {"ids": list(schedule_ids)}))


def ship_summaries(conn: Connection) -> list[Row[Any]]:
    from herald.db.models import telemetry_ships

    return list(conn.execute(select(telemetry_ships).order_by(telemetry_ships.c.ship)))


def frames_of(
    conn: Connection, ship: str, *, since: datetime | None = None, limit: int = 1000
) -> list[Row[Any]]:
    """A ship's frames in time order (from ``since``): the dashboard's charts."""
    from herald.db.models import telemetry_frames as f

    where = [f.c.ship == ship]
    if since is not None:
        where.append(f.c.t >= since)
    return list(
        conn.execute(
            select(f.c.t, f.c.voltage, f.c.current, f.c.temperature, f.c.soc, f.c.sunlit)
            .where(*where)
            .order_by(f.c.t.desc())
            .limit(limit)
        )
    )[::-1]


# The telemetry monitor's figures, per ship, over the streams in view: those of one run, or
# those under way or started in the last ``window`` seconds. Per stream, its frames are read
# through the frames' primary key (schedule_id, n): how many are stored, the highest packet
# index received (so the packets due so far, received or not) and how many were recorded in
# the last ``recent`` seconds (frames/s). A stream's packets due are those up to the latest
# received, or once it ended every packet it sent, dropped or missed (its last ones may be
# lost; missed ones, sent by no spaceship, count as lost).
_TELEMETRY_FIGURES = text(
    """
    SELECT s.ship,
           count(*) AS streams,
           count(*) FILTER (WHERE s.state IN ('streaming', 'stopping')) AS active,
           sum(s.packets_expected)::bigint AS expected,
           sum(s.packets_sent)::bigint AS sent,
           sum(s.dropped)::bigint AS dropped,
           sum(s.missed)::bigint AS missed,
           sum(f.stored)::bigint AS stored,
           sum(CASE WHEN s.state IN ('scheduled', 'streaming', 'stopping') THEN f.due
                    ELSE greatest(f.due, s.packets_sent + s.dropped + s.missed) END)::bigint
               AS due,
           sum(f.recent)::bigint AS recent,
           max(sh.last_soc) AS soc,
           max(sh.last_voltage) AS voltage,
           max(sh.last_t) AS last_t
    FROM telemetry_schedules s
    CROSS JOIN LATERAL (
        SELECT count(*) AS stored, coalesce(max(fr.n) + 1, 0) AS due,
               count(*) FILTER (
                   WHERE fr.recorded_at > clock_timestamp() - make_interval(secs => :recent)
               ) AS recent
        FROM telemetry_frames fr WHERE fr.schedule_id = s.id
    ) f
    LEFT JOIN telemetry_ships sh ON sh.ship = s.ship
    WHERE (CAST(:run_id AS text) IS NOT NULL AND s.run_id = :run_id)
       OR (CAST(:run_id AS text) IS NULL
           AND (s.state IN ('streaming', 'stopping')
                OR s.start_at > clock_timestamp() - make_interval(secs => :window)))
    GROUP BY s.ship
    ORDER BY s.ship
    """
)


def telemetry_figures(
    conn: Connection, *, run_id: str | None = None, window: float = 900.0, recent: float = 5.0
) -> list[Row[Any]]:
    """The telemetry monitor's rows, one per ship (see :data:`_TELEMETRY_FIGURES`)."""
    return list(
        conn.execute(_TELEMETRY_FIGURES, {"run_id": run_id, "window": window, "recent": recent})
    )


_TELEMETRY_SERIES = text(
    """
    SELECT f.ship, floor(extract(epoch FROM f.t))::bigint AS second,
           avg(f.soc) AS soc, avg(f.voltage) AS voltage, avg(f.temperature) AS temperature
    FROM telemetry_frames f JOIN telemetry_ships sh ON sh.ship = f.ship
    WHERE f.ship = ANY(CAST(:ships AS text[]))
      AND f.t >= sh.last_t - make_interval(secs => :secs)
    GROUP BY f.ship, second
    ORDER BY f.ship, second
    """
)


def telemetry_series(
    conn: Connection, ships: Sequence[str], secs: float
) -> dict[str, list[tuple[int, float, float, float]]]:
    """Per ship, its last ``secs`` seconds of samples (up to its latest), averaged per second
    of sample time: (second, SoC, voltage, temperature) in time order — the dashboard's
    charts, read through the index on (ship, t)."""
    out: dict[str, list[tuple[int, float, float, float]]] = {ship: [] for ship in ships}
    rows = conn.execute(_TELEMETRY_SERIES, {"ships": list(ships), "secs": secs})
    for r in rows:
        out[r.ship].append((int(r.second), float(r.soc), float(r.voltage), float(r.temperature)))
    return out
