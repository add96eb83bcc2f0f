"""recorder: every scenario's facts (a worker's results, a timeline's events) -> Postgres
``outcomes``, one row per message, idempotent on its id; run requests -> ``runs``; a run's
size announced by the producer (``run-produced`` on the control topic) -> ``runs.expected``.

Each batch is one database transaction (:class:`herald.db.store.OutcomeWriter`: COPY, a
staging table when a batch is replayed, the runs' totals incremented by the rows actually
inserted). Kafka offsets are committed only after the database commit. When a batch
completes a run, the recorder announces it on the control topic — the one place a run's
completion is judged — and notes that it did, so that a replay after a crash announces it
again rather than never.

It joins its consumer group before the database answers (both are slow on a fresh start, and
they overlap), and waits for the database itself, under ``database.connect_timeout_secs``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, Producer, TopicPartition

from herald import contracts, control, decoding, kafka, offsets
from herald.config import Settings
from herald.contracts import RunProduced, RunRequest
from herald.errors import StorageError
from herald.scenarios import base
from herald.services import common
from herald.services.dlq import DeadLetters
from herald.waiting import Backoff, Episode

if TYPE_CHECKING:
    from sqlalchemy import Engine

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECS = 5.0  # how long a batch waits for the database once asked to stop


def main(argv: Sequence[str] | None = None) -> int:
    """``herald recorder``: record outcomes until stopped."""
    p = common.parser("recorder", __doc__.splitlines()[0])
    p.add_argument(
        "--from",
        dest="start_from",
        type=offsets.parse_start,
        default=None,
        help="where a facts partition the recorders' group has no committed offset for starts: "
        "earliest (default), latest, or an ISO 8601 time (the first record at or after it)",
    )
    args = p.parse_args(common.argv_or_default(argv))
    return common.service_main(
        args,
        lambda s, stop, announcer: run(
            s, stop=stop, announcer=announcer, start_from=args.start_from
        ),
        service="recorder",
    )


def _connected_engine(url: str) -> Engine:
    """An engine for ``url`` whose pool holds one open connection already.

    Without the pool's ping before each batch (a round trip each): a connection the database
    dropped fails the batch's first statement instead, which invalidates it, and the batch is
    written again on a new one (:meth:`_Recorder._write_until_stored`)."""
    from herald.db.engine import make_engine

    engine = make_engine(url, pool_pre_ping=False)
    with engine.connect():
        pass
    return engine


def run(
    settings: Settings,
    *,
    stop: threading.Event,
    announcer: control.Announcer | None = None,
    start_from: str | None = None,
) -> int:
    """Record outcomes until ``stop``; a facts partition without a committed offset from
    ``start_from`` (:mod:`herald.offsets`; None: the beginning)."""
    from herald.db.pg import safe_url

    ks, db = settings.kafka, settings.database
    if db.url is None:
        raise StorageError("database.url is unset: the recorder needs a database")
    runs_topic = contracts.RUNS.qualified(ks.namespace)
    control_topic = contracts.CONTROL.qualified(ks.namespace)
    by_topic = base.by_facts_topic(settings)
    own = base.by_records_topic(settings)
    database_ready = threading.Event()
    assigned: list[TopicPartition] = []

    def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if start_from not in (None, offsets.EARLIEST):
            # Committed offsets win: the group goes on where it was; only new ones start there.
            fresh = [
                tp
                for tp in consumer.committed(partitions, timeout=10)
                if tp.offset < 0 and (tp.topic in by_topic or tp.topic in own)
            ]
            moved = {
                (tp.topic, tp.partition): tp
                for tp in offsets.start_offsets(consumer, fresh, str(start_from))
            }
            partitions = [moved.get((tp.topic, tp.partition), tp) for tp in partitions]
            consumer.incremental_assign(partitions)
        assigned.extend(partitions)
        if database_ready.is_set() and announcer is not None and partitions:
            announcer.ready(partitions)

    consumer = Consumer(
        kafka.consumer_config(ks, contracts.group_id(ks.namespace, "recorders"), fan_in=True)
    )
    consumer.subscribe([runs_topic, *by_topic, *own, control_topic], on_assign=on_assign)
    try:
        # The group join goes on while the database is awaited (both take seconds on a fresh
        # start): the consumer is polled meanwhile, its partitions paused, and rewound to
        # what it fetched before the pause. Answering is not enough: the run's first records
        # must find the tables.
        _await_database(consumer, db.url, db.connect_timeout_secs, stop)
    except StorageError:
        consumer.close()
        if stop.is_set():
            logger.info("recorder stopped while waiting for the database")
            return 0
        raise
    # The engine (its dialect's imports, its pool's first connection) before the recorder
    # says it is ready: a run starts when every service is, and would wait on this instead.
    engine = _connected_engine(db.url)
    database_ready.set()
    consumer.resume(consumer.assignment())
    if announcer is not None and assigned:
        announcer.ready(assigned)
    recorder = _Recorder(engine, by_topic, announcer, stop, control_topic=control_topic, own=own)
    dead = DeadLetters(
        Producer(kafka.producer_config(ks)), contracts.DLQ.qualified(ks.namespace), "recorder"
    )
    decoders = _decoders(runs_topic, control_topic, {**by_topic, **own})
    logger.info("recorder ready: %s, %s -> %s", runs_topic, ", ".join(by_topic), safe_url(db.url))
    cfg = settings.recorder
    try:
        kafka.run_consumer(
            consumer,
            decoders=decoders,
            handle=recorder.store,
            stop=stop,
            service="recorder",
            dead_letters=dead,
            batch_size=cfg.batch_size,
            timeout=cfg.batch_timeout_secs,
        )
    finally:
        left = dead.flush(5)
        if left:
            logger.error("%d dead letters undelivered at shutdown", left)
        engine.dispose()
    logger.info(
        "recorder stopped ◆ %d outcomes written ◆ %d duplicates skipped ◆ %d dead letters ◆ "
        "%d runs announced complete",
        recorder.writer.written,
        recorder.writer.duplicates,
        dead.count,
        recorder.announced,
    )
    return 0


def _decoders(
    runs_topic: str, control_topic: str, facts: dict[str, base.Fact]
) -> dict[str, kafka.Decoder]:
    decoders: dict[str, kafka.Decoder] = {
        runs_topic: base.decode_request,
        control_topic: control.run_produced,
    }
    for topic, fact in facts.items():
        assert fact.topic.payload is not None
        decoders[topic] = decoding.decoder(fact.topic.payload)
    return decoders


def _await_database(consumer: Consumer, url: str, timeout: float, stop: threading.Event) -> None:
    """Wait for the database (migrated) in a thread while polling ``consumer`` (paused)."""
    from herald.db.pg import wait_for_database

    failure: list[StorageError] = []
    done = threading.Event()

    def wait() -> None:
        try:
            wait_for_database(url, timeout, stop=stop.is_set, table="outcomes")
        except StorageError as exc:
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=wait, name="await-database", daemon=True).start()
    fetched = []
    while not done.is_set():
        # Rebalance callbacks are served here; whatever is fetched before its partition is
        # paused is read again later, from its first offset.
        fetched += [m for m in consumer.consume(100, 0.05) if m.error() is None]
        held = consumer.assignment()
        if held:
            consumer.pause(held)
    kafka.rewind(consumer, fetched)
    if failure:
        raise failure[0]


class _Recorder:
    """Stores one consumed batch: outcomes and run requests, then completion announcements."""

    def __init__(
        self,
        engine: Any,
        by_topic: dict[str, base.Fact],
        announcer: control.Announcer | None,
        stop: threading.Event,
        *,
        control_topic: str = "",
        own: dict[str, base.Fact] | None = None,
    ) -> None:
        from herald.db.store import OutcomeWriter

        self.writer = OutcomeWriter(engine)
        self._engine = engine
        self._by_topic = by_topic
        self._own = own or {}
        self._control_topic = control_topic
        self._announcer = announcer
        self._stop = stop
        self._outage = Episode(logger, "database unavailable, retrying with backoff")
        self.announced = 0

    def store(self, batch: kafka.Batch) -> bool:
        rows: list[base.OutcomeRow] = []
        requests: list[RunRequest] = []
        produced: list[RunProduced] = []
        own: dict[str, list[Any]] = {}
        by_topic, control_topic = self._by_topic, self._control_topic
        for msg, value in batch.records:
            topic = msg.topic() or ""
            fact = by_topic.get(topic)
            if fact is not None:
                rows.append(fact.scenario.outcome(value))
            elif topic in self._own:
                own.setdefault(topic, []).append(value)
            elif topic == control_topic:
                if value is not None:
                    produced.append(value)
            else:
                requests.append(value)
        started = time.monotonic()
        written = self._write_until_stored(rows, requests, produced, own)
        logger.debug(
            "batch of %d outcomes (%d new) and %d requests written in %.1f ms",
            len(rows),
            written.new,
            len(requests),
            (time.monotonic() - started) * 1000,
        )
        if written.completed and self._announcer is not None:
            for event in written.completed:
                self._announcer.run_completed(event)
                logger.info("run %s complete: %s", event.run_id, event.counts)
            self.writer.mark_announced(e.run_id for e in written.completed)
            self.announced += len(written.completed)
        return True

    def _write_until_stored(
        self,
        rows: list[base.OutcomeRow],
        requests: list[RunRequest],
        produced: Sequence[RunProduced] = (),
        own: dict[str, list[Any]] | None = None,
    ) -> Any:
        """Write a batch, backing off while the database is away; one log line per outage.
        Outcomes and a scenario's own records are written in two transactions, both
        idempotent: a batch written again after a failure adds nothing."""
        from sqlalchemy.exc import DBAPIError

        backoff = Backoff(initial=0.1, maximum=2.0)
        while True:
            try:
                written = self.writer.write(rows, requests, produced)
                if own:
                    with self._engine.begin() as conn:
                        for topic, values in own.items():
                            fact = self._own[topic]
                            fact.scenario.record(conn, fact.topic, values)
            except DBAPIError as exc:
                if not exc.connection_invalidated and not _is_outage(exc):
                    raise
                self._outage.seen(str(exc.orig).strip().splitlines()[0] if exc.orig else exc)
                since = self._outage.since or time.monotonic()
                if self._stop.is_set() and time.monotonic() - since > SHUTDOWN_GRACE_SECS:
                    raise StorageError(
                        "database still unavailable at shutdown; the batch stays uncommitted "
                        "in Kafka and is recorded by the next recorder"
                    ) from None
                backoff.wait()
                continue
            self._outage.over(f"batch of {len(rows)} stored")
            return written


def _is_outage(exc: Any) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)
