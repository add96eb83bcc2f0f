"""Simulated work for worker steps: latency distributions and attempts (herald.scenarios.base)."""

from __future__ import annotations

import random
import statistics

import pytest

from herald.config import WorkerSettings
from herald.scenarios.base import SimulatedAttempts, latency_sampler


@pytest.mark.parametrize("dist", ["exponential", "uniform", "normal", "constant"])
def test_latency_distributions_have_the_configured_mean(dist: str) -> None:
    sample = latency_sampler(
        WorkerSettings(mean_wait_time=0.1, latency_distribution=dist), random.Random(3)
    )
    values = [sample() for _ in range(20_000)]
    assert min(values) >= 0
    # Largest sd of the four is the exponential's (0.1): the mean's sd is 0.1/sqrt(20000).
    assert statistics.fmean(values) == pytest.approx(0.1, abs=5 * 0.1 / 141)


def test_zero_mean_means_no_wait() -> None:
    sample = latency_sampler(WorkerSettings(mean_wait_time=0), random.Random(1))
    assert [sample() for _ in range(10)] == [0.0] * 10


def test_attempts_fail_at_the_failure_rate_and_retry_with_doubling_backoff() -> None:
    profile = WorkerSettings(
        mean_wait_time=0.01,
        latency_distribution="constant",
        failure_rate=0.5,
        max_attempts=3,
        retry_backoff=0.1,
    )
    attempt = SimulatedAttempts(profile, random.Random(7))
    outcomes = [attempt() for _ in range(20_000)]
    by_attempts: dict[tuple[bool, int], list[float]] = {}
    for ok, attempts, wait in outcomes:
        by_attempts.setdefault((ok, attempts), []).append(wait)
    # Each attempt fails with 1/2: 1/2 succeed at once, 1/4 at the second, 1/8 at the third,
    # 1/8 fail after the third. Counts within 5 binomial sd.
    n = len(outcomes)
    for key, p in (((True, 1), 1 / 2), ((True, 2), 1 / 4), ((True, 3), 1 / 8), ((False, 3), 1 / 8)):
        sd = (n * p * (1 - p)) ** 0.5
        assert abs(len(by_attempts[key]) - n * p) < 5 * sd, key
    assert set(by_attempts) == {(True, 1), (True, 2), (True, 3), (False, 3)}
    # Constant 10 ms per attempt, plus 0.1 s then 0.2 s of backoff between them.
    assert by_attempts[(True, 1)][0] == pytest.approx(0.01)
    assert by_attempts[(True, 2)][0] == pytest.approx(0.01 + 0.1 + 0.01)
    assert by_attempts[(True, 3)][0] == pytest.approx(0.01 + 0.1 + 0.01 + 0.2 + 0.01)
    assert by_attempts[(False, 3)][0] == pytest.approx(0.01 + 0.1 + 0.01 + 0.2 + 0.01)


def test_the_same_seed_gives_the_same_attempts() -> None:
    profile = WorkerSettings(mean_wait_time=0.05, failure_rate=0.3, max_attempts=2)
    first = [SimulatedAttempts(profile, random.Random(11))() for _ in range(1)]
    a, b = (
        SimulatedAttempts(profile, random.Random(11)),
        SimulatedAttempts(profile, random.Random(11)),
    )
    assert [a() for _ in range(500)] == [b() for _ in range(500)]
    assert first[0] == SimulatedAttempts(profile, random.Random(11))()
