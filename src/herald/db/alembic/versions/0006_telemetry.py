"""spacecraft telemetry: schedules of streams, the frames received, a summary per ship

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

* ``telemetry_schedules``: one row per scheduled stream (``POST /api/telemetry/schedules``).
  Its start is a due item in ``timers`` with the same id (kind ``publish``: the scheduler
  publishes the start command at ``start_at``); while the stream has not started, the
  timer's state says whether it was cancelled or expired. The spaceship's account of the
  stream (``herald.telemetry.streams``: started, finished with the packets sent) moves
  ``state`` on: ``streaming``, then ``done`` (or ``stopped``, ``failed``).
* ``telemetry_frames``: one row per frame the ingestors received, keyed by its stream and its
  number in it (so a frame is stored once however often it is read); the index on
  ``(ship, t)`` serves a ship's frames over a time range.
* ``telemetry_ships``: per ship, the frames stored and those that came out of order, and the
  latest reading; incremented in the frames' transaction by the rows actually inserted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "telemetry_schedules",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("ship", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("start_at", TZ, nullable=False),
        sa.Column("not_after", TZ, nullable=False),
        sa.Column("duration_s", sa.Double, nullable=False),
        sa.Column("rate_hz", sa.Double, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("loss", sa.Double, nullable=False, server_default="0"),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("packets_expected", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("packets_sent", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("dropped", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("spaceship", sa.String(255)),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("started_at", TZ),
        sa.Column("finished_at", TZ),
        sa.Column("updated_at", TZ, nullable=False),
        sa.CheckConstraint(
            "state IN ('scheduled', 'stopping', 'streaming', 'done', 'stopped', 'failed', "
            "'cancelled')",
            name="telemetry_schedules_state",
        ),
    )
    op.create_index("telemetry_schedules_created", "telemetry_schedules", ["created_at", "id"])
    op.create_index("telemetry_schedules_ship", "telemetry_schedules", ["ship", "created_at"])
    op.create_index("telemetry_schedules_run", "telemetry_schedules", ["run_id"])
    op.create_index(
        "telemetry_schedules_streaming",
        "telemetry_schedules",
        ["ship"],
        postgresql_where=sa.text("state IN ('streaming', 'stopping')"),
    )
    op.create_table(
        "telemetry_frames",
        sa.Column("schedule_id", sa.String(32), nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("ship", sa.String(32), nullable=False),
        sa.Column("apid", sa.SmallInteger, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("t", TZ, nullable=False),
        sa.Column("voltage", sa.Double, nullable=False),
        sa.Column("current", sa.Double, nullable=False),
        sa.Column("temperature", sa.Double, nullable=False),
        sa.Column("soc", sa.Double, nullable=False),
        sa.Column("sunlit", sa.Boolean, nullable=False),
        sa.Column("reordered", sa.Boolean, nullable=False),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("schedule_id", "n"),
    )
    op.create_index("telemetry_frames_ship_t", "telemetry_frames", ["ship", "t"])
    op.create_table(
        "telemetry_ships",
        sa.Column("ship", sa.String(32), primary_key=True),
        sa.Column("frames", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reordered", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_t", TZ),
        sa.Column("last_soc", sa.Double),
        sa.Column("last_voltage", sa.Double),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("telemetry_ships")
    op.drop_index("telemetry_frames_ship_t", table_name="telemetry_frames")
    op.drop_table("telemetry_frames")
    for name in (
        "telemetry_schedules_streaming",
        "telemetry_schedules_run",
        "telemetry_schedules_ship",
        "telemetry_schedules_created",
    ):
        op.drop_index(name, table_name="telemetry_schedules")
    op.drop_table("telemetry_schedules")
