"""``--from`` for the platform's consumers, on the real broker and Postgres: the monitor and
the recorder start at the first record at or after a time (``offsets_for_times``)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from herald import completion, control, kafka, offsets, runs
from herald.config import Settings
from herald.scenarios.sms import RESULTS
from herald.services import monitor, recorder
from tests.support.cluster import ServiceThread
from tests.support.processes import outcome_count
from tests.support.sms import results_for
from tests.support.waiting import wait_for


def _two_runs(settings: Settings) -> tuple[str, str, datetime]:
    """Run A's 50 results, then a time, then run B's 80 results."""
    a = runs.make_request(settings, messages=50, seed=1)
    b = runs.make_request(settings, messages=80, seed=2)
    runs.submit(settings.kafka, a)
    runs.submit(settings.kafka, b)
    p = Producer(kafka.producer_config(settings.kafka))
    topic = RESULTS.qualified(settings.kafka.namespace)
    for r in results_for(a.run_id, 50):
        p.produce(topic, msgspec.json.encode(r), r.id.encode())
    assert p.flush(15) == 0
    # Record times are milliseconds: the time is a millisecond after A's acknowledgement, and
    # B's records are made at or after it.
    between = datetime.now(UTC) + timedelta(milliseconds=1)
    wait_for(lambda: datetime.now(UTC) >= between, 5, "a millisecond", every=0.001)
    for r in results_for(b.run_id, 80):
        p.produce(topic, msgspec.json.encode(r), r.id.encode())
    assert p.flush(15) == 0
    return a.run_id, b.run_id, between


def _monitor(settings: Settings, run_id: str, start_from: str) -> tuple[dict, str]:
    listener = control.Listener(settings.kafka, since=datetime.now(UTC))
    out = io.StringIO()
    svc = ServiceThread(monitor.run, settings, out=out, start_from=start_from,
                        announcer=control.Announcer(settings.kafka, service="monitor",
                                                    instance="monitor"))  # fmt: skip
    watch = completion.Watch(run_id, want_figures=True)
    try:
        wait_for(lambda: watch.feed(listener.poll(0.2)) or watch.figures, 60, "the figures")
    finally:
        assert svc.join() == 0
        listener.close()
    assert watch.figures is not None
    return watch.figures.figures, out.getvalue()


def test_the_monitor_from_a_time_counts_only_the_later_records(settings: Settings) -> None:
    a, b, between = _two_runs(settings)
    figures, view = _monitor(settings, b, between.isoformat())
    assert (figures["total"], figures["expected"], figures["complete"]) == (80, 80, True)
    # Run A is known (its request is read from the start) but none of its results is counted.
    assert f"run {a}: 0/50 (0.0%)" in view and f"run {a}: 50/50" not in view
    # From the beginning, run A's results are there too.
    figures, view = _monitor(settings, a, "earliest")
    assert figures["total"] == 50 and f"run {b}: 80/80" in view


def test_the_recorder_from_a_time_stores_only_the_later_records(settings: Settings) -> None:
    a, b, between = _two_runs(settings)
    url = str(settings.database.url)
    svc = ServiceThread(recorder.run, settings, start_from=between.isoformat())
    try:
        # Run A's records come first in every partition: once B's are in, A's were passed.
        wait_for(lambda: outcome_count(url, b) == 80, 60, "run B's outcomes")
    finally:
        assert svc.join() == 0
    assert outcome_count(url, a) == 0
    # The group committed past them: a recorder without --from goes on from there.
    svc = ServiceThread(recorder.run, settings)
    svc.join()
    assert outcome_count(url, a) == 0


def test_start_offsets_resolve_earliest_latest_and_a_time(settings: Settings) -> None:
    _a, _b, between = _two_runs(settings)
    consumer = Consumer(kafka.consumer_config(settings.kafka, "offsets-test"))
    try:
        parts = kafka.partitions_of(consumer, RESULTS.qualified(settings.kafka.namespace))
        found = offsets.start_offsets(consumer, parts, between.isoformat())
        ends = [consumer.get_watermark_offsets(tp, timeout=10) for tp in parts]
    finally:
        consumer.close()
    # On each partition the first of run B's records: its count of A's records, 50 in all.
    assert sum(tp.offset for tp in found) == 50
    assert all(isinstance(tp, TopicPartition) for tp in found) and len(ends) == len(parts)
    with pytest.raises(ValueError, match="earliest, latest, or an ISO 8601 time"):
        offsets.parse_start("yesterday")
    assert offsets.parse_start("2025-01-15T12:00:00+01:00") == "2025-01-15T11:00:00+00:00"
    assert offsets.parse_start(" latest ") == "latest"
