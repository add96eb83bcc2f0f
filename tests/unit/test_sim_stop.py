"""How sim stops what is left once its services are gone: side by side, every step run."""

from __future__ import annotations

import threading

import pytest

from herald.errors import StorageError
from herald.sim import _all_at_once


def test_the_last_steps_run_side_by_side_and_all_are_waited_for() -> None:
    # Each step waits for the other to have started: one at a time, neither would finish.
    a_started, b_started = threading.Event(), threading.Event()
    done: list[str] = []

    def a() -> None:
        a_started.set()
        assert b_started.wait(30)
        done.append("a")

    def b() -> None:
        b_started.set()
        assert a_started.wait(30)
        done.append("b")

    _all_at_once([a, b])
    assert sorted(done) == ["a", "b"]


def test_a_failed_step_is_raised_once_the_others_have_run() -> None:
    ran: list[str] = []

    def fails() -> None:
        raise StorageError("pg_ctl stop failed")

    with pytest.raises(StorageError, match=r"^pg_ctl stop failed$"):
        _all_at_once([fails, lambda: ran.append("broker"), lambda: ran.append("forks")])
    assert sorted(ran) == ["broker", "forks"]
