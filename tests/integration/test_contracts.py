"""Contract tests: what the services really emit keeps the contract in docs/asyncapi.yaml.

Every record the producer, a sender, the recorder and the dead-letter path write is read back
from the real broker and validated against the schemas read from the committed document (not
from the Python model), key and headers included.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import msgspec
from confluent_kafka import Message

from herald import contracts, control, kafka, runs
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.scenarios.sms import RESULTS
from herald.services import monitor, producer, recorder, worker
from tests.support.cluster import ServiceThread, make_settings
from tests.support.contracts import contract
from tests.support.topics import produce_records, read_topic

MESSAGES = 300


def _violations(topic: str, records: list[Message]) -> list[str]:
    """Every way ``records`` of ``topic`` (its plain name) break the published contract."""
    check = contract(topic)
    found = []
    for msg in records:
        raw = msg.value() or b""
        value = json.loads(raw) if check.headers is None else None  # dead letters: any bytes
        headers = {k: (v or b"").decode() for k, v in msg.headers() or []}
        for error in check.errors(key=msg.key(), value=value, headers=headers or None):
            found.append(f"{msg.topic()}[{msg.partition()}]@{msg.offset()}: {error}")
    return found


def test_every_record_the_services_emit_keeps_the_published_contract(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str
) -> None:
    s = make_settings(
        broker,
        database,
        namespace,
        # Failures and retries too, so results of every shape are checked.
        senders=[{"mean_wait_time": 0.001, "failure_rate": 0.4, "max_attempts": 2}],
    )
    kafka.ensure_topics(s.kafka)
    names = {t.name: t.qualified(namespace) for t in kafka.all_topics()}
    request = runs.make_request(
        s, messages=MESSAGES, seed=11, rate=100_000.0, config={"from": "a test"}
    )
    runs.submit(s.kafka, request)  # what the CLI and the web API send
    # Poison: a run request without its fields, two outbound records and a result that are not
    # what their topics promise. Each service dead-letters the ones it reads.
    bad_sms = msgspec.json.encode(
        {
            "id": "poison-2",
            "run_id": "poison",
            "seq": 0,
            "phone": "12",
            "text": "hi",
            "created_at": datetime.now(UTC),
        }
    )
    produce_records(s, names["herald.runs"], [(b"poison-run", b'{"run_id": "x"}')])
    produce_records(
        s, names["herald.sms.outbound"], [(b"poison-1", b"\xffnot json"), (b"poison-2", bad_sms)]
    )
    produce_records(s, names["herald.sms.results"], [(None, b"{}")])

    announcers = [
        control.Announcer(s.kafka, service=name, instance=name)
        for name in ("producer", "sender-0", "recorder", "monitor")
    ]
    services = [
        ServiceThread(producer.run, s, announcer=announcers[0]),
        ServiceThread(worker.run, s, worker_id=0, announcer=announcers[1]),
        ServiceThread(recorder.run, s, announcer=announcers[2]),
        ServiceThread(monitor.run, s, announcer=announcers[3]),
    ]
    for a in announcers:
        a.started()
    try:
        outbound = read_topic(s, names["herald.sms.outbound"], MESSAGES + 2)
        results = read_topic(s, names["herald.sms.results"], MESSAGES + 1)
        dead = read_topic(s, names["herald.dlq"], 5)
        requests = read_topic(s, names["herald.runs"], 2)
        # Started and ready for each of the four, the run's completion and its figures.
        events = read_topic(s, names["herald.control"], 10)
    finally:
        for svc in services:
            assert svc.join() == 0
        for a in announcers:
            a.stopped(0)
            a.close()
    events = read_topic(s, names["herald.control"], 14)

    # Set aside the records this test wrote itself; the rest is what herald emitted.
    ours = {b"poison-run", b"poison-1", b"poison-2", None}
    emitted = {
        "herald.runs": [m for m in requests if m.key() not in ours],
        "herald.sms.outbound": [m for m in outbound if m.key() not in ours],
        "herald.sms.results": [m for m in results if m.key() not in ours],
        "herald.dlq": dead,
        "herald.control": events,
    }
    assert {topic: len(records) for topic, records in emitted.items()} == {
        "herald.runs": 1,
        "herald.sms.outbound": MESSAGES,
        "herald.sms.results": MESSAGES,
        "herald.dlq": 5,
        "herald.control": 14,
    }
    kinds = Counter((e["type"], e.get("state")) for e in (json.loads(m.value()) for m in events))
    assert kinds == {
        ("service", "started"): 4,
        ("service", "ready"): 4,
        ("service", "stopped"): 4,
        ("run-completed", None): 1,
        ("run-figures", None): 1,
    }
    for topic, records in emitted.items():
        assert _violations(topic, records) == [], topic

    statuses = Counter(json.loads(m.value())["status"] for m in emitted["herald.sms.results"])
    assert set(statuses) == {"sent", "failed"}  # both shapes were checked
    attempts = {json.loads(m.value())["attempts"] for m in emitted["herald.sms.results"]}
    assert attempts == {1, 2}
    # Each service dead-letters what it cannot read, the original record unchanged (the
    # poison run request twice: the producer and the recorder both read herald.runs).
    origin = {
        (dict(m.headers() or [])[contracts.DLQ_SERVICE].decode(), m.key()): m.value() for m in dead
    }
    assert origin == {
        ("producer", b"poison-run"): b'{"run_id": "x"}',
        ("recorder", b"poison-run"): b'{"run_id": "x"}',
        ("sender-0", b"poison-1"): b"\xffnot json",
        ("sender-0", b"poison-2"): bad_sms,
        ("recorder", None): b"{}",
    }


def test_the_contract_check_rejects_records_that_break_it(
    broker: EmbeddedBroker, namespace: str
) -> None:
    # The same check on records that do not keep the contract, through the real broker: it
    # names each violation, so the test above cannot pass by checking nothing.
    s = make_settings(broker, None, namespace)
    kafka.ensure_topics(s.kafka)
    topic = RESULTS.qualified(namespace)
    produce_records(s, topic, [(b"bad key", b'{"message_id": "m-1", "status": "lost"}')])
    (msg,) = read_topic(s, topic, 1)
    assert _violations(RESULTS.name, [msg]) == [
        f"{topic}[{msg.partition()}]@0: payload: 'lost' is not one of ['failed', 'sent']",
        f"{topic}[{msg.partition()}]@0: payload: 'run_id' is a required property",
        f"{topic}[{msg.partition()}]@0: payload: 'seq' is a required property",
        f"{topic}[{msg.partition()}]@0: payload: 'sender_id' is a required property",
        f"{topic}[{msg.partition()}]@0: payload: 'latency_ms' is a required property",
        f"{topic}[{msg.partition()}]@0: payload: 'attempts' is a required property",
        f"{topic}[{msg.partition()}]@0: payload: 'created_at' is a required property",
        f"{topic}[{msg.partition()}]@0: payload: 'received_at' is a required property",
        f"{topic}[{msg.partition()}]@0: payload: 'completed_at' is a required property",
        f"{topic}[{msg.partition()}]@0: key: 'bad key' does not match '^[A-Za-z0-9_:.-]{{1,128}}$'",
    ]
