"""the retail store: its events and visits as views over outcomes; injections; run requests

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

* ``runs.request`` (JSONB): the run request as asked, with its scenario's parameters (the web
  reads a retail run's store and clock from it).
* ``retail_events``: a view of the retail scenario's outcomes, one row per event (its type,
  customer, time, cell, place on the timeline), from ``outcomes.detail``.
* ``retail_visits``: a view with one row per visit: customer, entered, left, moves and the
  length of the path walked (cells; a diagonal step counts √2). No second write path: both
  views read the outcomes the recorder writes.
* ``retail_injections``: events injected over HTTP, journaled by the web (also on
  ``herald.retail.injections``, which the producer merges into the run's timeline).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

EVENTS = """
CREATE VIEW retail_events AS
SELECT o.run_id,
       o.message_id AS event_id,
       (o.detail->>'seq')::bigint AS seq,
       o.status AS type,
       o.detail->>'customer' AS customer,
       (o.detail->>'ts')::float8 AS ts,
       (o.detail->>'x')::int AS x,
       (o.detail->>'y')::int AS y,
       o.detail->>'source' AS source,
       (o.detail->>'tick')::bigint AS tick,
       (o.detail->>'backlog')::bigint AS backlog,
       o.latency_ms AS lateness_ms,
       o.created_at AS published_at,
       o.recorded_at
FROM outcomes o
WHERE o.scenario = 'retail'
"""

VISITS = """
CREATE VIEW retail_visits AS
WITH numbered AS (
    SELECT e.*,
           sum((e.type = 'enter')::int) OVER (PARTITION BY e.run_id, e.customer ORDER BY e.seq)
             AS visit
    FROM retail_events e
), stepped AS (
    SELECT n.*, lag(n.x) OVER w AS px, lag(n.y) OVER w AS py
    FROM numbered n
    WINDOW w AS (PARTITION BY n.run_id, n.customer, n.visit ORDER BY n.seq)
)
SELECT run_id,
       customer,
       visit,
       to_timestamp(min(ts) FILTER (WHERE type = 'enter')) AS entered_at,
       to_timestamp(max(ts) FILTER (WHERE type = 'exit')) AS left_at,
       max(ts) FILTER (WHERE type = 'exit') - min(ts) FILTER (WHERE type = 'enter')
         AS dwell_secs,
       count(*) FILTER (WHERE type = 'move') AS moves,
       coalesce(sum(sqrt(power(x - px, 2) + power(y - py, 2))) FILTER (WHERE type = 'move'), 0)
         AS path_length
FROM stepped
GROUP BY run_id, customer, visit
"""


def upgrade() -> None:
    op.add_column("runs", sa.Column("request", postgresql.JSONB))
    op.execute(EVENTS)
    op.execute(VISITS)
    op.create_table(
        "retail_injections",
        sa.Column("injection_id", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("x", sa.Integer, nullable=False),
        sa.Column("y", sa.Integer, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "number", name="retail_injections_run_number"),
        sa.CheckConstraint("type IN ('enter', 'move', 'exit')", name="retail_injections_type"),
    )
    op.create_index(
        "retail_injections_customer", "retail_injections", ["run_id", "customer", "number"]
    )


def downgrade() -> None:
    op.drop_index("retail_injections_customer", table_name="retail_injections")
    op.drop_table("retail_injections")
    op.execute("DROP VIEW retail_visits")
    op.execute("DROP VIEW retail_events")
    op.drop_column("runs", "request")
