"""What sim.run and herald submit --wait learn from the control topic (herald.completion)."""

from __future__ import annotations

from datetime import UTC, datetime

from herald import completion
from herald.contracts import RunCompleted, RunFigures, ServiceEvent

AT = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


def service(pid: int, state: str, host: str = "h1") -> ServiceEvent:
    return ServiceEvent(
        service="sender", instance=f"sender-{pid}", host=host, pid=pid, state=state, at=AT
    )  # type: ignore[arg-type]


def done(run_id: str, **counts: int) -> RunCompleted:
    return RunCompleted(run_id=run_id, scenario="sms", expected=10, counts=counts, at=AT)


def figures(run_id: str, complete: bool, total: int) -> RunFigures:
    return RunFigures(run_id=run_id, complete=complete, figures={"total": total}, at=AT)


def test_a_watch_keeps_its_runs_events_and_the_services_states() -> None:
    watch = completion.Watch("r1", want_figures=True)
    watch.feed([service(1, "started"), service(1, "ready"), service(2, "ready", host="h2")])
    assert watch.is_ready(1, "h1") and watch.is_ready(2, "h2")
    assert not watch.is_ready(2, "h1") and not watch.is_ready(3, "h1")
    watch.feed([done("other", sent=10), figures("r1", False, 5)])
    assert watch.completed is None and watch.figures is None and not watch.done
    watch.feed([done("r1", sent=8, failed=2), done("r1", sent=9, failed=1)])
    assert watch.completed is not None and watch.completed.counts == {"sent": 8, "failed": 2}
    assert not watch.done  # the monitor's figures are still awaited
    watch.feed([figures("r1", True, 10), figures("r1", True, 11)])
    assert watch.done and watch.figures is not None and watch.figures.figures["total"] == 11
    watch.feed([service(1, "stopped")])
    assert ("h1", 1) in watch.stopped


def test_live_totals_are_the_monitors_or_else_the_recorders() -> None:
    watch = completion.Watch("r1", want_figures=False)
    watch.feed([done("r1", sent=7, failed=3)])
    assert watch.done
    assert completion.live_totals(watch) == {"total": 10, "sent": 7, "failed": 3, "expected": 10}
    watch.feed([figures("r1", True, 10)])
    assert completion.live_totals(watch) == {"total": 10}


def test_waiting_ends_when_done_when_stopped_or_at_the_deadline() -> None:
    ticks: list[int] = []
    watch = completion.Watch("r1", want_figures=False)
    batches = iter([[], [done("r1", sent=1)]])
    assert completion.wait(
        lambda _t: next(batches), watch, timeout=60, tick=lambda: ticks.append(1), stopped=bool
    )
    assert len(ticks) == 2
    idle = completion.Watch("r2", want_figures=False)
    assert not completion.wait(lambda _t: [], idle, timeout=60, tick=ticks.clear,
                               stopped=lambda: True)  # fmt: skip
    assert not completion.wait(lambda _t: [], idle, timeout=0, tick=ticks.clear, stopped=bool)
