"""recorder: results -> Postgres ``outcomes``, one row per message, idempotent on its id.

Each batch is one database transaction: outcomes go in with COPY (the fast path) and the
run's totals are incremented in the same transaction; Kafka offsets are committed only
after the database commit. A replayed batch (after a crash or a rebalance) hits the
primary key, and is then written through a staging table with ``ON CONFLICT DO NOTHING``,
counting only the rows that were new: totals stay exact.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from confluent_kafka import Consumer, Producer
from psycopg import errors as pgerrors
from psycopg.types.json import Jsonb

from herald import contracts, kafka
from herald.config import DatabaseSettings, Settings
from herald.contracts import RunRequest, SmsResult
from herald.db.pg import conninfo, safe_url, wait_for_database
from herald.errors import StorageError
from herald.runtime.database import await_url
from herald.services import _common
from herald.services.dlq import DeadLetters

logger = logging.getLogger(__name__)

COLUMNS = (
    "message_id",
    "run_id",
    "sender_id",
    "status",
    "latency_ms",
    "attempts",
    "created_at",
    "received_at",
    "completed_at",
    "failure_reason",
)
TYPES = (
    "text",
    "text",
    "int4",
    "text",
    "float8",
    "int2",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "text",
)
_COLS = ", ".join(COLUMNS)
COPY_OUTCOMES = f"COPY outcomes ({_COLS}) FROM STDIN (FORMAT BINARY)"
COPY_STAGING = f"COPY outcomes_staging ({_COLS}) FROM STDIN (FORMAT BINARY)"
STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS outcomes_staging "
    "(LIKE outcomes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
# Built from the constant column list above, nothing from outside.
MERGE_STAGING = (
    f"INSERT INTO outcomes ({_COLS}) SELECT {_COLS} FROM outcomes_staging "  # noqa: S608
    "ON CONFLICT (message_id) DO NOTHING RETURNING run_id, status, created_at"
)
ADD_TOTALS = """
INSERT INTO runs (run_id, sent, failed, started_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (run_id) DO UPDATE SET
    sent = runs.sent + EXCLUDED.sent,
    failed = runs.failed + EXCLUDED.failed,
    started_at = LEAST(runs.started_at, EXCLUDED.started_at),
    finished_at = CASE
        WHEN runs.finished_at IS NULL AND runs.expected IS NOT NULL
             AND runs.sent + runs.failed + EXCLUDED.sent + EXCLUDED.failed >= runs.expected
        THEN clock_timestamp() ELSE runs.finished_at END,
    updated_at = clock_timestamp()
"""
UPSERT_RUN = """
INSERT INTO runs (run_id, scenario, expected, seed, rate, config, requested_at)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (run_id) DO UPDATE SET
    scenario = EXCLUDED.scenario,
    expected = EXCLUDED.expected,
    seed = EXCLUDED.seed,
    rate = EXCLUDED.rate,
    config = EXCLUDED.config,
    requested_at = EXCLUDED.requested_at,
    finished_at = CASE
        WHEN runs.finished_at IS NULL AND runs.sent + runs.failed >= EXCLUDED.expected
        THEN clock_timestamp() ELSE runs.finished_at END,
    updated_at = clock_timestamp()
"""

# run_id -> [sent, failed, earliest created_at]
Totals = dict[str, list[Any]]


def main(argv: Sequence[str] | None = None) -> int:
    """``herald recorder``: record outcomes until stopped."""
    p = _common.parser("recorder", __doc__.splitlines()[0])
    p.add_argument(
        "--database-url-file",
        type=Path,
        default=None,
        help="when database.url is unset: wait for this file and read the URL from it "
        "(sim.run's embedded database starts while the recorder joins its group)",
    )
    args = p.parse_args(_common.argv_or_default(argv))
    return _common.service_main(
        args,
        lambda s, stop: run(
            s, stop=stop, ready_file=args.ready_file, url_file=args.database_url_file
        ),
    )


class OutcomeWriter:
    """Writes batches of results and run requests in one transaction each."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None
        self.written = 0
        self.duplicates = 0

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(conninfo(self._url))
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def write(self, results: Sequence[SmsResult], requests: Sequence[RunRequest] = ()) -> int:
        """Store a batch; return how many outcomes were new. Raises psycopg errors."""
        conn = self._connection()
        rows = [
            (
                r.message_id,
                r.run_id,
                r.sender_id,
                r.status,
                r.latency_ms,
                r.attempts,
                r.created_at,
                r.received_at,
                r.completed_at,
                r.failure_reason,
            )
            for r in results
        ]
        try:
            with conn.transaction(), conn.cursor() as cur:
                for req in requests:
                    cur.execute(
                        UPSERT_RUN,
                        (
                            req.run_id,
                            req.scenario,
                            req.messages,
                            req.seed,
                            req.rate,
                            Jsonb(req.config),
                            req.requested_at,
                        ),
                    )
                if rows:
                    totals = self._insert(cur, rows)
                    for run_id in sorted(totals):  # a fixed order: no deadlock between recorders
                        sent, failed, started = totals[run_id]
                        cur.execute(ADD_TOTALS, (run_id, sent, failed, started))
                    new = sum(t[0] + t[1] for t in totals.values())
                else:
                    new = 0
        except psycopg.OperationalError:
            self.close()
            raise
        self.written += new
        self.duplicates += len(rows) - new
        return int(new)

    def _insert(self, cur: psycopg.Cursor[Any], rows: list[tuple[Any, ...]]) -> Totals:
        try:
            # A savepoint: on a conflict only the COPY is undone, and the fallback runs.
            with cur.connection.transaction(), cur.copy(COPY_OUTCOMES) as copy:
                copy.set_types(TYPES)
                for row in rows:
                    copy.write_row(row)
            return _totals((row[1], row[3], row[6]) for row in rows)
        except pgerrors.UniqueViolation:
            pass
        cur.execute(STAGING)
        with cur.copy(COPY_STAGING) as copy:
            copy.set_types(TYPES)
            for row in rows:
                copy.write_row(row)
        cur.execute(MERGE_STAGING)
        return _totals(cur.fetchall())


def _totals(rows: Any) -> Totals:
    totals: Totals = defaultdict(lambda: [0, 0, None])
    for run_id, status, created_at in rows:
        t = totals[run_id]
        t[0 if status == "sent" else 1] += 1
        if t[2] is None or created_at < t[2]:
            t[2] = created_at
    return totals


def run(
    settings: Settings,
    *,
    stop: threading.Event,
    ready_file: Path | None = None,
    url_file: Path | None = None,
) -> int:
    """Record outcomes until ``stop``.

    The group join starts before the database is awaited: both are slow (seconds) on a
    fresh start, and they overlap. Partitions are taken (and the readiness file created)
    only once the database answers.
    """
    ks, db = settings.kafka, settings.database
    if db.url is None and url_file is None:
        raise StorageError("database.url is unset and no embedded database was started")
    kafka.wait_for_broker(ks, stop=stop.is_set)
    consumer = Consumer(kafka.consumer_config(ks, contracts.group_id(ks.namespace, "recorders")))
    consumer.subscribe(
        [contracts.RUNS.qualified(ks.namespace), contracts.RESULTS.qualified(ks.namespace)],
        on_assign=lambda _c, parts: _common.mark_ready(ready_file, parts),
    )
    try:
        url = _database_url(db, url_file, stop)
        return 0 if url is None else _record(settings, consumer, url, stop)
    finally:
        consumer.close()


def _database_url(db: DatabaseSettings, url_file: Path | None, stop: threading.Event) -> str | None:
    """The database URL once the database answers; None if stopped before."""
    url = db.url
    if url is None and url_file is not None:
        url = await_url(url_file, db.connect_timeout_secs, stop)
    if url is not None:
        wait_for_database(url, db.connect_timeout_secs, stop=stop.is_set)
    return url


def _record(settings: Settings, consumer: Consumer, url: str, stop: threading.Event) -> int:
    """The recorder's loop: consume a batch, store it, commit its offsets."""
    ks = settings.kafka
    runs_topic = contracts.RUNS.qualified(ks.namespace)
    results_topic = contracts.RESULTS.qualified(ks.namespace)
    dead = DeadLetters(
        Producer(kafka.producer_config(ks)), contracts.DLQ.qualified(ks.namespace), "recorder"
    )
    writer = OutcomeWriter(url)
    decode_result = msgspec.json.Decoder(SmsResult).decode
    decode_run = msgspec.json.Decoder(RunRequest).decode
    cfg = settings.recorder
    logger.info("recorder ready: %s, %s -> %s", runs_topic, results_topic, safe_url(url))
    try:
        while not stop.is_set():
            msgs = consumer.consume(cfg.batch_size, cfg.batch_timeout_secs)
            if not msgs:
                continue
            results: list[SmsResult] = []
            requests: list[RunRequest] = []
            for msg in msgs:
                if (err := msg.error()) is not None:
                    kafka.raise_if_fatal(err, "recorder consume")
                    continue
                try:
                    if msg.topic() == results_topic:
                        results.append(decode_result(msg.value() or b""))
                    else:
                        requests.append(decode_run(msg.value() or b""))
                except msgspec.DecodeError as exc:
                    dead.send(msg, f"{type(exc).__name__}: {exc}")
            started = time.monotonic()
            _write_until_stored(writer, results, requests, stop)
            consumer.commit(asynchronous=True)
            logger.debug(
                "batch of %d results written in %.1f ms",
                len(results),
                (time.monotonic() - started) * 1000,
            )
    finally:
        try:
            consumer.commit(asynchronous=False)
        except Exception as exc:
            logger.debug("final commit: %s", exc)
        dead.flush(5)
        writer.close()
    logger.info(
        "recorder stopped ◆ %d outcomes written ◆ %d duplicates skipped ◆ %d dead letters",
        writer.written,
        writer.duplicates,
        dead.count,
    )
    return 0


def _write_until_stored(
    writer: OutcomeWriter,
    results: list[SmsResult],
    requests: list[RunRequest],
    stop: threading.Event,
) -> None:
    """Write a batch, backing off while the database is away; one log line per outage."""
    backoff = 0.1
    outage_since: float | None = None
    while True:
        try:
            writer.write(results, requests)
        except psycopg.OperationalError as exc:
            if outage_since is None:
                outage_since = time.monotonic()
                logger.error("database unavailable, retrying with backoff: %s", str(exc).strip())
            if stop.is_set() and time.monotonic() - outage_since > 5:
                raise StorageError("database still unavailable at shutdown") from None
            time.sleep(backoff)
            backoff = min(2.0, backoff * 2)
            continue
        if outage_since is not None:
            logger.info(
                "database back after %.1fs; batch of %d stored",
                time.monotonic() - outage_since,
                len(results),
            )
        return
