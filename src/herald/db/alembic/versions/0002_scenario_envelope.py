"""outcomes: the envelope every scenario shares; runs: succeeded, and completion announced

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

* ``outcomes.scenario`` (existing rows are the default scenario's), ``sender_id`` becomes
  ``worker_id``, ``status`` is the scenario's own (no fixed CHECK; 32 characters), and
  ``detail`` (JSONB) holds what is particular to a scenario.
* ``runs.sent`` becomes ``succeeded`` (outcomes whose status counts as success);
  ``announced_at`` is when the recorder published the run's completion on the control topic.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "outcomes", sa.Column("scenario", sa.String(32), nullable=False, server_default="sms")
    )
    op.alter_column("outcomes", "scenario", server_default=None)
    op.alter_column("outcomes", "sender_id", new_column_name="worker_id")
    op.drop_constraint("outcomes_status", "outcomes", type_="check")
    op.alter_column("outcomes", "status", type_=sa.String(32))
    op.add_column("outcomes", sa.Column("detail", postgresql.JSONB))
    op.alter_column("runs", "sent", new_column_name="succeeded")
    op.alter_column("runs", "scenario", server_default=None)
    op.add_column("runs", sa.Column("announced_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("runs", "announced_at")
    op.alter_column("runs", "scenario", server_default="sms")
    op.alter_column("runs", "succeeded", new_column_name="sent")
    op.drop_column("outcomes", "detail")
    op.alter_column("outcomes", "status", type_=sa.String(8))
    op.create_check_constraint("outcomes_status", "outcomes", "status IN ('sent', 'failed')")
    op.alter_column("outcomes", "worker_id", new_column_name="sender_id")
    op.drop_column("outcomes", "scenario")
