"""The control topic: services announce their lifecycle there, the recorder a run's completion
and the monitor its figures, so that whoever orchestrates a run (``sim.run``, ``herald submit
--wait``) learns everything from records, wherever the services run. No file is a rendezvous
between processes, and no credential travels here.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec
from confluent_kafka import OFFSET_END, Consumer, KafkaException, Producer, TopicPartition

from herald import contracts, kafka
from herald.config import KafkaSettings
from herald.contracts import ControlEvent, RunCompleted, RunFigures, RunProduced, ServiceEvent
from herald.waiting import Episode

logger = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ControlEvent).decode


class _Type(msgspec.Struct):
    type: str = ""


_type_of = msgspec.json.Decoder(_Type).decode
_produced = msgspec.json.Decoder(RunProduced).decode


def run_produced(raw: bytes) -> RunProduced | None:
    """A control record if it is a ``run-produced`` event, else None: readers of that one
    kind (recorder, monitor) read past the others, and kinds added later, without a dead
    letter."""
    try:
        kind = _type_of(raw).type
    except msgspec.DecodeError:
        return None
    return _produced(raw) if kind == "run-produced" else None


class Announcer:
    """Publishes one service instance's events on the control topic (fire and forget: a lost
    announcement delays an orchestrator, it loses no data)."""

    def __init__(self, settings: KafkaSettings, *, service: str, instance: str) -> None:
        self.service = service
        self.instance = instance
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._topic = contracts.CONTROL.qualified(settings.namespace)
        # Not idempotent: it needs no producer id (a round trip) before its first record, and a
        # duplicate announcement is harmless.
        self._producer = Producer(
            kafka.producer_config(
                settings, **{"enable.idempotence": False, "linger.ms": 0, "acks": "all"}
            )
        )
        self._failed = Episode(logger, f"{instance}: control announcement failed")
        self._ready = False

    def _send(self, key: str, event: ControlEvent) -> None:
        def delivered(err: object, _msg: object) -> None:
            if err is not None:
                self._failed.seen(err)

        try:
            self._producer.produce(self._topic, _encode(event), key, on_delivery=delivered)
        except (BufferError, KafkaException) as exc:
            self._failed.seen(exc)
        self._producer.poll(0)

    def _service_event(self, state: str, **extra: object) -> ServiceEvent:
        return ServiceEvent(
            service=self.service,
            instance=self.instance,
            host=self.host,
            pid=self.pid,
            state=state,  # type: ignore[arg-type]  # one of the Literal's values
            at=datetime.now(UTC),
            **extra,  # type: ignore[arg-type]
        )

    def started(self) -> None:
        self._send(self.instance, self._service_event("started"))

    def ready(self, partitions: Iterable[TopicPartition] = ()) -> None:
        """Ready: it holds its first partitions (announced once; later assignments are not)."""
        if self._ready:
            return
        self._ready = True
        held = [f"{tp.topic}[{tp.partition}]" for tp in partitions]
        self._send(self.instance, self._service_event("ready", partitions=held))
        self._producer.flush(5)

    def stopped(self, exit_code: int) -> None:
        self._send(self.instance, self._service_event("stopped", exit_code=exit_code))

    def run_completed(self, event: RunCompleted) -> None:
        self._send(event.run_id, event)
        self._producer.flush(5)

    def run_figures(self, event: RunFigures) -> None:
        self._send(event.run_id, event)
        self._producer.flush(5)

    def close(self, timeout: float = 5.0) -> None:
        left = self._producer.flush(timeout)
        if left:
            logger.warning("%s: %d control announcements undelivered", self.instance, left)


class Listener:
    """Reads control events published from ``since`` on (every partition, no group)."""

    def __init__(self, settings: KafkaSettings, *, since: datetime) -> None:
        # Someone waits for each event (the last service's readiness starts the run).
        self._consumer = Consumer(
            kafka.prompt_consumer_config(settings, f"herald-control-{uuid.uuid4().hex[:8]}")
        )
        topic = contracts.CONTROL.qualified(settings.namespace)
        parts = kafka.partitions_of(self._consumer, topic)
        # From a time, not from the end: brokers' end offsets can be wrong (the embedded
        # one's are), and an event published just before we look must not be missed.
        for tp in parts:
            tp.offset = int(since.timestamp() * 1000) - 1000
        found = kafka.offsets_for_times(self._consumer, parts)
        start = [
            TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
            for tp in found
        ]
        self._consumer.assign(start)
        self._since = since
        self._errors = Episode(logger, "control topic: Kafka error")

    def poll(self, timeout: float = 0.1) -> list[ControlEvent]:
        """The events that arrived (none before ``since``; unreadable ones skipped)."""
        out: list[ControlEvent] = []
        # consume(n, timeout) waits for all n records or the whole timeout; poll() returns the
        # first at once, and consume(n, 0) what came with it.
        first = self._consumer.poll(timeout)
        msgs = [] if first is None else [first, *self._consumer.consume(999, 0)]
        for msg in msgs:
            if (err := msg.error()) is not None:
                kafka.raise_if_fatal(err, self._errors)
                continue
            try:
                event = _decode(msg.value() or b"")
            except msgspec.DecodeError as exc:
                logger.warning("unreadable control record at offset %d: %s", msg.offset(), exc)
                continue
            if event.at >= self._since:
                out.append(event)
        return out

    def close(self) -> None:
        self._consumer.close()
