"""The final report of a run: the monitor's figures, checked against what Postgres holds."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def recorded(engine: Any, run_id: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT sent + failed FROM runs WHERE run_id = :r"), {"r": run_id}
        ).first()
    return int(row[0]) if row else 0


def report(
    engine: Any, run_id: str, monitor: dict[str, Any], elapsed: float, started_wall: float
) -> dict[str, Any]:
    """The final summary: the monitor's figures, checked against what Postgres holds."""
    from sqlalchemy import text

    with engine.connect() as conn:
        db = conn.execute(
            text(
                """
                SELECT count(*) AS n,
                       count(*) FILTER (WHERE status = 'sent') AS sent,
                       count(*) FILTER (WHERE status = 'failed') AS failed,
                       avg(latency_ms) AS avg_ms,
                       percentile_cont(ARRAY[0.5, 0.95, 0.99])
                           WITHIN GROUP (ORDER BY latency_ms) AS pct,
                       extract(epoch FROM min(created_at)) AS first_created,
                       extract(epoch FROM max(recorded_at)) AS last_recorded,
                       extract(epoch FROM min(received_at)) AS first_received
                FROM outcomes WHERE run_id = :r
                """
            ),
            {"r": run_id},
        ).one()
        per_sender = conn.execute(
            text(
                """
                SELECT sender_id, count(*) FILTER (WHERE status = 'sent'),
                       count(*) FILTER (WHERE status = 'failed'), avg(latency_ms)
                FROM outcomes WHERE run_id = :r GROUP BY sender_id ORDER BY sender_id
                """
            ),
            {"r": run_id},
        ).all()
    span = float(db.last_recorded - db.first_created) if db.n else 0.0
    senders = {
        str(sid): {
            "sent": sent,
            "failed": failed,
            "failure_fraction": failed / (sent + failed),
            "avg_latency_ms": float(avg),
        }
        for sid, sent, failed, avg in per_sender
    }
    p50, p95, p99 = (float(x) for x in db.pct) if db.n else (None, None, None)
    return {
        "run_id": run_id,
        "total": monitor.get("total", 0),
        "sent": monitor.get("sent", 0),
        "failed": monitor.get("failed", 0),
        "invalid": monitor.get("invalid", 0),
        "expected": monitor.get("expected"),
        "outcomes_in_database": db.n,
        "sent_in_database": db.sent,
        "failed_in_database": db.failed,
        "avg_latency_ms": float(db.avg_ms) if db.n else None,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "throughput": db.n / span if span > 0 else None,
        "throughput_basis": "outcomes / (last outcome recorded - first message created)",
        "wall_secs": elapsed,
        "first_result_secs": (
            float(db.first_received) - started_wall if db.first_received is not None else None
        ),
        "senders": senders,
        "monitor": monitor,
    }


def print_summary(console: Console, s: dict[str, Any]) -> None:
    """The final report, as a table."""
    table = Table(title=f"run {s['run_id']}", show_header=False, box=None)

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:,.1f} ms"

    rows = [
        ("messages", f"{s['expected']:,}"),
        ("sent / failed", f"{s['sent']:,} / {s['failed']:,}"),
        (
            "outcomes in Postgres",
            f"{s['outcomes_in_database']:,} "
            f"({s['sent_in_database']:,} sent, {s['failed_in_database']:,} failed)",
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
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    senders = Table("sender", "sent", "failed", "failure %", "avg latency")
    for sid, row in s["senders"].items():
        senders.add_row(
            sid,
            f"{row['sent']:,}",
            f"{row['failed']:,}",
            f"{100 * row['failure_fraction']:.2f}",
            ms(row["avg_latency_ms"]),
        )
    console.print(senders)
