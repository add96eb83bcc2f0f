"""producer: turns each run request on ``herald.runs`` into its scenario's records.

The run request's offset is committed only after every record of the run is acknowledged by
the broker, so a run is never lost; a producer stopped mid-run leaves the request uncommitted
and the run is produced again, with the same ids and content (its seed is in the request), by
whichever producer picks it up. A run whose records cannot all be delivered is not committed
either: the request comes again after a backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import msgspec
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from herald import contracts, control, kafka
from herald.config import Settings
from herald.contracts import RunRequest
from herald.scenarios import base
from herald.scenarios.base import CountSource
from herald.services import common
from herald.services.dlq import DeadLetters

logger = logging.getLogger(__name__)

CHUNK = 1000  # records generated between looks at the stop flag and the rate


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
        kafka.consumer_config(
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
        )
    )
    dead = DeadLetters(producer, contracts.DLQ.qualified(ks.namespace), "producer")
    done_runs = [0]

    def on_assign(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if announcer is not None and partitions:
            announcer.ready(partitions)

    def handle(batch: kafka.Batch) -> bool:
        for _msg, request in batch.records:
            if not produce_run(producer, ks.namespace, request, stop=stop):
                if not stop.is_set():
                    logger.warning(
                        "run %s: not every record delivered; retrying the run", request.run_id
                    )
                return False
            done_runs[0] += 1
        return True

    consumer.subscribe([runs_topic], on_assign=on_assign)
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
        left = producer.flush(10)
        if left:
            logger.error("%d records left undelivered at shutdown", left)
    logger.info("producer stopped ◆ %d run(s) produced ◆ %d dead letters", done_runs[0], dead.count)
    return 0


def produce_run(
    producer: Producer, namespace: str, request: RunRequest, *, stop: threading.Event
) -> bool:
    """Produce every record of a run; True once the broker has acknowledged them all."""
    failures: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    source = base.get(request.scenario).source(request)
    assert isinstance(source, CountSource)
    encode = msgspec.json.Encoder().encode
    produce, poll = producer.produce, producer.poll
    topics: dict[str, str] = {}
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
            return False
        count = min(chunk, source.total - start)
        for emit in source.records(start, count):
            topic = topics.get(emit.topic.name)
            if topic is None:
                topic = topics[emit.topic.name] = emit.topic.qualified(namespace)
            value = encode(emit.value)
            while True:
                try:
                    produce(topic, value, emit.key, on_delivery=on_delivery)
                    break
                except BufferError:
                    if stop.is_set():
                        return False
                    poll(0.05)  # the local queue is full: let the broker catch up
        poll(0)
        sent += count
        if source.rate:
            ahead = started + sent / source.rate - time.monotonic()
            if ahead > 0:
                stop.wait(ahead)
        if failures:
            break
    if not _flush(producer, stop) or failures:
        if failures:
            logger.error(
                "run %s: %d deliveries failed: %s", request.run_id, len(failures), failures[0]
            )
        return False
    logger.info(
        "run %s: %d records acknowledged in %.2fs",
        request.run_id,
        source.total,
        time.monotonic() - started,
    )
    return True


def _flush(producer: Producer, stop: threading.Event) -> bool:
    """Wait until the producer's queue is empty; False if stopped first."""
    while producer.flush(0.5):
        if stop.is_set():
            return producer.flush(5) == 0
    return True
