"""Engines, sessions, migrations, and the wait for the database at start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, make_url, text

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

ALEMBIC_DIR = Path(__file__).parent / "alembic"


def sqlalchemy_url(url: str) -> str:
    """The URL with the psycopg (v3) driver named."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (psycopg 3); its pool tests a connection before lending it
    (``pool_pre_ping``) unless told otherwise."""
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(sqlalchemy_url(url), **kwargs)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


# Held while migrating: processes that start at once (runs sharing a folder, a stack's
# replicas) migrate one after another; the later ones find the schema at its head.
MIGRATION_LOCK = 0x68657261  # "hera"


def migrate(url: str, revision: str = "head") -> None:
    """Apply the Alembic migrations up to ``revision``, one process at a time (Alembic is
    imported only here: the services that merely use the database start without it)."""
    import psycopg
    from alembic import command

    from herald.db.pg import conninfo

    with psycopg.connect(conninfo(url), autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            command.upgrade(alembic_config(url), revision)
        finally:
            lock.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def create_database(url: str) -> bool:
    """Create the database named in ``url`` if missing; True if it was created."""
    target = make_url(sqlalchemy_url(url))
    admin = make_engine(
        target.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            ).first()
            if exists:
                return False
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
            return True
    finally:
        admin.dispose()


def drop_database(url: str) -> bool:
    """Drop the database named in ``url`` if present; True if it was dropped."""
    target = make_url(sqlalchemy_url(url))
    admin = make_engine(
        target.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            ).first()
            if not exists:
                return False
            conn.execute(text(f'DROP DATABASE "{target.database}" WITH (FORCE)'))
            return True
    finally:
        admin.dispose()
