"""producer: turns each run request on ``herald.runs`` into its scenario's records.

The run request's offset is committed only after every record of the run is acknowledged by
the broker, so a run is never lost; a producer stopped mid-run leaves the request uncommitted
and the run is produced again, with the same ids and content (its seed is in the request), by
whichever producer picks it up. A run whose records cannot all be delivered is not committed
either: the request comes again after a backoff.

A scenario's source is a count (records ``start, count`` at a time, paced by a rate) or a
timeline (:class:`herald.scenarios.base.TimelineSource`): every ``frequency`` seconds the
events its clock makes due, at most ``batch_size`` a tick, with the records of its input
topic for the run merged in before each tick — one wait a tick, never one per event. A
timeline's size is known only once it is produced: the producer then announces it on the
control topic (:class:`herald.contracts.RunProduced`), in the same flush as the records. A
timeline may run for hours: meanwhile the producer keeps its place in its consumer group (its
partitions paused, polled every tick), and gives the run up if a rebalance takes it away.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec
from confluent_kafka import (
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from herald import contracts, control, kafka
from herald.config import Settings
from herald.contracts import RunProduced, RunRequest
from herald.scenarios import base
from herald.scenarios.base import CountSource, TimelineRun, TimelineSource
from herald.services import common
from herald.services.dlq import DeadLetters
from herald.waiting import Episode

logger = logging.getLogger(__name__)

CHUNK = 1000  # records generated between looks at the stop flag and the rate
FINISHED_KEPT = 10_000  # run ids remembered as produced to the end


def main(argv: Sequence[str] | None = None) -> int:
    """``herald producer``: run until stopped."""
    args = common.parser("producer", __doc__.splitlines()[0]).parse_args(
        common.argv_or_default(argv)
    )
    return common.service_main(
        args, lambda s, stop, announcer: run(s, stop=stop, announcer=announcer), service="producer"
    )


def run(
    settings: Settings,
    *,
    stop: threading.Event,
    max_runs: int | None = None,
    announcer: control.Announcer | None = None,
) -> int:
    """Consume run requests and produce their records until ``stop`` (or ``max_runs``)."""
    ks = settings.kafka
    runs_topic = contracts.RUNS.qualified(ks.namespace)
    consumer = Consumer(
        # A run request is rare and its first result waits for it: a prompt fetch.
        kafka.prompt_consumer_config(
            ks,
            contracts.group_id(ks.namespace, "producers"),
            **{"max.poll.interval.ms": 3_600_000},  # producing one large run can take a while
        )
    )
    producer = Producer(
        kafka.producer_config(
            ks,
            # A bounded queue: memory stays flat however large the run.
            **{"queue.buffering.max.messages": 100_000, "queue.buffering.max.kbytes": 32 * 1024},
            # A run's records need only their failures reported (_Output.on_delivery).
            **kafka.ONLY_FAILURES_REPORTED,
        )
    )
    dead = DeadLetters(producer, contracts.DLQ.qualified(ks.namespace), "producer")
    done_runs = [0]
    place = _Place(consumer)
    # Runs this process has produced to the end (every record acknowledged): a request that
    # comes again because its offset commit failed (the group lost this member meanwhile, e.g.
    # while its coordinator's broker was down) is committed, not produced a second time.
    finished: OrderedDict[str, None] = OrderedDict()

    def on_assign(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if announcer is not None and partitions:
            announcer.ready(partitions)

    def handle(batch: kafka.Batch) -> bool:
        for msg, request in batch.records:
            if request.run_id in finished:
                logger.warning(
                    "run %s: its request came again after this producer produced it to the end "
                    "(the offset commit failed); committed, not produced twice",
                    request.run_id,
                )
                continue
            with place.holding(msg):
                done = produce_run(
                    producer,
                    ks.namespace,
                    request,
                    stop=stop,
                    settings=settings,
                    keepalive=place.poll,
                    lost=place.lost,
                )
            if not done:
                if place.lost():
                    logger.warning(
                        "run %s: its request was reassigned; giving it up", request.run_id
                    )
                elif not stop.is_set():
                    logger.warning(
                        "run %s: not every record delivered; retrying the run", request.run_id
                    )
                return False
            done_runs[0] += 1
            finished[request.run_id] = None
            while len(finished) > FINISHED_KEPT:
                finished.popitem(last=False)
        return True

    consumer.subscribe(
        [runs_topic], on_assign=on_assign, on_revoke=place.revoked, on_lost=place.revoked
    )
    logger.info("producer ready: %s -> scenarios %s", runs_topic, ", ".join(base.scenarios()))
    try:
        kafka.run_consumer(
            consumer,
            decoders={runs_topic: base.decode_request},
            handle=handle,
            stop=stop,
            service="producer",
            dead_letters=dead,
            batch_size=1,
            timeout=0.2,
            until=lambda: max_runs is not None and done_runs[0] >= max_runs,
        )
    finally:
        # What is left is a run not produced to the end (its request is not committed: it is
        # produced again) or dead letters: 5 s, so that this, the group's leave and the last
        # announcement fit within the time a run gives a service to stop (15 s).
        left = producer.flush(5)
        if left:
            logger.error("%d records left undelivered at shutdown", left)
    logger.info("producer stopped ◆ %d run(s) produced ◆ %d dead letters", done_runs[0], dead.count)
    return 0


def produce_run(
    producer: Producer,
    namespace: str,
    request: RunRequest,
    *,
    stop: threading.Event,
    settings: Settings | None = None,
    keepalive: Callable[[], None] | None = None,
    lost: Callable[[], bool] | None = None,
) -> bool:
    """Produce every record of a run; True once the broker has acknowledged them all.

    ``settings`` give the topics' names (renamed ones) and where a timeline's input topic is;
    ``keepalive`` runs once a tick of a timeline, and ``lost()`` True gives the run up."""
    source = base.get(request.scenario).source(request)
    out = _Output(producer, namespace, settings, stop)
    started = time.monotonic()
    if isinstance(source, TimelineSource):
        produced = _produce_timeline(
            out, request, source, stop=stop, settings=settings, keepalive=keepalive, lost=lost
        )
        if produced is None:
            return False
        # Its size, known now: in the same flush as its records, so that it is acknowledged
        # before the request's offset is committed.
        event = RunProduced(
            run_id=request.run_id,
            scenario=request.scenario,
            produced=produced,
            at=datetime.now(UTC),
        )
        out.send(contracts.CONTROL, request.run_id, event)
    else:
        produced = _produce_count(out, request, source, stop=stop)
        if produced is None:
            return False
    if not _flush(producer, stop) or out.failures:
        if out.failures:
            logger.error(
                "run %s: %d deliveries failed: %s",
                request.run_id,
                len(out.failures),
                out.failures[0],
            )
        return False
    logger.info(
        "run %s: %d records acknowledged in %.2fs",
        request.run_id,
        produced,
        time.monotonic() - started,
    )
    return True


class _Output:
    """Where a run's records go: topics by name (renamed by the settings), encoded once."""

    def __init__(
        self,
        producer: Producer,
        namespace: str,
        settings: Settings | None,
        stop: threading.Event,
    ) -> None:
        self.producer = producer
        self._stop = stop
        self.failures: list[KafkaError] = []
        self._namespace = namespace
        self._settings = settings
        self.names: dict[str, str] = {}  # a topic's name in the contracts -> its qualified name
        self.encode = msgspec.json.Encoder().encode

    def on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.failures.append(err)

    def name(self, topic: contracts.Topic) -> str:
        """The topic's qualified (and possibly renamed) name."""
        name = self.names.get(topic.name)
        if name is None:
            name = base.renamed(topic, self._settings).qualified(self._namespace)
            self.names[topic.name] = name
        return name

    def send(self, topic: contracts.Topic, key: str, value: msgspec.Struct) -> bool:
        """Queue one record (waiting while the local queue is full); False if stopped."""
        return self.send_encoded(self.name(topic), key, self.encode(value))

    def send_encoded(self, name: str, key: str, encoded: bytes) -> bool:
        """:meth:`send` for a record encoded already, to a topic by its qualified name."""
        while True:
            try:
                self.producer.produce(name, encoded, key, on_delivery=self.on_delivery)
                return True
            except BufferError:
                if self._stop.is_set():
                    return False
                self.producer.poll(0.05)  # the local queue is full: let the broker catch up


ANY = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the configured partitioner chooses


def _produce_count(
    out: _Output, request: RunRequest, source: CountSource, *, stop: threading.Event
) -> int | None:
    """A count source's records, paced; how many, or None if stopped or failed."""
    poll, produce = out.producer.poll, out.producer.produce
    encode, done, names = out.encode, out.on_delivery, out.names
    started = time.monotonic()
    logger.info(
        "run %s (%s): producing %d records%s",
        request.run_id,
        request.scenario,
        source.total,
        f" at {source.rate:g}/s" if source.rate else "",
    )
    sent = 0
    # A rate-limited run is produced in chunks of about 20 ms worth of records.
    chunk = max(1, min(CHUNK, int(source.rate / 50))) if source.rate else CHUNK
    for start in range(0, source.total, chunk):
        if stop.is_set():
            return None
        count = min(chunk, source.total - start)
        for topic, key, value in source.records(start, count):
            encoded = encode(value)
            try:  # out.send, inlined: this loop runs once per record
                # Positional (topic, value, key, partition, on_delivery, as documented):
                # keyword arguments cost 0.6 µs a call more.
                produce(names.get(topic.name) or out.name(topic), encoded, key, ANY, done)
            except BufferError:
                if not out.send_encoded(out.name(topic), key, encoded):
                    return None
        poll(0)
        sent += count
        if source.rate:
            ahead = started + sent / source.rate - time.monotonic()
            if ahead > 0:
                stop.wait(ahead)
        if out.failures:
            return None
    return sent


def _produce_timeline(
    out: _Output,
    request: RunRequest,
    source: TimelineSource,
    *,
    stop: threading.Event,
    settings: Settings | None,
    keepalive: Callable[[], None] | None,
    lost: Callable[[], bool] | None,
) -> int | None:
    """A timeline's events, tick by tick; how many, or None if stopped, lost or failed."""
    clock = source.clock
    logger.info(
        "run %s (%s): timeline from %s at %s, a tick every %gs of up to %d events",
        request.run_id,
        request.scenario,
        datetime.fromtimestamp(clock.start, UTC).isoformat(),
        f"{clock.speed:g}x" if clock.speed else "maximum speed",
        source.frequency,
        source.batch_size,
    )
    run = TimelineRun(source)
    inputs = _Inputs(settings, source, request) if source.inputs is not None else None
    largest_backlog = 0

    def before() -> None:
        if keepalive is not None:
            keepalive()
        if inputs is not None:
            inputs.merge()

    try:
        for tick, emits in run.ticks(stop, before=before):
            for emit in emits:
                if not out.send(emit.topic, emit.key, emit.value):
                    return None
            out.producer.poll(0)
            if tick.backlog > largest_backlog:
                largest_backlog = tick.backlog
                logger.info(
                    "run %s: %s%d events due wait for a later tick (%d published)",
                    request.run_id,
                    "at least " if tick.backlog_capped else "",
                    tick.backlog,
                    run.published,
                )
            if out.failures or (lost is not None and lost()):
                return None
            if run.done and inputs is not None:
                # The last look: an input record made just before the end must not be missed.
                inputs.merge(until_end=True)
        if stop.is_set() or not run.done:
            return None
    finally:
        if inputs is not None:
            inputs.close()
    logger.info(
        "run %s: %d events in %d ticks (largest backlog %d)",
        request.run_id,
        run.published,
        run.ticker.ticks,
        largest_backlog,
    )
    return run.published


class _Inputs:
    """A timeline's input topic, read for one run: its records (keyed by run id) from the
    run's request on, every partition, no consumer group; merged into the timeline as read."""

    def __init__(self, settings: Settings | None, source: TimelineSource, request: RunRequest):
        assert source.inputs is not None and source.merge is not None
        if settings is None:
            raise ValueError("a timeline with inputs needs the settings (where the broker is)")
        self._merge = source.merge
        self._run_id = request.run_id
        self._decode = msgspec.json.Decoder(source.inputs.payload).decode
        ks = settings.kafka
        # A short fetch wait: an input is due two ticks after it is made, which at a high
        # speed is a fraction of the broker's default 500 ms wait.
        self._consumer = Consumer(
            kafka.prompt_consumer_config(
                ks, f"herald-inputs-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True}
            )
        )
        topic = source.inputs.qualified(ks.namespace)
        parts = kafka.partitions_of(self._consumer, topic)
        # An input of the run is made after its request: read from then (a second early, for
        # clocks that differ), not from the topic's beginning.
        since = int(request.requested_at.timestamp() * 1000) - 1000
        for tp in parts:
            tp.offset = since
        found = kafka.offsets_for_times(self._consumer, parts)
        self._consumer.assign(
            [
                TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                for tp in found
            ]
        )
        self._partitions = len(parts)
        self._at_end: set[int] = set()  # partitions read to their end (a record arrived: not)
        self._errors = Episode(logger, f"run {request.run_id}: input topic")
        # What was journaled before the run starts (or before a restart) joins the timeline
        # before its first tick, however long the first fetch takes.
        self.merge(until_end=True)

    def merge(self, *, until_end: bool = False, timeout: float = 5.0) -> None:
        """Merge what has arrived; ``until_end``: until every partition is read to its end."""
        at_end = self._at_end
        deadline = time.monotonic() + timeout
        while True:
            msgs = self._consumer.consume(500, 0.05 if until_end else 0)
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition() or 0)
                    else:
                        kafka.raise_if_fatal(err, self._errors)
                    continue
                at_end.discard(msg.partition() or 0)
                if msg.key() != self._run_id.encode():
                    continue
                try:
                    self._merge(self._decode(msg.value() or b""))
                except (msgspec.DecodeError, ValueError) as exc:
                    logger.warning("input record at offset %d skipped: %s", msg.offset(), exc)
            if not until_end:
                if len(msgs) < 500:
                    return
            elif len(at_end) >= self._partitions or time.monotonic() > deadline:
                return

    def close(self) -> None:
        self._consumer.close()


class _Place:
    """The producer's place in its group while it produces a run that may take hours: its
    partitions paused, the consumer polled every tick (so that the group keeps it), what it
    fetched meanwhile read again afterwards, and the run given up if its partition is revoked."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self._holding: tuple[str, int] | None = None
        self._fetched: list[Message] = []
        self._paused = False
        self._lost = False

    def holding(self, msg: Message) -> _Place:
        self._holding = (msg.topic() or "", msg.partition() or 0)
        self._lost = False
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        if self._paused:
            try:
                self._consumer.resume(self._consumer.assignment())
            except KafkaException as exc:
                logger.warning("resume: %s", kafka.reason(exc))
            kafka.rewind(self._consumer, self._fetched)
        self._fetched, self._paused, self._holding = [], False, None

    def poll(self) -> None:
        """Poll the paused consumer: heartbeats, rebalances, and the poll interval reset."""
        held = self._consumer.assignment()
        if held:
            try:
                self._consumer.pause(held)  # partitions assigned meanwhile are paused too
                self._paused = True
            except KafkaException as exc:  # rebalanced meanwhile: looked at again next tick
                logger.debug("pause: %s", kafka.reason(exc))
        for msg in self._consumer.consume(100, 0):
            if msg.error() is None:
                self._fetched.append(msg)

    def revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._holding is not None and any(
            (tp.topic, tp.partition) == self._holding for tp in partitions
        ):
            self._lost = True

    def lost(self) -> bool:
        return self._lost


def _flush(producer: Producer, stop: threading.Event) -> bool:
    """Wait until the producer's queue is empty; False if stopped first."""
    while producer.flush(0.5):
        if stop.is_set():
            return producer.flush(5) == 0
    return True
