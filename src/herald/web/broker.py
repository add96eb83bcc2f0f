"""What the web asks Kafka: is the broker reachable, and how far behind are the senders."""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from herald import contracts, kafka
from herald.config import KafkaSettings
from herald.web import schemas

logger = logging.getLogger(__name__)

LAG_NOTE = (
    "lag = end offset - committed offset of the senders' group, per partition of the "
    "outbound topic. End offsets are what the broker reports; the embedded broker can "
    "under-report them, so a partition whose committed offset is past its reported end "
    "shows 0 and the figures are a lower bound. Completion is counted from Postgres, "
    "never from these offsets."
)


class BrokerView:
    """One lazily created, lock-guarded Kafka client for the whole app.

    It carries the senders' group id only to read that group's committed offsets: it never
    subscribes, so it never joins (or disturbs) the group.
    """

    def __init__(self, settings: KafkaSettings, *, timeout: float = 3.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None
        self.group = contracts.group_id(settings.namespace, "senders")
        self.topic = contracts.OUTBOUND.qualified(settings.namespace)

    def _client(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                kafka.consumer_config(self._settings, self.group, **{"enable.auto.commit": False})
            )
        return self._consumer

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None

    def reachable(self) -> schemas.Reachability:
        started = time.monotonic()
        try:
            with self._lock:
                meta = self._client().list_topics(timeout=self._timeout)
        except KafkaException as exc:
            return schemas.Reachability(ok=False, detail=_reason(exc), latency_ms=None)
        return schemas.Reachability(
            ok=True,
            detail=f"{len(meta.brokers)} broker(s), {len(meta.topics)} topic(s)",
            latency_ms=round((time.monotonic() - started) * 1000, 2),
        )

    def lag(self) -> schemas.ConsumerLag:
        """Committed offsets of the senders' group against the topic's end offsets."""
        parts: list[schemas.PartitionLag] = []
        try:
            with self._lock:
                client = self._client()
                meta = client.list_topics(self.topic, timeout=self._timeout).topics.get(self.topic)
                ids = sorted(meta.partitions) if meta is not None and meta.error is None else []
                committed = client.committed(
                    [TopicPartition(self.topic, p) for p in ids], timeout=self._timeout
                )
                for tp in committed:
                    _low, high = client.get_watermark_offsets(
                        TopicPartition(self.topic, tp.partition), timeout=self._timeout
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
            logger.warning("consumer lag unavailable: %s", _reason(exc))
            return schemas.ConsumerLag(
                group=self.group,
                topic=self.topic,
                partitions=[],
                total=None,
                note=f"unavailable: {_reason(exc)}",
            )
        return schemas.ConsumerLag(
            group=self.group,
            topic=self.topic,
            partitions=parts,
            total=sum(p.lag or 0 for p in parts),
            note=LAG_NOTE,
        )


def _reason(exc: KafkaException) -> str:
    err = exc.args[0] if exc.args else None
    return str(err.str()) if err is not None and hasattr(err, "str") else str(exc)
