"""The embedded database's guard and leases, and sim's check of a database mid-run, without a
server: a lease of a dead process, a zombie, a guard whose process is gone, no answer."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from herald.config import Settings
from herald.errors import StorageError
from herald.runtime import database
from herald.runtime.database import EmbeddedDatabase, Leases
from herald.runtime.launcher import RunDatabase
from herald.runtime.ports import free_port


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    try:
        assert database._alive(child.pid) is False
        assert database._alive(os.getpid()) is True
    finally:
        child.wait()
    assert database._alive(child.pid) is False  # reaped: gone


def test_the_guard_drops_the_lease_of_its_gone_process_and_stops_nothing_not_running(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "pgdata"
    leases = Leases(data_dir)
    leases.folder.mkdir(parents=True)
    gone = 2**22 + 12345  # above Linux's default pid_max: no such process
    (leases.folder / str(gone)).touch()
    leases.owned.touch()
    assert database.guard(data_dir, gone, io.BytesIO(b"")) == 0
    assert list(leases.folder.iterdir()) == []
    assert not leases.owned.exists()  # no server runs there: nothing to stop, marker gone


def test_the_guard_leaves_a_server_another_live_process_holds(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    leases = Leases(data_dir)
    leases.folder.mkdir(parents=True)
    (leases.folder / str(os.getppid())).touch()  # a live process: this one's parent
    leases.owned.touch()
    assert EmbeddedDatabase(data_dir).release_left(2**22 + 1) is False
    assert [p.name for p in leases.folder.iterdir()] == [str(os.getppid())]
    assert leases.owned.exists()


def test_the_guard_command_line_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert database.main(["guard", "/tmp/x"]) == 2
    assert database.main(["guard", "/tmp/x", "pid"]) == 2
    assert capsys.readouterr().err == (
        "usage: python -m herald.runtime.database guard DATA_DIR PID\n" * 2
    )


def _unreachable(patience: float) -> RunDatabase:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/herald"
    settings = Settings.model_validate({"database": {"url": url, "connect_timeout_secs": patience}})
    return RunDatabase(settings, Path("/nonexistent"))


def test_a_database_that_stops_answering_is_an_error_once_patience_runs_out() -> None:
    db = _unreachable(1e-6)
    db.check(every=0)  # the first miss starts the clock
    with pytest.raises(StorageError) as caught:
        db.check(every=0)
    assert str(caught.value) == (
        f"Postgres at {db.url} went away mid-run: no answer for 1e-06s "
        "(database.connect_timeout_secs)"
    )


def test_a_planned_outage_or_a_recent_check_asks_nothing() -> None:
    db = _unreachable(1e-6)
    db.planned_outage = True
    db.check(every=0)
    db.check(every=0)  # no error: the outage is an incident's
    db.planned_outage = False
    db.check(every=3600)  # starts the clock
    db.check(every=3600)  # not asked again within the hour: no error either
