"""The consumer loop's per-batch bookkeeping (:class:`herald.kafka._Loop`), on records built
by hand: what is decoded, what is skipped, where each partition ends, and how errors are
logged."""

from __future__ import annotations

import logging

import msgspec
import pytest
from confluent_kafka import KafkaError, Message

from herald import kafka
from herald.errors import BrokerError


class Hello(msgspec.Struct, forbid_unknown_fields=True):
    n: int


def record(topic: str, partition: int, offset: int, value: bytes) -> Message:
    return Message(topic=topic, partition=partition, offset=offset, value=value)


def error(code: int, *, fatal: bool = False) -> Message:
    return Message(error=KafkaError(code, fatal=fatal))


def loop() -> kafka._Loop:
    decoders = {"a": msgspec.json.Decoder(Hello).decode}
    return kafka._Loop(None, decoders, "tester", None)


def test_a_batch_decodes_its_records_in_order_and_ends_after_each_partitions_last() -> None:
    consumer_loop = loop()
    batch, dead = consumer_loop.decode(
        [
            record("a", 0, 10, b'{"n": 1}'),
            record("b", 0, 4, b"not read: no decoder for b"),
            record("a", 1, 3, b'{"n": 2}'),
            record("a", 0, 11, b'{"n": "three"}'),  # invalid: skipped, but passed
            error(KafkaError._PARTITION_EOF),
            record("a", 0, 12, b'{"n": 4}'),
        ]
    )
    assert [(m.partition(), m.offset(), v) for m, v in batch.records] == [
        (0, 10, Hello(1)),
        (1, 3, Hello(2)),
        (0, 12, Hello(4)),
    ]
    assert batch.ends == {("a", 0): 13, ("a", 1): 4, ("b", 0): 5}
    assert batch.of("a") == [Hello(1), Hello(2), Hello(4)]
    assert dead is False
    stats = consumer_loop.stats
    assert (stats.batches, stats.records, stats.skipped, stats.dead_letters) == (1, 3, 1, 0)


def test_an_invalid_record_without_dead_letters_is_logged_once_with_where_and_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer_loop = loop()
    with caplog.at_level(logging.INFO, logger="herald.kafka"):
        consumer_loop.decode([record("a", 2, 5, b"{"), record("a", 2, 6, b'{"n": -1, "x": 0}')])
    assert [r.getMessage() for r in caplog.records] == [
        "tester: invalid records: a[2]@5: DecodeError: Input data was truncated"
    ]
    assert consumer_loop.stats.skipped == 2


def test_consumer_errors_are_one_episode_each_until_a_record_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer_loop = loop()
    transport = KafkaError._TRANSPORT
    with caplog.at_level(logging.INFO, logger="herald.kafka"):
        consumer_loop.decode([error(transport), error(transport), record("a", 0, 0, b'{"n": 0}')])
        consumer_loop.decode([error(transport)])
        consumer_loop.decode([error(KafkaError._PARTITION_EOF)])  # not a record: still erring
        consumer_loop.decode([record("b", 0, 0, b"undecoded, but a record")])
    lines = [r.getMessage().split(" after ")[0] for r in caplog.records]
    seen = "tester: Kafka consumer error: Local: Broker transport failure (retriable=False)"
    assert lines == [
        seen,
        "tester: Kafka consumer error: over",
        seen,
        "tester: Kafka consumer error: over",
    ]
    assert consumer_loop.stats.records == 1


def test_a_fatal_consumer_error_raises() -> None:
    with pytest.raises(BrokerError, match=r"^fatal Kafka error: Local: Fatal error$"):
        loop().decode([record("a", 0, 0, b'{"n": 0}'), error(KafkaError._FATAL, fatal=True)])
