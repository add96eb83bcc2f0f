"""The spaceship's offset bookkeeping (:class:`herald.services.spaceship.Ledger`): the offset
each partition of the commands may commit (never past a stream still running), the read
marks that tell a start read again from one read first, and the resume point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from herald.scenarios import telemetry
from herald.scenarios.telemetry import StreamCommand
from herald.services.spaceship import Ledger

P0, P1 = ("t", 0), ("t", 1)


def test_the_safe_offset_stops_at_the_oldest_command_still_open() -> None:
    ledger = Ledger()
    ledger.assign(P0, 0)
    for offset in (5, 6, 7):
        ledger.read(P0, offset)
    assert ledger.safe(P0) == 5
    ledger.done(P0, 6)  # a stop (or a stream ended) behind a stream still running
    assert ledger.safe(P0) == 5
    assert ledger.commits() == {P0: 5}
    ledger.done(P0, 5)
    assert ledger.safe(P0) == 7
    ledger.done(P0, 7)
    assert ledger.safe(P0) == 8  # nothing open: the next offset to read
    assert ledger.commits() == {P0: 8}


def test_commits_lists_only_the_partitions_whose_safe_offset_moved() -> None:
    ledger = Ledger()
    ledger.assign(P0, 0)
    ledger.assign(P1, 0)
    assert ledger.commits() == {}  # nothing read: nothing to commit
    ledger.read(P0, 0)
    ledger.read(P1, 3)
    ledger.done(P1, 3)
    assert ledger.commits() == {P0: 0, P1: 4}
    ledger.committed({P0: 0, P1: 4})
    assert ledger.commits() == {}
    ledger.done(P0, 0)
    assert ledger.commits() == {P0: 1}
    assert ledger.commits([P1]) == {}


def test_dead_lettered_records_move_the_next_offset_but_open_nothing() -> None:
    ledger = Ledger()
    ledger.assign(P0, 0)
    ledger.read(P0, 2)
    ledger.done(P0, 2)
    ledger.passed(P0, 5)  # offsets 3 and 4 were dead-lettered
    assert ledger.safe(P0) == 5
    ledger.passed(P1, 9)  # a partition not held: ignored
    assert ledger.safe(P1) is None


def test_a_command_below_the_inherited_read_mark_is_read_again() -> None:
    ledger = Ledger()
    ledger.assign(P0, 10)  # the previous owners had read up to offset 10
    assert ledger.read(P0, 9) is True
    assert ledger.read(P0, 10) is False
    # The mark to commit: past what this member read, never below what it inherited.
    assert ledger.marks() == {P0: 11}
    ledger.marked({P0: 11})
    assert ledger.marks() == {}
    ledger.assign(P1, 20)
    ledger.read(P1, 4)
    assert ledger.marks() == {P1: 20}


def test_an_unknown_read_mark_makes_every_command_read_again_and_is_never_committed() -> None:
    ledger = Ledger()
    ledger.assign(P0, Ledger.UNKNOWN)
    assert ledger.read(P0, 0) is True
    assert ledger.marks() == {}


def test_a_partition_given_up_is_forgotten_and_a_late_done_changes_nothing() -> None:
    ledger = Ledger()
    ledger.assign(P0, 0)
    ledger.read(P0, 1)
    ledger.forget([P0])
    ledger.done(P0, 1)
    assert (ledger.safe(P0), ledger.commits(), ledger.marks()) == (None, {}, {})
    ledger.assign(P0, 2)  # held again: what the previous owner left
    assert ledger.read(P0, 1) is True
    assert ledger.safe(P0) == 1


def _command(start: datetime, duration_s: float = 10.0, rate_hz: float = 20.0) -> StreamCommand:
    return StreamCommand(
        action="start",
        schedule_id="0" * 32,
        ship="voyager-1",
        host="127.0.0.1",
        port=47100,
        rate_hz=rate_hz,
        duration_s=duration_s,
        start_at=start,
    )


def test_the_resume_point_is_the_first_packet_still_due() -> None:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    command = _command(start)
    at = start.timestamp()
    assert telemetry.resume_point(command, at - 5) == 0  # before its start
    assert telemetry.resume_point(command, at) == 0
    assert telemetry.resume_point(command, at + 0.01) == 1  # packet 0 was due at 0.00
    assert telemetry.resume_point(command, at + 0.05) == 1  # exactly due: not yet passed
    assert telemetry.resume_point(command, at + 3.26) == 66
    assert telemetry.resume_point(command, at + 9.99) == 200
    assert telemetry.resume_point(command, at + 60) == 200  # over: the stream's size


def test_a_resumed_stream_has_the_samples_it_would_have_had() -> None:
    command = _command(datetime.now(UTC) + timedelta(seconds=1), duration_s=2.0)
    kw = {"orbit_secs": 5400.0, "eclipse_fraction": 0.35, "model_speed": 60.0}
    whole = list(telemetry.samples(command, **kw))
    assert list(telemetry.samples(command, first=17, **kw)) == whole[17:]
