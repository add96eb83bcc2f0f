"""A timeline of future events and the clock that makes them due: what the retail store and
spacecraft telemetry scenarios share.

* :class:`Timeline` — events in event-time order, drawn lazily from streams (iterators in
  time order; a customer's visit, a battery's readings): a heap holds one pending event per
  stream, so memory follows the streams open at once, not the length of the simulated
  period. Single events can be inserted (injections), with a tie-break of their own.
* :class:`Clock` — simulated time from wall time: ``start + (wall - origin) × speed``, or
  every event due at once (``speed`` None: as fast as possible).
* :class:`Ticker` — every ``frequency`` wall seconds, the events due, at most
  ``batch_size`` of them; those that do not fit wait, and how many wait (the backlog) is
  reported with each tick. It waits once per tick, never once per event.

Event times are simulated epoch seconds (floats). Nothing here knows about Kafka.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

# Ties at one instant: events of streams first (in the order the streams were added), then
# inserted events (by their own order): the same inputs always give the same sequence.
_STREAM, _INSERTED = 0, 1


class Timed(Protocol):
    """Anything with an event time (simulated epoch seconds)."""

    @property
    def ts(self) -> float: ...


E = TypeVar("E", bound=Timed)
R = TypeVar("R")


class Timeline(Generic[E]):
    """Future events in time order, from lazy streams and inserted events."""

    def __init__(self, streams: Iterable[Iterable[E]] = ()) -> None:
        self._heap: list[tuple[float, int, int, E, Iterator[E] | None]] = []
        self._streams = 0
        for stream in streams:
            self.add(stream)

    def add(self, stream: Iterable[E]) -> None:
        """A stream of events in time order; only its next event is held."""
        it = iter(stream)
        first = next(it, None)
        number = self._streams
        self._streams += 1
        if first is not None:
            heapq.heappush(self._heap, (first.ts, _STREAM, number, first, it))

    def insert(self, event: E, *, order: int) -> None:
        """One event; ``order`` ranks it among inserted events at the same time."""
        heapq.heappush(self._heap, (event.ts, _INSERTED, order, event, None))

    def next_ts(self) -> float | None:
        """The time of the next event, or None when there is none."""
        return self._heap[0][0] if self._heap else None

    def pop(self) -> E:
        """The next event (its stream's following one takes its place)."""
        ts, rank, number, event, stream = heapq.heappop(self._heap)
        if stream is not None:
            following = next(stream, None)
            if following is not None:
                if following.ts < ts:
                    raise ValueError(
                        f"stream {number} goes back in time: {following.ts!r} after {ts!r}"
                    )
                heapq.heappush(self._heap, (following.ts, rank, number, following, stream))
        return event

    def __len__(self) -> int:
        """Events held now: one per open stream, plus inserted ones."""
        return len(self._heap)

    def __iter__(self) -> Iterator[E]:
        """Every event, in order (drains the timeline)."""
        while self._heap:
            yield self.pop()


@dataclass(frozen=True)
class Clock:
    """Simulated time from wall time: ``start`` at wall time ``origin``, then ``speed``
    simulated seconds per wall second; ``speed`` None: every event is due at once."""

    start: float  # simulated epoch seconds
    origin: float  # wall epoch seconds at which simulated time is `start`
    speed: float | None = 1.0

    def at(self, wall: float) -> float:
        """Simulated time at wall time ``wall`` (infinite at maximum speed)."""
        if self.speed is None:
            return math.inf
        return self.start + max(0.0, wall - self.origin) * self.speed

    def due(self, ts: float) -> float:
        """The wall time at which simulated time ``ts`` is reached."""
        if self.speed is None:
            return self.origin
        return self.origin + max(0.0, ts - self.start) / self.speed


@dataclass
class Tick(Generic[R]):
    """One tick: the events it releases, and what is left waiting."""

    number: int  # from 0
    wall: float  # wall epoch seconds when it ran
    now: float  # simulated time then (infinite at maximum speed)
    events: list[R]
    backlog: int  # due events left waiting for a later tick
    backlog_capped: bool  # True: at least `backlog` wait (the count stops at the queue's cap)


def _itself(event: E) -> tuple[E]:
    return (event,)


@dataclass
class Ticker(Generic[E, R]):
    """Releases a timeline's due events every ``frequency`` seconds, ``batch_size`` at most.

    ``expand`` turns each event popped off the timeline into what is published (none, one or
    several: an injection found invalid, a closing walk). Due events are moved into a queue of
    at most ``batch_size + backlog_cap`` before each release, so the backlog is counted
    without holding a whole simulated day when the clock runs far ahead (maximum speed).
    """

    timeline: Timeline[E]
    clock: Clock
    frequency: float = 1.0  # wall seconds between ticks
    batch_size: int = 10
    expand: Callable[[E], Iterable[R]] = field(default=_itself)  # type: ignore[assignment]
    backlog_cap: int = 10_000
    wall: Callable[[], float] = time.time
    ticks: int = 0
    released: int = 0
    _ready: deque[R] = field(default_factory=deque)

    def tick(self) -> Tick[R]:
        """One tick now: the due events, at most ``batch_size``."""
        wall = self.wall()
        now = self.clock.at(wall)
        ready, timeline = self._ready, self.timeline
        limit = self.batch_size + self.backlog_cap
        while len(ready) < limit:
            ts = timeline.next_ts()
            if ts is None or ts > now:
                break
            ready.extend(self.expand(timeline.pop()))
        take = min(self.batch_size, len(ready))
        events = [ready.popleft() for _ in range(take)]
        due = timeline.next_ts()
        capped = len(ready) >= self.backlog_cap and due is not None and due <= now
        tick = Tick(self.ticks, wall, now, events, len(ready), capped)
        self.ticks += 1
        self.released += take
        return tick

    @property
    def done(self) -> bool:
        """Nothing is left to release."""
        return not self._ready and self.timeline.next_ts() is None

    def run(
        self,
        stop: threading.Event,
        *,
        before: Callable[[], None] | None = None,
        wait: Callable[[float], bool] | None = None,
    ) -> Iterator[Tick[R]]:
        """Tick until the timeline is done or ``stop``; ``before`` runs before each tick
        (to merge what arrived). Ticks are ``frequency`` apart on the wall clock, from the
        first; a tick that takes longer is followed at once (no tick is made up twice). At
        maximum speed nothing waits: ticks follow each other."""
        wait = wait or stop.wait
        first = self.wall()
        while not stop.is_set():
            if before is not None:
                before()
            yield self.tick()
            if self.done:
                return
            if self.clock.speed is None:
                continue
            ahead = first + self.ticks * self.frequency - self.wall()
            if ahead > 0 and wait(ahead):
                return
