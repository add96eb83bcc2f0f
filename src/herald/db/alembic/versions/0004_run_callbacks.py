"""run callbacks: where a run's completion and its outcomes are POSTed

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

``callback_url`` gets one POST with the run's totals when it completes; ``status_callback_url``
one POST per message outcome. Both are delivered by the notifier as webhook timers the
recorder writes in the same transaction as the outcomes (so each is queued exactly once).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("callback_url", sa.Text))
    op.add_column("runs", sa.Column("status_callback_url", sa.Text))


def downgrade() -> None:
    op.drop_column("runs", "status_callback_url")
    op.drop_column("runs", "callback_url")
