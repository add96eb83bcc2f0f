"""Dead letters: a record that cannot be processed goes to ``herald.dlq`` with the reason."""

from __future__ import annotations

import logging

from confluent_kafka import Message, Producer

from herald import contracts

logger = logging.getLogger(__name__)

MAX_REASON = 1000


def headers(msg: Message, reason: str, service: str) -> list[tuple[str, str | bytes | None]]:
    """The dead-letter headers: why, and where the record came from."""
    return [
        (contracts.DLQ_REASON, reason[:MAX_REASON].encode()),
        (contracts.DLQ_TOPIC, (msg.topic() or "").encode()),
        (contracts.DLQ_PARTITION, str(msg.partition()).encode()),
        (contracts.DLQ_OFFSET, str(msg.offset()).encode()),
        (contracts.DLQ_SERVICE, service.encode()),
    ]


class DeadLetters:
    """Sends unprocessable records, unchanged, to the dead-letter topic."""

    def __init__(self, producer: Producer, topic: str, service: str) -> None:
        self._producer = producer
        self._topic = topic
        self._service = service
        self.count = 0

    def send(self, msg: Message, reason: str) -> None:
        """Send ``msg`` with ``reason`` and where it came from in headers."""
        logger.warning(
            "dead letter from %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), reason
        )
        self._producer.produce(
            self._topic, msg.value(), msg.key(), headers=headers(msg, reason, self._service)
        )
        self.count += 1

    def flush(self, timeout: float) -> int:
        """Wait for the dead letters to be delivered; return how many were not."""
        return int(self._producer.flush(timeout))
