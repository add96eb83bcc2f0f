"""Local service processes: each herald service is its own OS process, named on its command line."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)


def herald_command(*args: str) -> list[str]:
    """``herald ARGS...``: the console script beside this interpreter, else ``python -m herald``."""
    script = Path(sys.executable).with_name("herald")
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", "herald", *args]  # pragma: no cover - installed without scripts


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    # Linux: if whoever started this service dies (even by SIGKILL), the service gets SIGTERM
    # and shuts down cleanly instead of running on as an orphan.
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


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
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            self.argv,
            stdout=stdout if stdout is not None else self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # signals come from us, in order, not from the terminal
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
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


class ProcessGroup:
    """The services of one run or stack, stopped together, in order."""

    def __init__(self) -> None:
        self.members: list[ServiceProcess] = []

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

    def stop(self, names: Sequence[str] | None = None, *, timeout: float = 15.0) -> dict[str, int]:
        """SIGTERM the members (all, or those named), wait, SIGKILL stragglers; exit codes."""
        chosen = [m for m in self.members if names is None or m.name in names]
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
        return codes
