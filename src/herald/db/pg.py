"""Plain psycopg helpers for the services (no SQLAlchemy import: it costs start-up time)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import psycopg

from herald.errors import StorageError

logger = logging.getLogger(__name__)


def conninfo(url: str) -> str:
    """A libpq URL for a herald (SQLAlchemy-style) database URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def safe_url(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def wait_for_database(url: str, timeout: float, *, stop: Callable[[], bool] | None = None) -> None:
    """Return once the database answers, or raise :class:`StorageError` after ``timeout``."""
    deadline = time.monotonic() + timeout
    warned = False
    while True:
        remaining = deadline - time.monotonic()
        try:
            with psycopg.connect(conninfo(url), connect_timeout=max(1, int(remaining))) as conn:
                conn.execute("SELECT 1")
            if warned:
                logger.info("database is reachable")
            return
        except psycopg.OperationalError as exc:
            if not warned:
                logger.warning(
                    "waiting for Postgres at %s (up to %gs, database.connect_timeout_secs)",
                    safe_url(url),
                    timeout,
                )
                warned = True
            if time.monotonic() >= deadline or (stop is not None and stop()):
                raise StorageError(
                    f"Postgres at {safe_url(url)} unreachable after {timeout:g}s "
                    f"(database.connect_timeout_secs): {str(exc).strip()}"
                ) from None
            time.sleep(0.2)
