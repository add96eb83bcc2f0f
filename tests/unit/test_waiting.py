"""herald.waiting: deadlines, backoff and once-per-episode logging."""

from __future__ import annotations

import logging
import random
import threading

import pytest

from herald.errors import BrokerError, HeraldError
from herald.waiting import Backoff, Deadline, Episode, wait_until, within_grace


def test_wait_until_returns_the_first_truthy_value() -> None:
    values = iter([0, None, "", "found"])
    assert wait_until(lambda: next(values), timeout=10, what="a value", every=0) == "found"


def test_wait_until_fails_loudly_at_the_deadline_with_the_callers_error() -> None:
    calls: list[int] = []
    with pytest.raises(BrokerError, match=r"^the broker: not after 0.05s$"):
        wait_until(lambda: calls.append(1), timeout=0.05, what="the broker", every=0.01,
                   error=BrokerError)  # fmt: skip
    assert len(calls) >= 2  # it kept trying until the deadline
    with pytest.raises(HeraldError, match="nothing: not after 0s"):
        wait_until(lambda: False, timeout=0, what="nothing")


def test_wait_until_returns_none_once_stopped() -> None:
    stop = threading.Event()
    stop.set()
    assert wait_until(lambda: False, timeout=60, what="never", stop=stop) is None


def test_a_deadline_counts_down_and_expires() -> None:
    assert Deadline(0).expired() and Deadline(0).remaining == 0.0
    later = Deadline(3600)
    assert not later.expired() and 3590 < later.remaining <= 3600


def test_backoff_doubles_to_its_maximum_and_resets() -> None:
    b = Backoff(initial=0.1, maximum=1.0)
    assert [b.next() for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    b.reset()
    assert b.next() == 0.1


def test_full_jitter_draws_under_the_growing_bound() -> None:
    b = Backoff(initial=1.0, maximum=8.0, jitter=True, rng=random.Random(5))
    drawn = [b.next() for _ in range(6)]
    bounds = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert all(0 <= d <= bound for d, bound in zip(drawn, bounds, strict=True))
    again = Backoff(initial=1.0, maximum=8.0, jitter=True, rng=random.Random(5))
    assert [again.next() for _ in range(6)] == drawn  # seeded: the same pauses


def test_backoff_wait_returns_at_once_when_stopped() -> None:
    stop = threading.Event()
    stop.set()
    assert Backoff(initial=60).wait(stop) is True


def test_an_episode_is_logged_once_when_it_begins_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    episode = Episode(logging.getLogger("t"), "the database away")
    assert episode.over() is None  # not active: nothing to say
    for i in range(5):
        episode.seen(f"attempt {i}")
    assert episode.active and episode.count == 1
    lasted = episode.over("batch stored")
    assert lasted is not None and lasted >= 0
    episode.seen("again")
    assert episode.count == 2
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "the database away: attempt 0"
    assert messages[1].startswith("the database away: over after ")
    assert messages[1].endswith("; batch stored")
    assert messages[2] == "the database away: again"
    assert len(messages) == 3


def test_within_grace_is_the_limit_while_running_then_what_is_left_of_the_grace() -> None:
    assert within_grace(5.0, None, 10.0) == 5.0  # running: its own limit
    assert within_grace(5.0, 2.0, 10.0) == 5.0  # stopping, 8 s left: still its own
    assert within_grace(5.0, 7.5, 10.0) == 2.5  # what is left of the grace
    assert within_grace(5.0, 9.95, 10.0) == 0.1  # a last, short try
    assert within_grace(5.0, 30.0, 10.0) == 0.1  # long past it: the same
