"""Service processes forked from one process that has imported them already.

Every herald service is a Python process that imports the same libraries (confluent-kafka,
pydantic, msgspec, herald's settings and scenarios): about half a CPU-second each. A run
starts seven at once on a 2-core machine, so exec'ing each one (``herald sender ...``) spends
some 1.5 s of wall time on the same imports seven times over before any service can join its
group. Here a fork server (Python's ``multiprocessing`` forkserver) imports them once, while
the broker starts, and forks each service from that state in milliseconds.

A forked service is the same OS process a started one would be, seen from outside: its own
session, its log as stdout/stderr, the environment it is given, SIGTERM when the process
that started it dies (SIGKILL included), and its command line (``ps``, ``pkill -f``)
``herald <service> ...``. Its parent is the fork server, though, which lives while any of
them does.

Python's multiprocessing imports the starting process's main script again in each child
(``if __name__ == "__main__":`` guards it): ``herald``'s console script and
``python -m herald`` are safe, as a script that calls :mod:`herald.sim` must be.
:class:`ForkedPopen` is the part of :class:`subprocess.Popen` that
:class:`~herald.runtime.processes.ServiceProcess` uses.
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from multiprocessing import reduction, resource_tracker
from typing import Any


class _Fd:
    """A file descriptor of the parent, passed to the forked child (a new descriptor there)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        # Pickled while multiprocessing sends the child its arguments: the descriptor then
        # travels with them to the fork server (SCM_RIGHTS), as Popen's stdout would.
        return _inherited, (reduction.DupFd(self.fd),)


def _inherited(dup: Any) -> int:  # in the forked child
    fd: int = dup.detach()
    return fd


@functools.cache
def _lifeline() -> tuple[int, int]:
    """A pipe whose write end only this process holds, for as long as it lives: a forked
    service reads the other end, and end of file there means this process is gone."""
    return os.pipe()  # not inheritable (PEP 446): no other child holds the write end


def _watch_lifeline(fd: int) -> None:  # pragma: no cover - runs in the forked child
    os.read(fd, 1)  # returns (end of file) once the process that started this one is gone
    os.kill(os.getpid(), signal.SIGTERM)


def _service_main(  # in the forked child
    argv: list[str], stdout: int, stderr: int, lifeline: int, env: dict[str, str] | None
) -> None:
    """The forked child: become what ``Popen(argv, start_new_session=True, ...)`` would be,
    then run the command in this already-imported interpreter."""
    from setproctitle import setproctitle

    os.setsid()
    # SIGTERM once the process that started it is gone (PR_SET_PDEATHSIG would name the fork
    # server, which outlives it while any service runs).
    threading.Thread(target=_watch_lifeline, args=(lifeline,), name="lifeline", daemon=True).start()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    for fd in {devnull, stdout, stderr} - {0, 1, 2}:
        os.close(fd)
    # The title first: setproctitle finds the memory it rewrites (the fork server's command
    # line, and its environment after it) from the environment as the process started.
    setproctitle(" ".join(argv))
    sys.argv = list(argv)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    from herald.cli import main

    # ``herald ARGS`` or ``python -m herald ARGS`` (see processes.herald_command)
    sys.exit(main(argv[3:] if argv[1:3] == ["-m", "herald"] else argv[1:]))


class ForkedPopen:
    """A service forked by the fork server, with the :class:`subprocess.Popen` calls that
    :class:`~herald.runtime.processes.ServiceProcess` makes."""

    def __init__(
        self,
        context: Any,
        argv: Sequence[str],
        *,
        stdout: int,
        stderr: int,
        env: Mapping[str, str] | None,
    ) -> None:
        self.args = list(argv)
        self._process = context.Process(
            target=_service_main,
            args=(
                self.args,
                _Fd(stdout),
                _Fd(stderr),
                _Fd(_lifeline()[0]),
                dict(env) if env is not None else None,
            ),
            name=" ".join(self.args[1:3]),
            # Not joined at this process's exit (the process group stops them first): if this
            # process ends without that, multiprocessing sends them SIGTERM as it exits.
            daemon=True,
        )
        self._process.start()
        self.pid: int = self._process.pid

    @property
    def returncode(self) -> int | None:
        code: int | None = self._process.exitcode
        return code

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self.returncode
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return code

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)  # ServiceProcess.signal checks that it still runs


PRELOAD = "herald.runtime.preload"  # what the fork server imports: every run's services


class ForkServer:
    """Forks services from a process that imported them once (see the module's doc).

    :meth:`start` launches it and returns at once: its imports (:data:`PRELOAD`) run while
    the caller goes on, and the first :meth:`popen` waits for them. There is one per process:
    starting it again, or a second run in the same process (tests), uses the running one.
    """

    def __init__(self) -> None:
        self._context: Any = multiprocessing.get_context("forkserver")

    def start(self, *, detach_output: bool = False) -> None:
        """Start the fork server (and multiprocessing's resource tracker) unless running.

        ``detach_output``: they get /dev/null as stdout and stderr instead of this process's,
        so that they never hold its pipes open (``herald sim | tee``, a test reading its
        output): once this process is gone they only wait for the services to stop. It swaps
        this process's own descriptors for a moment, so it is for a process with one thread.
        """
        self._context.set_forkserver_preload([PRELOAD])
        if not detach_output:
            multiprocessing.forkserver.ensure_running()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            multiprocessing.forkserver.ensure_running()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, devnull):
                os.close(fd)

    def stop(self) -> None:
        """Stop the fork server and multiprocessing's resource tracker, so that nothing of
        them outlives the run that started them. Call it once no service forked from it runs:
        the server exits after the last of them, and this waits for it."""
        # Python has no public call for this; these are the ones its own tests use.
        server = getattr(multiprocessing.forkserver, "_forkserver", None)
        tracker = getattr(resource_tracker, "_resource_tracker", None)
        for stop in (getattr(server, "_stop", None), getattr(tracker, "_stop", None)):
            if stop is not None:
                stop()

    def popen(
        self, argv: Sequence[str], *, stdout: int, stderr: int, env: Mapping[str, str] | None
    ) -> ForkedPopen:
        return ForkedPopen(self._context, argv, stdout=stdout, stderr=stderr, env=env)
