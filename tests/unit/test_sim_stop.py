"""How sim stops what is left once its services are gone: side by side, every step run."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from herald.errors import StorageError
from herald.sim import _all_at_once, stop_report


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


def test_a_service_killed_for_not_stopping_in_time_is_named_first() -> None:
    codes = {"producer": -signal.SIGKILL, "recorder": 0, "monitor": -signal.SIGTERM}
    assert stop_report(codes, planned=set(), late=["producer"], logs=Path("/runs/r1/logs")) == [
        "producer did not stop within 15s: killed (where it was is in its log)",
        "services exited with {'producer': -9}; logs in /runs/r1/logs",
    ]


def test_exits_an_incident_planned_and_clean_stops_are_not_reported() -> None:
    codes = {"sender-1": -signal.SIGKILL, "sender-2": 3, "recorder": 0, "monitor": -15}
    assert stop_report(codes, planned={"sender-1"}, late=[], logs=Path("/l")) == [
        "services exited with {'sender-2': 3}; logs in /l"
    ]
    assert stop_report({"recorder": 0}, planned=(), late=[], logs=Path("/l")) == []
