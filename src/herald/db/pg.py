"""Plain psycopg helpers for the services (no SQLAlchemy import: it costs start-up time)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from herald.errors import StorageError
from herald.waiting import Episode, wait_until

logger = logging.getLogger(__name__)


def conninfo(url: str) -> str:
    """A libpq URL for a herald (SQLAlchemy-style) database URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def safe_url(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    parts = urlsplit(url)
    if not parts.password:  # none, or empty (trust authentication): nothing to hide
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def wait_for_database(
    url: str,
    timeout: float,
    *,
    stop: Callable[[], bool] | None = None,
    table: str | None = None,
) -> None:
    """Return once the database answers (and, given ``table``, holds that table: it is
    migrated), or raise :class:`StorageError` after ``timeout`` seconds."""
    away = Episode(
        logger,
        f"waiting for Postgres at {safe_url(url)} (up to {timeout:g}s, "
        "database.connect_timeout_secs)",
    )
    bare = Episode(logger, f"Postgres at {safe_url(url)} answers, but")
    last: list[str] = []
    stopped = threading.Event()

    def answers() -> bool:
        if stop is not None and stop():
            stopped.set()
            return True
        try:
            with psycopg.connect(conninfo(url), connect_timeout=2) as conn:
                if table is None:
                    conn.execute("SELECT 1")
                else:
                    query = sql.SQL("SELECT 1 FROM {} LIMIT 0").format(sql.Identifier(table))
                    conn.execute(query)
        except psycopg.errors.UndefinedTable:
            last[:] = [f"the database is not migrated yet (no table {table})"]
            away.over()
            bare.seen(last[0])
            return False
        except psycopg.OperationalError as exc:
            last[:] = [str(exc).strip()]
            away.seen(last[0])
            return False
        away.over()
        bare.over()
        return True

    def failed(_message: str) -> StorageError:
        return StorageError(
            f"Postgres at {safe_url(url)} unreachable after {timeout:g}s "
            f"(database.connect_timeout_secs): {''.join(last)}"
        )

    wait_until(answers, timeout=timeout, what="Postgres", every=0.2, error=failed)
    if stopped.is_set() and stop is not None:
        raise StorageError("stopped while waiting for Postgres")


def create_database(url: str) -> bool:
    """Create the database named in ``url`` if missing; True if it was created (psycopg
    alone: the embedded database's start does this before SQLAlchemy is needed)."""
    from urllib.parse import urlsplit

    parts = urlsplit(conninfo(url))
    name = parts.path.lstrip("/") or "postgres"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def schema_revision(url: str) -> str | None:
    """The Alembic revision the database is at (None: not migrated at all)."""
    with psycopg.connect(conninfo(url)) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return str(row[0]) if row else None


def head_revision() -> str:
    """The newest migration's revision, read from the files (herald's migrations are one
    line, numbered: ``NNNN_name.py`` with ``revision = "NNNN"``)."""
    versions = Path(__file__).parent / "alembic" / "versions"
    return max(p.name.split("_", 1)[0] for p in versions.glob("[0-9]*_*.py"))


def migrate_if_needed(url: str) -> bool:
    """Apply the migrations unless the database is at the head already (asked with psycopg:
    Alembic, a second of imports, is loaded only when there is something to do). True if
    migrations ran."""
    if schema_revision(url) == head_revision():
        return False
    from herald.db.engine import migrate

    migrate(url)
    return True
