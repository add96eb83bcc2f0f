"""``/metrics``: Prometheus text computed from Postgres at scrape time (no in-process state,
so every replica of the web app answers the same)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Connection

from herald.db import store
from herald.web import queries

# Upper bounds, seconds. Prometheus buckets are "less than or equal", and so is the SQL: a
# constant-latency worker lands exactly on a bound and must be counted in it.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Snapshot(Collector):
    def __init__(self, conn: Connection, runs: Sequence[str]) -> None:
        self._conn = conn
        self._runs = list(runs)

    def collect(self) -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            "herald_outcomes",
            "Outcomes recorded in Postgres",
            labels=["run_id", "sender", "status"],
        )
        latency = HistogramMetricFamily(
            "herald_send_latency_seconds",
            "Simulated work (send) latency of recorded outcomes",
            labels=["run_id", "sender"],
        )
        expected = GaugeMetricFamily(
            "herald_run_expected_messages", "Messages a run asked for", labels=["run_id"]
        )
        finished = GaugeMetricFamily(
            "herald_run_finished", "1 once every expected outcome is recorded", labels=["run_id"]
        )
        if self._runs:
            per_sender: dict[tuple[str, str], list[float]] = {}
            bounds_ms = [b * 1000 for b in BUCKETS]
            for row in store.metric_rows(self._conn, self._runs, bounds_ms):
                run_id, sender, status, n, total_ms = (
                    str(row[0]),
                    row[1],
                    str(row[2]),
                    row[3],
                    row[4],
                )
                outcomes.add_metric([run_id, str(sender), status], float(n))
                acc = per_sender.setdefault(
                    (run_id, str(sender)), [0.0, 0.0] + [0.0] * len(BUCKETS)
                )
                acc[0] += n
                acc[1] += float(total_ms)
                for i, count in enumerate(row[5:]):
                    acc[2 + i] += count
            for (run_id, sender), acc in per_sender.items():
                buckets = [(_le(b), acc[2 + i]) for i, b in enumerate(BUCKETS)]
                buckets.append(("+Inf", acc[0]))
                latency.add_metric([run_id, sender], buckets, acc[1] / 1000.0)
            for run_id, run_expected, run_finished in store.run_states(self._conn, self._runs):
                if run_expected is not None:
                    expected.add_metric([run_id], float(run_expected))
                finished.add_metric([run_id], 1.0 if run_finished else 0.0)
        yield outcomes
        yield latency
        yield expected
        yield finished


class _Timers(Collector):
    """Timers: by state, overdue, attempts by outcome, and the fire lateness histogram."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def collect(self) -> Iterator[Metric]:
        figures = store.timer_figures(self._conn)
        by_state = GaugeMetricFamily("herald_timers", "Timers by state", labels=["state"])
        for name in ("scheduled", "firing", "delivered", "failed", "cancelled", "expired"):
            by_state.add_metric([name], float(figures["by_state"].get(name, 0)))
        overdue = GaugeMetricFamily(
            "herald_timers_overdue", "Scheduled timers whose due time has passed"
        )
        overdue.add_metric([], float(figures["overdue"]))
        attempts = CounterMetricFamily(
            "herald_timer_attempts", "Callback attempts, by outcome", labels=["outcome"]
        )
        for outcome, n in figures["attempts"].items():
            attempts.add_metric([outcome], float(n))
        lateness = HistogramMetricFamily(
            "herald_timer_fire_lateness_seconds",
            "First callback attempt - due time, of every timer attempted",
        )
        count, total, cumulative = store.lateness_buckets(self._conn, queries.LATENESS_BOUNDS)
        buckets = [
            (_le(b), float(n)) for b, n in zip(queries.LATENESS_BOUNDS, cumulative, strict=True)
        ]
        buckets.append(("+Inf", float(count)))
        lateness.add_metric([], buckets, total)
        yield by_state
        yield overdue
        yield attempts
        yield lateness


def _le(bound: float) -> str:
    return f"{bound:g}"


def render(conn: Connection, recent: int) -> bytes:
    """The exposition text for the ``recent`` most recent runs."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(conn, queries.recent_run_ids(conn, recent)))
    registry.register(_Timers(conn))
    return generate_latest(registry)
