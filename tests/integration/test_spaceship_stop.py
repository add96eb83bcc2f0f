"""A stopping spaceship's waits on the real broker: those a rebalance under way makes after the
stop (a hand-off, its flush, a read mark's lookup) share one grace, so that with its last
flush, the group's leave and its last announcement it stops within the 15 s a run gives it."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from confluent_kafka import Producer, TopicPartition

from herald import kafka
from herald.config import Settings
from herald.scenarios import telemetry
from herald.services import spaceship


def _member(settings: Settings, stop: threading.Event) -> spaceship._Member:
    """A member whose sending loop never runs: a hand-off asked of it is never answered."""
    ks = settings.kafka
    kafka.ensure_topics(ks, kafka.all_topics(settings))
    events = Producer(kafka.producer_config(ks))
    ledger = spaceship.Ledger()
    streams = spaceship.Streams(
        settings,
        events,
        name="spaceship-test",
        events_topic=telemetry.STREAMS.qualified(ks.namespace),
        ledger=ledger,
    )
    return spaceship._Member(
        settings,
        name="spaceship-test",
        streams=streams,
        ledger=ledger,
        events=events,
        announcer=None,
        stop=stop,
    )


def test_a_stopping_spaceship_waits_for_a_hand_off_no_longer_than_its_grace(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A revocation served after the stop waited HAND_OFF_SECS (10 s) for the sending loop,
    then 10 s more for the flush, on top of the last flush's 10: past the 15 s."""
    stop = threading.Event()
    member = _member(settings, stop)
    topic = telemetry.COMMANDS.qualified(settings.kafka.namespace)
    try:
        grace = member.grace
        assert grace.limit(spaceship.HAND_OFF_SECS) == spaceship.HAND_OFF_SECS  # running
        assert grace.seen is None
        stop.set()
        grace.seen = time.monotonic() - (spaceship.STOP_GRACE_SECS - 0.5)
        assert 0.1 < grace.limit(spaceship.HAND_OFF_SECS) <= 0.5  # what is left of it
        assert grace.limit(0.05) == 0.1  # a shorter wait keeps its own limit, 0.1 s at least
        with caplog.at_level(logging.WARNING, logger=spaceship.__name__):
            member.on_revoke(member.marks, [TopicPartition(topic, 0)])
        waited = [
            float(r.args[2])  # type: ignore[index]
            for r in caplog.records
            if r.getMessage().startswith("spaceship-test: the sending loop did not hand off")
        ]
        assert len(waited) == 1 and 0.1 <= waited[0] <= 0.5  # the computed limit it waited
        grace.seen = time.monotonic() - spaceship.STOP_GRACE_SECS - 1.0
        assert grace.limit(spaceship.MARKS_LOOKUP_SECS) == 0.1  # past it: a last, short try
    finally:
        member.marks.close()


def test_a_stopping_spaceships_grace_counts_from_when_the_stop_is_first_seen(
    settings: Settings,
) -> None:
    """Not from each wait's own start: the second wait gets what the first left."""
    stop = threading.Event()
    member = _member(settings, stop)
    try:
        stop.set()
        before = time.monotonic()
        assert member.grace.limit(spaceship.HAND_OFF_SECS) <= spaceship.STOP_GRACE_SECS
        seen = member.grace.seen
        assert seen is not None and before <= seen <= time.monotonic()
        member.grace.limit(10)
        assert member.grace.seen == seen  # the first sight stays
    finally:
        member.marks.close()
