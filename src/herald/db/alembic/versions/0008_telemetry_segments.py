"""telemetry streams in segments: a stream resumed by another spaceship, the packets missed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

A stream may be sent by several spaceships in turn (a rebalance hands it off, a spaceship
killed mid-stream leaves it to the next owner of its partition), each a *segment* from its
first packet (``StreamEvent.first_k``). The schedule's totals add the segments up:

* ``telemetry_schedules.missed``: the packets no spaceship sent (or none reported sending):
  between where one segment's last account ended and where the next began.
* ``segment_k0``, ``segment_sent``, ``segment_dropped``: the latest segment's first packet
  and its figures as last reported, so that its next report adds only what is new (a report
  read twice adds nothing) and a new segment's start tells how many were missed.

Invariant: ``packets_sent + dropped + missed`` = the packets up to where the latest segment's
last report ended (``packets_expected`` once a stream is ``done``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("missed", "segment_sent", "segment_dropped"):
        op.add_column(
            "telemetry_schedules",
            sa.Column(column, sa.BigInteger, nullable=False, server_default="0"),
        )
    op.add_column("telemetry_schedules", sa.Column("segment_k0", sa.BigInteger))
    # Streams recorded before: one segment from packet 0, its figures the totals.
    op.execute(
        """
        UPDATE telemetry_schedules
        SET segment_k0 = 0, segment_sent = packets_sent, segment_dropped = dropped
        WHERE state <> 'scheduled' AND started_at IS NOT NULL
        """
    )


def downgrade() -> None:
    for column in ("segment_k0", "segment_dropped", "segment_sent", "missed"):
        op.drop_column("telemetry_schedules", column)
