"""Waiting well: one deadline helper, one backoff, one "log it once per episode" helper.

Every "wait until", "retry with backoff" and "say it once, then say when it is over" in
herald goes through these, so each has a deadline that fails loudly, a bounded and growing
pause, and one log line per episode rather than one per attempt.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from herald.errors import HeraldError

T = TypeVar("T")


class Deadline:
    """A point in time ``seconds`` from now (monotonic clock)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float,
    what: str,
    every: float = 0.05,
    stop: threading.Event | None = None,
    error: Callable[[str], Exception] = HeraldError,
) -> T | None:
    """Call ``predicate`` every ``every`` seconds until it returns something truthy, and
    return that; return None if ``stop`` is set first; raise ``error`` at the deadline,
    saying what was waited for and for how long."""
    deadline = Deadline(timeout)
    pause = stop if stop is not None else threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if deadline.expired():
            raise error(f"{what}: not after {timeout:g}s")
        if pause.wait(min(every, deadline.remaining)) and stop is not None:
            return None


class Backoff:
    """Pauses that grow from ``initial`` by ``factor`` up to ``maximum``; with ``jitter``,
    each pause is drawn uniformly from [0, the current bound] ("full jitter")."""

    def __init__(
        self,
        *,
        initial: float = 0.1,
        maximum: float = 2.0,
        factor: float = 2.0,
        jitter: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self._initial = initial
        self._maximum = maximum
        self._factor = factor
        self._jitter = jitter
        self._rng = rng or random.Random()
        self._bound = initial

    def next(self) -> float:
        """The next pause, in seconds."""
        bound = self._bound
        self._bound = min(self._maximum, bound * self._factor)
        return self._rng.uniform(0.0, bound) if self._jitter else bound

    def reset(self) -> None:
        self._bound = self._initial

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Pause for :meth:`next` seconds; True if ``stop`` was set (before or meanwhile)."""
        pause = self.next()
        if stop is None:
            time.sleep(pause)
            return False
        return stop.wait(pause)


class Episode:
    """A condition that comes and goes (a broker away, a database outage): logged once when it
    begins and once when it ends, however many times it is seen in between."""

    def __init__(self, logger: logging.Logger, what: str, *, level: int = logging.WARNING) -> None:
        self._logger = logger
        self._what = what
        self._level = level
        self.since: float | None = None
        self.count = 0  # episodes so far

    @property
    def active(self) -> bool:
        return self.since is not None

    def seen(self, detail: object) -> None:
        """The condition holds; log it if it is new."""
        if self.since is None:
            self.since = time.monotonic()
            self.count += 1
            self._logger.log(self._level, "%s: %s", self._what, detail)

    def over(self, note: str = "") -> float | None:
        """The condition is over; log how long it lasted. Returns that, or None if it was not
        active."""
        if self.since is None:
            return None
        lasted = time.monotonic() - self.since
        self.since = None
        self._logger.info("%s: over after %.1fs%s", self._what, lasted, f"; {note}" if note else "")
        return lasted


def within_grace(limit: float, since_stop: float | None, grace: float) -> float:
    """How long one wait of a stopping service may take: ``limit`` while it runs
    (``since_stop`` None), or once it was told to stop ``since_stop`` seconds ago, what is
    left of its ``grace``, and 0.1 s at least (a last, short try)."""
    if since_stop is None:
        return limit
    return max(0.1, min(limit, grace - since_stop))
