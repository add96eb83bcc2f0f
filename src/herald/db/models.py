"""Tables. The schema itself comes only from the Alembic migrations in ``alembic/``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Run(Base):
    """One run: what was asked for and, as outcomes arrive, its totals."""

    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scenario: Mapped[str] = mapped_column(String(32), default="sms")
    expected: Mapped[int | None] = mapped_column(BigInteger)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    rate: Mapped[float | None] = mapped_column(Double)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Outcome(Base):
    """One row per message, keyed by its id: writes are idempotent on it."""

    __tablename__ = "outcomes"
    __table_args__ = (
        CheckConstraint("status IN ('sent', 'failed')", name="outcomes_status"),
        Index("outcomes_run_id", "run_id"),
    )

    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8))
    latency_ms: Mapped[float] = mapped_column(Double)
    attempts: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
