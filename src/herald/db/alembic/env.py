"""Alembic environment: the URL comes from herald's settings via the Config object."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from herald.db.models import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
