"""Kafka client factories, topic setup and the broker wait every service starts with."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from herald.config import KafkaSettings
from herald.contracts import ALL_TOPICS, Topic
from herald.errors import BrokerError

logger = logging.getLogger(__name__)

# Against the embedded broker a group join takes about half the session timeout.
# 4 s, not 2: on two busy cores the embedded group coordinator has been seen to leave a
# member without an answer for 2 s, which evicted it mid-run.
EMBEDDED_SESSION_TIMEOUT_MS = 4000
EMBEDDED_HEARTBEAT_MS = 400


def for_embedded(settings: KafkaSettings, bootstrap: str) -> KafkaSettings:
    """``settings`` pointed at an embedded broker, with its short group timeouts unless set."""
    # Against the embedded broker only: its group joins take about half of the session
    # timeout, and a run's first result waits for them. Elsewhere Kafka's defaults stay.
    return settings.model_copy(
        update={
            "bootstrap": bootstrap,
            "session_timeout_ms": settings.session_timeout_ms or EMBEDDED_SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": settings.heartbeat_interval_ms or EMBEDDED_HEARTBEAT_MS,
        }
    )


def _base(settings: KafkaSettings) -> dict[str, Any]:
    if settings.bootstrap is None:
        raise BrokerError("kafka.bootstrap is unset and no embedded broker was started")
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        # librdkafka's own log lines go through Python logging, in the service's format.
        "logger": logging.getLogger("librdkafka"),
        "log.connection.close": False,
    }
    conf.update(settings.client_config)
    return conf


def producer_config(settings: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """An idempotent, batching producer."""
    conf = _base(settings)
    conf.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 512 * 1024,
        }
    )
    conf.update(overrides)
    return conf


def transactional_producer_config(
    settings: KafkaSettings, transactional_id: str, **overrides: Any
) -> dict[str, Any]:
    """A producer whose writes and consumed offsets commit atomically."""
    return producer_config(
        settings,
        **{
            "transactional.id": transactional_id,
            "transaction.timeout.ms": settings.transaction_timeout_ms,
            **overrides,
        },
    )


def consumer_config(settings: KafkaSettings, group: str, **overrides: Any) -> dict[str, Any]:
    """A read_committed consumer that commits only what its owner says is done."""
    conf = _base(settings)
    conf.update(
        {
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "cooperative-sticky",
            # librdkafka's 1000 ms default stalls a consumer working through a backlog.
            "fetch.queue.backoff.ms": 10,
        }
    )
    if settings.session_timeout_ms is not None:
        conf["session.timeout.ms"] = settings.session_timeout_ms
    if settings.heartbeat_interval_ms is not None:
        conf["heartbeat.interval.ms"] = settings.heartbeat_interval_ms
    conf.update(overrides)
    return conf


def admin(settings: KafkaSettings) -> AdminClient:
    """An admin client."""
    return AdminClient(_base(settings))


def wait_for_broker(settings: KafkaSettings, *, stop: Callable[[], bool] | None = None) -> None:
    """Block until the broker answers a metadata request, or raise :class:`BrokerError`."""
    deadline = time.monotonic() + settings.connect_timeout_secs
    client = admin(settings)
    warned = False
    while True:
        remaining = deadline - time.monotonic()
        try:
            client.list_topics(timeout=max(0.1, min(1.0, remaining)))
            if warned:
                logger.info("broker %s is reachable", settings.bootstrap)
            return
        except KafkaException as exc:
            if not warned:
                logger.warning(
                    "waiting for Kafka at %s (up to %gs, kafka.connect_timeout_secs): %s",
                    settings.bootstrap,
                    settings.connect_timeout_secs,
                    exc.args[0].str() if exc.args else exc,
                )
                warned = True
            if time.monotonic() >= deadline or (stop is not None and stop()):
                raise BrokerError(
                    f"Kafka at {settings.bootstrap} unreachable after "
                    f"{settings.connect_timeout_secs:g}s (kafka.connect_timeout_secs)"
                ) from None
            time.sleep(0.1)


def ensure_topics(settings: KafkaSettings, topics: Iterable[Topic] = ALL_TOPICS) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    client = admin(settings)
    existing = set(client.list_topics(timeout=10).topics)
    wanted = [
        NewTopic(
            t.qualified(settings.namespace),
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
        )
        for t in topics
        if t.qualified(settings.namespace) not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in client.create_topics(wanted, request_timeout=15).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerError(f"cannot create topic {name}: {exc}") from None
    logger.info("created topics %s", ", ".join(sorted(created)))
    return created


def partitions_of(consumer: Consumer, topic: str, timeout: float = 10.0) -> list[TopicPartition]:
    """Every partition of ``topic`` (waits for the topic's metadata)."""
    deadline = time.monotonic() + timeout
    while True:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is not None and meta.error is None and meta.partitions:
            return [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        if time.monotonic() >= deadline:
            raise BrokerError(f"topic {topic} has no partitions after {timeout:g}s")
        time.sleep(0.1)


def raise_if_fatal(err: KafkaError, where: str) -> None:
    """Log a retriable error; raise :class:`BrokerError` for a fatal one."""
    if err.fatal():
        raise BrokerError(f"fatal Kafka error in {where}: {err}")
    logger.warning("Kafka error in %s (retriable=%s): %s", where, err.retriable(), err)
