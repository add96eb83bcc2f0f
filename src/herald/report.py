"""The final report of a run: the monitor's figures, checked against what Postgres holds.

The report speaks the run's scenario's words: a count per status (``sent``, ``failed``, and
``sent_in_database``, ``failed_in_database``), and the per-worker figures under the worker
label's plural (``senders``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from herald.scenarios import base

if TYPE_CHECKING:
    from sqlalchemy import Engine

# SQLAlchemy is imported only when a report is made: `herald sim` starts its services first.


def recorded(engine: Engine, run_id: str) -> int:
    """Outcomes recorded for ``run_id`` (the recorder's committed totals)."""
    from herald.db import store

    with engine.connect() as conn:
        return store.recorded(conn, run_id)


def report(
    engine: Engine,
    run_id: str,
    *,
    scenario: str,
    monitor: dict[str, Any],
    elapsed: float,
    started_wall: float,
) -> dict[str, Any]:
    """The final summary: the monitor's figures, checked against what Postgres holds."""
    from herald.db import store

    known = base.get(scenario)
    with engine.connect() as conn:
        db = store.run_figures(conn, run_id, scenario)
        workers = store.worker_figures(conn, run_id, scenario)
        per_worker_status = _per_worker_status(conn, run_id)
    statuses = list(known.statuses)
    summary: dict[str, Any] = {
        "run_id": run_id,
        "scenario": scenario,
        "total": monitor.get("total", 0),
        **{status: monitor.get(status, 0) for status in statuses},
        "invalid": monitor.get("invalid", 0),
        "expected": monitor.get("expected"),
        "outcomes_in_database": db.n,
        **{f"{status}_in_database": db.by_status.get(status, 0) for status in statuses},
        "avg_latency_ms": db.avg_ms,
        "p50_ms": db.p50_ms,
        "p95_ms": db.p95_ms,
        "p99_ms": db.p99_ms,
        "throughput": db.n / db.span_secs if db.span_secs else None,
        "throughput_basis": "outcomes / (last outcome recorded - first message created)",
        "wall_secs": elapsed,
        "first_result_secs": (
            db.first_received - started_wall if db.first_received is not None else None
        ),
        "last_result_secs": (
            db.last_recorded - started_wall if db.last_recorded is not None else None
        ),
        "statuses": statuses,
        "worker_label": known.worker_label,
        f"{known.worker_label}s": {
            str(w.worker): {
                **{st: per_worker_status.get((w.worker, st), 0) for st in statuses},
                "failure_fraction": w.failed / (w.succeeded + w.failed),
                "avg_latency_ms": w.avg_ms,
            }
            for w in workers
        },
        "monitor": monitor,
    }
    return summary


def _per_worker_status(conn: Any, run_id: str) -> dict[tuple[int, str], int]:
    from herald.db import store

    return {
        (int(r.worker_id), str(r.status)): int(r.n)
        for r in store.worker_status_counts(conn, run_id)
    }


def print_summary(console: Console, s: dict[str, Any]) -> None:
    """The final report, as a table."""
    table = Table(title=f"run {s['run_id']}", show_header=False, box=None)
    statuses: list[str] = s["statuses"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:,.1f} ms"

    rows = [
        ("messages", f"{s['expected']:,}" if s["expected"] is not None else "-"),
        (" / ".join(statuses), " / ".join(f"{s[st]:,}" for st in statuses)),
        (
            "outcomes in Postgres",
            f"{s['outcomes_in_database']:,} ("
            + ", ".join(f"{s[f'{st}_in_database']:,} {st}" for st in statuses)
            + ")",
        ),
        (
            "latency avg / p50 / p95 / p99",
            " / ".join(ms(s[k]) for k in ("avg_latency_ms", "p50_ms", "p95_ms", "p99_ms")),
        ),
        ("throughput", f"{s['throughput']:,.0f} msg/s" if s["throughput"] else "-"),
        (
            "first result after",
            f"{s['first_result_secs']:.2f} s" if s["first_result_secs"] is not None else "-",
        ),
        ("wall time", f"{s['wall_secs']:.2f} s"),
    ]
    if s.get("duplicate_results_ignored"):
        rows.append(
            (
                "duplicate results ignored",
                f"{s['duplicate_results_ignored']:,} (second results of a message: its run "
                "produced again after a producer restart, or an aborted transaction's records "
                "that the broker showed; each message counted once)",
            )
        )
    for applied in s.get("incidents", []):
        rows.append(
            (
                f"incident {applied['incident']}",
                f"{applied.get('what', applied['action'])}"
                + (f" at {applied['at_secs']:.2f} s" if "at_secs" in applied else ""),
            )
        )
    for event in s.get("unplanned", []):
        rows.append((f"unplanned exit of {event['service']}", event["what"]))
    rows += [(str(k), str(v)) for k, v in s.get("scenario_rows", [])]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    known = base.scenarios().get(s.get("scenario", ""))
    if known is not None and known.worker is None:
        return  # no workers: no per-worker table
    label = s["worker_label"]
    workers = Table(label, *statuses, "failure %", "avg latency")
    for wid, row in s[f"{label}s"].items():
        workers.add_row(
            wid,
            *(f"{row[st]:,}" for st in statuses),
            f"{100 * row['failure_fraction']:.2f}",
            ms(row["avg_latency_ms"]),
        )
    console.print(workers)
