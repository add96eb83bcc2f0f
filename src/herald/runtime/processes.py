"""Local service processes: each herald service is its own OS process, named on its command line."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from herald.runtime.forks import ForkedPopen, ForkServer

logger = logging.getLogger(__name__)


def herald_command(*args: str) -> list[str]:
    """``herald ARGS...``: the console script beside this interpreter, else ``python -m herald``."""
    script = Path(sys.executable).with_name("herald")
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", "herald", *args]  # pragma: no cover - installed without scripts


# Linux: if whoever started a service dies (even by SIGKILL), the service gets SIGTERM and
# shuts down cleanly instead of running on as an orphan. The libc function is looked up here,
# in the parent: the child between fork and exec may not import anything (another thread of
# the parent may have held the import lock at the fork, and the child would wait for ever).
_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    assert _prctl is not None
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """A ``preexec_fn``: the child gets SIGTERM when its parent dies (Linux; elsewhere none)."""
    if _prctl is not None:
        _die_with_parent()


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``HERALD_*`` (children get resolved settings instead)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(extra or {})
    return env


class ServiceProcess:
    """One running service, its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        stdout: IO[str] | None = None,
        forks: ForkServer | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc: subprocess.Popen[bytes] | ForkedPopen
        if forks is not None:  # the same process, without its imports (see runtime.forks)
            self.proc = forks.popen(
                self.argv,
                stdout=(stdout if stdout is not None else self._log).fileno(),
                stderr=self._log.fileno(),
                env=env,
            )
            logger.debug("forked %s (pid %d): %s", name, self.proc.pid, " ".join(self.argv))
            return
        self.proc = subprocess.Popen(
            self.argv,
            stdout=stdout if stdout is not None else self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # signals come from us, in order, not from the terminal
            preexec_fn=_die_with_parent if _prctl is not None else None,  # noqa: PLW1509
        )
        logger.debug("started %s (pid %d): %s", name, self.proc.pid, " ".join(self.argv))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # exited in between
                self.proc.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is not None:
                self._log.close()
        return code

    def tail(self, lines: int = 20) -> str:
        """The last lines of the service's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:  # pragma: no cover - created in __init__
            return ""
        return "\n".join(text.splitlines()[-lines:])


# How long a stopped service may take to exit before it is killed. The producer's and the
# senders' own waits while they stop (flushes, aborts, commits, the leave, the last
# announcement) fit within it, however long the broker takes to answer; a service still
# stopping after services.common.STUCK_AFTER_SECS writes where it is to its log first.
STOP_GRACE_SECS = 15.0


class ProcessGroup:
    """The services of one run or stack, stopped together, in order."""

    def __init__(self) -> None:
        self.members: list[ServiceProcess] = []
        self.killed: list[str] = []  # members the last :meth:`stop` killed: not in time

    def add(self, proc: ServiceProcess) -> ServiceProcess:
        """Add ``proc``, in place of an (exited) member of the same name if there is one."""
        self.members = [m for m in self.members if m.name != proc.name]
        self.members.append(proc)
        return proc

    def get(self, name: str) -> ServiceProcess:
        """The member called ``name``."""
        return next(m for m in self.members if m.name == name)

    def exited(self) -> list[ServiceProcess]:
        """Members that have exited."""
        return [m for m in self.members if m.poll() is not None]

    def stop(
        self, names: Sequence[str] | None = None, *, timeout: float = STOP_GRACE_SECS
    ) -> dict[str, int]:
        """SIGTERM the members (all, or those named), wait, SIGKILL stragglers; exit codes."""
        chosen = [m for m in self.members if names is None or m.name in names]
        self.killed = []
        for m in chosen:
            m.signal(signal.SIGCONT)  # a paused process could not act on SIGTERM
            m.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int] = {}
        for m in chosen:
            try:
                codes[m.name] = m.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s (pid %d) did not stop in %gs: killing it", m.name, m.pid, timeout
                )
                m.signal(signal.SIGKILL)
                codes[m.name] = m.wait()
                self.killed.append(m.name)
        return codes

    def kill(self) -> None:
        """SIGKILL every member still running and reap it: stop at once, no drain."""
        for m in self.members:
            m.signal(signal.SIGKILL)
        for m in self.members:
            m.wait()


@dataclass(frozen=True)
class Exit:
    """A member's exit as the supervisor saw it, and what it did about it."""

    name: str
    pid: int
    code: int
    planned: bool  # an incident's (kill, crash, restart): expected
    restarted_pid: int | None  # the new process, if started again
    what: str  # one line for the user


class Supervisor:
    """Watches a group's members: an exit nobody planned is reported at once and, unless
    ``restart`` is off, the service is started again (at most ``max_restarts`` times in a
    run, so a service that cannot start does not loop for ever).

    ``respawn(name)`` starts member ``name`` again; :meth:`expect` marks the next exit of a
    member as planned (an incident), so that it is neither reported nor restarted here.
    """

    def __init__(
        self,
        group: ProcessGroup,
        *,
        respawn: Callable[[str], ServiceProcess],
        restart: bool = True,
        max_restarts: int = 5,
    ) -> None:
        self.group = group
        self._respawn = respawn
        self.restart = restart
        self.max_restarts = max_restarts
        self._expected: set[int] = set()  # pids whose exit is planned
        self._seen: set[int] = set()
        self.restarts: dict[str, int] = {}
        self.exits: list[Exit] = []  # unplanned ones, in order

    def expect(self, name: str) -> None:
        """The next exit of ``name`` is planned."""
        self._expected.add(self.group.get(name).pid)

    def check(self) -> list[Exit]:
        """Exits since the last check (unplanned ones handled as the class docstring says)."""
        found: list[Exit] = []
        for member in self.group.exited():
            if member.pid in self._seen:
                continue
            self._seen.add(member.pid)
            code = member.poll()
            assert code is not None
            if member.pid in self._expected:
                found.append(Exit(member.name, member.pid, code, True, None, "planned"))
                continue
            what = f"{member.name} (pid {member.pid}) exited with code {code}"
            new_pid = None
            if not self.restart:
                what += "; not restarted (--no-restart)"
            elif self.restarts.get(member.name, 0) >= self.max_restarts:
                what += f"; not restarted again (restarted {self.max_restarts} times already)"
            else:
                self.restarts[member.name] = self.restarts.get(member.name, 0) + 1
                new_pid = self._respawn(member.name).pid
                what += f"; restarted (pid {new_pid})"
            logger.warning("%s", what)
            event = Exit(member.name, member.pid, code, False, new_pid, what)
            self.exits.append(event)
            found.append(event)
        return found

    def alive(self, prefix: str) -> list[ServiceProcess]:
        """Running members whose name is ``prefix`` or starts with ``prefix-``."""
        return [
            m
            for m in self.group.members
            if m.poll() is None and (m.name == prefix or m.name.startswith(f"{prefix}-"))
        ]
