"""What the web asks Kafka: is the broker reachable, and how far behind are a scenario's
workers."""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from herald import contracts, kafka
from herald.config import KafkaSettings
from herald.scenarios import base
from herald.web import schemas

logger = logging.getLogger(__name__)

LAG_NOTE = (
    "lag = end offset - committed offset of the scenario's workers' group, per partition of "
    "its work topic. End offsets are what the broker reports; the embedded broker can "
    "under-report them, so a partition whose committed offset is past its reported end "
    "shows 0 and the figures are a lower bound. Completion is counted from Postgres, "
    "never from these offsets."
)


class BrokerView:
    """Lazily created, lock-guarded Kafka clients for the whole app: one for metadata, and one
    per worker group, which carries that group's id only to read its committed offsets: it
    never subscribes, so it never joins (or disturbs) the group."""

    def __init__(self, settings: KafkaSettings, *, timeout: float = 3.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._lock = threading.Lock()
        self._consumers: dict[str, Consumer] = {}

    def _client(self, group: str = "herald-web") -> Consumer:
        consumer = self._consumers.get(group)
        if consumer is None:
            consumer = self._consumers[group] = Consumer(
                kafka.consumer_config(self._settings, group, **{"enable.auto.commit": False})
            )
        return consumer

    def close(self) -> None:
        with self._lock:
            for consumer in self._consumers.values():
                consumer.close()
            self._consumers.clear()

    def reachable(self) -> schemas.Reachability:
        started = time.monotonic()
        try:
            with self._lock:
                meta = self._client().list_topics(timeout=self._timeout)
        except KafkaException as exc:
            return schemas.Reachability(ok=False, detail=kafka.reason(exc), latency_ms=None)
        return schemas.Reachability(
            ok=True,
            detail=f"{len(meta.brokers)} broker(s), {len(meta.topics)} topic(s)",
            latency_ms=round((time.monotonic() - started) * 1000, 2),
        )

    def lag(self, scenario: str) -> schemas.ConsumerLag:
        """Committed offsets of a scenario's workers' group against its work topic's ends."""
        spec = base.get(scenario).worker
        if spec is None:
            return schemas.ConsumerLag(
                group="", topic="", partitions=[], total=None, note=f"{scenario}: no workers"
            )
        ns = self._settings.namespace
        group = contracts.group_id(ns, spec.role)
        topic = spec.work.qualified(ns)
        parts: list[schemas.PartitionLag] = []
        try:
            with self._lock:
                client = self._client(group)
                meta = client.list_topics(topic, timeout=self._timeout).topics.get(topic)
                ids = sorted(meta.partitions) if meta is not None and meta.error is None else []
                committed = client.committed(
                    [TopicPartition(topic, p) for p in ids], timeout=self._timeout
                )
                for tp in committed:
                    _low, high = client.get_watermark_offsets(
                        TopicPartition(topic, tp.partition), timeout=self._timeout
                    )
                    done = tp.offset if tp.offset >= 0 else None
                    parts.append(
                        schemas.PartitionLag(
                            partition=tp.partition,
                            committed=done,
                            end=high,
                            lag=max(0, high - (done or 0)),
                        )
                    )
        except KafkaException as exc:
            logger.warning("consumer lag unavailable: %s", kafka.reason(exc))
            return schemas.ConsumerLag(
                group=group,
                topic=topic,
                partitions=[],
                total=None,
                note=f"unavailable: {kafka.reason(exc)}",
            )
        return schemas.ConsumerLag(
            group=group,
            topic=topic,
            partitions=parts,
            total=sum(p.lag or 0 for p in parts),
            note=LAG_NOTE,
        )
