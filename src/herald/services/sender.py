"""sender: one member of the senders' consumer group; "sends" SMS and publishes each outcome.

Simulated send time is a deadline in a timer heap, never a sleep per message, so up to
``max_in_flight`` messages are being sent at once. Outcomes are released in offset order
per partition and committed in Kafka transactions together with the consumed offsets: a
result is visible (read_committed) exactly when its message's offset is committed, so
each message yields exactly one result even if a sender dies at any point.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
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
from herald.errors import BrokerError, ConfigError
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
TXN_MAX_SECS = 0.1  # ...or this long after it began, whichever comes first
TXN_TIMEOUT_SECS = 30.0

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
    """What a sender holds for one assigned partition."""

    __slots__ = ("committed", "live", "pending", "released")

    def __init__(self, committed: int) -> None:
        self.pending: deque[list[Any]] = deque()  # consumed, in offset order
        self.committed = committed  # next offset, as last committed
        self.released = committed  # next offset, after the records released so far
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
        tid = (
            f"{ks.namespace}.herald-sender-{sender_id}"
            if ks.namespace
            else f"herald-sender-{sender_id}"
        )
        self.producer = Producer(kafka.transactional_producer_config(ks, tid))
        self.parts: dict[int, _Partition] = {}
        self.heap: list[tuple[float, int, list[Any], _Partition]] = []
        self._seq = 0
        self._in_txn = False
        self._txn_started = 0.0
        self._txn_records = 0
        self._must_abort = False
        self.sent = self.failed = self.invalid = self.aborted = 0

    # -- rebalance callbacks (run inside consume()) ------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=TXN_TIMEOUT_SECS)
        for tp in committed:
            start = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.parts[tp.partition] = _Partition(start)
        logger.info("sender %d assigned %s", self.sender_id, _names(partitions))
        _common.mark_ready(self.ready_file, partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Hand over cleanly: commit what is releasable, abandon the rest (nothing of it was
        # produced, so the partition's next owner sends it again from the committed offset).
        if not self._must_abort:
            self._release()
            self._commit()
        self._drop([tp.partition for tp in partitions])
        logger.info("sender %d revoked %s", self.sender_id, _names(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member owns them now; our open transaction can no longer commit.
        self._drop([tp.partition for tp in partitions])
        self._must_abort = True
        logger.warning("sender %d lost %s", self.sender_id, _names(partitions))

    def _drop(self, partitions: list[int]) -> None:
        for p in partitions:
            state = self.parts.pop(p, None)
            if state is not None:
                state.live = False  # its heap entries are skipped when they come due
                state.pending.clear()

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
            if state is None:  # pragma: no cover - consume() never returns a revoked partition
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
        return [
            True,
            msg.offset(),
            self.dlq_topic,
            msg.key(),
            msg.value(),
            dlq.headers(msg, reason, f"sender-{self.sender_id}"),
        ]

    def complete_due(self, now: float) -> None:
        """Mark every message whose send time is over as done."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)[2]
            entry[DONE] = True

    def _release(self) -> None:
        """Produce the results of each partition's done prefix into the open transaction."""
        produce = self.producer.produce
        released = 0
        for state in self.parts.values():
            pending = state.pending
            if not pending or not pending[0][DONE]:
                continue
            if not self._in_txn:
                self._begin()
            while pending and pending[0][DONE]:
                entry = pending.popleft()
                while True:
                    try:
                        if entry[HEADERS] is None:
                            produce(entry[TOPIC], entry[VALUE], entry[KEY])
                        else:
                            produce(entry[TOPIC], entry[VALUE], entry[KEY], headers=entry[HEADERS])
                        break
                    except BufferError:
                        self.producer.poll(0.05)
                released += 1
                state.released = entry[OFFSET] + 1
        self._txn_records += released
        if released:
            self.producer.poll(0)

    def _begin(self) -> None:
        self.producer.begin_transaction()
        self._in_txn = True
        self._txn_started = time.monotonic()
        self._txn_records = 0

    def _commit(self) -> None:
        """Commit the open transaction with the offsets of everything released in it."""
        if not self._in_txn:
            return
        offsets = [
            TopicPartition(self.outbound, p, s.released)
            for p, s in self.parts.items()
            if s.released != s.committed and s.released >= 0
        ]
        try:
            if offsets:
                self.producer.send_offsets_to_transaction(
                    offsets, self.consumer.consumer_group_metadata(), TXN_TIMEOUT_SECS
                )
            self._commit_with_retries()
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if err.fatal():
                raise BrokerError(
                    f"sender {self.sender_id}: fatal transaction error: {err}"
                ) from None
            logger.warning("sender %d: transaction failed, aborting: %s", self.sender_id, err)
            self._must_abort = True
            return
        for state in self.parts.values():
            state.committed = state.released
        self._in_txn = False

    def _commit_with_retries(self) -> None:
        while True:
            try:
                self.producer.commit_transaction(TXN_TIMEOUT_SECS)
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if not err.retriable():
                    raise
                logger.info("sender %d: retrying transaction commit: %s", self.sender_id, err)

    def _abort_and_rewind(self) -> None:
        """Abort the open transaction and start again from the committed offsets."""
        if self._in_txn:
            try:
                self.producer.abort_transaction(TXN_TIMEOUT_SECS)
            except KafkaException as exc:
                if exc.args[0].fatal():
                    raise BrokerError(f"sender {self.sender_id}: cannot abort: {exc}") from None
            self._in_txn = False
            self.aborted += 1
        for state in self.parts.values():
            state.live = False
        self.heap.clear()
        rewind = []
        for p, state in list(self.parts.items()):
            fresh = _Partition(state.committed)
            self.parts[p] = fresh
            rewind.append(TopicPartition(self.outbound, p, state.committed))
        for tp in rewind:
            try:
                self.consumer.seek(tp)
            except KafkaException as exc:  # pragma: no cover - depends on fetcher timing
                logger.warning("sender %d: seek %s failed: %s", self.sender_id, tp, exc)
        self._must_abort = False
        logger.warning("sender %d: rewound to the last committed offsets", self.sender_id)

    def run(self, stop: threading.Event) -> int:
        """The main loop, until ``stop``; then drain, commit and close."""
        self.producer.init_transactions(TXN_TIMEOUT_SECS)
        self.consumer.subscribe(
            [self.outbound],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
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
            self._drain()
        finally:
            self.consumer.close()
            left = self.producer.flush(5)
            if left:
                logger.error("sender %d: %d records left undelivered", self.sender_id, left)
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
        if self._must_abort:
            self._abort_and_rewind()
            return
        self.complete_due(now)
        self._release()
        if self._in_txn and (
            self._txn_records >= TXN_MAX_RECORDS or now - self._txn_started >= TXN_MAX_SECS
        ):
            self._commit()

    def _drain(self) -> None:
        """On stop: finish the messages in flight (bounded by their send times), commit."""
        deadline = time.monotonic() + 5.0
        while self.heap and time.monotonic() < deadline and not self._must_abort:
            time.sleep(max(0.0, min(0.05, self.heap[0][0] - time.monotonic())))
            self._step(time.monotonic())
        abandoned = len(self.heap)
        if self._must_abort:
            self._abort_and_rewind()
        else:
            self._release()
            self._commit()
            if self._must_abort:
                self._abort_and_rewind()
        if abandoned:
            logger.warning(
                "sender %d: %d messages still in flight abandoned uncommitted; "
                "the next owner of their partitions sends them",
                self.sender_id,
                abandoned,
            )


def _names(partitions: list[TopicPartition]) -> str:
    return ",".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


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
