"""Producer and monitor against the real broker."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from herald import completion, contracts, control, runs
from herald.config import Settings
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.scenarios.sms import OUTBOUND, RESULTS, SmsMessage, SmsResult
from herald.services import monitor, producer
from tests.support.cluster import ServiceThread, make_settings
from tests.support.sms import encoded, results_for
from tests.support.topics import committed_total, decode_all, produce_records, read_topic


def test_producer_turns_a_run_request_into_exactly_n_messages(settings: Settings) -> None:
    request = runs.make_request(settings, messages=2500, seed=99)
    runs.submit(settings.kafka, request)
    svc = ServiceThread(producer.run, settings, max_runs=1)
    try:
        msgs = read_topic(settings, OUTBOUND.qualified(settings.kafka.namespace), 2500)
    finally:
        svc.join()
    assert svc.result == 0
    decoded: list[SmsMessage] = decode_all(msgs, SmsMessage)  # validates every record
    assert len(decoded) == 2500
    assert sorted(m.seq for m in decoded) == list(range(2500))
    assert all(msg.key().decode() == m.id for msg, m in zip(msgs, decoded, strict=True))
    # Keys spread the run over every partition.
    assert {msg.partition() for msg in msgs} == set(range(settings.kafka.partitions))


def test_a_request_that_comes_again_after_its_run_was_produced_is_not_produced_twice(
    settings: Settings,
) -> None:
    # As when the producer's offset commit fails after the run (its group lost the member
    # while a broker was down): the same request again, then another run, in one partition.
    ns = settings.kafka.namespace
    first = runs.make_request(settings, messages=700, seed=5)
    second = runs.make_request(settings, messages=30, seed=6)
    records = [(b"same", msgspec.json.encode(r)) for r in (first, first, second)]
    produce_records(settings, contracts.RUNS.qualified(ns), records)
    svc = ServiceThread(producer.run, settings, max_runs=2)
    try:
        msgs = read_topic(settings, OUTBOUND.qualified(ns), 730)
    finally:
        svc.join()
    assert svc.result == 0
    decoded: list[SmsMessage] = decode_all(msgs, SmsMessage)
    per_run = {r.run_id: sorted(m.seq for m in decoded if m.run_id == r.run_id)
               for r in (first, second)}  # fmt: skip
    assert per_run == {first.run_id: list(range(700)), second.run_id: list(range(30))}
    assert len(decoded) == 730  # the repeated request added nothing
    assert committed_total(settings, "producers", contracts.RUNS.qualified(ns)) == 3


def test_invalid_run_request_is_dead_lettered(settings: Settings) -> None:
    ns = settings.kafka.namespace
    bad = [(b"r", b'{"run_id": "x"}'), (b"s", b'{"run_id": "y", "scenario": "nope"}')]
    produce_records(settings, contracts.RUNS.qualified(ns), bad)
    good = runs.make_request(settings, messages=10, seed=1)
    runs.submit(settings.kafka, good)
    svc = ServiceThread(producer.run, settings)
    try:
        assert len(read_topic(settings, OUTBOUND.qualified(ns), 10)) == 10
        dead = read_topic(settings, contracts.DLQ.qualified(ns), 2)
    finally:
        svc.join()
    dead.sort(key=lambda m: m.key())
    assert [m.value() for m in dead] == [v for _k, v in bad]
    reasons = [dict(m.headers())[contracts.DLQ_REASON].decode() for m in dead]
    assert reasons == [
        "ValidationError: Object missing required field `seed`",
        "ValidationError: unknown scenario 'nope' (scenarios: retail, sms, telemetry) "
        "- at `$.scenario`",
    ]


def test_rate_limit_paces_the_run(settings: Settings) -> None:
    import threading

    from confluent_kafka import Producer

    from herald import kafka

    p = Producer(kafka.producer_config(settings.kafka))
    ns = settings.kafka.namespace
    request = runs.make_request(settings, messages=300, seed=1, rate=1000.0)
    called_ms = time.time() * 1000
    assert producer.produce_run(p, ns, request, stop=threading.Event())
    # 300 messages at 1000/s, in chunks of 20: the 15th chunk waits until 0.28 s after the
    # pacing began, which is after the call. Measured from the call, not from the first
    # record: a first chunk slow to go out brings the first create time closer to the last
    # (seen: 277 ms apart). Create times are whole milliseconds: 1 ms of slack.
    created = sorted(m.timestamp()[1] for m in read_topic(settings, OUTBOUND.qualified(ns), 300))
    assert len(created) == 300
    assert created[-1] - called_ms >= 280 - 1


def run_monitor(settings: Settings, run_id: str, out: io.StringIO | None) -> dict:
    """Run a monitor until it publishes its figures of ``run_id`` on the control topic."""
    listener = control.Listener(settings.kafka, since=datetime.now(UTC))
    announcer = control.Announcer(settings.kafka, service="monitor", instance="monitor")
    svc = ServiceThread(monitor.run, settings, run_id=run_id, out=out, announcer=announcer)
    watch = completion.Watch(run_id, want_figures=True)
    try:
        while watch.figures is None:
            assert svc.thread.is_alive(), "the monitor stopped"
            watch.feed(listener.poll(0.2))
    finally:
        assert svc.join() == 0
        listener.close()
        announcer.close()
    assert watch.figures.complete is True
    return watch.figures.figures


def test_monitor_totals_and_a_restart_shows_the_same(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="herald.services.monitor")
    ns = settings.kafka.namespace
    request = runs.make_request(settings, messages=1000, seed=3)
    runs.submit(settings.kafka, request)
    results = encoded(results_for(request.run_id, 1000))
    # The first 100 twice, as a broker that shows an aborted transaction's records would.
    produce_records(settings, RESULTS.qualified(ns), results + results[:100])
    produce_records(settings, contracts.DLQ.qualified(ns), [(b"x", b"junk")])
    # Records that are not what their topic promises are skipped, not counted.
    produce_records(settings, contracts.RUNS.qualified(ns), [(b"x", b"not a run request")])
    produce_records(settings, RESULTS.qualified(ns), [(b"x", b"{}")])
    out = io.StringIO()
    first = run_monitor(settings, request.run_id, out)
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
    again = run_monitor(settings, request.run_id, io.StringIO())
    assert (
        "monitor stopped ◆ 1100 results read ◆ 1 dead letters ◆ 2 unreadable records skipped"
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
    broker: EmbeddedBroker,
    database: EmbeddedDatabase,
    namespace: str,
    where: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from herald import kafka

    target = str(tmp_path / "progress.log") if where == "file" else where
    s = make_settings(
        broker,
        database,
        namespace,
        monitor={"kind": "file", "output_location": target, "refresh_secs": 0.1},
    )
    kafka.ensure_topics(s.kafka)
    request = runs.make_request(s, messages=20, seed=1)
    runs.submit(s.kafka, request)
    produce_records(s, RESULTS.qualified(namespace), encoded(results_for(request.run_id, 20)))
    run_monitor(s, request.run_id, None)
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
        msgspec.json.decode(value, type=SmsResult)
