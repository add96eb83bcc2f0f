"""run states: every run ends in a terminal state, stored, with when and why

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

* ``runs.state``: ``requested`` (asked, nothing recorded), ``running`` (outcomes arriving),
  then one terminal state: ``completed`` (every expected outcome recorded), ``interrupted``
  (stopped by its user; its counts are what Postgres kept after the drain), ``failed`` (it
  could not complete: a timeout, a service that could not be restarted) or ``abandoned``
  (its services are gone: found at the next start of the embedded database, or by age).
* ``runs.ended_at``: when it reached its terminal state; ``runs.state_reason``: why, in words.

Existing rows get the state their counters say (``finished_at`` set: ``completed``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STATES = ("requested", "running", "completed", "interrupted", "failed", "abandoned")


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("state", sa.String(16), nullable=False, server_default="requested")
    )
    op.add_column("runs", sa.Column("ended_at", sa.DateTime(timezone=True)))
    op.add_column("runs", sa.Column("state_reason", sa.Text))
    op.execute(
        """
        UPDATE runs SET
            state = CASE WHEN finished_at IS NOT NULL THEN 'completed'
                         WHEN succeeded + failed > 0 THEN 'running'
                         ELSE 'requested' END,
            ended_at = finished_at
        """
    )
    values = ", ".join(f"'{s}'" for s in STATES)
    op.create_check_constraint("runs_state", "runs", f"state IN ({values})")


def downgrade() -> None:
    op.drop_constraint("runs_state", "runs", type_="check")
    op.drop_column("runs", "state_reason")
    op.drop_column("runs", "ended_at")
    op.drop_column("runs", "state")
