"""Senders as real processes, paused past their session timeout."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer

from herald import contracts, kafka
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.runtime.processes import ServiceProcess, herald_command
from tests.conftest import make_settings, produce_records
from tests.integration.test_sender import outbound_records


def test_a_paused_sender_is_replaced_and_no_message_is_missed(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, tmp_path: Path
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
    produce_records(s, contracts.OUTBOUND.qualified(namespace), outbound_records("pause", n))
    procs = [
        ServiceProcess(
            f"sender-{i}",
            herald_command("sender", "--id", str(i), "--config", str(cfg)),
            log_path=tmp_path / f"sender-{i}.log",
        )
        for i in range(2)
    ]
    consumer = Consumer(kafka.consumer_config(s.kafka, "reader"))
    parts = kafka.partitions_of(consumer, contracts.RESULTS.qualified(namespace))
    for tp in parts:
        tp.offset = OFFSET_BEGINNING
    consumer.assign(parts)
    ids: list[str] = []
    paused_at: float | None = None
    resumed = False
    deadline = time.monotonic() + 120
    try:
        while len(set(ids)) < n or not resumed:
            assert time.monotonic() < deadline, f"{len(set(ids))} of {n} results"
            ids += [
                json.loads(m.value())["message_id"]
                for m in consumer.consume(1000, 0.2)
                if not m.error()
            ]
            if paused_at is None and len(ids) > n // 6:
                procs[0].signal(signal.SIGSTOP)
                paused_at = time.monotonic()
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
    assert set(ids) == {f"pause-{i}" for i in range(n)}  # no message without a result
    log0 = procs[0].log_path.read_text()
    assert "sender 0 lost" in log0 or "was taken over" in log0
    # Duplicates: none on Apache Kafka. The embedded broker shows the records of aborted
    # (zombie) transactions to read_committed readers, so some may appear here; consumers
    # are idempotent on the message id (see docs/guarantees.md).
