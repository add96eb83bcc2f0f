"""A timer's time left and lateness, as the API shows them (``herald.timers``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from herald import timers

DUE = datetime(2026, 12, 7, 11, 16, 46, 316977, tzinfo=UTC)


def test_lateness_is_exact_to_the_microsecond_and_none_before_an_attempt() -> None:
    # 49,181 µs: total_seconds() * 1000 gave 49.181000000000004.
    assert timers.lateness_ms(DUE, DUE + timedelta(microseconds=49_181)) == 49.181
    assert timers.lateness_ms(DUE, DUE - timedelta(microseconds=1_500)) == -1.5  # early
    assert timers.lateness_ms(DUE, None) is None


def test_time_left_is_floored_at_zero() -> None:
    assert timers.time_left(DUE, DUE - timedelta(seconds=2, microseconds=850_000)) == 2.85
    assert timers.time_left(DUE, DUE + timedelta(seconds=1)) == 0.0
