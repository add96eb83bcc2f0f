"""sender: one member of the senders' consumer group; "sends" SMS and publishes each outcome.

Simulated send time is a deadline in a timer heap, never a sleep per message, so up to
``max_in_flight`` messages are being sent at once. Outcomes are released in offset order
per partition and committed in Kafka transactions together with the consumed offsets: a
result is visible (read_committed) exactly when its message's offset is committed, so
each message yields exactly one result even if a sender dies at any point.

Each assigned partition has its own transactional producer, whose transactional id is the
partition's (``herald-sender-p<N>``), not the sender's. Whoever takes a partition over
initialises that id first, which fences the previous owner and resolves its open
transaction at once: a dead or paused sender can neither block the partition until a
broker-side timeout nor commit stale work after it has been replaced.

Producers are made only when the group assigns a partition, never otherwise, so a sender
never fences an owner the group chose. A sender whose producer for a partition is fenced,
or whose transaction can be neither committed nor aborted, gives the partition up and
leaves and rejoins the group: the group then assigns the partition afresh (to this sender
or another), whose new producer settles the stuck transaction, and the new owner sends the
uncommitted messages again from the committed offset. Without the rejoin, a partition
given up while the group still assigns it here would stall.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from herald import contracts, kafka
from herald.config import SenderSettings, Settings
from herald.contracts import SmsMessage, SmsResult, Status
from herald.errors import ConfigError
from herald.services import _common, dlq

logger = logging.getLogger(__name__)

FAILURE_REASONS = (
    "carrier rejected",
    "handset unreachable",
    "number not in service",
    "carrier timeout",
    "spam filter",
)
BATCH = 500  # records per consume() call
TXN_MAX_RECORDS = 5000  # commit a transaction after this many released records...
TXN_MAX_SECS = 0.2  # ...or this long after it began, whichever comes first
TXN_TIMEOUT_SECS = 30.0
ABORT_TIMEOUT_SECS = 5.0
# Errors that mean the partition has a new owner: our generation or producer is fenced.
TAKEN_OVER = frozenset(
    {
        KafkaError._FENCED,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError._FATAL,  # a transactional producer's fatal error: fenced, in practice
    }
)

# An entry is a list: [done, offset, topic, key, value, headers]. Lists, not objects:
# they are made once per message on the hot path.
DONE, OFFSET, TOPIC, KEY, VALUE, HEADERS = range(6)


def main(argv: Sequence[str] | None = None) -> int:
    """``herald sender --id N``: run sender N (its settings are ``senders[N]``)."""
    p = _common.parser("sender", __doc__.splitlines()[0])
    p.add_argument("--id", type=int, required=True, help="index into the `senders` settings")
    args = p.parse_args(_common.argv_or_default(argv))
    return _common.service_main(
        args, lambda s, stop: run(s, stop=stop, sender_id=args.id, ready_file=args.ready_file)
    )


def latency_sampler(cfg: SenderSettings, rng: random.Random) -> Callable[[], float]:
    """A function returning one simulated send time in seconds."""
    mean = cfg.mean_wait_time
    if mean == 0 or cfg.latency_distribution == "constant":
        return lambda: mean
    if cfg.latency_distribution == "exponential":
        rate = 1.0 / mean
        expo = rng.expovariate
        return lambda: expo(rate)
    if cfg.latency_distribution == "uniform":
        uniform = rng.uniform
        return lambda: uniform(0.0, 2.0 * mean)
    sd = cfg.latency_stddev if cfg.latency_stddev is not None else mean / 4
    gauss = rng.gauss
    return lambda: max(0.0, gauss(mean, sd))


class _Partition:
    """What a sender holds for one assigned partition: its queue and its producer."""

    __slots__ = ("committed", "in_txn", "live", "pending", "producer", "released", "txn_records")

    def __init__(self, producer: Producer, committed: int) -> None:
        self.producer = producer  # transactional, fenced to this partition
        self.pending: deque[list[Any]] = deque()  # consumed, in offset order
        self.committed = committed  # next offset, as last committed
        self.released = committed  # next offset, after the records released so far
        self.in_txn = False  # a transaction is open
        self.txn_records = 0  # records in the open transaction
        self.live = True


class Sender:
    """Consume -> simulate -> produce, transactionally. See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        sender_id: int,
        rng: random.Random | None = None,
        ready_file: Path | None = None,
    ) -> None:
        check_sender_id(settings, sender_id)
        ks = settings.kafka
        self.cfg = settings.senders[sender_id]
        self.sender_id = sender_id
        self.ready_file = ready_file
        self.outbound = contracts.OUTBOUND.qualified(ks.namespace)
        self.results = contracts.RESULTS.qualified(ks.namespace)
        self.dlq_topic = contracts.DLQ.qualified(ks.namespace)
        rng = rng or random.Random()
        self._random = rng.random
        self._choice = rng.choice
        self._latency = latency_sampler(self.cfg, rng)
        self._decode = msgspec.json.Decoder(SmsMessage).decode
        self._encode = msgspec.json.Encoder().encode
        self.consumer = Consumer(
            kafka.consumer_config(ks, contracts.group_id(ks.namespace, "senders"))
        )
        self._kafka = ks
        self.parts: dict[int, _Partition] = {}
        self.heap: list[tuple[float, int, list[Any], _Partition]] = []
        self._seq = 0
        self._txn_started = 0.0  # when the oldest open transaction began
        self._rejoin = False  # a partition was given up while the group still assigns it
        self.sent = self.failed = self.invalid = self.aborted = 0

    # -- rebalance callbacks (run inside consume()) ------------------------------------

    def _producer_for(self, partition: int) -> Producer:
        ns = self._kafka.namespace
        tid = f"herald-sender-p{partition}"
        producer = Producer(
            kafka.transactional_producer_config(self._kafka, f"{ns}.{tid}" if ns else tid)
        )
        # Fences the partition's previous owner and resolves its open transaction.
        producer.init_transactions(TXN_TIMEOUT_SECS)
        return producer

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        # One producer per partition, initialised side by side: each init is a round trip to
        # the transaction coordinator, and the whole group waits for this callback.
        numbers = [tp.partition for tp in partitions]
        with ThreadPoolExecutor(len(numbers), thread_name_prefix="init-txn") as pool:
            producers = dict(zip(numbers, pool.map(self._producer_for, numbers), strict=True))
        # Read the committed offsets only now: the fencing above settled any transaction
        # of the previous owner that was still committing offsets for these partitions.
        for tp in consumer.committed(partitions, timeout=TXN_TIMEOUT_SECS):
            start = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.parts[tp.partition] = _Partition(producers[tp.partition], start)
        logger.info("sender %d assigned %s", self.sender_id, _names(partitions))
        _common.mark_ready(self.ready_file, partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Hand over cleanly: commit what is releasable, abandon the rest (nothing of it was
        # produced, so the partition's next owner sends it again from the committed offset).
        if not partitions:
            return
        names = [tp.partition for tp in partitions]
        self._release(names)
        self._commit(names)
        self._drop(names)
        self._rejoin = False  # the group is assigning partitions afresh already
        logger.info("sender %d revoked %s", self.sender_id, _names(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member owns them now (and has fenced our producers for them).
        if not partitions:
            return
        self._drop([tp.partition for tp in partitions], abort=True)
        self._rejoin = False  # out of the group already: the client rejoins by itself
        logger.warning("sender %d lost %s", self.sender_id, _names(partitions))

    def _drop(self, partitions: list[int], *, abort: bool = False) -> None:
        for p in partitions:
            state = self.parts.pop(p, None)
            if state is None:
                continue
            state.live = False  # its heap entries are skipped when they come due
            state.pending.clear()
            if abort and state.in_txn:
                self.aborted += 1
                try:
                    state.producer.abort_transaction(ABORT_TIMEOUT_SECS)
                except KafkaException:
                    # Fenced already, most likely; either way the transaction is never
                    # committed and the partition's next producer settles it.
                    continue
            try:
                left = state.producer.flush(5)
            except Exception:  # a fenced producer's fatal error; the partition is gone anyway
                logger.info("sender %d: partition %d's producer was fenced", self.sender_id, p)
                continue
            if left:
                logger.error("sender %d: records of partition %d undelivered", self.sender_id, p)

    # -- the work -----------------------------------------------------------------------

    def ingest(self, msgs: list[Message], now: float) -> None:
        """Simulate each consumed message: a result and a deadline."""
        cfg = self.cfg
        random_, latency, decode, encode = self._random, self._latency, self._decode, self._encode
        failure_rate, max_attempts = cfg.failure_rate, cfg.max_attempts
        received = datetime.now(UTC)
        heap, parts, results = self.heap, self.parts, self.results
        for msg in msgs:
            err = msg.error()
            if err is not None:
                kafka.raise_if_fatal(err, "sender consume")
                continue
            state = parts.get(msg.partition() or 0)
            if state is None:  # given up after a failed transaction; the rejoin reassigns it
                self._rejoin = True
                continue
            try:
                sms = decode(msg.value() or b"")
            except msgspec.DecodeError as exc:
                state.pending.append(self._dead_letter(msg, exc))
                continue
            wait = latency()
            attempts = 1
            status: Status
            while random_() < failure_rate:
                if attempts >= max_attempts:
                    status, reason = "failed", self._choice(FAILURE_REASONS)
                    break
                wait += cfg.retry_backoff * (1 << (attempts - 1)) + latency()
                attempts += 1
            else:
                status, reason = "sent", None
            value = encode(
                SmsResult(
                    message_id=sms.id,
                    run_id=sms.run_id,
                    seq=sms.seq,
                    sender_id=self.sender_id,
                    status=status,
                    latency_ms=wait * 1000.0,
                    attempts=attempts,
                    created_at=sms.created_at,
                    received_at=received,
                    completed_at=received + timedelta(seconds=wait),
                    failure_reason=reason,
                )
            )
            if status == "sent":
                self.sent += 1
            else:
                self.failed += 1
            entry = [wait <= 0.0, msg.offset(), results, msg.key(), value, None]
            state.pending.append(entry)
            if wait > 0.0:
                self._seq += 1
                heapq.heappush(heap, (now + wait, self._seq, entry, state))

    def _dead_letter(self, msg: Message, exc: Exception) -> list[Any]:
        self.invalid += 1
        reason = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "invalid record %s[%d]@%d to the dead-letter topic: %s",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            reason,
        )
        value, headers = dlq.letter(msg, reason, f"sender-{self.sender_id}")
        return [True, msg.offset(), self.dlq_topic, msg.key(), value, headers]

    def complete_due(self, now: float) -> None:
        """Mark every message whose send time is over as done."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)[2]
            entry[DONE] = True

    def _release(self, only: list[int] | None = None) -> None:
        """Produce each partition's done prefix into that partition's open transaction."""
        for p, state in list(self.parts.items()):
            pending = state.pending
            if (only is not None and p not in only) or not pending or not pending[0][DONE]:
                continue
            if not state.in_txn and not self._begin(p, state):
                continue
            try:
                self._release_done(state)
            except KafkaException as exc:  # fenced, most likely: the partition has moved on
                self._fail(p, state, exc)

    def _release_done(self, state: _Partition) -> None:
        # On a KafkaException the partition's state is discarded (see _fail): the counts
        # below are kept only when every record of the batch was produced.
        producer, pending = state.producer, state.pending
        released = 0
        entry = None
        while pending and pending[0][DONE]:
            entry = pending.popleft()
            while True:
                try:
                    if entry[HEADERS] is None:
                        producer.produce(entry[TOPIC], entry[VALUE], entry[KEY])
                    else:
                        producer.produce(
                            entry[TOPIC], entry[VALUE], entry[KEY], headers=entry[HEADERS]
                        )
                    break
                except BufferError:
                    producer.poll(0.05)
            released += 1
        if entry is not None:
            state.txn_records += released
            state.released = entry[OFFSET] + 1
        producer.poll(0)

    def _begin(self, partition: int, state: _Partition) -> bool:
        try:
            state.producer.begin_transaction()
        except KafkaException as exc:
            self._fail(partition, state, exc)
            return False
        if not any(s.in_txn for s in self.parts.values()):
            self._txn_started = time.monotonic()
        state.in_txn = True
        return True

    def _commit(self, only: list[int] | None = None) -> None:
        """Commit each open transaction with the offsets of everything released in it."""
        metadata = self.consumer.consumer_group_metadata()
        for p, state in list(self.parts.items()):
            if not state.in_txn or (only is not None and p not in only):
                continue
            offsets = [TopicPartition(self.outbound, p, state.released)]
            try:
                producer = state.producer
                _retrying(
                    partial(
                        producer.send_offsets_to_transaction, offsets, metadata, TXN_TIMEOUT_SECS
                    )
                )
                _retrying(partial(producer.commit_transaction, TXN_TIMEOUT_SECS))
            except KafkaException as exc:
                self._fail(p, state, exc)
                continue
            state.committed = state.released
            state.txn_records = 0
            state.in_txn = False

    def _fail(self, partition: int, state: _Partition, exc: KafkaException) -> None:
        """A transaction of ``partition`` failed: abort it and start again, or let go."""
        err: KafkaError = exc.args[0]
        if err.fatal() or err.code() in TAKEN_OVER:
            # Another sender has taken the partition over (this one was paused or cut off
            # from the group); the broker refused our work. It stays uncommitted: the new
            # owner sends those messages from the committed offset.
            logger.warning(
                "sender %d: partition %d was taken over (%s); its uncommitted work is dropped",
                self.sender_id,
                partition,
                err.str(),
            )
            self._drop([partition], abort=True)
            self._rejoin = True
            return
        logger.warning(
            "sender %d: transaction of partition %d failed, aborting: %s",
            self.sender_id,
            partition,
            err.str(),
        )
        self._abort_and_rewind(partition, state)

    def _abort_and_rewind(self, partition: int, state: _Partition) -> None:
        """Abort the partition's transaction and consume again from its committed offset."""
        if state.in_txn:
            try:
                state.producer.abort_transaction(ABORT_TIMEOUT_SECS)
            except KafkaException as exc:
                # Fenced meanwhile, or the broker does not settle the transaction: the
                # partition needs a new producer, which only a fresh assignment makes.
                logger.warning(
                    "sender %d: cannot abort the transaction of partition %d (%s); "
                    "giving the partition up",
                    self.sender_id,
                    partition,
                    exc.args[0].str(),
                )
                self._drop([partition])
                self._rejoin = True
                return
            self.aborted += 1
        state.live = False
        fresh = _Partition(state.producer, state.committed)
        self.parts[partition] = fresh
        self.heap = [h for h in self.heap if h[3] is not state]
        heapq.heapify(self.heap)
        with contextlib.suppress(KafkaException):  # revoked meanwhile: nothing to rewind
            self.consumer.seek(TopicPartition(self.outbound, partition, state.committed))
        logger.warning(
            "sender %d: partition %d rewound to its last committed offset %d",
            self.sender_id,
            partition,
            state.committed,
        )

    def _subscribe(self) -> None:
        self.consumer.subscribe(
            [self.outbound],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _rejoin_group(self) -> None:
        """Leave the group and join it again, so that it assigns every partition afresh."""
        logger.warning(
            "sender %d: partitions given up after failed transactions are still assigned "
            "here; leaving and rejoining the group",
            self.sender_id,
        )
        self._rejoin = False
        self.consumer.unsubscribe()  # revokes everything: what is releasable is committed
        self._subscribe()

    def run(self, stop: threading.Event) -> int:
        """The main loop, until ``stop``; then drain, commit and close."""
        self._subscribe()
        logger.info(
            "sender %d ready: mean %.3fs (%s), failure rate %.3f, window %d, attempts %d",
            self.sender_id,
            self.cfg.mean_wait_time,
            self.cfg.latency_distribution,
            self.cfg.failure_rate,
            self.cfg.max_in_flight,
            self.cfg.max_attempts,
        )
        window = self.cfg.max_in_flight
        heap, consume = self.heap, self.consumer.consume
        monotonic = time.monotonic
        try:
            while not stop.is_set():
                now = monotonic()
                room = window - len(heap)
                if room > 0:
                    timeout = 0.1 if not heap else max(0.0, min(0.05, heap[0][0] - now))
                    msgs = consume(min(room, BATCH), timeout)
                    now = monotonic()
                    if msgs:
                        self.ingest(msgs, now)
                else:
                    stop.wait(max(0.0, min(0.05, heap[0][0] - now)))
                    now = monotonic()
                self._step(now)
                if self._rejoin:
                    self._rejoin_group()
            self._drain()
        finally:
            self._drop(list(self.parts), abort=True)  # nothing open after a clean drain
            self.consumer.close()
        logger.info(
            "sender %d stopped ◆ %d sent ◆ %d failed ◆ %d invalid ◆ %d aborted transactions",
            self.sender_id,
            self.sent,
            self.failed,
            self.invalid,
            self.aborted,
        )
        return 0

    def _step(self, now: float) -> None:
        self.complete_due(now)
        self._release()
        open_ = [st.txn_records for st in self.parts.values() if st.in_txn]
        if open_ and (now - self._txn_started >= TXN_MAX_SECS or max(open_) >= TXN_MAX_RECORDS):
            self._commit()

    def _drain(self) -> None:
        """On stop: finish the messages in flight (bounded by their send times), commit."""
        deadline = time.monotonic() + 5.0
        while self.heap and time.monotonic() < deadline:
            time.sleep(max(0.0, min(0.05, self.heap[0][0] - time.monotonic())))
            self._step(time.monotonic())
        abandoned = len(self.heap)
        self._release()
        self._commit()
        if abandoned:
            logger.warning(
                "sender %d: %d messages still in flight abandoned uncommitted; "
                "the next owner of their partitions sends them",
                self.sender_id,
                abandoned,
            )


def _retrying(call: Callable[[], object]) -> None:
    """Call a transactional operation again while it fails with a retriable error."""
    while True:
        try:
            call()
            return
        except KafkaException as exc:
            if not exc.args[0].retriable():
                raise
            logger.info("retrying a transactional call: %s", exc.args[0].str())


def _names(partitions: list[TopicPartition]) -> str:
    return ",".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)


def check_sender_id(settings: Settings, sender_id: int) -> None:
    """Raise :class:`ConfigError` unless ``senders[sender_id]`` exists."""
    if not 0 <= sender_id < len(settings.senders):
        raise ConfigError(
            f"sender --id {sender_id}: no such sender; the settings define "
            f"{len(settings.senders)} (ids 0-{len(settings.senders) - 1})"
        )


def run(
    settings: Settings, *, stop: threading.Event, sender_id: int, ready_file: Path | None = None
) -> int:
    """Run sender ``sender_id`` until ``stop``."""
    check_sender_id(settings, sender_id)
    kafka.wait_for_broker(settings.kafka, stop=stop.is_set)
    return Sender(settings, sender_id=sender_id, ready_file=ready_file).run(stop)
