"""Session-scoped real services: the embedded Kafka broker and PostgreSQL, started once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer

from herald import kafka
from herald.config import Settings, load_settings
from herald.db.engine import migrate
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The tier is the folder: tests/unit -> unit, and so on.
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    db = EmbeddedDatabase(tmp_path_factory.mktemp("pg") / "data").start()
    assert db.url is not None
    migrate(db.url)
    yield db
    db.stop()


@pytest.fixture
def namespace() -> str:
    """A fresh namespace: unique topics, groups and transactional ids for this test."""
    return f"t{uuid.uuid4().hex[:10]}"


def make_settings(
    broker: EmbeddedBroker, database: EmbeddedDatabase | None, namespace: str, **overrides: Any
) -> Settings:
    base: dict[str, Any] = {
        "kafka": {
            "bootstrap": broker.bootstrap,
            "namespace": namespace,
            "session_timeout_ms": kafka.EMBEDDED_SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": kafka.EMBEDDED_HEARTBEAT_MS,
            "partitions": 4,
        },
        # The session's database is shared: runs other tests leave unfinished would count
        # toward this limit (test_web_security sets and tests it).
        "limits": {"max_concurrent_runs": 100_000},
    }
    if database is not None:
        base["database"] = {"url": database.url}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_settings(overrides=base)


@pytest.fixture
def settings(broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str) -> Settings:
    s = make_settings(broker, database, namespace)
    kafka.ensure_topics(s.kafka)
    return s


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail loudly at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {value!r})")
        time.sleep(every)


def read_topic(settings: Settings, topic: str, count: int, timeout: float = 60.0) -> list[Message]:
    """Exactly ``count`` committed records of ``topic`` from the beginning (fails on fewer),
    then a short look for any extra record (returned too, so tests can assert none)."""
    consumer = Consumer(kafka.consumer_config(settings.kafka, f"reader-{uuid.uuid4().hex[:8]}"))
    parts = kafka.partitions_of(consumer, topic)
    for tp in parts:
        tp.offset = OFFSET_BEGINNING
    consumer.assign(parts)
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"{topic}: {len(out)} of {count} records after {timeout:g}s")
            out.extend(m for m in consumer.consume(1000, 0.2) if not m.error())
        extra_deadline = time.monotonic() + 0.5
        while time.monotonic() < extra_deadline:
            out.extend(m for m in consumer.consume(1000, 0.1) if not m.error())
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


class ServiceThread:
    """A service's ``run()`` in a thread, stopped through its stop event."""

    def __init__(self, target: Callable[..., int], settings: Settings, **kwargs: Any) -> None:
        self.stop = threading.Event()
        self.result: int | None = None
        self.error: BaseException | None = None

        def body() -> None:
            try:
                self.result = target(settings, stop=self.stop, **kwargs)
            except BaseException as exc:  # re-raised in join() for the test to see
                self.error = exc

        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 30.0) -> int | None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "service did not stop in time"
        if self.error is not None:
            raise self.error
        return self.result


def decode_all(msgs: list[Message], kind: type[Any]) -> list[Any]:
    decoder = msgspec.json.Decoder(kind)
    return [decoder.decode(m.value()) for m in msgs]
