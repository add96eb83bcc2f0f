"""A run's completion and its final summary, learnt from the control topic: what ``sim.run``
and ``herald submit --wait`` share.

The run is complete when the recorder announces it (its committed totals: the one source);
the monitor's figures, when a monitor runs, come too. The summary then re-counts Postgres and
says whether the three agree.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from herald.contracts import ControlEvent, RunCompleted, RunFigures, RunRequest, ServiceEvent


@dataclass
class Watch:
    """What the control topic has said about one run and the services serving it."""

    run_id: str
    want_figures: bool
    completed: RunCompleted | None = None
    figures: RunFigures | None = None
    ready: dict[tuple[str, int], ServiceEvent] = field(default_factory=dict)  # (host, pid)
    stopped: dict[tuple[str, int], ServiceEvent] = field(default_factory=dict)

    def feed(self, events: Iterable[ControlEvent]) -> None:
        for event in events:
            if isinstance(event, ServiceEvent):
                key = (event.host, event.pid)
                if event.state == "ready":
                    self.ready[key] = event
                elif event.state == "stopped":
                    self.stopped[key] = event
            elif event.run_id != self.run_id:
                continue
            elif isinstance(event, RunCompleted):
                self.completed = self.completed or event
            elif isinstance(event, RunFigures) and event.complete:
                self.figures = event  # the latest: a restarted monitor's are as good

    def is_ready(self, pid: int, host: str | None = None) -> bool:
        return (host or socket.gethostname(), pid) in self.ready

    @property
    def done(self) -> bool:
        return self.completed is not None and (self.figures is not None or not self.want_figures)


def live_totals(watch: Watch) -> dict[str, Any]:
    """The run's figures as the services saw them: the monitor's, or else the recorder's."""
    if watch.figures is not None:
        return dict(watch.figures.figures)
    assert watch.completed is not None
    counts = watch.completed.counts
    return {"total": sum(counts.values()), **counts, "expected": watch.completed.expected}


def summarise(
    url: str,
    watch: Watch,
    *,
    scenario: str,
    elapsed: float,
    started_wall: float,
    extra: dict[str, Any] | None = None,
    request: RunRequest | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The final summary, re-counted from Postgres, and every disagreement found (empty: the
    monitor's totals, the recorder's and Postgres's rows agree with the run's size, and, given
    the ``request``, the scenario's own check of Postgres against its generator passes)."""
    from herald.db.engine import make_engine
    from herald.report import report
    from herald.scenarios import base

    assert watch.completed is not None
    live = live_totals(watch)
    engine = make_engine(url)
    try:
        summary = report(
            engine,
            watch.run_id,
            scenario=scenario,
            monitor=live,
            elapsed=elapsed,
            started_wall=started_wall,
        )
        verdict = base.get(scenario).verify(engine, request) if request is not None else None
    finally:
        engine.dispose()
    summary["duplicate_results_ignored"] = live.get("duplicates_ignored", 0)
    summary["recorder_counts"] = watch.completed.counts
    summary.update(extra or {})
    problems = []
    expected = watch.completed.expected
    stored = summary["outcomes_in_database"]
    if stored != expected:
        problems.append(f"Postgres holds {stored:,} outcomes; the run has {expected:,} messages")
    if summary["total"] != stored:
        who = "monitor" if watch.figures is not None else "recorder"
        problems.append(f"the {who} counted {summary['total']:,}; Postgres holds {stored:,}")
    by_status = {st: summary[f"{st}_in_database"] for st in summary["statuses"]}
    if {k: v for k, v in watch.completed.counts.items() if v} != {
        k: v for k, v in by_status.items() if v
    }:
        problems.append(
            f"the recorder announced {watch.completed.counts}; Postgres holds {by_status}"
        )
    if verdict is not None:
        summary["scenario_figures"] = verdict.figures
        summary["scenario_rows"] = [list(row) for row in verdict.rows]
        problems += verdict.problems
    return summary, problems


def wait(
    poll: Callable[[float], list[ControlEvent]],
    watch: Watch,
    *,
    timeout: float,
    tick: Callable[[], None],
    stopped: Callable[[], bool],
) -> bool:
    """Feed ``watch`` until the run is done (True), ``stopped()`` (False) or the deadline
    (False); ``tick`` runs between polls (incidents, supervision) and may raise."""
    deadline = time.monotonic() + timeout
    while not watch.done:
        if stopped() or time.monotonic() > deadline:
            return False
        watch.feed(poll(0.1))
        tick()
    return True
