"""Kafka client factories, topic setup, the broker wait every service starts with, and the one
consumer loop (:func:`run_consumer`) the producer, recorder and monitor share."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from confluent_kafka.cimpl import NewTopic

from herald.config import KafkaSettings, Settings
from herald.contracts import PLATFORM_TOPICS, Topic
from herald.errors import BrokerError
from herald.waiting import Backoff, Deadline, Episode, wait_until

if TYPE_CHECKING:
    from herald.services.dlq import DeadLetters

logger = logging.getLogger(__name__)

# The embedded broker (Tansu 0.6) holds every JoinGroup until half the session timeout has
# passed, checked once a second: a lone member joined in 2.0 s with 4 s sessions, 2.0 s with
# 3 s ones, 1.0 s with 2 s ones. 2 s is not stable, though: while a join is held the
# coordinator answers the other members' heartbeats with "rebalance in progress", which
# librdkafka does not count as an answer, so a member whose join took longer than a session
# times out by itself (logged SESSTMOUT "in join-state steady"); two spaceships joining 1.4 s
# apart then rebalanced every 3 s for a minute, and the fault suite failed in 5 rounds of 5.
# 4 s holds up.
EMBEDDED_SESSION_TIMEOUT_MS = 4000
EMBEDDED_HEARTBEAT_MS = 400


def for_embedded(settings: KafkaSettings, bootstrap: str) -> KafkaSettings:
    """``settings`` pointed at an embedded broker, with its short group timeouts unless set."""
    # Against the embedded broker only: its group joins take about half of the session
    # timeout, and a run's first result waits for them. Elsewhere Kafka's defaults stay.
    return settings.model_copy(
        update={
            "bootstrap": bootstrap,
            "session_timeout_ms": settings.session_timeout_ms or EMBEDDED_SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": settings.heartbeat_interval_ms or EMBEDDED_HEARTBEAT_MS,
        }
    )


def _base(settings: KafkaSettings, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """A client's properties: the connection and security settings, then ``defaults`` (the
    kind of client's), then ``kafka.client_config``, which wins over both."""
    if settings.bootstrap is None:
        raise BrokerError("kafka.bootstrap is unset and no embedded broker was started")
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        # librdkafka's own log lines go through Python logging, in the service's format.
        "logger": logging.getLogger("librdkafka"),
        "log.connection.close": False,
    }
    if settings.security_protocol != "plaintext":
        conf.update(settings.security_properties())
    conf.update(defaults or {})
    conf.update(settings.client_config)
    return conf


def producer_config(settings: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """An idempotent, batching producer (compressing when `kafka.compression` says so)."""
    conf = _base(
        settings,
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 512 * 1024,
            "compression.type": settings.compression,
        },
    )
    conf.update(overrides)
    return conf


# For a producer that only needs its failures (a transaction's commit, or a flush and the
# failures seen, says the rest): librdkafka then queues no delivery report for a record that
# was delivered, and the client makes no call per record.
ONLY_FAILURES_REPORTED = {"delivery.report.only.error": True}


def transactional_producer_config(
    settings: KafkaSettings, transactional_id: str, **overrides: Any
) -> dict[str, Any]:
    """A producer whose writes and consumed offsets commit atomically."""
    return producer_config(
        settings,
        **{
            "transactional.id": transactional_id,
            "transaction.timeout.ms": settings.transaction_timeout_ms,
            **ONLY_FAILURES_REPORTED,
            **overrides,
        },
    )


# A consumer that reads every partition of a busy topic (the recorder, the monitor: 12
# partitions of results) may be sent, and hold, up to max.partition.fetch.bytes of each
# partition at once, beyond queued.max.messages.kbytes. librdkafka counts those bytes as
# fetched, so compressed batches take several times more once decompressed: with lz4 and
# consumer_config's usual bounds the recorder peaked at 132-135 MiB in 1M-message runs (92-96
# without compression), with these at 94-96 MiB and the monitor at 62. The broker then spent
# 5.5-5.8 µs a message, against 8.8 without compression and 10.0-10.4 without compression but
# with these bounds (runs side by side): small uncompressed fetches cost it more, so these
# apply only while compression is on.
FAN_IN_COMPRESSED_FETCH: dict[str, Any] = {
    "max.partition.fetch.bytes": 32 * 1024,
    "queued.max.messages.kbytes": 512,
    "queued.min.messages": 1000,
}


def consumer_config(
    settings: KafkaSettings, group: str, *, fan_in: bool = False, **overrides: Any
) -> dict[str, Any]:
    """A read_committed consumer that commits only what its owner says is done; with
    ``fan_in``, one that reads every partition of a busy topic (``FAN_IN_COMPRESSED_FETCH``)."""
    defaults: dict[str, Any] = {
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        # librdkafka's 1000 ms default stalls a consumer working through a backlog.
        "fetch.queue.backoff.ms": 10,
        # Prefetch bounded: librdkafka's defaults (100,000 records a partition, up to
        # 64 MiB, fetches of 50 MiB) were most of the recorder's and the monitor's peak
        # RSS in a 1M run (181 / 113 MiB -> 102 / 72 MiB with 8 MiB and 4 MiB fetches,
        # -> 95-97 / 68 MiB with these); 4 MiB is still about a quarter of a second of
        # results at full speed, and the CPU per message did not move
        # (docs/benchmarks.md).
        "queued.max.messages.kbytes": 4 * 1024,
        "fetch.max.bytes": 2 * 1024 * 1024,
        "queued.min.messages": 10_000,
    }
    if fan_in and settings.compression != "none":
        defaults.update(FAN_IN_COMPRESSED_FETCH)
    if settings.session_timeout_ms is not None:
        defaults["session.timeout.ms"] = settings.session_timeout_ms
    if settings.heartbeat_interval_ms is not None:
        defaults["heartbeat.interval.ms"] = settings.heartbeat_interval_ms
    if settings.fetch_wait_max_ms is not None:
        defaults["fetch.wait.max.ms"] = settings.fetch_wait_max_ms
    conf = _base(settings, defaults)
    conf.update(overrides)
    return conf


# The embedded broker answers a waiting fetch only when its wait ends, not when a record
# arrives (see KafkaSettings.fetch_wait_max_ms): an idle consumer there sees a new record up to
# fetch.wait.max.ms late, 500 ms by default. A consumer of rare records that someone waits for
# (a run request, a service's readiness, a run's completion) asks for a short wait instead: its
# idle fetches cost the broker a fixed trickle of requests, not a cost per message.
PROMPT_FETCH_WAIT_MS = 10


def prompt_consumer_config(settings: KafkaSettings, group: str, **overrides: Any) -> dict[str, Any]:
    """:func:`consumer_config` with a short fetch wait (``PROMPT_FETCH_WAIT_MS``), whatever
    ``fetch_wait_max_ms`` says: for a consumer whose every record someone is waiting for."""
    return consumer_config(
        settings, group, **{"fetch.wait.max.ms": PROMPT_FETCH_WAIT_MS, **overrides}
    )


def admin(settings: KafkaSettings) -> AdminClient:
    """An admin client."""
    return AdminClient(_base(settings))


def wait_for_broker(
    settings: KafkaSettings, *, stop: Callable[[], bool] | None = None, brokers: int = 1
) -> set[str]:
    """Block until the broker answers a metadata request that lists at least ``brokers``
    brokers, or raise :class:`BrokerError`; return the names of the topics it has (so that
    :func:`ensure_topics` need not ask).

    An authentication or TLS failure (a wrong password, a broker certificate not trusted, a
    client certificate refused) raises at once, saying which and naming the setting to fix,
    never a password: waiting would not mend it."""
    from herald.runtime.kafka_security import explain_connection_error, problem_kind

    refusals: list[KafkaError] = []

    def on_error(err: KafkaError) -> None:
        if problem_kind(err) is not None:
            refusals.append(err)

    conf = _base(settings)
    with_errors: dict[str, Any] = {**conf, "error_cb": on_error}
    client = AdminClient(with_errors)
    away = Episode(
        logger,
        f"waiting for Kafka at {settings.bootstrap} "
        f"(up to {settings.connect_timeout_secs:g}s, kafka.connect_timeout_secs)",
    )
    stopped = threading.Event()
    topics: set[str] = set()

    def answers() -> bool:
        if stop is not None and stop():
            stopped.set()
            return True
        try:
            metadata = client.list_topics(timeout=1.0)
        except KafkaException as exc:
            client.poll(0)  # serves error_cb
            if refusals:
                raise BrokerError(
                    f"cannot connect to Kafka at {settings.bootstrap}: "
                    f"{explain_connection_error(refusals[0], conf)}"
                ) from None
            away.seen(reason(exc))
            return False
        if len(metadata.brokers) < brokers:
            away.seen(f"{len(metadata.brokers)} of {brokers} brokers in the cluster")
            return False
        topics.update(metadata.topics)
        away.over()
        return True

    def failed(_message: str) -> BrokerError:
        return BrokerError(
            f"Kafka at {settings.bootstrap} unreachable after "
            f"{settings.connect_timeout_secs:g}s (kafka.connect_timeout_secs)"
        )

    wait_until(
        answers, timeout=settings.connect_timeout_secs, what="Kafka", every=0.1, error=failed
    )
    if stopped.is_set():
        raise BrokerError(
            f"Kafka at {settings.bootstrap} unreachable (stopped while waiting for it)"
        )
    return topics


def all_topics(settings: Settings | None = None) -> tuple[Topic, ...]:
    """The platform's topics and every scenario's (under the names ``settings`` give them)."""
    from herald import timers
    from herald.scenarios.base import all_topics as scenario_topics

    return (*PLATFORM_TOPICS, *timers.TOPICS, *scenario_topics(settings))


def min_insync_replicas(replication_factor: int) -> int:
    """``min.insync.replicas`` for a topic of ``replication_factor`` copies: all but one (2 of
    3), so that an ``acks=all`` write survives one broker down and is on two brokers."""
    return max(1, replication_factor - 1)


def topic_config(replication_factor: int) -> dict[str, str]:
    """The settings herald creates a topic with: ``min.insync.replicas`` when it is replicated
    (set on the topic, not left to a cluster's default; a single copy keeps the broker's)."""
    if replication_factor == 1:
        return {}
    return {"min.insync.replicas": str(min_insync_replicas(replication_factor))}


def ensure_topics(
    settings: KafkaSettings,
    topics: Iterable[Topic] | None = None,
    *,
    existing: set[str] | None = None,
) -> list[str]:
    """Create the topics (default: every topic) that do not exist yet; return those created.

    ``existing``: the topics the broker is known to have (from :func:`wait_for_broker`);
    when every topic wanted is among them, the broker is not asked again."""
    names = {t.qualified(settings.namespace) for t in (all_topics() if topics is None else topics)}
    if existing is not None and names <= existing:
        return []
    client = admin(settings)
    existing = set(client.list_topics(timeout=10).topics)
    wanted = [
        NewTopic(
            t.qualified(settings.namespace),
            num_partitions=t.partitions or settings.partitions,
            replication_factor=settings.replication_factor,
            config=topic_config(settings.replication_factor),
        )
        for t in (all_topics() if topics is None else topics)
        if t.qualified(settings.namespace) not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in client.create_topics(wanted, request_timeout=15).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerError(f"cannot create topic {name}: {exc}") from None
    logger.info("created topics %s", ", ".join(sorted(created)))
    _wait_for_leaders(client, created)
    return created


def _wait_for_leaders(client: AdminClient, topics: Sequence[str], timeout: float = 60.0) -> None:
    """Until every partition of ``topics`` answers a ListOffsets: Apache Kafka answers a
    creation before its brokers have made the new partitions (seconds for a hundred on a busy
    machine), and a read of them meanwhile fails with NOT_LEADER_FOR_PARTITION."""
    if not topics:
        return
    meta = client.list_topics(timeout=10).topics
    asked = {
        TopicPartition(name, p): OffsetSpec.latest()  # type: ignore[no-untyped-call]
        for name in topics
        if name in meta
        for p in meta[name].partitions
    }
    deadline = Deadline(timeout)
    while asked:
        futures = client.list_offsets(asked, request_timeout=max(1.0, deadline.remaining))
        for tp, future in futures.items():
            try:
                future.result()
                asked.pop(tp)
            except KafkaException as exc:
                err = exc.args[0]
                if not _not_ready_yet(err) or deadline.expired():
                    raise BrokerError(
                        f"topic {tp.topic} partition {tp.partition} not ready: {err.str()}"
                    ) from None
        if asked:
            time.sleep(0.2)


_NOT_READY = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.UNKNOWN_LEADER_EPOCH,
    KafkaError.FENCED_LEADER_EPOCH,
    KafkaError.REPLICA_NOT_AVAILABLE,
}


def _not_ready_yet(err: KafkaError) -> bool:
    # librdkafka does not flag a partition's own error in a ListOffsets answer as retriable.
    return bool(err.retriable()) or err.code() in _NOT_READY


def partitions_of(consumer: Consumer, topic: str, timeout: float = 10.0) -> list[TopicPartition]:
    """Every partition of ``topic`` (waits for the topic's metadata)."""

    def found() -> list[TopicPartition]:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is not None and meta.error is None and meta.partitions:
            return [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        return []

    what = f"topic {topic} has no partitions"
    parts = wait_until(found, timeout=timeout, what=what, every=0.1, error=BrokerError)
    assert parts is not None
    return parts


def offsets_for_times(
    consumer: Consumer, partitions: list[TopicPartition], timeout: float = 30.0
) -> list[TopicPartition]:
    """``consumer.offsets_for_times``, asked again while the broker answers with a retriable
    error: Apache Kafka answers NOT_LEADER_FOR_PARTITION for a moment after a topic is made,
    or while a broker that led a partition is down."""
    deadline = Deadline(timeout)
    while True:
        try:
            found: list[TopicPartition] = consumer.offsets_for_times(
                partitions, timeout=max(0.5, deadline.remaining)
            )
            return found
        except KafkaException as exc:
            err = exc.args[0]
            if not _not_ready_yet(err) or deadline.expired():
                raise BrokerError(f"cannot look up offsets by time: {err.str()}") from None
            time.sleep(0.1)


def raise_if_fatal(err: KafkaError, episode: Episode) -> None:
    """Raise :class:`BrokerError` for a fatal error; note a retriable one (once per episode).

    A partition's end (``_PARTITION_EOF``) is not an error and is ignored.
    """
    if err.code() == KafkaError._PARTITION_EOF:
        return
    if err.fatal():
        raise BrokerError(f"fatal Kafka error: {err.str()}")
    episode.seen(f"{err.str()} (retriable={err.retriable()})")


def reason(exc: KafkaException) -> str:
    """The error's own text, without the exception's wrapping."""
    err = exc.args[0] if exc.args else None
    return str(err.str()) if isinstance(err, KafkaError) else str(exc)


def names(partitions: Iterable[TopicPartition]) -> str:
    """``topic[p],topic[q]``: partitions for a log line."""
    return ",".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)


# -- the consumer loop ------------------------------------------------------------------------

Decoder = Callable[[bytes], Any]


@dataclass
class Batch:
    """One consumed batch, decoded: ``(message, value)`` pairs in consumption order."""

    records: list[tuple[Message, Any]] = field(default_factory=list)
    # Every record consumed, dead-lettered and undecoded ones included.
    consumed: Sequence[Message] = ()

    @property
    def ends(self) -> dict[tuple[str, int], int]:
        """Per (topic, partition): the offset after the batch's last record, dead-lettered ones
        included (what a consumer that commits by itself may commit once the batch is done).
        Worked out when asked: most consumers never ask."""
        return {
            (msg.topic() or "", msg.partition() or 0): (msg.offset() or 0) + 1
            for msg in self.consumed
            if msg.error() is None
        }

    def of(self, topic: str) -> list[Any]:
        """The decoded values of ``topic``'s records."""
        return [value for msg, value in self.records if msg.topic() == topic]


@dataclass
class LoopStats:
    """What a consumer loop did."""

    batches: int = 0
    records: int = 0
    dead_letters: int = 0  # invalid records sent to the dead-letter topic
    skipped: int = 0  # invalid records this consumer may not dead-letter (counted, logged)


# How long a member's close may wait to leave its group. A member that leaves while its
# coordinator holds a rebalance that another member's leave started waits for that join's
# answer first: on the embedded broker for a whole hold (see EMBEDDED_SESSION_TIMEOUT_MS).
# Measured on it with 4 s sessions: the last of 4 members, closed 0.2 s after the others,
# took 1.9 s to close (0.0 s when all closed at once), and a 100k-message run's shut-down
# waited 2 s for one sender so. A close without that wait takes milliseconds.
LEAVE_WAIT_SECS = 0.3


def close_consumer(consumer: Consumer, name: str, wait: float = LEAVE_WAIT_SECS) -> bool:
    """Close ``consumer`` (its revoke callback, then its leave of the group), waiting at most
    ``wait`` seconds; True if it closed. Called once its work is committed and nothing of it
    is open: if the close is still waiting for the coordinator then, the process may exit
    without it, and the coordinator drops the member when its session times out."""
    closer = threading.Thread(target=consumer.close, name=f"{name}-close", daemon=True)
    closer.start()
    closer.join(wait)
    if closer.is_alive():
        logger.info(
            "%s: the group coordinator is holding a rebalance; not waiting %gs+ for it to "
            "leave the group (its session ends it)",
            name,
            wait,
        )
        return False
    return True


@functools.cache  # once per process
def freeze_heap() -> None:
    """Move everything alive now (modules, settings, clients: what a service set up before
    its loop) out of the garbage collector's sight. The loop's records are
    short-lived, yet each full collection would otherwise walk every object the imports made,
    SQLAlchemy's above all: that was a third of the recorder's CPU (py-spy, 200,000 messages;
    recorder CPU 1.2 s -> 1.0 s per 100,000)."""
    import gc

    gc.collect()
    gc.freeze()


def run_consumer(
    consumer: Consumer,
    *,
    decoders: Mapping[str, Decoder],
    handle: Callable[[Batch], bool | None],
    stop: threading.Event,
    service: str,
    dead_letters: DeadLetters | None = None,
    commit: bool = True,
    batch_size: int = 500,
    timeout: float = 0.1,
    idle: Callable[[], None] | None = None,
    until: Callable[[], bool] | None = None,
) -> LoopStats:
    """Poll ``consumer`` until ``stop`` (or ``until()``); decode, dead-letter, hand each batch
    to ``handle``, commit after it, and close the consumer.

    * Errors: a fatal one raises :class:`BrokerError`; a retriable one is logged once per
      episode (and once when it is over); a partition's end is ignored.
    * Decoding: by the record's topic, with ``decoders`` (qualified topic name -> decode
      function). A record that fails goes to ``dead_letters`` with the reason (flushed before
      the commit), or, for a consumer that may not dead-letter (a monitor), is counted and
      logged; either way the pipeline goes on.
    * Commit: with ``commit``, the offsets of a batch are committed after ``handle`` returns,
      that is after its work is durable. ``handle`` returning False means "not done": nothing
      of the batch is committed, the consumer is rewound to the batch's first offsets, and the
      batch comes again after a backoff.
    * ``idle`` runs after every poll, records or not (refreshes, timers). The consumer is
      closed in every case.
    """
    loop = _Loop(consumer, decoders, service, dead_letters)
    retry = Backoff(initial=0.2, maximum=5.0)
    freeze_heap()
    try:
        while not stop.is_set() and (until is None or not until()):
            msgs = consumer.consume(batch_size, timeout)
            if msgs:
                batch, dead = loop.decode(msgs)
                done = handle(batch) if batch.records else True
                if done is False:
                    rewind(consumer, msgs)
                    retry.wait(stop)
                else:
                    retry.reset()
                    if dead and dead_letters is not None:
                        dead_letters.flush_or_raise(10)
                    if commit:
                        _commit(consumer, msgs, loop.commits)
                # Not held while the next batch is consumed: two batches' records at once
                # would double the loop's share of the service's memory.
                del msgs, batch
            if idle is not None:
                idle()
    finally:
        # No last commit of the consumer's positions: every handled batch is committed as soon
        # as it is durable, and a batch whose handling failed must not be.
        close_consumer(consumer, service)
    return loop.stats


class _Loop:
    """The consumer loop's bookkeeping: decoding, dead letters, episodes of errors."""

    def __init__(
        self,
        consumer: Consumer,
        decoders: Mapping[str, Decoder],
        service: str,
        dead_letters: DeadLetters | None,
    ) -> None:
        self.stats = LoopStats()
        self._decoders = decoders
        self._dead_letters = dead_letters
        self._errors = Episode(logger, f"{service}: Kafka consumer error")
        self._invalid = Episode(logger, f"{service}: invalid records")
        self.commits = Episode(logger, f"{service}: offset commit failed")

    def decode(self, msgs: Sequence[Message]) -> tuple[Batch, bool]:
        """The batch's decoded records, and whether any record was dead-lettered."""
        # This loop runs once per record of every consumer that uses it: its lookups are
        # hoisted, and a record costs one call of each accessor it needs.
        batch = Batch(consumed=msgs)
        append, decoders = batch.records.append, self._decoders
        dead = False
        erring = self._errors.active
        for msg in msgs:
            if (err := msg.error()) is not None:
                raise_if_fatal(err, self._errors)
                erring = self._errors.active
                continue
            if erring:  # a record after errors: the episode is over
                self._errors.over()
                erring = False
            decode = decoders.get(msg.topic() or "")
            if decode is None:
                continue
            try:
                append((msg, decode(msg.value() or b"")))
            except (msgspec.DecodeError, ValueError) as exc:
                reason_ = f"{type(exc).__name__}: {exc}"
                if self._dead_letters is not None:
                    self._dead_letters.send(msg, reason_)
                    self.stats.dead_letters += 1
                    dead = True
                else:
                    self.stats.skipped += 1
                    where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
                    self._invalid.seen(f"{where}: {reason_}")
        self.stats.batches += 1
        self.stats.records += len(batch.records)
        return batch, dead


def _commit(consumer: Consumer, msgs: Sequence[Message], failed: Episode) -> None:
    offsets: dict[tuple[str, int], int] = {}
    for msg in msgs:
        if msg.error() is None:
            offsets[(msg.topic() or "", msg.partition() or 0)] = (msg.offset() or 0) + 1
    if not offsets:
        return
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
        )
    except KafkaException as exc:
        # Rebalanced meanwhile: the partition's next owner consumes from the last committed
        # offset, and idempotent writes make the replay harmless.
        failed.seen(reason(exc))
    else:
        failed.over()


def rewind(consumer: Consumer, msgs: Sequence[Message]) -> None:
    """Seek each partition of ``msgs`` back to its first record among them."""
    first: dict[tuple[str, int], int] = {}
    for msg in msgs:
        if msg.error() is None:
            first.setdefault((msg.topic() or "", msg.partition() or 0), msg.offset() or 0)
    for (topic, partition), offset in first.items():
        try:
            consumer.seek(TopicPartition(topic, partition, offset))
        except KafkaException as exc:  # revoked meanwhile: its next owner consumes it
            logger.info("not rewound %s[%d]: %s", topic, partition, reason(exc))
