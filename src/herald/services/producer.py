"""producer: turns each run request on ``herald.runs`` into N SMS messages on the outbound topic.

The run request's offset is committed only after every message of the run is acknowledged
by the broker, so a run is never lost; a producer stopped mid-run leaves the request
uncommitted and the run is produced again, with the same ids and content (its seed is in
the request), by whichever producer picks it up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from herald import contracts, kafka
from herald.config import Settings
from herald.contracts import RunRequest
from herald.errors import BrokerError
from herald.scenarios.sms import SmsGenerator
from herald.services import _common
from herald.services.dlq import DeadLetters

logger = logging.getLogger(__name__)

CHUNK = 1000  # messages generated between looks at the stop flag and the rate


def main(argv: Sequence[str] | None = None) -> int:
    """``herald producer``: run until stopped."""
    args = _common.parser("producer", __doc__.splitlines()[0]).parse_args(
        _common.argv_or_default(argv)
    )
    return _common.service_main(args, lambda s, stop: run(s, stop=stop, ready_file=args.ready_file))


def run(
    settings: Settings,
    *,
    stop: threading.Event,
    max_runs: int | None = None,
    ready_file: Path | None = None,
) -> int:
    """Consume run requests and produce their messages until ``stop`` (or ``max_runs``)."""
    ks = settings.kafka
    kafka.wait_for_broker(ks, stop=stop.is_set)
    runs_topic = contracts.RUNS.qualified(ks.namespace)
    outbound = contracts.OUTBOUND.qualified(ks.namespace)
    consumer = Consumer(
        kafka.consumer_config(
            ks,
            contracts.group_id(ks.namespace, "producers"),
            **{
                "max.poll.interval.ms": 3_600_000,  # producing one large run can take a while
            },
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
    decoder = msgspec.json.Decoder(RunRequest)
    done_runs = 0
    consumer.subscribe(
        [runs_topic], on_assign=lambda _c, parts: _common.mark_ready(ready_file, parts)
    )
    logger.info("producer ready: %s -> %s", runs_topic, outbound)
    try:
        while not stop.is_set() and (max_runs is None or done_runs < max_runs):
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if (err := msg.error()) is not None:
                kafka.raise_if_fatal(err, "producer poll")
                continue
            try:
                request = decoder.decode(msg.value() or b"")
            except msgspec.ValidationError as exc:
                dead.send(msg, f"invalid run request: {exc}")
                _flush(producer, stop)
                _commit(consumer, msg, "an invalid run request")
                continue
            if produce_run(producer, outbound, request, stop=stop):
                _commit(consumer, msg, f"run {request.run_id}")
                done_runs += 1
            else:
                logger.warning(
                    "run %s interrupted before all %d messages were acknowledged; "
                    "its request stays uncommitted and the run will be produced again",
                    request.run_id,
                    request.messages,
                )
    finally:
        consumer.close()
        left = producer.flush(10)
        if left:
            logger.error("%d records left undelivered at shutdown", left)
    logger.info("producer stopped ◆ %d run(s) produced", done_runs)
    return 0


def produce_run(
    producer: Producer, topic: str, request: RunRequest, *, stop: threading.Event
) -> bool:
    """Produce every message of a run; True once the broker has acknowledged them all."""
    failures: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    encode = msgspec.json.Encoder().encode
    generator = SmsGenerator(request.run_id, request.seed)
    produce, poll = producer.produce, producer.poll
    started = time.monotonic()
    logger.info(
        "run %s: producing %d messages to %s%s",
        request.run_id,
        request.messages,
        topic,
        f" at {request.rate:g}/s" if request.rate else "",
    )
    sent = 0
    # A rate-limited run is produced in chunks of about 20 ms worth of messages.
    chunk = max(1, min(CHUNK, int(request.rate / 50))) if request.rate else CHUNK
    for start in range(0, request.messages, chunk):
        if stop.is_set():
            return False
        count = min(chunk, request.messages - start)
        for message in generator.messages(count, start=start):
            value = encode(message)
            while True:
                try:
                    produce(topic, value, message.id, on_delivery=on_delivery)
                    break
                except BufferError:
                    if stop.is_set():
                        return False
                    poll(0.05)  # the local queue is full: let the broker catch up
        poll(0)
        sent += count
        if request.rate:
            ahead = started + sent / request.rate - time.monotonic()
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
        "run %s: %d messages acknowledged in %.2fs",
        request.run_id,
        request.messages,
        time.monotonic() - started,
    )
    return True


def _commit(consumer: Consumer, msg: Message, what: str) -> None:
    """Commit a handled run request; a rebalance in between is logged, not fatal."""
    try:
        consumer.commit(message=msg, asynchronous=False)
    except KafkaException as exc:
        err: KafkaError = exc.args[0]
        if err.fatal():
            raise BrokerError(f"producer: fatal error committing {what}: {err.str()}") from None
        # The group moved on (this producer was too slow to answer it): the request's new
        # owner produces the run again, with the same ids and content, counted once below.
        logger.warning("could not commit %s (%s); it may be produced again", what, err.str())


def _flush(producer: Producer, stop: threading.Event) -> bool:
    """Wait until the producer's queue is empty; False if stopped first."""
    while producer.flush(0.5):
        if stop.is_set():
            return producer.flush(5) == 0
    return True
