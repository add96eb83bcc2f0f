"""Services forked from the fork server are the processes ``herald <command>`` would start:
exit code, output, environment, session, command line, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from herald.cli import usage
from herald.runtime.forks import ForkServer
from herald.runtime.processes import ProcessGroup, ServiceProcess, child_environment, herald_command
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def forks() -> Iterator[ForkServer]:
    server = ForkServer()
    server.start()
    yield server
    server.stop()  # every service the tests forked has exited


def test_a_forked_command_exits_with_its_code_and_writes_its_log(
    forks: ForkServer, tmp_path: Path
) -> None:
    proc = ServiceProcess(
        "nosuch", herald_command("nosuch"), log_path=tmp_path / "nosuch.log", forks=forks
    )
    assert proc.wait(60) == 2
    assert proc.poll() == 2
    assert (tmp_path / "nosuch.log").read_text() == (
        f"herald: unknown command 'nosuch'\n\n{usage()}\n"
    )


def test_a_forked_commands_output_can_go_elsewhere_than_its_log(
    forks: ForkServer, tmp_path: Path
) -> None:
    with open(tmp_path / "out.txt", "w") as out:
        proc = ServiceProcess(
            "help", herald_command("--help"), log_path=tmp_path / "help.log", stdout=out,
            forks=forks,
        )  # fmt: skip
        assert proc.wait(60) == 0
    assert (tmp_path / "out.txt").read_text() == usage() + "\n"
    assert (tmp_path / "help.log").read_text() == ""


def test_a_forked_service_is_its_own_process_named_by_its_command_line(
    forks: ForkServer, tmp_path: Path
) -> None:
    argv = herald_command("monitor")
    group = ProcessGroup()
    # Its settings come from the environment it is given: a broker that is not there.
    env = child_environment({"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    monitor = group.add(
        ServiceProcess("monitor", argv, log_path=tmp_path / "monitor.log", env=env, forks=forks)
    )
    log = tmp_path / "monitor.log"
    wait_for(lambda: "Connect to ipv4#127.0.0.1:1 failed" in log.read_text(), 60, "its log")
    process = psutil.Process(monitor.pid)
    assert " ".join(process.cmdline()).split() == argv  # what ps and pkill -f see
    assert os.getsid(monitor.pid) == monitor.pid  # signals come from its group, not a terminal
    assert process.ppid() != os.getpid()  # forked by the fork server
    assert monitor.poll() is None
    assert group.exited() == []
    with pytest.raises(subprocess.TimeoutExpired):
        monitor.wait(0.05)
    monitor.signal(signal.SIGKILL)
    assert monitor.wait(60) == -signal.SIGKILL
    assert [m.name for m in group.exited()] == ["monitor"]
    monitor.signal(signal.SIGTERM)  # gone: nothing to signal, no error
    assert monitor.poll() == -signal.SIGKILL


STARTER = """
import sys
from collections.abc import Iterator
from pathlib import Path
from herald.runtime.forks import ForkServer
from herald.runtime.processes import ServiceProcess, child_environment, herald_command

forks = ForkServer()
forks.start()
env = child_environment({"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
proc = ServiceProcess(
    "monitor", herald_command("monitor"), log_path=Path(sys.argv[1]), env=env, forks=forks
)
print(proc.pid, flush=True)
sys.stdin.read()
"""


def test_a_forked_service_stops_when_the_process_that_started_it_is_killed(
    tmp_path: Path,
) -> None:
    log = tmp_path / "monitor.log"
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(log)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert starter.stdout is not None
    monitor = psutil.Process(int(starter.stdout.readline()))
    wait_for(lambda: "Connect to ipv4#127.0.0.1:1 failed" in log.read_text(), 60, "its log")
    starter.kill()  # SIGKILL: no chance to stop its services
    starter.communicate(timeout=60)  # reaped, its pipes closed
    assert starter.returncode == -signal.SIGKILL
    # Its fork server lives on while the monitor does: the monitor's own watch stops it.
    assert monitor.wait(60) is None  # not our child: psutil cannot know its exit code
    assert "SIGTERM received: finishing in-flight work" in log.read_text()
