from __future__ import annotations

import math
import random

import pytest

from herald.scenarios.sms import SCENARIO
from herald.stats import RunStats, bucket_of, bucket_value, percentiles


def sms_stats(run_id: str = "r", **fields: float) -> RunStats:
    """A run's stats in the SMS scenario's words (statuses sent/failed, senders)."""
    return RunStats(run_id, statuses=dict(SCENARIO.statuses), worker_label="sender", **fields)


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_bucket_value_is_within_one_percent_of_what_went_in() -> None:
    for v in (0.011, 0.5, 1.0, 7.3, 99.9, 1234.5, 98765.0):
        assert bucket_value(bucket_of(v)) == pytest.approx(v, rel=0.0101)
    assert bucket_of(0.0) == 0 and bucket_value(0) == 0.0
    assert bucket_of(0.009) == 0


def test_percentiles_match_exact_ones_within_the_bucket_width() -> None:
    rng = random.Random(7)
    values = [rng.expovariate(1 / 100.0) for _ in range(20_000)]
    stats = sms_stats()
    for v in values:
        stats.add(0, "sent", v)
    got = percentiles(stats.hist, (0.5, 0.95, 0.99))
    for q, g in zip((0.5, 0.95, 0.99), got, strict=True):
        assert g == pytest.approx(exact_percentile(values, q), rel=0.0202)


def test_empty_histogram_has_no_percentiles() -> None:
    assert percentiles({}, (0.5, 0.99)) == [None, None]


def test_summary_counts_eta_and_senders() -> None:
    stats = sms_stats(expected=10, requested_at=100.0)
    for i in range(6):
        stats.add(i % 2, "sent" if i < 4 else "failed", 10.0)
    stats.first_result_at, stats.last_result_at = 101.0, 102.0
    s = stats.summary(now=103.0, current_rate=2.0)
    assert (s["total"], s["sent"], s["failed"], s["remaining"]) == (6, 4, 2, 4)
    assert s["percent_done"] == 60.0 and s["complete"] is False
    assert s["elapsed_secs"] == 3.0 and s["throughput"] == 2.0
    assert s["eta_secs"] == 2.0  # 4 remaining at 2/s
    assert s["avg_latency_ms"] == 10.0
    assert s["senders"] == {
        "0": {"sent": 2, "failed": 1, "failure_fraction": 1 / 3, "avg_latency_ms": 10.0},
        "1": {"sent": 2, "failed": 1, "failure_fraction": 1 / 3, "avg_latency_ms": 10.0},
    }
    assert (s["succeeded"], s["statuses"], s["worker_label"]) == (4, ["sent", "failed"], "sender")


def test_a_status_the_scenario_does_not_name_is_counted_as_a_failure_under_its_own_name() -> None:
    stats = sms_stats(expected=3)
    for status in ("sent", "bounced", "bounced"):
        stats.add(0, status, 1.0)
    s = stats.summary(now=1.0)
    assert (s["total"], s["succeeded"], s["sent"], s["failed"], s["bounced"]) == (3, 1, 1, 0, 2)
    assert s["statuses"] == ["sent", "failed", "bounced"]
    assert s["senders"]["0"]["failure_fraction"] == 2 / 3


def test_complete_run_stops_its_clock_at_the_last_result() -> None:
    stats = sms_stats(expected=2, requested_at=10.0)
    stats.add(0, "sent", 1.0)
    stats.add(0, "failed", 3.0)
    stats.last_result_at = 12.0
    s = stats.summary(now=50.0)
    assert s["complete"] is True and s["remaining"] == 0 and s["eta_secs"] == 0.0
    assert s["elapsed_secs"] == 2.0 and s["throughput"] == 1.0


def test_unknown_expected_count_leaves_progress_open() -> None:
    stats = sms_stats()
    stats.add(3, "sent", 0.0)
    s = stats.summary(now=1.0)
    assert s["expected"] is None and s["remaining"] is None and s["percent_done"] is None
    assert s["eta_secs"] is None and s["elapsed_secs"] == 0.0 and s["complete"] is False


def test_a_result_seen_twice_counts_once() -> None:
    stats = sms_stats()
    assert [stats.first_sight(s) for s in (0, 5, 5, 0, 70_000, 70_000)] == [
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    assert stats.duplicates == 3
    assert len(stats.seen) >= 70_001
    assert stats.summary(now=0.0)["duplicates_ignored"] == 3
