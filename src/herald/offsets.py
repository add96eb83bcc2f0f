"""Where a consumer starts reading: ``earliest`` (the beginning), ``latest`` (the end) or an
ISO 8601 time (the first record at or after it, by ``offsets_for_times``).

The monitor's and the recorder's ``--from``. A time is kept as its ISO text in UTC, so that
it travels on a command line unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from herald import kafka

EARLIEST, LATEST = "earliest", "latest"


def parse_start(value: str) -> str:
    """``earliest``, ``latest``, or an ISO 8601 time as ISO text in UTC (no zone: UTC);
    ValueError otherwise."""
    value = value.strip()
    if value in (EARLIEST, LATEST):
        return value
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r}: earliest, latest, or an ISO 8601 time (2025-01-15T12:00:00Z)"
        ) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def start_offsets(
    consumer: Consumer, partitions: list[TopicPartition], start: str, *, timeout: float = 10.0
) -> list[TopicPartition]:
    """``partitions`` with the offsets ``start`` says (a partition with no record at or after
    the time starts at its end)."""
    if start == EARLIEST:
        return [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
    if start == LATEST:
        return [TopicPartition(tp.topic, tp.partition, OFFSET_END) for tp in partitions]
    if not partitions:
        return []
    ms = int(datetime.fromisoformat(parse_start(start)).timestamp() * 1000)
    asked = [TopicPartition(tp.topic, tp.partition, ms) for tp in partitions]
    found = kafka.offsets_for_times(consumer, asked, timeout)
    return [
        TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
        for tp in found
    ]
