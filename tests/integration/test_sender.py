"""Senders against the real broker: exactly one result per message, DLQ for poison."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from datetime import UTC, datetime

import msgspec
import pytest

from herald import contracts
from herald.config import Settings
from herald.contracts import DLQ_MAX_VALUE
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.scenarios.sms import (
    FAILURE_REASONS,
    OUTBOUND,
    RESULTS,
    SCENARIO,
    SmsGenerator,
    SmsMessage,
    SmsResult,
)
from herald.services import worker
from tests.support.cluster import ServiceThread
from tests.support.sms import outbound_records, sender_settings
from tests.support.topics import decode_all, produce_records, read_topic


def send_all(s: Settings, run_id: str, n: int) -> list[SmsResult]:
    """Put ``n`` messages on the outbound topic, run sender 0, read its ``n`` results."""
    namespace = s.kafka.namespace
    produce_records(s, OUTBOUND.qualified(namespace), outbound_records(run_id, n))
    svc = ServiceThread(worker.run, s, worker_id=0)
    try:
        return decode_all(read_topic(s, RESULTS.qualified(namespace), n), SmsResult)
    finally:
        assert svc.join() == 0


def test_each_message_yields_exactly_one_result(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str
) -> None:
    s = sender_settings(
        broker,
        database,
        namespace,
        {"mean_wait_time": 0.002, "failure_rate": 0.25, "max_in_flight": 200},
    )
    n = 4000
    results = send_all(s, "exact", n)
    assert len(results) == n
    assert sorted(r.id for r in results) == sorted(f"exact-{i}" for i in range(n))
    assert {r.worker for r in results} == {0}
    failed = [r for r in results if r.status == "failed"]
    # Binomial(4000, 0.25): sd = 27.4; 5 sd either side.
    assert 1000 - 137 <= len(failed) <= 1000 + 137
    assert all(r.failure_reason in FAILURE_REASONS for r in failed)
    assert all(r.failure_reason is None for r in results if r.status == "sent")
    assert all(r.attempts == 1 for r in results)
    # Exponential with mean 2 ms: the sample mean's sd is 2/sqrt(4000) ms; 5 sd is 0.16 ms.
    assert statistics.fmean(r.latency_ms for r in results) == pytest.approx(2.0, abs=0.16)
    for r in results:
        assert r.completed_at >= r.received_at >= r.created_at
        gap = (r.completed_at - r.received_at).total_seconds() * 1000
        assert gap == pytest.approx(r.latency_ms, abs=0.01)


def test_poison_records_go_to_the_dead_letter_topic_and_the_rest_goes_on(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str
) -> None:
    s = sender_settings(broker, database, namespace, {"mean_wait_time": 0, "failure_rate": 0})
    outbound = OUTBOUND.qualified(namespace)
    good = outbound_records("poison", 50)
    bad_schema = msgspec.json.encode(
        {
            "id": "x-1",
            "run_id": "poison",
            "seq": 0,
            "phone": "not-a-number",
            "text": "hi",
            "created_at": datetime.now(UTC),
        }
    )
    produce_records(
        s, outbound, [*good[:25], (b"k1", b"\xffnot json"), (b"k2", bad_schema), *good[25:]]
    )
    svc = ServiceThread(worker.run, s, worker_id=0)
    try:
        results = read_topic(s, RESULTS.qualified(namespace), 50)
        dead = read_topic(s, contracts.DLQ.qualified(namespace), 2)
    finally:
        svc.join()
    assert len(results) == 50
    assert all(r.status == "sent" for r in decode_all(results, SmsResult))
    assert len(dead) == 2
    by_key = {m.key(): m for m in dead}
    assert by_key[b"k1"].value() == b"\xffnot json"
    assert by_key[b"k2"].value() == bad_schema
    for key, reason in (
        (b"k1", "DecodeError: JSON is malformed"),
        (b"k2", "ValidationError: Expected `str` matching regex"),
    ):
        headers = dict(by_key[key].headers())
        assert headers[contracts.DLQ_REASON].decode().startswith(reason)
        assert headers[contracts.DLQ_TOPIC].decode() == outbound
        assert headers[contracts.DLQ_SERVICE] == b"sender-0"
        assert int(headers[contracts.DLQ_OFFSET]) >= 0
        assert 0 <= int(headers[contracts.DLQ_PARTITION]) < s.kafka.partitions


def test_a_poison_record_too_large_to_dead_letter_whole_is_cut_and_the_rest_goes_on(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str
) -> None:
    """A record just under the 1 MB limit is within it, but with the dead-letter headers it
    would not be: it is dead-lettered cut, and the sender does not retry it for ever."""
    s = sender_settings(broker, database, namespace, {"mean_wait_time": 0, "failure_rate": 0})
    outbound = OUTBOUND.qualified(namespace)
    good = outbound_records("huge", 20)
    huge = b"x" * 999_900
    produce_records(s, outbound, [*good[:10], (b"huge", huge), *good[10:]])
    svc = ServiceThread(worker.run, s, worker_id=0)
    try:
        results = read_topic(s, RESULTS.qualified(namespace), 20)
        [dead] = read_topic(s, contracts.DLQ.qualified(namespace), 1)
    finally:
        assert svc.join() == 0
    assert sorted(r.id for r in decode_all(results, SmsResult)) == sorted(
        f"huge-{i}" for i in range(20)
    )
    assert dead.key() == b"huge"
    assert dead.value() == huge[:DLQ_MAX_VALUE]
    reason = dict(dead.headers())[contracts.DLQ_REASON].decode()
    assert reason.startswith("DecodeError: JSON is malformed")
    assert reason.endswith(f" (value cut to its first {DLQ_MAX_VALUE} of 999900 bytes)")


def test_window_of_one_sends_one_message_at_a_time(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str
) -> None:
    s = sender_settings(
        broker,
        database,
        namespace,
        {
            "mean_wait_time": 0.004,
            "failure_rate": 0,
            "latency_distribution": "constant",
            "max_in_flight": 1,
        },
    )
    n = 40
    results = send_all(s, "one", n)
    spans = sorted((r.received_at, r.completed_at) for r in results)
    assert all(r.latency_ms == 4.0 for r in results)
    # One at a time: each message is received only after the previous one completed.
    assert all(nxt[0] >= prev[1] for prev, nxt in itertools.pairwise(spans))


def test_a_wide_window_overlaps_sends(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str
) -> None:
    s = sender_settings(
        broker,
        database,
        namespace,
        {
            "mean_wait_time": 0.05,
            "failure_rate": 0,
            "latency_distribution": "constant",
            "max_in_flight": 1000,
        },
    )
    n = 400
    results = send_all(s, "wide", n)
    # In a window, sends overlap: at the moment the most were in flight, many were.
    events = sorted([(r.received_at, 1) for r in results] + [(r.completed_at, -1) for r in results])
    in_flight = peak = 0
    for _at, step in events:
        in_flight += step
        peak = max(peak, in_flight)
    assert peak > 1
    assert all(r.latency_ms == 50.0 for r in results)


def test_retries_count_attempts_and_fail_once_after_the_last(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str
) -> None:
    s = sender_settings(
        broker,
        database,
        namespace,
        {
            "mean_wait_time": 0.001,
            "failure_rate": 0.5,
            "latency_distribution": "constant",
            "max_attempts": 3,
            "retry_backoff": 0.001,
        },
    )
    n = 2000
    results = send_all(s, "retry", n)
    assert len(results) == n and len({r.id for r in results}) == n
    failed = [r for r in results if r.status == "failed"]
    assert all(r.attempts == 3 for r in failed)
    # P(failed) = 0.5^3 = 0.125: mean 250, sd 14.8; 5 sd.
    assert 250 - 74 <= len(failed) <= 250 + 74
    by_attempts = {
        a: [r for r in results if r.attempts == a and r.status == "sent"] for a in (1, 2, 3)
    }
    # Latency: 1 ms per attempt plus 1 ms, 2 ms backoff before the 2nd and 3rd.
    assert {r.latency_ms for r in by_attempts[1]} == {1.0}
    assert {round(r.latency_ms, 6) for r in by_attempts[2]} == {3.0}
    assert {round(r.latency_ms, 6) for r in by_attempts[3]} == {6.0}
    assert {round(r.latency_ms, 6) for r in failed} == {6.0}


def test_unknown_sender_id_is_a_config_error(settings: Settings) -> None:
    from herald.errors import ConfigError

    with pytest.raises(ConfigError, match="--id 9: no such worker; the settings define 4"):
        worker.Worker(settings, scenario=SCENARIO, worker_id=9)


def test_transactional_ids_are_scoped_by_group_topic_and_partition(settings: Settings) -> None:
    w = worker.Worker(settings, scenario=SCENARIO, worker_id=0)
    try:
        ns = settings.kafka.namespace
        assert w.group == f"{ns}.herald-senders"
        assert contracts.transactional_id(w.group, w.work, 3) == (
            f"{ns}.herald-senders:{ns}.herald.sms.outbound:p3"
        )
    finally:
        w.consumer.close()


def test_a_stopping_worker_waits_for_the_broker_no_longer_than_its_grace(
    settings: Settings,
) -> None:
    """Each partition has its own producer, aborted and flushed one after the other: a broker
    that answers none of them must not hold a stopping worker 5 s a partition."""
    w = worker.Worker(settings, scenario=SCENARIO, worker_id=0)
    try:
        stop = threading.Event()
        w._stop = stop
        assert w.wait_limit(worker.ABORT_TIMEOUT_SECS) == worker.ABORT_TIMEOUT_SECS  # running
        stop.set()
        w._stop_seen = time.monotonic() - (worker.STOP_GRACE_SECS - 2.0)
        assert 0.1 < w.wait_limit(worker.ABORT_TIMEOUT_SECS) <= 2.0  # what is left of it
        assert w.wait_limit(0.5) == 0.5  # a shorter wait keeps its own limit
        w._stop_seen = time.monotonic() - worker.STOP_GRACE_SECS - 1.0
        assert w.wait_limit(worker.ABORT_TIMEOUT_SECS) == 0.1  # past it: a last, short try
    finally:
        w.consumer.close()


def test_a_stopping_workers_grace_counts_from_when_its_loop_saw_the_stop(
    settings: Settings,
) -> None:
    """Not from the first commit that fails after it: the drain's 5 s are part of the 10."""
    w = worker.Worker(settings, scenario=SCENARIO, worker_id=0)
    stop = threading.Event()
    stop.set()
    before = time.monotonic()
    assert w.run(stop) == 0  # the loop sees the stop at once: drain, commit (nothing), close
    assert w._stop_seen is not None and before <= w._stop_seen <= time.monotonic()


def test_messages_with_schema_used_by_others_decode() -> None:
    # The sender reads exactly the producer's contract.
    m = next(SmsGenerator("r", 1).messages(1))
    assert msgspec.json.decode(msgspec.json.encode(m), type=SmsMessage) == m
