from __future__ import annotations

import statistics

import pytest

from herald.services import sender


@pytest.mark.parametrize("dist", ["exponential", "uniform", "normal", "constant"])
def test_latency_distributions_have_the_configured_mean(dist: str) -> None:
    import random

    from herald.config import SenderSettings

    sample = sender.latency_sampler(
        SenderSettings(mean_wait_time=0.1, latency_distribution=dist), random.Random(3)
    )
    values = [sample() for _ in range(20_000)]
    assert min(values) >= 0
    # Largest sd of the four is the exponential's (0.1): the mean's sd is 0.1/sqrt(20000).
    assert statistics.fmean(values) == pytest.approx(0.1, abs=5 * 0.1 / 141)


def test_zero_mean_means_no_wait() -> None:
    import random

    from herald.config import SenderSettings

    sample = sender.latency_sampler(SenderSettings(mean_wait_time=0), random.Random(1))
    assert {sample() for _ in range(10)} == {0}
