"""Dead letters: a record that cannot be processed goes to ``herald.dlq`` with the reason."""

from __future__ import annotations

import logging

from confluent_kafka import Message, Producer

from herald import contracts
from herald.contracts import DLQ_MAX_REASON, DLQ_MAX_VALUE
from herald.errors import BrokerError

logger = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


def headers(msg: Message, reason: str, service: str) -> Headers:
    """The dead-letter headers: why, and where the record came from."""
    return [
        (contracts.DLQ_REASON, reason[:DLQ_MAX_REASON].encode()),
        (contracts.DLQ_TOPIC, (msg.topic() or "").encode()),
        (contracts.DLQ_PARTITION, str(msg.partition()).encode()),
        (contracts.DLQ_OFFSET, str(msg.offset()).encode()),
        (contracts.DLQ_SERVICE, service.encode()),
    ]


def letter(msg: Message, reason: str, service: str) -> tuple[bytes | None, Headers]:
    """The dead letter of ``msg``: its value (cut to :data:`DLQ_MAX_VALUE` bytes, which the
    reason then says) and its headers."""
    value = msg.value()
    if value is not None and len(value) > DLQ_MAX_VALUE:
        note = f" (value cut to its first {DLQ_MAX_VALUE} of {len(value)} bytes)"
        reason = reason[: DLQ_MAX_REASON - len(note)] + note
        value = value[:DLQ_MAX_VALUE]
    return value, headers(msg, reason, service)


class DeadLetters:
    """Sends unprocessable records, unchanged (unless too large), to the dead-letter topic."""

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
        value, letter_headers = letter(msg, reason, self._service)
        self._producer.produce(self._topic, value, msg.key(), headers=letter_headers)
        self.count += 1

    def flush(self, timeout: float) -> int:
        """Wait for the dead letters to be delivered; return how many were not."""
        return int(self._producer.flush(timeout))

    def flush_or_raise(self, timeout: float) -> None:
        """Wait for the dead letters to be delivered; :class:`BrokerError` if they are not (the
        records they replace must then not be committed)."""
        left = self.flush(timeout)
        if left:
            raise BrokerError(f"{left} dead letters not delivered after {timeout:g}s")
