"""Baseline: a raw two-hop relay with confluent-kafka, on the embedded broker (or any broker).

Three processes, no business logic, no database: ``produce`` writes N ~150-byte JSON records
to topic A; ``relay`` consumes A and re-produces each record to topic B; ``consume`` reads B
until it has all N. The figure is N / (last record consumed at B - first record produced).

The two consumers assign() every partition (no consumer-group join) and are ready before the
producer starts, so the figure is the data path alone. Run by run.py; each role is also a
command: ``python benchmarks/relay.py produce|relay|consume --bootstrap HOST:PORT ...``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from herald.runtime.broker import EmbeddedBroker

PARTITIONS = 12  # like herald's topics
TOPIC_A, TOPIC_B = "relay.a", "relay.b"
BATCH = 1000  # consume(num_messages=...)
TEXTS = [f"Alert {i:02d}: severe weather warning, stay indoors." for i in range(64)]


def record(seq: int) -> bytes:
    """One ~150-byte JSON record, shaped like herald's SMS messages."""
    return (
        f'{{"id":"bench:{seq:09d}","seq":{seq},"phone":"+1415{seq % 10_000_000:07d}",'
        f'"text":"{TEXTS[seq % len(TEXTS)]}","created_at":"2026-01-01T00:00:00Z"}}'
    ).encode()


def producer_conf(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "acks": "all",  # as herald's producers (every in-sync copy)
        "queue.buffering.max.messages": 500_000,
    }


def consumer_conf(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": "relay-bench",  # required by the client; assign() never joins the group
        "enable.auto.commit": False,
        "fetch.queue.backoff.ms": 10,
    }


def assigned_consumer(bootstrap: str, topic: str) -> Consumer:
    consumer = Consumer(consumer_conf(bootstrap))
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    consumer.consume(num_messages=1, timeout=0.5)  # connect and resolve offsets now
    return consumer


def produce(producer: Producer, topic: str, value: bytes, key: bytes | None) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.01)  # the local queue is full: let the broker catch up


def role_produce(args: argparse.Namespace) -> dict[str, Any]:
    producer = Producer(producer_conf(args.bootstrap))
    first = time.time()
    for seq in range(args.messages):
        produce(producer, args.topics[0], record(seq), b"k%d" % seq)
        if seq % BATCH == 0:
            producer.poll(0)
    producer.flush()
    return {"first_produce": first, "acked": time.time()}


def role_relay(args: argparse.Namespace) -> dict[str, Any]:
    consumer = assigned_consumer(args.bootstrap, args.topics[0])
    producer = Producer(producer_conf(args.bootstrap))
    print("ready", flush=True)
    relayed = 0
    deadline = time.monotonic() + args.timeout
    while relayed < args.messages and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=BATCH, timeout=0.1):
            if msg.error() is None:
                produce(producer, args.topics[1], msg.value(), msg.key())
                relayed += 1
        producer.poll(0)
    producer.flush()
    consumer.close()
    return {"relayed": relayed}


def role_consume(args: argparse.Namespace) -> dict[str, Any]:
    consumer = assigned_consumer(args.bootstrap, args.topics[1])
    print("ready", flush=True)
    consumed = 0
    deadline = time.monotonic() + args.timeout
    while consumed < args.messages and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=BATCH, timeout=0.1):
            if msg.error() is None:
                consumed += 1
    last = time.time()
    consumer.close()
    return {"consumed": consumed, "last_consumed": last}


ROLES = {"produce": role_produce, "relay": role_relay, "consume": role_consume}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("role", choices=sorted(ROLES))
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--topics", default=f"{TOPIC_A},{TOPIC_B}", help="A,B")
    args = p.parse_args(argv)
    args.topics = args.topics.split(",")
    print(json.dumps(ROLES[args.role](args)), flush=True)
    return 0


# -- the benchmark ---------------------------------------------------------------------------


def _spawn(
    role: str, bootstrap: str, messages: int, topics: Sequence[str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__)), role, "--bootstrap", bootstrap,
         "--messages", str(messages), "--topics", ",".join(topics)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _result(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"relay role {proc.args} exited {proc.returncode}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def run_baseline(
    messages: int,
    timeout: float = 300.0,
    *,
    bootstrap: str | None = None,
    replication_factor: int = 1,
) -> dict[str, float]:
    """One baseline run on a fresh embedded broker, or on ``bootstrap`` (topics of its own,
    ``replication_factor`` copies, ``acks=all``); msg/s and the parts' times."""
    if bootstrap is not None:
        return _relay(bootstrap, messages, timeout, replication_factor)
    with EmbeddedBroker() as broker:
        return _relay(broker.bootstrap, messages, timeout, replication_factor)


def _relay(
    bootstrap: str, messages: int, timeout: float, replication_factor: int
) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    names = (f"{TOPIC_A}.{run}", f"{TOPIC_B}.{run}")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"min.insync.replicas": str(max(1, replication_factor - 1))}
    topics = [NewTopic(t, PARTITIONS, replication_factor, config=config) for t in names]
    for future in admin.create_topics(topics, request_timeout=30).values():
        future.result()
    _wait_for_leaders(admin, names, timeout=60)
    del admin  # the broker's SIGTERM waits for open client connections to close
    readers = [_spawn(role, bootstrap, messages, names) for role in ("consume", "relay")]
    try:
        for proc in readers:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"relay role {proc.args} did not start")
        writer = _spawn("produce", bootstrap, messages, names)
        produced = _result(writer, timeout)
        relayed = _result(readers[1], timeout)
        consumed = _result(readers[0], timeout)
    finally:
        for proc in readers:
            if proc.poll() is None:
                proc.kill()
    if relayed["relayed"] != messages or consumed["consumed"] != messages:
        raise RuntimeError(f"baseline lost records: {relayed}, {consumed}")
    secs = consumed["last_consumed"] - produced["first_produce"]
    return {
        "rate": messages / secs,
        "secs": secs,
        "produce_secs": produced["acked"] - produced["first_produce"],
    }


def _wait_for_leaders(admin: AdminClient, names: Sequence[str], timeout: float) -> None:
    """Until every partition of ``names`` has a leader (Apache Kafka answers CreateTopics
    before its brokers lead the new partitions)."""
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=5).topics
        if all(
            name in topics
            and len(topics[name].partitions) == PARTITIONS
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in names
        ):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"relay topics {names} have no leaders after {timeout:g}s")
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
