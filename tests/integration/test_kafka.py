"""Client helpers against the real broker."""

from __future__ import annotations

import logging
import threading

import pytest
from confluent_kafka import Consumer, Producer

from herald import contracts, kafka, runs
from herald.config import KafkaSettings, Settings
from herald.errors import BrokerError
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.ports import free_port
from herald.services import producer


def test_ensure_topics_creates_once(broker: EmbeddedBroker, namespace: str) -> None:
    ks = KafkaSettings(bootstrap=broker.bootstrap, namespace=namespace, partitions=3)
    created = kafka.ensure_topics(ks)
    assert sorted(created) == sorted(t.qualified(namespace) for t in contracts.ALL_TOPICS)
    assert kafka.ensure_topics(ks) == []
    consumer = Consumer(kafka.consumer_config(ks, "meta"))
    try:
        parts = kafka.partitions_of(consumer, contracts.RESULTS.qualified(namespace))
    finally:
        consumer.close()
    assert [tp.partition for tp in parts] == [0, 1, 2]


def test_wait_for_broker_waits_until_it_answers(caplog: pytest.LogCaptureFixture) -> None:
    late = EmbeddedBroker(port=free_port())
    ks = KafkaSettings(bootstrap=late.bootstrap, connect_timeout_secs=20)
    caplog.set_level(logging.INFO, logger="herald.kafka")
    starter = threading.Timer(1.0, late.start)
    starter.start()
    try:
        kafka.wait_for_broker(ks)
    finally:
        starter.join()
        late.stop()
    assert f"waiting for Kafka at {late.bootstrap} (up to 20s" in caplog.text
    assert f"broker {late.bootstrap} is reachable" in caplog.text


def test_wait_for_broker_gives_up_when_stopped() -> None:
    ks = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}", connect_timeout_secs=60)
    with pytest.raises(BrokerError, match="unreachable after 60s"):
        kafka.wait_for_broker(ks, stop=lambda: True)


def test_undeliverable_run_is_reported_not_committed(caplog: pytest.LogCaptureFixture) -> None:
    ks = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}")
    p = Producer(kafka.producer_config(ks, **{"message.timeout.ms": 500}))
    request = runs.make_request(50, seed=1)
    ok = producer.produce_run(p, "nowhere", request, stop=threading.Event())
    assert ok is False
    assert f"run {request.run_id}: 50 deliveries failed" in caplog.text


def test_stop_while_the_queue_is_full_returns_promptly() -> None:
    ks = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}")
    p = Producer(kafka.producer_config(ks, **{"queue.buffering.max.messages": 10}))
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    assert producer.produce_run(p, "nowhere", runs.make_request(100, seed=1), stop=stop) is False
    p.purge()


def test_stop_before_a_run_leaves_it_unproduced(settings: Settings) -> None:
    stop = threading.Event()
    stop.set()
    p = Producer(kafka.producer_config(settings.kafka))
    topic = contracts.OUTBOUND.qualified(settings.kafka.namespace)
    assert producer.produce_run(p, topic, runs.make_request(10, seed=1), stop=stop) is False
    assert p.flush(5) == 0
