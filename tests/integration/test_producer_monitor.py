"""Producer and monitor against the real broker."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import msgspec
import pytest

from herald import contracts, runs
from herald.config import Settings
from herald.contracts import SmsMessage
from herald.services import monitor, producer
from tests.conftest import ServiceThread, decode_all, produce_records, read_topic
from tests.integration.test_recorder import encoded, results_for


def test_producer_turns_a_run_request_into_exactly_n_messages(settings: Settings) -> None:
    request = runs.make_request(2500, seed=99)
    runs.submit(settings.kafka, request)
    svc = ServiceThread(producer.run, settings, max_runs=1)
    try:
        msgs = read_topic(settings, contracts.OUTBOUND.qualified(settings.kafka.namespace), 2500)
    finally:
        svc.join()
    assert svc.result == 0
    decoded: list[SmsMessage] = decode_all(msgs, SmsMessage)  # validates every record
    assert len(decoded) == 2500
    assert sorted(m.seq for m in decoded) == list(range(2500))
    assert all(msg.key().decode() == m.id for msg, m in zip(msgs, decoded, strict=True))
    # Keys spread the run over every partition.
    assert {msg.partition() for msg in msgs} == set(range(settings.kafka.partitions))


def test_invalid_run_request_is_dead_lettered(settings: Settings) -> None:
    ns = settings.kafka.namespace
    produce_records(settings, contracts.RUNS.qualified(ns), [(b"r", b'{"run_id": "x"}')])
    good = runs.make_request(10, seed=1)
    runs.submit(settings.kafka, good)
    svc = ServiceThread(producer.run, settings)
    try:
        assert len(read_topic(settings, contracts.OUTBOUND.qualified(ns), 10)) == 10
        dead = read_topic(settings, contracts.DLQ.qualified(ns), 1)
    finally:
        svc.join()
    assert dead[0].value() == b'{"run_id": "x"}'
    assert dict(dead[0].headers())[contracts.DLQ_REASON].startswith(b"invalid run request:")


def test_rate_limit_paces_the_run(settings: Settings) -> None:
    import threading
    import time

    from confluent_kafka import Producer

    from herald import kafka

    p = Producer(kafka.producer_config(settings.kafka))
    request = runs.make_request(300, seed=1, rate=1000.0)
    started = time.monotonic()
    assert producer.produce_run(
        p, contracts.OUTBOUND.qualified(settings.kafka.namespace), request, stop=threading.Event()
    )
    assert time.monotonic() - started >= 0.29  # 300 messages at 1000/s cannot take less


def run_monitor(settings: Settings, run_id: str, tmp_path: Path, out: io.StringIO) -> dict:
    summary = tmp_path / f"summary-{run_id}.json"
    stop = __import__("threading").Event()
    code = monitor.run(
        settings, stop=stop, run_id=run_id, exit_when_complete=True, summary_json=summary, out=out
    )
    assert code == 0
    return json.loads(summary.read_text())


def test_monitor_totals_and_a_restart_shows_the_same(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="herald.services.monitor")
    ns = settings.kafka.namespace
    request = runs.make_request(1000, seed=3)
    runs.submit(settings.kafka, request)
    results = encoded(results_for(request.run_id, 1000))
    # The first 100 twice, as a broker that shows an aborted transaction's records would.
    produce_records(settings, contracts.RESULTS.qualified(ns), results + results[:100])
    produce_records(settings, contracts.DLQ.qualified(ns), [(b"x", b"junk")])
    # Records that are not what their topic promises are skipped, not counted.
    produce_records(settings, contracts.RUNS.qualified(ns), [(b"x", b"not a run request")])
    produce_records(settings, contracts.RESULTS.qualified(ns), [(b"x", b"{}")])
    out = io.StringIO()
    first = run_monitor(settings, request.run_id, tmp_path, out)
    assert (first["total"], first["sent"], first["failed"], first["expected"]) == (
        1000,
        750,
        250,
        1000,
    )
    assert first["complete"] is True and first["remaining"] == 0 and first["invalid"] == 1
    assert first["duplicates_ignored"] == 100
    assert first["senders"]["0"] == {
        "sent": 250,
        "failed": 84,
        "failure_fraction": 84 / 334,
        "avg_latency_ms": pytest.approx(49.5, abs=0.5),
    }
    # Latencies are 0..99 ms, ten of each: the exact p50 is 49 ms (histogram: within 1%).
    assert first["p50_ms"] == pytest.approx(49.0, rel=0.011)
    assert first["avg_latency_ms"] == pytest.approx(49.5)
    # A second monitor (a restart) reads from the beginning: the same totals, not double.
    again = run_monitor(settings, request.run_id, tmp_path, io.StringIO())
    assert (
        "monitor stopped ◆ 1101 results read ◆ 1 dead letters ◆ 2 unreadable records skipped"
        in (caplog.text)
    )
    assert (again["total"], again["sent"], again["failed"]) == (1000, 750, 250)
    line = out.getvalue().strip().splitlines()[-2]
    assert re.match(
        rf"run {request.run_id}: 1000/1000 \(100\.0%\) sent=750 failed=250 remaining=0 ", line
    ), line
    assert "senders(sent/failed): s0=250/84 s1=250/83 s2=250/83" in line
    assert out.getvalue().strip().splitlines()[-1] == "invalid records (dead-lettered): 1"


@pytest.mark.parametrize("where", ["stdout", "stderr", "file"])
def test_monitor_writes_where_configured(
    broker,
    database,
    namespace: str,
    where: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    from herald import kafka
    from tests.conftest import make_settings

    target = str(tmp_path / "progress.log") if where == "file" else where
    s = make_settings(
        broker,
        database,
        namespace,
        monitor={"kind": "file", "output_location": target, "refresh_secs": 0.1},
    )
    kafka.ensure_topics(s.kafka)
    request = runs.make_request(20, seed=1)
    runs.submit(s.kafka, request)
    produce_records(
        s, contracts.RESULTS.qualified(namespace), encoded(results_for(request.run_id, 20))
    )
    stop = __import__("threading").Event()
    assert monitor.run(s, stop=stop, run_id=request.run_id, exit_when_complete=True) == 0
    captured = capsys.readouterr()
    text = {
        "stdout": captured.out,
        "stderr": captured.err,
        "file": (tmp_path / "progress.log").read_text() if where == "file" else "",
    }[where]
    assert f"run {request.run_id}: 20/20 (100.0%) sent=15 failed=5" in text
    others = [v for k, v in {"stdout": captured.out, "stderr": captured.err}.items() if k != where]
    assert all(f"run {request.run_id}" not in o for o in others)


def test_encoded_results_are_valid_contracts() -> None:
    for _, value in encoded(results_for("r", 3)):
        msgspec.json.decode(value, type=contracts.SmsResult)
