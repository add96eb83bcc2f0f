"""Reading and writing topics of the real broker in tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer

from herald import kafka
from herald.config import Settings


def read_topic(settings: Settings, topic: str, count: int, timeout: float = 60.0) -> list[Message]:
    """At least ``count`` committed records of ``topic`` from the beginning (fails on fewer),
    and then every record up to the end of each partition: so that a test can assert there is
    no extra record, without waiting a fixed time for one."""
    consumer = Consumer(
        kafka.consumer_config(
            settings.kafka, f"reader-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True}
        )
    )
    parts = kafka.partitions_of(consumer, topic)
    for tp in parts:
        tp.offset = OFFSET_BEGINNING
    consumer.assign(parts)
    out: list[Message] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count or len(at_end) < len(parts):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{topic}: {len(out)} of {count} records after {timeout:g}s "
                    f"({len(at_end)} of {len(parts)} partitions read to their end)"
                )
            for m in consumer.consume(1000, 0.2):
                err = m.error()
                if err is None:
                    out.append(m)
                    at_end.discard(m.partition() or 0)
                elif err.code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition() or 0)
    finally:
        consumer.close()
    return out


def produce_records(
    settings: Settings, topic: str, records: list[tuple[bytes | None, bytes]]
) -> None:
    producer = Producer(kafka.producer_config(settings.kafka))
    for key, value in records:
        producer.produce(topic, value, key)
    assert producer.flush(15) == 0


def decode_all(msgs: list[Message], kind: type[Any]) -> list[Any]:
    decoder = msgspec.json.Decoder(kind)
    return [decoder.decode(m.value()) for m in msgs]


def committed_total(settings: Settings, role: str, topic: str) -> int:
    """The sum of a group's committed offsets over a topic's partitions: how many of its
    records the group has finished with."""
    from herald import contracts

    ks = settings.kafka
    consumer = Consumer(kafka.consumer_config(ks, contracts.group_id(ks.namespace, role)))
    try:
        parts = kafka.partitions_of(consumer, topic)
        return sum(max(0, tp.offset) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


class Tally:
    """Ids seen, checked against the ids expected: every one seen, nothing else, and the
    duplicates counted (never hidden behind a set)."""

    def __init__(self, seen: list[str], expected: list[str]) -> None:
        counts: dict[str, int] = {}
        for key in seen:
            counts[key] = counts.get(key, 0) + 1
        wanted = set(expected)
        self.seen = len(seen)
        self.distinct = len(counts)
        self.missing = [k for k in expected if k not in counts]
        self.unexpected = sorted(k for k in counts if k not in wanted)
        self.duplicates = sum(c - 1 for c in counts.values())

    def __repr__(self) -> str:
        return (
            f"Tally(seen={self.seen}, distinct={self.distinct}, missing={len(self.missing)}, "
            f"unexpected={len(self.unexpected)}, duplicates={self.duplicates})"
        )
