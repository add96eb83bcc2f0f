"""worker: one member of a scenario's workers' consumer group (the SMS senders): consume a
message, run the scenario's step on it, publish its result, transactionally.

A step's simulated work time is a deadline in a timer heap, never a sleep per message, so up
to ``max_in_flight`` messages are in flight at once. Results are released in offset order
per partition and committed in Kafka transactions together with the consumed offsets: a
result is visible (read_committed) exactly when its message's offset is committed, so each
message yields exactly one result even if a worker dies at any point.

Each assigned partition has its own transactional producer, whose transactional id is the
partition's (:func:`herald.contracts.transactional_id`: scoped by group, topic and
partition), not the worker's. Whoever takes a partition over initialises that id first,
which fences the previous owner and resolves its open transaction at once: a dead or paused
worker can neither block the partition until a broker-side timeout nor commit stale work
after it has been replaced.

Producers are made only when the group assigns a partition, never otherwise, so a worker
never fences an owner the group chose. A worker whose producer for a partition is fenced, or
whose transaction can be neither committed nor aborted, gives the partition up and leaves and
rejoins the group: the group then assigns the partition afresh (to this worker or another),
whose new producer settles the stuck transaction, and the new owner processes the
uncommitted messages again from the committed offset. Without the rejoin, a partition given
up while the group still assigns it here would stall.

The rejoin is judged from the consumer's own assignment (a partition assigned here that the
worker holds no producer for), checked twice a second whether or not records arrive, and
done in two steps: leave (the revocation served by the next consume()), and only once nothing
is assigned any more, subscribe again. An unsubscribe() followed at once by subscribe() to
the same topic can come to nothing in librdkafka when a rebalance is under way: no
revocation, no new assignment, the partition stalled for good (seen on three Apache Kafka
brokers with one killed).
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Literal

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

from herald import contracts, control, decoding, kafka
from herald.config import Settings, WorkerSettings
from herald.errors import ConfigError
from herald.scenarios.base import DEFAULT, Scenario, Step, WorkerSpec
from herald.services import common, dlq
from herald.waiting import Backoff, Episode, within_grace

logger = logging.getLogger(__name__)

BATCH = 500  # records per consume() call
TXN_MAX_RECORDS = 5000  # commit a transaction after this many released records...
TXN_MAX_SECS = 0.2  # ...or this long after it began, whichever comes first
TXN_TIMEOUT_SECS = 30.0
# One call's wait for a commit; a timed-out call is retried (librdkafka resumes the same
# commit), and between the calls the worker sees a stop.
COMMIT_CALL_SECS = 5.0
COMMIT_ATTEMPTS = 12
# After a stop, how long the worker keeps retrying a commit before it aborts instead (the next
# owner of the partition processes that work again: nothing is lost). Seen: a paused and
# resumed sender whose commit the embedded broker never answered hung its shutdown.
STOP_GRACE_SECS = 10.0
ABORT_TIMEOUT_SECS = 5.0
DRAIN_SECS = 5.0
# How long a step of a rejoin (a leave, a join) may take before the worker starts it again (a
# leave or a join that never reached the group); a rebalance normally completes within a
# session timeout.
REJOIN_PATIENCE_SECS = 30.0
# How often the worker compares its partitions with the consumer's assignment.
ASSIGNMENT_CHECK_SECS = 0.5
# Errors that mean the partition has a new owner: our producer is fenced.
TAKEN_OVER = frozenset(
    {
        KafkaError._FENCED,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError._FATAL,  # a transactional producer's fatal error: fenced, in practice
    }
)
# Errors that mean the group is rebalancing: the offsets were sent with a generation the
# group has left behind. The transaction is aborted and the partition read again from its
# committed offset; the rebalance itself revokes it, keeps it here, or reports it lost. Leaving
# the group for these (as for a fence) made every member's next commit fail the same way on
# Apache Kafka: a rebalance storm that never let a run finish.
REBALANCING = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
    }
)
Headers = list[tuple[str, str | bytes | None]]


class Entry(msgspec.Struct, gc=False):
    """One consumed record on its way out: a result (or a dead letter) to release in offset
    order. A Struct without GC tracking: one is made per message, on the hot path."""

    done: bool
    offset: int
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None


class _Partition:
    """What a worker holds for one assigned partition: its queue and its producer."""

    __slots__ = ("committed", "in_txn", "live", "pending", "producer", "released", "txn_records")

    def __init__(self, producer: Producer, committed: int) -> None:
        self.producer = producer  # transactional, fenced to this partition
        self.pending: deque[Entry] = deque()  # consumed, in offset order
        self.committed = committed  # next offset, as last committed
        self.released = committed  # next offset, after the records released so far
        self.in_txn = False  # a transaction is open
        self.txn_records = 0  # records in the open transaction
        self.live = True


def main(argv: Sequence[str] | None = None, *, scenario: str = DEFAULT) -> int:
    """``herald <worker service> --id N``: run worker N of a scenario (profile ``senders[N]``)."""
    from herald.scenarios import base

    spec = _spec(base.get(scenario))
    p = common.parser(spec.service, __doc__.splitlines()[0])
    p.add_argument("--id", type=int, required=True, help="index into the `senders` settings")
    args = p.parse_args(common.argv_or_default(argv))
    return common.service_main(
        args,
        lambda s, stop, announcer: run(
            s, stop=stop, scenario=scenario, worker_id=args.id, announcer=announcer
        ),
        service=spec.service,
        instance=f"{spec.service}-{args.id}",
        check=lambda s: check_worker_id(s, args.id),
    )


def _spec(scenario: Scenario) -> WorkerSpec:
    if scenario.worker is None:
        raise ConfigError(f"scenario {scenario.name!r} has no worker step")
    return scenario.worker


class Worker:
    """Consume -> step -> produce, transactionally. See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        scenario: Scenario,
        worker_id: int,
        rng: random.Random | None = None,
        announcer: control.Announcer | None = None,
    ) -> None:
        check_worker_id(settings, worker_id)
        ks = settings.kafka
        spec = _spec(scenario)
        self.spec = spec
        self.profile: WorkerSettings = settings.senders[worker_id]
        self.worker_id = worker_id
        self.name = f"{spec.service}-{worker_id}"
        self.announcer = announcer
        self.work = spec.work.qualified(ks.namespace)
        self.results = spec.results.qualified(ks.namespace)
        self.dlq_topic = contracts.DLQ.qualified(ks.namespace)
        self.group = contracts.group_id(ks.namespace, spec.role)
        self._step: Step = spec.make_step(self.profile, worker_id, rng or random.Random())
        self._succeeded = scenario.statuses
        assert spec.work.payload is not None
        self._decode = decoding.decoder(spec.work.payload)
        self._encode = msgspec.json.Encoder().encode
        self.consumer = Consumer(kafka.consumer_config(ks, self.group))
        self._kafka = ks
        self.parts: dict[int, _Partition] = {}
        self.heap: list[tuple[float, int, Entry, _Partition]] = []
        self._seq = 0
        self._txn_started = 0.0  # when the oldest open transaction began
        self._stop: threading.Event | None = None
        self._stop_seen: float | None = None
        # A rejoin under way: "leaving" (unsubscribed, the revocation not served yet) or
        # "joining" (subscribed again, the group's next assignment not here yet), since when.
        # Meanwhile records of the partitions given up may keep arriving (the consumer's
        # queue); starting again for them would restart the join every loop and never let it
        # finish (seen on Kafka).
        self.rejoin_step: Literal["", "leaving", "joining"] = ""
        self._rejoin_since = 0.0
        # When the worker next compares its partitions with the assignment: 0 is "at once"
        # (a partition was just given up, or the leave was served).
        self._next_check = 0.0
        self._consume_errors = Episode(logger, f"{self.name}: Kafka consume error")
        self.done = self.failed = self.invalid = self.aborted = 0

    # -- rebalance callbacks (run inside consume()) ------------------------------------

    def _producer_for(self, partition: int) -> Producer:
        tid = contracts.transactional_id(self.group, self.work, partition)
        producer = Producer(kafka.transactional_producer_config(self._kafka, tid))
        # Fences the partition's previous owner and resolves its open transaction.
        producer.init_transactions(TXN_TIMEOUT_SECS)
        return producer

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.rejoin_step == "joining":  # the group has assigned again: the rejoin is over
            self.rejoin_step = ""
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
        logger.info("%s assigned %s", self.name, kafka.names(partitions))
        if self.announcer is not None:
            self.announcer.ready(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Hand over cleanly: commit what is releasable, abandon the rest (nothing of it was
        # produced, so the partition's next owner processes it again from the committed offset).
        if not partitions:
            return
        names = [tp.partition for tp in partitions]
        self._release(names)
        self._commit(names)
        self._drop(names)
        if self.rejoin_step == "leaving":
            self._next_check = 0.0  # out of the group: join it again without delay
        logger.info("%s revoked %s", self.name, kafka.names(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member owns them now (and has fenced our producers for them).
        if not partitions:
            return
        self._drop([tp.partition for tp in partitions], abort=True)
        if self.rejoin_step == "leaving":
            self._next_check = 0.0
        logger.warning("%s lost %s", self.name, kafka.names(partitions))

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
                    state.producer.abort_transaction(self.wait_limit(ABORT_TIMEOUT_SECS))
                except KafkaException as exc:
                    # Fenced already, most likely; either way the transaction is never
                    # committed and the partition's next producer settles it.
                    logger.info(
                        "%s: partition %d's transaction not aborted (%s); its next owner "
                        "settles it",
                        self.name,
                        p,
                        kafka.reason(exc),
                    )
                    continue
            try:
                left = state.producer.flush(self.wait_limit(5.0))
            except KafkaException as exc:  # a fenced producer's fatal error, raised by flush()
                logger.info("%s: partition %d's producer: %s", self.name, p, kafka.reason(exc))
                continue
            if left:
                logger.error("%s: %d records of partition %d undelivered", self.name, left, p)

    # -- the work -----------------------------------------------------------------------

    def ingest(self, msgs: list[Message], now: float) -> None:
        """Run the step on each consumed message: a result and a deadline."""
        decode, encode, step = self._decode, self._encode, self._step
        received = datetime.now(UTC)
        # Deadlines count from after `received` is read: a work time ends on the monotonic
        # clock no earlier than `received + wait` on the wall clock (what its result says).
        now = max(now, time.monotonic())
        heap, parts, results, succeeded = self.heap, self.parts, self.results, self._succeeded
        done = failed = 0
        for msg in msgs:
            err = msg.error()
            if err is not None:
                kafka.raise_if_fatal(err, self._consume_errors)
                continue
            state = parts.get(msg.partition() or 0)
            if state is None:  # given up after a failed transaction; the rejoin reassigns it
                continue
            try:
                message = decode(msg.value() or b"")
            except msgspec.DecodeError as exc:
                state.pending.append(self._dead_letter(msg, exc))
                continue
            result, wait = step(message, received)
            if succeeded[result.status]:  # type: ignore[attr-defined]  # the outcome envelope
                done += 1
            else:
                failed += 1
            # A consumed record's offset is always set (only error events lack one).
            entry = Entry(wait <= 0.0, msg.offset(), results, msg.key(), encode(result))  # type: ignore[arg-type]
            state.pending.append(entry)
            if wait > 0.0:
                self._seq += 1
                heapq.heappush(heap, (now + wait, self._seq, entry, state))
        self.done += done
        self.failed += failed

    def _dead_letter(self, msg: Message, exc: Exception) -> Entry:
        self.invalid += 1
        reason = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "invalid record %s[%d]@%d to the dead-letter topic: %s",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            reason,
        )
        value, headers = dlq.letter(msg, reason, self.name)
        return Entry(True, msg.offset() or 0, self.dlq_topic, msg.key(), value, headers)

    def complete_due(self, now: float) -> None:
        """Mark every message whose work time is over as done."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            heapq.heappop(heap)[2].done = True

    def _release(self, only: list[int] | None = None) -> None:
        """Produce each partition's done prefix into that partition's open transaction."""
        for p, state in list(self.parts.items()):
            pending = state.pending
            if (only is not None and p not in only) or not pending or not pending[0].done:
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
        produce = producer.produce
        released = 0
        entry = None
        while pending and pending[0].done:
            entry = pending.popleft()
            while True:
                try:
                    if entry.headers is None:
                        produce(entry.topic, entry.value, entry.key)
                    else:
                        produce(entry.topic, entry.value, entry.key, headers=entry.headers)
                    break
                except BufferError:
                    producer.poll(0.05)
            released += 1
        if entry is not None:
            state.txn_records += released
            state.released = entry.offset + 1
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
            offsets = [TopicPartition(self.work, p, state.released)]
            try:
                producer = state.producer
                retrying(
                    self._timed(producer.send_offsets_to_transaction, offsets, metadata),
                    what=f"{self.name}: partition {p}: sending offsets",
                    attempts=COMMIT_ATTEMPTS,
                    give_up=self._past_stop_grace,
                )
                retrying(
                    self._timed(producer.commit_transaction),
                    what=f"{self.name}: partition {p}: committing",
                    attempts=COMMIT_ATTEMPTS,
                    give_up=self._past_stop_grace,
                )
            except KafkaException as exc:
                self._fail(p, state, exc)
                continue
            state.committed = state.released
            state.txn_records = 0
            state.in_txn = False

    def _since_stop(self) -> float | None:
        """Seconds since the worker was first seen told to stop (by its loop, or by a wait
        of a commit under way when the stop came); None while it is not."""
        if self._stop is None or not self._stop.is_set():
            return None
        now = time.monotonic()
        if self._stop_seen is None:
            self._stop_seen = now
        return now - self._stop_seen

    def _timed(self, call: Callable[..., object], *args: object) -> Callable[[], object]:
        """A commit step, ``call(*args, timeout)``: a call's timeout is COMMIT_CALL_SECS, or
        while stopping what is left of the grace (:meth:`wait_limit`) when it is made."""
        return lambda: call(*args, self.wait_limit(COMMIT_CALL_SECS))

    def _past_stop_grace(self) -> bool:
        """Whether the worker was told to stop more than ``STOP_GRACE_SECS`` ago."""
        since = self._since_stop()
        return since is not None and since > STOP_GRACE_SECS

    def wait_limit(self, limit: float) -> float:
        """How long one wait for the broker (an abort, a flush) may take: ``limit``, or while
        stopping, what is left of ``STOP_GRACE_SECS`` (0.1 s at least). Each partition has
        its own producer: a broker that does not answer would otherwise hold a stopping
        worker ``limit`` seconds a partition, past the time a run gives it to stop."""
        return within_grace(limit, self._since_stop(), STOP_GRACE_SECS)

    def _fail(self, partition: int, state: _Partition, exc: KafkaException) -> None:
        """A transaction of ``partition`` failed: abort it and start again, or let go."""
        err: KafkaError = exc.args[0]
        if err.code() in REBALANCING and not err.fatal():
            logger.warning(
                "%s: the group is rebalancing (%s); partition %d's transaction is aborted",
                self.name,
                err.str(),
                partition,
            )
            self._abort_and_rewind(partition, state)
            return
        if err.fatal() or err.code() in TAKEN_OVER:
            # Another worker has taken the partition over (this one was paused or cut off
            # from the group); the broker refused our work. It stays uncommitted: the new
            # owner processes those messages from the committed offset.
            logger.warning(
                "%s: partition %d was taken over (%s); its uncommitted work is dropped",
                self.name,
                partition,
                err.str(),
            )
            self._give_up(partition, abort=True)
            return
        logger.warning(
            "%s: transaction of partition %d failed, aborting: %s", self.name, partition, err.str()
        )
        self._abort_and_rewind(partition, state)

    def _give_up(self, partition: int, *, abort: bool = False) -> None:
        """Drop a partition the group still assigns here; the next check of the assignment
        (at once) rejoins the group, so that it is assigned afresh."""
        self._drop([partition], abort=abort)
        self._next_check = 0.0

    def _abort_and_rewind(self, partition: int, state: _Partition) -> None:
        """Abort the partition's transaction and consume again from its committed offset."""
        if state.in_txn:
            try:
                state.producer.abort_transaction(self.wait_limit(ABORT_TIMEOUT_SECS))
            except KafkaException as exc:
                # Fenced meanwhile, or the broker does not settle the transaction: the
                # partition needs a new producer, which only a fresh assignment makes.
                logger.warning(
                    "%s: cannot abort the transaction of partition %d (%s); "
                    "giving the partition up",
                    self.name,
                    partition,
                    kafka.reason(exc),
                )
                self._give_up(partition)
                return
            self.aborted += 1
        state.live = False
        fresh = _Partition(state.producer, state.committed)
        self.parts[partition] = fresh
        self.heap = [h for h in self.heap if h[3] is not state]
        heapq.heapify(self.heap)
        try:
            self.consumer.seek(TopicPartition(self.work, partition, state.committed))
        except KafkaException as exc:  # revoked meanwhile: nothing to rewind
            logger.info("%s: partition %d not rewound: %s", self.name, partition, kafka.reason(exc))
            return
        logger.warning(
            "%s: partition %d rewound to its last committed offset %d",
            self.name,
            partition,
            state.committed,
        )

    def _subscribe(self) -> None:
        self.consumer.subscribe(
            [self.work],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def given_up(self) -> list[int]:
        """Partitions the group assigns here that this worker holds no producer for: given up
        after a failed transaction, waiting for a rejoin to be assigned afresh."""
        return sorted(
            tp.partition
            for tp in self.consumer.assignment()
            if tp.topic == self.work and tp.partition not in self.parts
        )

    def keep_assignment(self, now: float) -> None:
        """Rejoin the group while partitions are given up here: leave, wait until nothing is
        assigned, subscribe again (see the module docstring); a step that takes longer than
        ``REJOIN_PATIENCE_SECS`` is started again."""
        self._next_check = now + ASSIGNMENT_CHECK_SECS
        step, waited = self.rejoin_step, now - self._rejoin_since
        if step == "leaving" and not self.consumer.assignment():
            self._subscribe()
            self.rejoin_step, self._rejoin_since = "joining", now
            logger.info("%s: out of the group; joining it again", self.name)
            return
        if step and waited < REJOIN_PATIENCE_SECS:
            return  # a coming consume() serves the revocation; the group finishes the join
        if step == "leaving":
            logger.warning(
                "%s: still assigned %.0fs after leaving; leaving again", self.name, waited
            )
        elif stuck := self.given_up():
            logger.warning(
                "%s: partitions %s given up after failed transactions are still assigned "
                "here; leaving and rejoining the group",
                self.name,
                stuck,
            )
        else:
            self.rejoin_step = ""  # nothing given up: a join past its patience is over too
            return
        self.consumer.unsubscribe()  # revokes everything: what is releasable is committed
        self.rejoin_step, self._rejoin_since = "leaving", now

    def run(self, stop: threading.Event) -> int:
        """The main loop, until ``stop``; then drain, commit and close."""
        self._stop = stop
        self._subscribe()
        kafka.freeze_heap()
        p = self.profile
        logger.info(
            "%s ready: %s -> %s; mean %.3fs (%s), failure rate %.3f, window %d, attempts %d",
            self.name,
            self.work,
            self.results,
            p.mean_wait_time,
            p.latency_distribution,
            p.failure_rate,
            p.max_in_flight,
            p.max_attempts,
        )
        window = p.max_in_flight
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
                self._step_once(now)
                if now >= self._next_check:
                    self.keep_assignment(now)
            if self._stop_seen is None:  # the stop's grace counts from here, drain included
                self._stop_seen = monotonic()
            self._drain()
        finally:
            self._drop(list(self.parts), abort=True)  # nothing open after a clean drain
            kafka.close_consumer(self.consumer, self.name)
        logger.info(
            "%s stopped ◆ %d done ◆ %d failed ◆ %d invalid ◆ %d aborted transactions",
            self.name,
            self.done,
            self.failed,
            self.invalid,
            self.aborted,
        )
        return 0

    def _step_once(self, now: float) -> None:
        self.complete_due(now)
        self._release()
        open_ = [st.txn_records for st in self.parts.values() if st.in_txn]
        if open_ and (now - self._txn_started >= TXN_MAX_SECS or max(open_) >= TXN_MAX_RECORDS):
            self._commit()

    def _drain(self) -> None:
        """On stop: finish the messages in flight (bounded by their work times), commit."""
        deadline = time.monotonic() + DRAIN_SECS
        while self.heap and time.monotonic() < deadline:
            time.sleep(max(0.0, min(0.05, self.heap[0][0] - time.monotonic())))
            self._step_once(time.monotonic())
        abandoned = len(self.heap)
        self._release()
        self._commit()
        if abandoned:
            logger.warning(
                "%s: %d messages still in flight abandoned uncommitted; "
                "the next owner of their partitions processes them",
                self.name,
                abandoned,
            )


def retrying(
    call: Callable[[], object],
    *,
    what: str,
    attempts: int = 10,
    give_up: Callable[[], bool] | None = None,
) -> None:
    """Call a transactional operation again, with backoff, while it fails with a retriable
    error (logged once); the last error is raised after ``attempts``, or as soon as
    ``give_up()`` says so."""
    backoff = Backoff(initial=0.05, maximum=1.0)
    episode = Episode(logger, what)
    for attempt in range(1, attempts + 1):
        try:
            call()
        except KafkaException as exc:
            last = attempt == attempts or (give_up is not None and give_up())
            if not exc.args[0].retriable() or last:
                raise
            episode.seen(f"retriable, retrying: {kafka.reason(exc)}")
            backoff.wait()
            continue
        episode.over()
        return


def check_worker_id(settings: Settings, worker_id: int) -> None:
    """Raise :class:`ConfigError` unless ``senders[worker_id]`` exists."""
    if not 0 <= worker_id < len(settings.senders):
        raise ConfigError(
            f"--id {worker_id}: no such worker; the settings define "
            f"{len(settings.senders)} (ids 0-{len(settings.senders) - 1})"
        )


def run(
    settings: Settings,
    *,
    stop: threading.Event,
    scenario: str = DEFAULT,
    worker_id: int,
    announcer: control.Announcer | None = None,
) -> int:
    """Run worker ``worker_id`` of ``scenario`` until ``stop``."""
    from herald.scenarios import base

    check_worker_id(settings, worker_id)
    worker = Worker(settings, scenario=base.get(scenario), worker_id=worker_id, announcer=announcer)
    return worker.run(stop)
