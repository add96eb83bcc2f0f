"""timers: due items fired by the scheduler, their callbacks' attempts, disabled endpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

A timer is a due item: at ``due_at`` the scheduler publishes its record (``topic``, ``key``,
``payload``): a webhook timer's fire command, a scheduled run's request. Claims are leases
with a fencing token (``fence``), taken with FOR UPDATE SKIP LOCKED. Webhook timers then go
through the notifier, which keeps one row per attempt in ``timer_attempts``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "timers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),  # webhook | run | publish
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("mode", sa.String(16), nullable=False, server_default="at_least_once"),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("payload", postgresql.BYTEA, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(255), unique=True),
        sa.Column("request_digest", sa.String(64)),
        sa.Column("fence", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(255)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("fired_at", sa.DateTime(timezone=True)),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempt_base", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # The scheduler's claim: due items not yet fired, by due time.
    op.create_index(
        "timers_due",
        "timers",
        ["due_at"],
        postgresql_where=sa.text("state IN ('scheduled', 'firing')"),
    )
    op.create_index("timers_state_created", "timers", ["state", "created_at"])
    op.create_table(
        "timer_attempts",
        sa.Column("timer_id", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Double, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("error", sa.String(32)),
        sa.Column("detail", sa.Text),
        sa.Column("sent", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("retry_after", sa.Double),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("notifier", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("timer_id", "number"),
    )
    op.create_table(
        "disabled_endpoints",
        sa.Column("url", sa.Text, primary_key=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("disabled_endpoints")
    op.drop_table("timer_attempts")
    op.drop_index("timers_state_created", table_name="timers")
    op.drop_index("timers_due", table_name="timers")
    op.drop_table("timers")
