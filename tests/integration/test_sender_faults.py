"""Senders whose partitions are taken over: paused past their session timeout, or fenced."""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer

from herald import contracts, kafka
from herald.config import KafkaSettings
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.runtime.processes import ServiceProcess, herald_command
from herald.scenarios.sms import OUTBOUND, RESULTS, SCENARIO
from herald.services import worker
from herald.waiting import wait_until
from tests.support.cluster import ServiceThread, make_settings
from tests.support.sms import outbound_records, sender_settings
from tests.support.topics import Tally, produce_records


def results_reader(settings: KafkaSettings, namespace: str) -> Consumer:
    """A read_committed reader of the results topic, from its beginning."""
    consumer = Consumer(kafka.consumer_config(settings, "reader"))
    parts = kafka.partitions_of(consumer, RESULTS.qualified(namespace))
    for tp in parts:
        tp.offset = OFFSET_BEGINNING
    consumer.assign(parts)
    return consumer


def message_ids(consumer: Consumer) -> list[str]:
    return [
        json.loads(m.value())["message_id"] for m in consumer.consume(1000, 0.2) if not m.error()
    ]


def test_a_paused_sender_is_replaced_and_no_message_is_missed(
    broker: EmbeddedBroker,
    database: EmbeddedDatabase,
    namespace: str,
    tmp_path: Path,
    broker_engine: str,
) -> None:
    sender_cfg = {"mean_wait_time": 0.05, "failure_rate": 0.1, "max_in_flight": 50}
    s = make_settings(
        broker,
        database,
        namespace,
        senders=[sender_cfg, sender_cfg],
        kafka={"session_timeout_ms": 2000, "heartbeat_interval_ms": 200},
    )
    kafka.ensure_topics(s.kafka)
    cfg = tmp_path / "settings.json"
    cfg.write_text(s.model_dump_json())
    n = 6000
    records = outbound_records("pause", n)
    # Half first, the rest once the sender is paused: however fast the machine, the paused
    # sender's partitions hold work that only a takeover can do.
    produce_records(s, OUTBOUND.qualified(namespace), records[: n // 2])
    procs = [
        ServiceProcess(
            f"sender-{i}",
            herald_command("sender", "--id", str(i), "--config", str(cfg)),
            log_path=tmp_path / f"sender-{i}.log",
        )
        for i in range(2)
    ]
    consumer = results_reader(s.kafka, namespace)
    ids: list[str] = []
    paused_at: float | None = None
    resumed = False
    deadline = time.monotonic() + 120
    try:
        while Tally(ids, []).distinct < n or not resumed:
            assert time.monotonic() < deadline, f"{Tally(ids, []).distinct} of {n} results"
            ids += message_ids(consumer)
            if paused_at is None and len(ids) > n // 6:
                procs[0].signal(signal.SIGSTOP)
                paused_at = time.monotonic()
                produce_records(s, OUTBOUND.qualified(namespace), records[n // 2 :])
            # Two and a half times the 2 s session timeout: the group gives its partitions away.
            if paused_at is not None and not resumed and time.monotonic() - paused_at > 5:
                procs[0].signal(signal.SIGCONT)
                resumed = True
        for p in procs:
            p.signal(signal.SIGTERM)
        codes = [p.wait(30) for p in procs]
    finally:
        consumer.close()
        for p in procs:
            p.signal(signal.SIGKILL)
            p.wait()
    assert codes == [0, 0]
    tally = Tally(ids, [f"pause-{i}" for i in range(n)])
    assert (tally.missing, tally.unexpected) == ([], [])  # no message without a result
    # Duplicates: none on Apache Kafka. The embedded broker shows the records of aborted
    # (zombie) transactions to read_committed readers, so some appear here: at most what the
    # paused sender had released but not committed (consumers are idempotent on the id; see
    # docs/guarantees.md). Counted and reported, never hidden.
    print(f"paused sender: {tally}")
    assert tally.duplicates < n // 10, tally
    if broker_engine == "kafka":  # aborted transactions are hidden from read_committed readers
        assert tally.duplicates == 0, tally
    log0 = procs[0].log_path.read_text()
    assert "sender-0 lost" in log0 or "was taken over" in log0


def test_a_sender_fenced_while_it_holds_the_partition_rejoins_and_misses_nothing(
    broker: EmbeddedBroker,
    database: EmbeddedDatabase,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
    broker_engine: str,
) -> None:
    """A producer initialised with a partition's transactional id behind the group's back
    fences the sender's producer while the group still assigns the partition to it: the
    sender must give the partition up, rejoin, and let the group assign it afresh."""
    s = sender_settings(
        broker,
        database,
        namespace,
        {"mean_wait_time": 0.02, "failure_rate": 0.0, "max_in_flight": 100},
    )
    n = 20_000
    records = outbound_records("fence", n)
    # Half the messages first; the fence lands once some results are out, and only then the
    # rest: whatever the machine's speed, the sender has work after the fence, so it must
    # meet it.
    produce_records(s, OUTBOUND.qualified(namespace), records[: n // 2])
    caplog.set_level(logging.INFO, logger="herald.services.worker")
    svc = ServiceThread(worker.run, s, worker_id=0)
    consumer = results_reader(s.kafka, namespace)
    ids: list[str] = []
    fenced = False
    deadline = time.monotonic() + 90
    try:
        while Tally(ids, []).distinct < n:
            assert time.monotonic() < deadline, f"{Tally(ids, []).distinct} of {n} results"
            ids += message_ids(consumer)
            if not fenced and len(ids) > n // 5:
                fenced = True
                tid = contracts.transactional_id(
                    contracts.group_id(namespace, "senders"), OUTBOUND.qualified(namespace), 0
                )
                stranger = Producer(kafka.transactional_producer_config(s.kafka, tid))
                stranger.init_transactions(30)  # bumps the epoch: the sender's is stale
                produce_records(s, OUTBOUND.qualified(namespace), records[n // 2 :])
    finally:
        consumer.close()
        assert svc.join() == 0
    tally = Tally(ids, [f"fence-{i}" for i in range(n)])
    assert (tally.missing, tally.unexpected) == ([], [])
    print(f"fenced sender: {tally}")
    assert tally.duplicates < n // 10, tally
    if broker_engine == "kafka":
        assert tally.duplicates == 0, tally
    text = caplog.text
    assert "leaving and rejoining the group" in text
    assert text.count("sender-0 assigned") >= 2  # once at the start, again after the rejoin


def test_a_partition_given_up_with_no_record_to_come_is_left_before_the_group_is_joined_again(
    broker: EmbeddedBroker,
    database: EmbeddedDatabase,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The worker judges a rejoin from the consumer's assignment, not from records arriving:
    a partition given up (as after a failed transaction) while the group still assigns it
    here, with no record of it to come, is left, and only once the revocation is served is
    the group joined again (an unsubscribe followed at once by a subscribe came to nothing
    on Apache Kafka during a rebalance, and the partition stalled); it comes back with a new
    producer. The worker's loop is turned here by hand, without its work."""
    s = sender_settings(broker, database, namespace, {"mean_wait_time": 0.0, "failure_rate": 0.0})
    caplog.set_level(logging.INFO, logger="herald.services.worker")
    w = worker.Worker(s, scenario=SCENARIO, worker_id=0)
    partitions = list(range(s.kafka.partitions))

    def turn() -> str:
        assert w.consumer.consume(100, 0.05) == []  # nothing was produced
        w.keep_assignment(time.monotonic())
        return w.rejoin_step

    try:
        w._subscribe()
        wait_until(
            lambda: turn() == "" and sorted(w.parts) == partitions,
            timeout=60,
            what="first assignment",
            every=0,
        )
        old = w.parts[0].producer
        w._drop([0])  # what a transaction that can be neither committed nor aborted leads to
        assert w.given_up() == [0]

        w.keep_assignment(time.monotonic())
        assert w.rejoin_step == "leaving"
        # Unsubscribed, the revocation not served yet: still assigned, and not joined again.
        assert w.given_up() == [0] and sorted(w.parts) == partitions[1:]
        w.keep_assignment(time.monotonic())
        assert w.rejoin_step == "leaving"
        # A leave that never came to the group is started again after the patience.
        w.keep_assignment(time.monotonic() + worker.REJOIN_PATIENCE_SECS + 1)
        assert w.rejoin_step == "leaving"

        assert turn() == "joining"  # the revocation served: out of the group, then joining
        assert w.parts == {} and w.consumer.assignment() == []
        wait_until(lambda: turn() == "", timeout=60, what="assigned again", every=0)
        assert sorted(w.parts) == partitions and w.given_up() == []
        assert w.parts[0].producer is not old
        # A join whose assignment went unseen ends once its patience is over, nothing given up.
        w.rejoin_step, w._rejoin_since = "joining", time.monotonic()
        w.keep_assignment(time.monotonic())
        assert w.rejoin_step == "joining"
        w.keep_assignment(time.monotonic() + worker.REJOIN_PATIENCE_SECS + 1)
        assert w.rejoin_step == ""
    finally:
        w._drop(list(w.parts))
        kafka.close_consumer(w.consumer, w.name)
    # Every line the worker logged, its name and the topic's partitions cut off.
    events = [
        r.getMessage().removeprefix(f"{w.name}: ").split(f" {namespace}.")[0]
        for r in caplog.records
        if r.name == "herald.services.worker"
    ]
    assert events == [
        "sender-0 assigned",
        "partitions [0] given up after failed transactions are still assigned here; "
        "leaving and rejoining the group",
        f"still assigned {worker.REJOIN_PATIENCE_SECS + 1:.0f}s after leaving; leaving again",
        "sender-0 revoked",
        "out of the group; joining it again",
        "sender-0 assigned",
        "sender-0 revoked",  # the close
    ]
