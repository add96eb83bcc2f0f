"""Tables, as SQLAlchemy Core metadata. The schema itself comes only from the Alembic
migrations in ``alembic/``; these describe it for the statements in :mod:`herald.db.store`.

``outcomes`` holds the envelope every scenario's results share (id, run, scenario, worker,
status, latency, attempts, timestamps, the reason of a failure); what is particular to a
scenario goes in ``detail`` (JSONB), or in the scenario's own tables (its migration).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("scenario", String(32), nullable=False),
    Column("expected", BigInteger),
    Column("seed", BigInteger),
    Column("rate", Double),
    Column("config", JSONB, nullable=False, server_default="{}"),
    Column("requested_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("announced_at", DateTime(timezone=True)),
    Column("succeeded", BigInteger, nullable=False, server_default="0"),
    Column("failed", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("callback_url", Text),
    Column("status_callback_url", Text),
    Column("request", JSONB),  # the run request as asked: its scenario's parameters
    Column("state", String(16), nullable=False, server_default="requested"),
    Column("ended_at", DateTime(timezone=True)),  # when it reached its terminal state
    Column("state_reason", Text),  # why it ended so (interrupted, failed, abandoned)
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("message_id", String(128), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("scenario", String(32), nullable=False),
    Column("worker_id", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("attempts", SmallInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=False),
    Column("failure_reason", Text),
    Column("detail", JSONB),
    Column(
        "recorded_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.clock_timestamp(),
    ),
    # Read by run, written once: a BRIN bloom index costs Postgres far less per row written
    # than a B-tree (migration 0009 says how much, and what reading costs).
    Index(
        "outcomes_run_id",
        "run_id",
        postgresql_using="brin",
        postgresql_ops={"run_id": "text_bloom_ops"},
    ),
)

timers = Table(
    "timers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("url", Text),
    Column("mode", String(16), nullable=False, server_default="at_least_once"),
    Column("topic", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("idempotency_key", String(255), unique=True),
    Column("request_digest", String(64)),
    Column("fence", BigInteger, nullable=False, server_default="0"),
    Column("lease_owner", String(255)),
    Column("lease_until", DateTime(timezone=True)),
    Column("fired_at", DateTime(timezone=True)),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # Attempts made before the latest replay: a replayed delivery has a fresh budget.
    Column("attempt_base", Integer, nullable=False, server_default="0"),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

timer_attempts = Table(
    "timer_attempts",
    metadata,
    Column("timer_id", String(64), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Double, nullable=False),
    Column("status", Integer),
    Column("error", String(32)),
    Column("detail", Text),
    Column("sent", Boolean, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("retry_after", Double),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("notifier", String(255), nullable=False),
)

disabled_endpoints = Table(
    "disabled_endpoints",
    metadata,
    Column("url", Text, primary_key=True),
    Column("disabled_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
)

# Events injected into a retail run's timeline (the web journals them here and on
# herald.retail.injections): who is inside, for the next injection's check.
retail_injections = Table(
    "retail_injections",
    metadata,
    Column("injection_id", String(32), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("number", Integer, nullable=False),
    Column("type", String(8), nullable=False),
    Column("customer", String(64), nullable=False),
    Column("ts", Double, nullable=False),
    Column("x", Integer, nullable=False),
    Column("y", Integer, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
)

# Spacecraft telemetry (migration 0006): scheduled streams, the frames received, per ship.
telemetry_schedules = Table(
    "telemetry_schedules",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("ship", String(32), nullable=False),
    Column("run_id", String(64)),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("duration_s", Double, nullable=False),
    Column("rate_hz", Double, nullable=False),
    Column("host", Text, nullable=False),
    Column("port", Integer, nullable=False),
    Column("loss", Double, nullable=False, server_default="0"),
    Column("seed", BigInteger, nullable=False),
    Column("packets_expected", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("packets_sent", BigInteger, nullable=False, server_default="0"),
    Column("dropped", BigInteger, nullable=False, server_default="0"),
    Column("missed", BigInteger, nullable=False, server_default="0"),
    Column("segment_k0", BigInteger),
    Column("segment_sent", BigInteger, nullable=False, server_default="0"),
    Column("segment_dropped", BigInteger, nullable=False, server_default="0"),
    Column("spaceship", String(255)),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

telemetry_frames = Table(
    "telemetry_frames",
    metadata,
    Column("schedule_id", String(32), primary_key=True),
    Column("n", BigInteger, primary_key=True),
    Column("ship", String(32), nullable=False),
    Column("apid", SmallInteger, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("t", DateTime(timezone=True), nullable=False),
    Column("voltage", Double, nullable=False),
    Column("current", Double, nullable=False),
    Column("temperature", Double, nullable=False),
    Column("soc", Double, nullable=False),
    Column("sunlit", Boolean, nullable=False),
    Column("reordered", Boolean, nullable=False),
    Column("sender", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("telemetry_frames_ship_t", "ship", "t"),
)

telemetry_ships = Table(
    "telemetry_ships",
    metadata,
    Column("ship", String(32), primary_key=True),
    Column("frames", BigInteger, nullable=False, server_default="0"),
    Column("reordered", BigInteger, nullable=False, server_default="0"),
    Column("last_t", DateTime(timezone=True)),
    Column("last_soc", Double),
    Column("last_voltage", Double),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
