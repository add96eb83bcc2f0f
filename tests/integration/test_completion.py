"""The final summary re-counts Postgres and names every disagreement (herald.completion)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from herald import completion, runs
from herald.config import Settings
from herald.contracts import RunCompleted, RunFigures
from tests.support.sms import record, results_for


def _watch(run_id: str, counts: dict[str, int], monitor: dict | None = None) -> completion.Watch:
    at = datetime.now(UTC)
    watch = completion.Watch(run_id, want_figures=monitor is not None)
    watch.feed([RunCompleted(run_id=run_id, scenario="sms", expected=100, counts=counts, at=at)])
    if monitor is not None:
        watch.feed([RunFigures(run_id=run_id, complete=True, figures=monitor, at=at)])
    return watch


def test_the_summary_agrees_when_every_count_does(settings: Settings) -> None:
    request = runs.make_request(settings, messages=100, seed=1)
    t0 = datetime.now(UTC) - timedelta(seconds=5)
    record(settings, results_for(request.run_id, 100, t0=t0), [request])
    watch = _watch(
        request.run_id,
        {"sent": 75, "failed": 25},
        {"total": 100, "sent": 75, "failed": 25, "expected": 100, "duplicates_ignored": 3},
    )
    summary, problems = completion.summarise(
        settings.database.url, watch, scenario="sms", elapsed=2.0, started_wall=t0.timestamp()
    )
    assert problems == []
    assert (summary["total"], summary["outcomes_in_database"]) == (100, 100)
    assert (summary["sent_in_database"], summary["failed_in_database"]) == (75, 25)
    assert summary["duplicate_results_ignored"] == 3
    assert summary["recorder_counts"] == {"sent": 75, "failed": 25}
    assert set(summary["senders"]) == {"0", "1", "2"}
    assert sum(w["sent"] + w["failed"] for w in summary["senders"].values()) == 100


def test_the_summary_names_every_disagreement(settings: Settings) -> None:
    request = runs.make_request(settings, messages=100, seed=1)
    record(settings, results_for(request.run_id, 90), [request])  # ten outcomes short
    watch = _watch(request.run_id, {"sent": 80, "failed": 20}, {"total": 100, "expected": 100})
    _summary, problems = completion.summarise(
        settings.database.url, watch, scenario="sms", elapsed=1.0, started_wall=0.0
    )
    assert problems == [
        "Postgres holds 90 outcomes; the run has 100 messages",
        "the monitor counted 100; Postgres holds 90",
        "the recorder announced {'sent': 80, 'failed': 20}; Postgres holds "
        "{'sent': 67, 'failed': 23}",
    ]
    # Without a monitor, the recorder's counts are the live totals.
    alone = _watch(request.run_id, {"sent": 67, "failed": 23})
    _summary, problems = completion.summarise(
        settings.database.url, alone, scenario="sms", elapsed=1.0, started_wall=0.0
    )
    assert problems == ["Postgres holds 90 outcomes; the run has 100 messages"]
