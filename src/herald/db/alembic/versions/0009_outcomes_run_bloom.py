"""outcomes by run: a BRIN bloom index instead of a B-tree

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

Every outcome is written once and read by run (a run's counts, pages, percentiles, metrics),
always with ``run_id = …``. The B-tree ``outcomes_run_id`` cost Postgres about 0.9 µs of CPU
per row written (COPY of 300,000 rows in batches of 2,000, 4 rounds: 4.40 µs a row with it,
3.43 with this index), a fifth of what Postgres spends on a message. A BRIN index with the
bloom operator class keeps, per 128 pages, a Bloom filter of the run ids in them: a query by
run reads only the block ranges that may hold it. Measured on 1,800,000 rows: 20 runs of
50,000 written one after another, then 8 runs of 100,000 written interleaved; a
``count(*)`` by run took 8.7 ms for one of the 20 (9.5 with the B-tree) and 92 ms for one of
the 8 (10.4 with the B-tree: each of their block ranges holds all 8 runs, so their rows are
all read). Runs written at the same time are slower to read, by about the number of them;
runs written one after another, the usual case, are not. The index is 56 kB instead of
11 MB.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("outcomes_run_id", table_name="outcomes")
    op.create_index(
        "outcomes_run_id",
        "outcomes",
        ["run_id"],
        postgresql_using="brin",
        postgresql_ops={"run_id": "text_bloom_ops"},
    )


def downgrade() -> None:
    op.drop_index("outcomes_run_id", table_name="outcomes")
    op.create_index("outcomes_run_id", "outcomes", ["run_id"])
