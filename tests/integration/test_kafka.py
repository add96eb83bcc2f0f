"""Client helpers and the consumer loop against the real broker."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from herald import contracts, kafka, runs
from herald.config import KafkaSettings, Settings
from herald.contracts import RunRequest
from herald.errors import BrokerError
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.ports import free_port
from herald.scenarios import base
from herald.scenarios.sms import OUTBOUND
from herald.services import producer
from herald.waiting import wait_until
from tests.support.cluster import ServiceThread
from tests.support.topics import read_topic


def test_ensure_topics_creates_once(broker: EmbeddedBroker, namespace: str) -> None:
    ks = KafkaSettings(bootstrap=broker.bootstrap, namespace=namespace, partitions=3)
    created = kafka.ensure_topics(ks)
    assert sorted(created) == sorted(t.qualified(namespace) for t in kafka.all_topics())
    assert kafka.ensure_topics(ks) == []
    consumer = Consumer(kafka.consumer_config(ks, "meta"))
    try:
        results = kafka.partitions_of(consumer, base.get("sms").facts[0].qualified(namespace))
        control = kafka.partitions_of(consumer, contracts.CONTROL.qualified(namespace))
    finally:
        consumer.close()
    assert [tp.partition for tp in results] == [0, 1, 2]
    assert [tp.partition for tp in control] == [0]  # one partition: events in order


def test_wait_for_broker_waits_until_it_answers(caplog: pytest.LogCaptureFixture) -> None:
    late = EmbeddedBroker(port=free_port())
    ks = KafkaSettings(bootstrap=late.bootstrap, connect_timeout_secs=20)
    caplog.set_level(logging.INFO, logger="herald.kafka")
    done = threading.Event()

    def start_late() -> None:
        # The broker dies with the thread that started it (PR_SET_PDEATHSIG): this one stays
        # until the test is done with it.
        if not done.wait(1.0):
            late.start()
            done.wait()

    starter = threading.Thread(target=start_late)
    starter.start()
    try:
        kafka.wait_for_broker(ks)
    finally:
        late.stop()
        done.set()
        starter.join()
    waiting = [r.getMessage() for r in caplog.records if "waiting for Kafka" in r.getMessage()]
    assert len(waiting) == 2  # when it began, and when it was over: one episode
    assert waiting[0].startswith(f"waiting for Kafka at {late.bootstrap} (up to 20s")
    assert ": over after " in waiting[1]


def test_wait_for_broker_gives_up_when_stopped() -> None:
    ks = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}", connect_timeout_secs=60)
    with pytest.raises(BrokerError, match=r"unreachable \(stopped while waiting for it\)"):
        kafka.wait_for_broker(ks, stop=lambda: True)


def _run_requests_through(
    settings: Settings, handle_one: Callable[[RunRequest], bool], *, attempts: int
) -> list[str]:
    """Run the consumer loop on ``herald.runs`` in the producers' group, calling
    ``handle_one(request)`` for each request until it was called ``attempts`` times."""
    ks = settings.kafka
    runs_topic = contracts.RUNS.qualified(ks.namespace)
    consumer = Consumer(kafka.consumer_config(ks, contracts.group_id(ks.namespace, "producers")))
    consumer.subscribe([runs_topic])
    stop = threading.Event()
    seen: list[str] = []

    def handle(batch: kafka.Batch) -> bool:
        ok = True
        for _msg, request in batch.records:
            seen.append(request.run_id)
            ok = handle_one(request) and ok
        if len(seen) >= attempts:
            stop.set()
        return ok

    kafka.run_consumer(
        consumer,
        decoders={runs_topic: base.decode_request},
        handle=handle,
        stop=stop,
        service="test",
        batch_size=1,
        timeout=0.2,
    )
    return seen


def _committed(settings: Settings) -> list[int]:
    ks = settings.kafka
    consumer = Consumer(kafka.consumer_config(ks, contracts.group_id(ks.namespace, "producers")))
    try:
        topic = contracts.RUNS.qualified(ks.namespace)
        parts = [TopicPartition(topic, p.partition) for p in kafka.partitions_of(consumer, topic)]
        return sorted(tp.offset for tp in consumer.committed(parts, timeout=10) if tp.offset >= 0)
    finally:
        consumer.close()


def test_undeliverable_run_is_reported_and_its_request_not_committed(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    request = runs.make_request(settings, messages=50, seed=1)
    runs.submit(settings.kafka, request)
    # The run request comes from the real broker; its records go to a broker that is not there.
    dead_end = Producer(
        kafka.producer_config(
            KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}"), **{"message.timeout.ms": 500}
        )
    )
    stop = threading.Event()
    seen = _run_requests_through(
        settings,
        lambda req: producer.produce_run(dead_end, settings.kafka.namespace, req, stop=stop),
        attempts=2,
    )
    dead_end.purge()
    # Not done: not committed; the consumer was rewound and the same request came again.
    assert seen == [request.run_id, request.run_id]
    assert _committed(settings) == []
    assert f"run {request.run_id}: 50 deliveries failed" in caplog.text


def test_stop_before_a_run_leaves_it_to_the_next_producer(settings: Settings) -> None:
    ns = settings.kafka.namespace
    request = runs.make_request(settings, messages=10, seed=1)
    runs.submit(settings.kafka, request)
    stopped = threading.Event()
    stopped.set()
    p = Producer(kafka.producer_config(settings.kafka))
    seen = _run_requests_through(
        settings, lambda req: producer.produce_run(p, ns, req, stop=stopped), attempts=1
    )
    assert seen == [request.run_id]
    assert p.flush(5) == 0
    assert _committed(settings) == []  # the request is left uncommitted...
    assert read_topic(settings, OUTBOUND.qualified(ns), 0) == []  # ...and nothing was produced
    # ...so the next producer produces the run, and commits it.
    svc = ServiceThread(producer.run, settings, max_runs=1)
    svc.thread.join(60)
    assert svc.join() == 0
    produced = read_topic(settings, OUTBOUND.qualified(ns), 10)
    assert sorted(m.key() for m in produced) == sorted(
        f"{request.run_id}-{i}".encode() for i in range(10)
    )
    assert _committed(settings) == [1]


def test_stop_while_the_queue_is_full_returns_promptly(settings: Settings) -> None:
    ks = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}")
    p = Producer(kafka.producer_config(ks, **{"queue.buffering.max.messages": 10}))
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    request = runs.make_request(settings, messages=100, seed=1)
    assert producer.produce_run(p, "", request, stop=stop) is False
    p.purge()


def _member(ks: KafkaSettings, group: str, topic: str, sends: list[str]) -> Consumer:
    """A member of ``group`` whose client logs its group protocol (what it sends) to ``sends``."""

    class Sends(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "Sent JoinGroupRequest" in (message := record.getMessage()):
                sends.append(message)

    log = logging.getLogger(f"librdkafka.{group}")
    log.addHandler(Sends())
    log.setLevel(logging.DEBUG)
    log.propagate = False
    consumer = Consumer(kafka.consumer_config(ks, group, debug="cgrp,protocol", logger=log))
    consumer.subscribe([topic])
    return consumer


def test_close_consumer_closes_a_settled_member(settings: Settings, namespace: str) -> None:
    ks = settings.kafka
    topic = OUTBOUND.qualified(namespace)
    assigned: list[int] = []
    consumer = Consumer(kafka.consumer_config(ks, f"{namespace}-settled"))
    consumer.subscribe([topic], on_assign=lambda c, ps: assigned.extend(p.partition for p in ps))
    wait_until(lambda: consumer.poll(0.05) is None and assigned, timeout=30, what="assigned")
    assert sorted(assigned) == [0, 1, 2, 3]

    assert kafka.close_consumer(consumer, "settled") is True
    with pytest.raises(RuntimeError, match="Consumer closed"):
        consumer.poll(0)


def test_close_consumer_does_not_wait_for_a_join_the_coordinator_holds(
    broker_engine: str, settings: Settings, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    if broker_engine == "kafka":
        pytest.skip("Apache Kafka answers a lone member's join at once: nothing to wait for")
    sends: list[str] = []
    consumer = _member(settings.kafka, f"{namespace}-held", OUTBOUND.qualified(namespace), sends)
    # The second JoinGroup (with the member id the first was answered with) is the one the
    # embedded broker holds (2 s with its 4 s sessions; see kafka.EMBEDDED_SESSION_TIMEOUT_MS).
    wait_until(
        lambda: consumer.poll(0.01) is None and len(sends) >= 2, timeout=30, what="rejoin", every=0
    )
    caplog.set_level(logging.INFO, logger="herald.kafka")

    assert kafka.close_consumer(consumer, "held", wait=0.2) is False
    assert [r.getMessage() for r in caplog.records] == [
        "held: the group coordinator is holding a rebalance; not waiting 0.2s+ for it to "
        "leave the group (its session ends it)"
    ]
