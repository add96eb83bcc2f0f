"""The retail store: customers enter a shop, walk its grid of cells and leave, on a timeline.

* **The store** is ``store_height × store_width`` cells with one entrance in its outer wall.
* **Customers** come from a customers file (``seed/customers.csv``: ``id``, ``name``, and an
  optional ``weight``: how often one visits compared with the others). A customer is never in
  the store twice at once: an arrival takes someone who is not inside.
* **Arrivals** are a Poisson process. Its rate follows from Little's law, λ = L / W: with
  ``customers_average_in_store`` L and a mean visit of ``dwell_mean_secs`` W, λ customers a
  second keep L inside on average. With ``arrival_profile: daily`` the rate follows the hours
  of a shop's day (quiet mornings, peaks at lunch and after work), scaled so that its mean over
  the run's period is still λ.
* **A visit** is a small state machine. Its length is drawn first (gamma, shape 2, mean W; cut
  short at closing, so everyone has left by then). The customer *enters* at the entrance, then
  *walks the perimeter* — the home base of a shopper — continuing the way they go, now and then
  turning round, and making short *excursions* into the aisles (straight in one to a few cells,
  and back out); a move every ``move_interval_secs`` on average, to an adjacent cell. When the
  time left is only enough to walk back, they *head out* by the shortest path (diagonal steps
  allowed) and *exit* through the entrance.
* **The timeline** is every visit's events in time order (:mod:`herald.timeline`): a heap of the
  visits under way, so memory follows the customers inside, not the day's length. The producer
  publishes it on a clock (``speed`` × real time) every ``consume_frequency`` seconds,
  ``consume_batch_size`` events at most a tick; ``consume_from`` says where on the timeline the
  run starts: ``earliest`` (opening), ``latest`` (when the run is asked for) or a time. Visits
  under way at the start are not shown, so that every exit a consumer sees follows its enter.
* **Injected events** (the web API's ``POST /api/retail/events``) are records on
  ``herald.retail.injections``, keyed by run id, that the producer merges into the run's
  timeline at their time: a run with injections is produced again exactly. They concern
  customers of their own, not the simulated ones, so that an injection can never contradict a
  visit the generator has not produced yet; who is inside, for the check, comes from Postgres.

Everything is drawn from the run's seed: the same seed, the same events. Each event is one
outcome (status = its type: ``enter``, ``move``, ``exit``); ``retail_visits`` in Postgres (a
view over them) has one row per visit.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import hashlib
import itertools
import logging
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct
from pydantic import Field, field_validator

from herald.contracts import MessageId, RunId, RunRequest, Timestamp, Topic
from herald.errors import ConfigError
from herald.scenarios.base import (
    Emit,
    Example,
    Parameters,
    Published,
    Scenario,
    TimelineSource,
    UnknownParameters,
    Verdict,
    checked,
)
from herald.stats import bucket_of, percentiles
from herald.timeline import Clock, Timeline

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from herald.config import Settings

logger = logging.getLogger(__name__)

# -- parameters: the settings section, and what a run is asked with --------------------------

_TOPIC_NAME = r"^[A-Za-z0-9._-]{1,249}$"  # what Kafka accepts
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?"
                       r"\s*(?:(\d+(?:\.\d+)?)s)?\s*$")  # fmt: skip


def parse_duration(value: object) -> object:
    """``"2h"``, ``"90m"``, ``"1h30m"``, ``"45s"``, ``"1d"`` or a number of seconds."""
    if not isinstance(value, str) or not value.strip():
        return value
    try:
        return float(value)
    except ValueError:
        pass
    match = _DURATION.match(value)
    if match is None or not any(match.groups()):
        raise ValueError("a duration: seconds, or like 2h, 90m, 1h30m, 45s, 1d")
    d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return d * 86400 + h * 3600 + m * 60 + s


def _speed(value: object) -> object:
    return None if isinstance(value, str) and value.strip().lower() == "max" else value


def _consume_from(value: str) -> str:
    value = value.strip()
    if value in ("earliest", "latest"):
        return value
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("earliest, latest, or an ISO 8601 time (2025-01-15T12:00:00Z)") from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


Profile = Literal["flat", "daily"]


class RetailSettings(Parameters):
    """The retail store scenario (`herald.scenarios.retail`; docs/retail.md)."""

    store_height: int = Field(10, ge=2, le=1000, description="Rows of cells (STORE_HEIGHT).")
    store_width: int = Field(6, ge=2, le=1000, description="Columns of cells (STORE_WIDTH).")
    entrance: tuple[int, int] | None = Field(
        None,
        description="The entrance cell `[x, y]`, in the outer wall. Unset: the middle of the "
        "front wall, `[store_width // 2, 0]`.",
    )
    customers_average_in_store: float = Field(
        6.0,
        gt=0,
        le=100_000,
        description="Customers inside on average, L; arrivals come at L / dwell_mean_secs a "
        "second (Little's law) (CUSTOMERS_AVERAGE_IN_STORE).",
    )
    customers_list_file: Path = Field(
        Path("seed/customers.csv"),
        description="CSV of the customers (`id`, `name`, optional `weight`), read when a run "
        "is asked for; its ids travel in the run request (CUSTOMERS_LIST_FILE).",
    )
    dwell_mean_secs: float = Field(
        600.0, gt=0, le=86_400, description="Mean length of a visit, seconds (gamma, shape 2)."
    )
    move_interval_secs: float = Field(
        15.0, ge=1.0, le=3600, description="Mean time between a customer's moves, seconds."
    )
    arrival_profile: Profile = Field(
        "flat",
        description="`flat`: a constant arrival rate; `daily`: quiet mornings, peaks at lunch and "
        "after work, with the same mean over the run's period.",
    )
    enter_topic: str = Field(
        "herald.retail.enter",
        pattern=_TOPIC_NAME,
        description="Topic of enter events (ENTER_TOPIC; `customer/enter` reads as "
        "`customer.enter`).",
    )
    move_topic: str = Field(
        "herald.retail.move", pattern=_TOPIC_NAME, description="Topic of moves (MOVE_TOPIC)."
    )
    exit_topic: str = Field(
        "herald.retail.exit", pattern=_TOPIC_NAME, description="Topic of exits (EXIT_TOPIC)."
    )
    consume_frequency: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="Wall seconds between ticks; each tick publishes the events that are due "
        "(CONSUME_FREQUENCY).",
    )
    consume_from: str = Field(
        "latest",
        description="Where on the timeline a run starts: `earliest` (opening), `latest` (when "
        "the run is asked for) or an ISO 8601 time (the first visit at or after it) "
        "(CONSUME_FROM).",
    )
    consume_batch_size: int = Field(
        10,
        ge=1,
        le=1_000_000,
        description="Most events published a tick; the others wait (CONSUME_BATCH_SIZE).",
    )
    speed: float | None = Field(
        1.0,
        gt=0,
        le=1_000_000,
        description="Simulated seconds per wall second (1: real time); `max`: as fast as possible.",
    )
    day: date | None = Field(
        None, description="The simulated day (UTC). Unset: the day the run is asked for."
    )
    opening_time: time = Field(time(8, 0), description="When the store opens (UTC).")
    closing_time: time = Field(time(20, 0), description="When it closes (UTC).")
    duration: float | None = Field(
        None,
        gt=0,
        le=366 * 86_400,
        description="The simulated period's length from opening (`2h`, `90m`, seconds), instead "
        "of `closing_time`.",
    )

    @field_validator("enter_topic", "move_topic", "exit_topic", mode="before")
    @classmethod
    def _mqtt_style(cls, value: object) -> object:
        # The classic tool's names were MQTT-style (customer/enter); Kafka's have no slash.
        return value.replace("/", ".") if isinstance(value, str) else value

    @field_validator("consume_from")
    @classmethod
    def _from(cls, value: str) -> str:
        return _consume_from(value)

    @field_validator("speed", mode="before")
    @classmethod
    def _max(cls, value: object) -> object:
        return _speed(value)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)


CustomerId = Annotated[
    str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Customer id", examples=["997"])
]
EventType = Literal["enter", "move", "exit"]
EpochSecs = Annotated[
    float, Meta(ge=0, description="Event time, epoch seconds (simulated), to the millisecond")
]
Cell = Annotated[int, Meta(ge=0, le=999)]


class RetailRun(RunRequest, kw_only=True, forbid_unknown_fields=True):
    """A request to simulate a store over a period: its timeline is published on a clock."""

    scenario: Annotated[Literal["retail"], Meta(description="The workload generator")] = "retail"
    opens_at: Annotated[Timestamp, Meta(description="Start of the simulated period (opening)")]
    closes_at: Annotated[Timestamp, Meta(description="Its end: everyone has left by then")]
    consume_from: Annotated[
        str, Meta(description="`earliest`, `latest` (the request's time) or an ISO 8601 time")
    ] = "earliest"
    speed: Annotated[float, Meta(gt=0, description="Simulated seconds per wall second")] | None = (
        None
    )
    consume_frequency: Annotated[float, Meta(gt=0, le=3600, description="Seconds a tick")] = 1.0
    consume_batch_size: Annotated[int, Meta(ge=1, le=1_000_000, description="Events a tick")] = 10
    store_height: Annotated[int, Meta(ge=2, le=1000)] = 10
    store_width: Annotated[int, Meta(ge=2, le=1000)] = 6
    entrance: Annotated[
        list[Cell], Meta(min_length=2, max_length=2, description="The entrance cell, [x, y]")
    ]
    customers_average_in_store: Annotated[float, Meta(gt=0, le=100_000)] = 6.0
    dwell_mean_secs: Annotated[float, Meta(gt=0, le=86_400)] = 600.0
    move_interval_secs: Annotated[float, Meta(ge=1, le=3600)] = 15.0
    arrival_profile: Profile = "flat"
    customers: Annotated[
        list[CustomerId],
        Meta(min_length=1, max_length=100_000, description="The simulated customers' ids"),
    ]
    weights: (
        Annotated[list[Annotated[float, Meta(gt=0)]], Meta(description="Visit weights")] | None
    ) = None

    def __post_init__(self) -> None:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        store = Store.of(self)
        if not store.on_wall(store.entrance):
            raise ValueError(f"entrance {list(self.entrance)} is not in the store's outer wall")
        if self.weights is not None and len(self.weights) != len(self.customers):
            raise ValueError("weights must have one entry per customer")
        _consume_from(self.consume_from)

    @property
    def starts_at(self) -> datetime:
        """Where on the timeline the run starts (``consume_from`` resolved, within the day)."""
        if self.consume_from == "earliest":
            at = self.opens_at
        elif self.consume_from == "latest":
            at = self.requested_at
        else:
            at = datetime.fromisoformat(_consume_from(self.consume_from))
        return min(max(at, self.opens_at), self.closes_at)

    @property
    def clock(self) -> Clock:
        """The run's clock: the start of its timeline when it was asked for, then ``speed``."""
        return Clock(self.starts_at.timestamp(), self.requested_at.timestamp(), self.speed)

    @property
    def duration_secs(self) -> float | None:
        span = (self.closes_at - self.starts_at).total_seconds()
        return span / self.speed if self.speed else None


# -- topics and contracts -------------------------------------------------------------------


class _Event(Struct, kw_only=True, forbid_unknown_fields=True):
    id: Annotated[MessageId, Meta(description="herald's event id, `{run_id}-{seq}`")] = (
        msgspec.field(name="event_id")
    )
    run_id: RunId
    seq: Annotated[int, Meta(ge=0, description="The event's place on the run's timeline")]
    customer: Annotated[CustomerId, Meta(description="The customer; the record key")] = (
        msgspec.field(name="id")
    )
    ts: EpochSecs
    x: Annotated[Cell, Meta(description="Column of the cell, from 0")]
    y: Annotated[Cell, Meta(description="Row of the cell, from 0 (the front wall)")]
    source: Annotated[
        Literal["simulated", "injected", "closing"],
        Meta(description="The generator, an injection, or the walk out at closing"),
    ]
    tick: Annotated[int, Meta(ge=0, description="The producer's tick that published it")]
    backlog: Annotated[int, Meta(ge=0, description="Due events still waiting at that tick")]
    latency_ms: Annotated[
        float, Meta(ge=0, description="How late it was published after its time, ms")
    ] = msgspec.field(name="lateness_ms")
    published_at: Annotated[Timestamp, Meta(description="When the producer published it")]


class RetailEnter(_Event, kw_only=True, forbid_unknown_fields=True):
    """A customer enters the store, at its entrance."""

    status: Literal["enter"] = msgspec.field(name="type", default="enter")


class RetailMove(_Event, kw_only=True, forbid_unknown_fields=True):
    """A customer inside moves to an adjacent cell."""

    status: Literal["move"] = msgspec.field(name="type", default="move")


class RetailExit(_Event, kw_only=True, forbid_unknown_fields=True):
    """A customer leaves the store, through its entrance."""

    status: Literal["exit"] = msgspec.field(name="type", default="exit")


RetailEvent = RetailEnter | RetailMove | RetailExit


class RetailInjection(Struct, kw_only=True, forbid_unknown_fields=True):
    """One event injected into a run's timeline (journaled, so a replay has it too)."""

    injection_id: Annotated[str, Meta(pattern=r"^[0-9a-f]{32}$", description="Chosen by the web")]
    run_id: RunId
    number: Annotated[int, Meta(ge=1, description="Its order among the run's injections")]
    type: EventType
    customer: Annotated[CustomerId, Meta(description="A customer of the injections' own")] = (
        msgspec.field(name="id")
    )
    ts: EpochSecs
    x: Cell
    y: Cell
    requested_at: Timestamp


ENTER: Final = Topic(
    "herald.retail.enter",
    "customer id",
    RetailEnter,
    "Customers entering the store (facts; `retail.enter_topic`).",
    "facts",
)
MOVE: Final = Topic(
    "herald.retail.move",
    "customer id",
    RetailMove,
    "Customers moving to an adjacent cell (facts; `retail.move_topic`).",
    "facts",
)
EXIT: Final = Topic(
    "herald.retail.exit",
    "customer id",
    RetailExit,
    "Customers leaving the store (facts; `retail.exit_topic`).",
    "facts",
)
INJECTIONS: Final = Topic(
    "herald.retail.injections",
    "run id",
    RetailInjection,
    "Events injected over HTTP into a run's timeline, in order per run (control).",
    "control",
)
_TOPIC_OF: Final = {"enter": ENTER, "move": MOVE, "exit": EXIT}
_TYPE_OF: Final = {"enter": RetailEnter, "move": RetailMove, "exit": RetailExit}

# -- the store ------------------------------------------------------------------------------

Position = tuple[int, int]


@dataclass(frozen=True)
class Store:
    """The shop floor: ``width × height`` cells, ``entrance`` in the outer wall."""

    width: int
    height: int
    entrance: Position

    @classmethod
    def of(cls, run: RetailRun) -> Store:
        x, y = run.entrance
        return cls(run.store_width, run.store_height, (x, y))

    def contains(self, cell: Position) -> bool:
        return 0 <= cell[0] < self.width and 0 <= cell[1] < self.height

    def on_wall(self, cell: Position) -> bool:
        x, y = cell
        return self.contains(cell) and (x in (0, self.width - 1) or y in (0, self.height - 1))

    def perimeter(self) -> list[Position]:
        """The wall cells, clockwise from the front-left corner."""
        w, h = self.width, self.height
        ring = [(x, 0) for x in range(w)] + [(w - 1, y) for y in range(1, h)]
        ring += [(x, h - 1) for x in range(w - 2, -1, -1)] + [(0, y) for y in range(h - 2, 0, -1)]
        return ring

    def inward(self, cell: Position) -> tuple[int, int] | None:
        """The step from a wall cell (not a corner) into the aisles, when there are any."""
        x, y = cell
        w, h = self.width, self.height
        corner = x in (0, w - 1) and y in (0, h - 1)
        if w < 3 or h < 3 or corner:
            return None
        steps = {y == 0: (0, 1), y == h - 1: (0, -1), x == 0: (1, 0), x == w - 1: (-1, 0)}
        return steps.get(True)

    def depth(self, step: tuple[int, int]) -> int:
        """How many aisle cells lie straight in along ``step`` (the wall opposite excluded)."""
        return (self.height if step[1] else self.width) - 2

    @staticmethod
    def distance(a: Position, b: Position) -> int:
        """Moves between two cells (diagonal steps count one)."""
        return max(abs(a[0] - b[0]), abs(a[1] - b[1]))

    @staticmethod
    def toward(a: Position, b: Position) -> Position:
        """The cell next to ``a`` on a shortest way to ``b``."""
        return (a[0] + (b[0] > a[0]) - (b[0] < a[0]), a[1] + (b[1] > a[1]) - (b[1] < a[1]))

    def refusal(self, kind: str, cell: Position, here: Position | None, who: str) -> str | None:
        """Why ``kind`` at ``cell`` cannot happen to customer ``who`` now at ``here`` (None:
        outside the store); None when it can. The web and the producer ask the same."""
        (ex, ey), (x, y) = self.entrance, cell
        at = f"({here[0]}, {here[1]})" if here is not None else ""
        reason = None
        if kind == "enter":
            if here is not None:
                reason = f"customer {who} is already inside, at {at}"
            elif cell != self.entrance:
                reason = f"customers enter through the entrance ({ex}, {ey}), not ({x}, {y})"
        elif kind == "move" and not self.contains(cell):
            reason = (
                f"({x}, {y}) is outside the store: 0 <= x < {self.width}, 0 <= y < {self.height}"
            )
        elif here is None:
            reason = f"customer {who} is not inside"
        elif kind == "move" and self.distance(here, cell) != 1:
            reason = f"({x}, {y}) is not adjacent to customer {who}'s cell {at}"
        elif kind == "exit" and here != self.entrance:
            reason = f"customer {who} is at {at}; customers leave through the entrance ({ex}, {ey})"
        return reason


# -- customers ------------------------------------------------------------------------------

_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_CUSTOMERS: Final = 100_000


def read_customers(path: Path) -> tuple[list[str], list[float] | None]:
    """The ids (and weights, if any row has one) of a customers CSV, or :class:`ConfigError`."""
    where = f"retail.customers_list_file = {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{where}: not found [env HERALD_RETAIL_CUSTOMERS_LIST_FILE or CUSTOMERS_LIST_FILE]"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror}") from None
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or "id" not in rows[0]:
        raise ConfigError(f"{where}: needs a header with an `id` column and at least one row")
    ids: list[str] = []
    weights: list[float] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        cid = (row.get("id") or "").strip()
        if not _CUSTOMER_ID.match(cid):
            raise ConfigError(f"{where}: line {line}: id {cid!r} is not 1-64 of A-Z a-z 0-9 _.:-")
        if cid in seen:
            raise ConfigError(f"{where}: line {line}: id {cid!r} appears twice")
        seen.add(cid)
        raw = (row.get("weight") or "").strip()
        try:
            weight = float(raw) if raw else 1.0
        except ValueError:
            raise ConfigError(f"{where}: line {line}: weight {raw!r} is not a number") from None
        if not weight > 0 or math.isinf(weight):
            raise ConfigError(f"{where}: line {line}: weight {raw!r} must be positive")
        ids.append(cid)
        weights.append(weight)
    if len(ids) > MAX_CUSTOMERS:
        raise ConfigError(f"{where}: {len(ids)} customers; at most {MAX_CUSTOMERS:,}")
    return ids, (None if all(w == 1.0 for w in weights) else weights)


# -- arrivals: a Poisson process at λ = L / W, optionally following the day ------------------

# A shop's day (UTC hour, relative rate): quiet mornings, lunch and after-work peaks.
DAILY: Final = ((0, 0.2), (7, 0.3), (9, 0.7), (12.5, 1.5), (14.5, 0.9), (17.5, 1.6), (20, 0.8),
                (22, 0.3), (24, 0.2))  # fmt: skip


def _daily(ts: float) -> float:
    hour = (ts % 86_400) / 3600
    for (h0, r0), (h1, r1) in itertools.pairwise(DAILY):
        if hour <= h1:
            return r0 + (r1 - r0) * (hour - h0) / (h1 - h0)
    return DAILY[-1][1]  # pragma: no cover - hour < 24


def _flat(_ts: float) -> float:
    return 1.0


class Arrivals:
    """Arrival times over ``[opens, closes)``: Poisson at λ(t) = λ·p(t), by thinning."""

    def __init__(self, run: RetailRun, rng: random.Random) -> None:
        self.rate = run.customers_average_in_store / run.dwell_mean_secs  # Little's law
        self.opens = run.opens_at.timestamp()
        self.closes = run.closes_at.timestamp()
        self._rng = rng
        self.shape: Callable[[float], float]
        if run.arrival_profile == "daily":
            # Scaled so that the mean rate over the period is λ: L stays the mean occupancy.
            span = self.closes - self.opens
            steps = max(1, int(span // 60))
            mean = sum(_daily(self.opens + (i + 0.5) * span / steps) for i in range(steps)) / steps
            self.shape = lambda ts: _daily(ts) / mean
            self.peak = max(r for _h, r in DAILY) / mean
        else:
            self.shape = _flat
            self.peak = 1.0

    def __iter__(self) -> Iterator[_Arrival]:
        rng, shape, peak = self._rng, self.shape, self.peak
        top = self.rate * peak
        t = self.opens
        while True:
            t += rng.expovariate(top)
            if t >= self.closes:
                return
            if peak == 1.0 or rng.random() * peak < shape(t):
                yield _Arrival(t)


@dataclass(frozen=True, slots=True)
class _Arrival:
    ts: float


# -- a visit: enter, walk the perimeter with excursions into the aisles, head out, exit ------

MIN_STEP: Final = 1.0  # seconds a move takes at least: the walk out always fits
P_EXCURSION: Final = 0.25  # at a wall cell facing the aisles: step in
P_TURN: Final = 0.1  # on the perimeter: turn round
P_DEEPER: Final = 0.5  # in an aisle: one cell further in


@dataclass(frozen=True, slots=True)
class Planned:
    """One event of the timeline, before it is published."""

    ts: float
    kind: EventType
    customer: str
    x: int
    y: int
    entered: float  # when the visit began: visits under way at the run's start are not shown
    source: Literal["simulated", "injected", "closing"] = "simulated"


def _ms(ts: float) -> float:
    return round(ts, 3)


class Visit:
    """One customer's visit, a small state machine whose events come out lazily."""

    def __init__(
        self, store: Store, customer: str, enter: float, length: float, rng: random.Random
    ) -> None:
        self.store = store
        self.customer = customer
        self.enter = _ms(enter)
        self.leave = _ms(enter + length)
        self._rng = rng

    def events(self, move_interval: float) -> Iterator[Planned]:
        store, rng, who, entered = self.store, self._rng, self.customer, self.enter
        ring = store.perimeter()
        where = ring.index(store.entrance)
        pos = store.entrance
        heading = rng.choice((1, -1))
        aisle: list[Position] = []  # the rest of an excursion: in, and back to the wall
        t = self.enter
        extra = max(0.0, move_interval - MIN_STEP)
        yield Planned(t, "enter", who, pos[0], pos[1], entered)
        while True:
            if aisle:
                nxt = aisle.pop(0)
            else:
                step = store.inward(pos)
                if step is not None and rng.random() < P_EXCURSION:
                    depth = 1
                    while depth < store.depth(step) and rng.random() < P_DEEPER:
                        depth += 1
                    cells = [
                        (pos[0] + step[0] * k, pos[1] + step[1] * k) for k in range(1, depth + 1)
                    ]
                    aisle = cells[1:] + cells[-2::-1] + [pos]
                    nxt = cells[0]
                else:
                    if rng.random() < P_TURN:
                        heading = -heading
                    where = (where + heading) % len(ring)
                    nxt = ring[where]
            dt = MIN_STEP + (rng.expovariate(1.0 / extra) if extra else 0.0)
            if t + dt + store.distance(nxt, store.entrance) * MIN_STEP > self.leave:
                break
            t += dt
            pos = nxt
            yield Planned(_ms(t), "move", who, pos[0], pos[1], entered)
        # Time to go: the shortest way out, evenly spaced before the visit's end.
        left = store.distance(pos, store.entrance)
        gap = (self.leave - t) / (left + 1)
        for k in range(1, left + 1):
            pos = store.toward(pos, store.entrance)
            yield Planned(_ms(t + gap * k), "move", who, pos[0], pos[1], entered)
        yield Planned(self.leave, "exit", who, pos[0], pos[1], entered)


# -- the day: every visit's events, in time order --------------------------------------------


def _rng(seed: int, *parts: object) -> random.Random:
    # A stream of its own for each purpose and visit (a string seed hashes deterministically),
    # so that one draw more here never shifts the draws there.
    return random.Random(":".join(str(p) for p in (seed, *parts)))


class StoreDay:
    """The simulated period of a run: its visits' events, lazily, in time order."""

    def __init__(self, run: RetailRun) -> None:
        self.run = run
        self.store = Store.of(run)
        self.start = run.starts_at.timestamp()
        self.closes = run.closes_at.timestamp()
        self.turned_away = 0  # arrivals with every customer inside already
        self.visits = 0
        customers = run.customers
        weights = run.weights or [1.0] * len(customers)
        self._customers = customers
        self._cum = list(_accumulate(weights))

    def _choose(self, rng: random.Random, inside: set[str]) -> str | None:
        customers, cum = self._customers, self._cum
        total = cum[-1]
        for _ in range(64):
            who = customers[bisect.bisect_right(cum, rng.random() * total)]
            if who not in inside:
                return who
        free = [c for c in customers if c not in inside]  # rare: most of them are inside
        return free[int(rng.random() * len(free))] if free else None

    def events(self) -> Iterator[Planned]:
        """Every event of the visits that begin at or after the run's start, in time order
        (earlier visits are simulated too, unseen, so the same seed gives the same day)."""
        run, store, seed = self.run, self.store, self.run.seed
        choose_rng = _rng(seed, "customers")
        timeline: Timeline[Any] = Timeline([Arrivals(run, _rng(seed, "arrivals"))])
        inside: set[str] = set()
        theta = run.dwell_mean_secs / 2  # gamma, shape 2: mean 2θ
        for item in timeline:
            if isinstance(item, _Arrival):
                who = self._choose(choose_rng, inside)
                if who is None:
                    self.turned_away += 1
                    continue
                rng = _rng(seed, "visit", self.visits)
                self.visits += 1
                length = min(rng.gammavariate(2.0, theta), self.closes - item.ts)
                inside.add(who)
                timeline.add(Visit(store, who, item.ts, length, rng).events(run.move_interval_secs))
                continue
            if item.kind == "exit":
                inside.discard(item.customer)
            if item.entered >= self.start:
                yield item


def _accumulate(values: Iterable[float]) -> Iterator[float]:
    total = 0.0
    for v in values:
        total += v
        yield total


# -- the run's timeline: the day, the injections merged in, everyone out at closing ----------


@dataclass(frozen=True, slots=True)
class _Closing:
    ts: float


class RunTimeline:
    """What the producer publishes for one run (and what a check of the run replays)."""

    def __init__(self, run: RetailRun) -> None:
        self.run = run
        self.store = Store.of(run)
        self.day = StoreDay(run)
        self.timeline: Timeline[Any] = Timeline([self.day.events(), [_Closing(self.day.closes)]])
        self._simulated = frozenset(run.customers)
        self._injected: dict[str, Position] = {}  # injected customers inside, and where
        self._merged: set[int] = set()
        self._now = self.day.start  # the time of the latest event published
        self._closed = False
        self.refused = 0

    def merge(self, injection: RetailInjection) -> None:
        """One journaled injection joins the timeline at its time (once, however often read)."""
        if injection.run_id != self.run.run_id or injection.number in self._merged:
            return
        self._merged.add(injection.number)
        if injection.ts < self._now:
            # Its time has passed on the run's clock: it is published at once, out of order,
            # and a replay (which merges it in time) differs from this run.
            logger.warning(
                "run %s: injection %d arrived %.3fs (simulated) late",
                self.run.run_id,
                injection.number,
                self._now - injection.ts,
            )
        self.timeline.insert(
            Planned(
                injection.ts,
                injection.type,
                injection.customer,
                injection.x,
                injection.y,
                injection.ts,
                "injected",
            ),
            order=injection.number,
        )

    def expand(self, item: Planned | _Closing) -> list[Planned]:
        """An event as published: an injection checked against who is inside, and at closing
        the injected customers still inside walked out."""
        self._now = max(self._now, item.ts)
        if isinstance(item, _Closing):
            self._closed = True
            return self._usher_out(item.ts)
        if item.source != "injected":
            return [item]
        who, cell = item.customer, (item.x, item.y)
        if who in self._simulated:
            reason: str | None = f"customer {who} is one of the run's simulated customers"
        elif self._closed or item.ts >= self.day.closes:
            reason = "the store is closed"
        else:
            reason = self.store.refusal(item.kind, cell, self._injected.get(who), who)
        if reason is not None:
            # The web refuses these already; a journal written by hand may still hold one.
            self.refused += 1
            logger.warning(
                "run %s: injected %s of %s refused: %s", self.run.run_id, item.kind, who, reason
            )
            return []
        if item.kind == "exit":
            del self._injected[who]
        else:
            self._injected[who] = cell
        return [item]

    def _usher_out(self, ts: float) -> list[Planned]:
        out = []
        for who in sorted(self._injected):
            pos = self._injected[who]
            while pos != self.store.entrance:
                pos = self.store.toward(pos, self.store.entrance)
                out.append(Planned(ts, "move", who, pos[0], pos[1], ts, "closing"))
            out.append(Planned(ts, "exit", who, pos[0], pos[1], ts, "closing"))
        self._injected.clear()
        return out

    def render(self, item: Planned, at: Published) -> Emit:
        """The record of one event, with its place in the run."""
        kind = _TYPE_OF[item.kind]
        event = kind(
            id=f"{self.run.run_id}-{at.seq}",
            run_id=self.run.run_id,
            seq=at.seq,
            customer=item.customer,
            ts=item.ts,
            x=item.x,
            y=item.y,
            source=item.source,
            tick=at.tick,
            backlog=at.backlog,
            latency_ms=max(0.0, (at.at - at.due_at) * 1000.0),
            published_at=datetime.fromtimestamp(at.at, UTC),
        )
        return Emit(_TOPIC_OF[item.kind], item.customer, event)

    def replay(self) -> Iterator[Planned]:
        """Every event in the order the producer publishes it (its clock aside)."""
        for item in self.timeline:
            yield from self.expand(item)


# -- what the run should show: the ground truth, from the events -----------------------------


@dataclass
class Truth:
    """A run's figures from its events, as the generator (or Postgres) knows them."""

    events: int = 0
    by_type: dict[str, int] = dataclasses.field(default_factory=dict)
    entered: int = 0
    left: int = 0
    occupancy_mean: float = 0.0  # time-weighted over [start, closes]
    occupancy_max: int = 0
    dwell_p50_secs: float | None = None
    dwell_p95_secs: float | None = None
    digest: str = ""  # of the sequence of events: (seq, type, customer, ts in ms, x, y)

    @classmethod
    def of(cls, events: Iterable[Planned], start: float, end: float) -> Truth:
        truth = cls(by_type={"enter": 0, "move": 0, "exit": 0})
        digest = hashlib.sha256()
        entered_at: dict[str, float] = {}
        dwells: list[float] = []
        inside, area, last = 0, 0.0, start
        for seq, e in enumerate(events):
            truth.events += 1
            truth.by_type[e.kind] += 1
            digest.update(f"{';' if seq else ''}{seq},{e.kind},{e.customer},{round(e.ts * 1000)},"
                          f"{e.x},{e.y}".encode())  # fmt: skip
            if e.kind == "move":
                continue
            area += inside * (e.ts - last)
            last = e.ts
            if e.kind == "enter":
                inside += 1
                truth.entered += 1
                entered_at[e.customer] = e.ts
                truth.occupancy_max = max(truth.occupancy_max, inside)
            else:
                inside -= 1
                truth.left += 1
                dwells.append(e.ts - entered_at.pop(e.customer))
        area += inside * (end - last)
        truth.occupancy_mean = area / (end - start) if end > start else 0.0
        truth.dwell_p50_secs, truth.dwell_p95_secs = _percentile_cont(dwells, (0.5, 0.95))
        truth.digest = digest.hexdigest()
        return truth


def _percentile_cont(values: list[float], qs: Sequence[float]) -> list[float | None]:
    """PostgreSQL's percentile_cont: linear between the nearest ranks."""
    if not values:
        return [None for _ in qs]
    ordered = sorted(values)
    out: list[float | None] = []
    for q in qs:
        pos = q * (len(ordered) - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        out.append(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))
    return out


def expected_occupancy(run: RetailRun) -> float:
    """The model's mean occupancy over the run's period: L, less the start from an empty store
    (with dwell times gamma(2, θ): E[N(t)] = L·(1 - e^(-t/θ)·(1 + t/2θ)), averaged)."""
    span = (run.closes_at - run.starts_at).total_seconds()
    theta = run.dwell_mean_secs / 2
    tau = span / theta
    return run.customers_average_in_store * (
        1 - (theta / span) * (1.5 - math.exp(-tau) * (1.5 + tau / 2))
    )


# -- the monitor's figures: inside now, entries and exits a minute, dwell, backlog -----------

RATE_WINDOW_SECS: Final = 600.0  # simulated seconds over which entries/exits a minute count


class StoreFigures:
    """One run's store figures, from its events as the monitor sees them.

    A customer's enter, moves and exit travel on three topics, so they may arrive in any
    order: each customer's unmatched enters and exits are kept by ``seq`` until an enter and
    the exit after it pair up into a visit (its dwell time)."""

    def __init__(self) -> None:
        self.entered = 0
        self.left = 0
        self.backlog = 0
        self.latest = 0.0  # the latest event time seen
        self._open: dict[str, list[tuple[int, str, float]]] = {}
        self._enters: list[float] = []
        self._exits: list[float] = []
        self._dwell: dict[int, int] = {}

    def add(self, fact: Any) -> None:
        ts, kind = fact.ts, fact.status
        if ts > self.latest:
            self.latest = ts
            self.backlog = fact.backlog
        if kind == "move":
            return
        if kind == "enter":
            self.entered += 1
            bisect.insort(self._enters, ts)
        else:
            self.left += 1
            bisect.insort(self._exits, ts)
        events = self._open.setdefault(fact.customer, [])
        bisect.insort(events, (fact.seq, kind, ts))
        i = 0
        while i + 1 < len(events):
            (_s0, k0, t0), (_s1, k1, t1) = events[i], events[i + 1]
            if k0 == "enter" and k1 == "exit":
                b = bucket_of((t1 - t0) * 1000.0)
                self._dwell[b] = self._dwell.get(b, 0) + 1
                del events[i : i + 2]
            else:
                i += 1
        if not events:
            del self._open[fact.customer]

    @property
    def inside(self) -> int:
        """Customers whose latest enter or exit seen is an enter."""
        return sum(1 for events in self._open.values() if events[-1][1] == "enter")

    def _per_minute(self, times: list[float]) -> float:
        cut = self.latest - RATE_WINDOW_SECS
        del times[: bisect.bisect_left(times, cut)]
        return len(times) / (RATE_WINDOW_SECS / 60)

    def summary(self) -> dict[str, Any]:
        p50, p95 = (
            v / 1000.0 if v is not None else None for v in percentiles(self._dwell, (0.5, 0.95))
        )
        return {
            "inside": self.inside,
            "entered": self.entered,
            "left": self.left,
            "enters_per_min": self._per_minute(self._enters),
            "exits_per_min": self._per_minute(self._exits),
            "dwell_p50_secs": p50,
            "dwell_p95_secs": p95,
            "backlog": self.backlog,
            "simulated_time": (
                datetime.fromtimestamp(self.latest, UTC).isoformat() if self.latest else None
            ),
        }

    def lines(self) -> list[str]:
        s = self.summary()

        def minutes(v: float | None) -> str:
            return "-" if v is None else f"{v / 60:.1f}min"

        at = s["simulated_time"][11:19] if s["simulated_time"] else "-"
        return [
            f"store at {at}: {s['inside']} inside, {s['entered']} entered, {s['left']} left, "
            f"{s['enters_per_min']:.2f} in/min {s['exits_per_min']:.2f} out/min (last "
            f"{RATE_WINDOW_SECS / 60:.0f} min), dwell p50={minutes(s['dwell_p50_secs'])} "
            f"p95={minutes(s['dwell_p95_secs'])}, backlog={s['backlog']}"
        ]


# -- the scenario ---------------------------------------------------------------------------

_EXAMPLE_TIME: Final = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)
INJECTION_LEAD_TICKS: Final = 2  # an injection is due at least this many ticks ahead


class Retail(Scenario):
    """The retail store."""

    name = "retail"
    title = "retail store"
    request_type = RetailRun
    topics = (ENTER, MOVE, EXIT, INJECTIONS)
    facts = (ENTER, MOVE, EXIT)
    inputs = (INJECTIONS,)
    statuses = MappingProxyType({"enter": True, "move": True, "exit": True})
    worker_label = "producer"
    clocked = True
    env_aliases = MappingProxyType(
        {
            "STORE_HEIGHT": "retail.store_height",
            "STORE_WIDTH": "retail.store_width",
            "CUSTOMERS_AVERAGE_IN_STORE": "retail.customers_average_in_store",
            "CUSTOMERS_LIST_FILE": "retail.customers_list_file",
            "ENTER_TOPIC": "retail.enter_topic",
            "MOVE_TOPIC": "retail.move_topic",
            "EXIT_TOPIC": "retail.exit_topic",
            "CONSUME_FREQUENCY": "retail.consume_frequency",
            "CONSUME_FROM": "retail.consume_from",
            "CONSUME_BATCH_SIZE": "retail.consume_batch_size",
            "LOG_LEVEL": "log_level",
            "LOG_FILENAME": "log_file",
        }
    )
    sim_defaults = MappingProxyType(
        {
            "consume_from": "earliest",
            "duration": 7200.0,
            "speed": 600.0,
            "consume_frequency": 0.1,
            "consume_batch_size": 1000,
        }
    )

    def sim_settings(self, already_set: set[str]) -> dict[str, Any]:
        chosen = super().sim_settings(already_set)
        if "closing_time" in already_set:  # the period the settings give is kept
            chosen.pop("duration", None)
        return chosen

    def make_request(self, settings: Settings, **params: Any) -> RetailRun:
        cfg: RetailSettings = settings.retail
        requested: datetime = params["requested_at"]
        day = cfg.day or requested.astimezone(UTC).date()
        opens = datetime.combine(day, cfg.opening_time, UTC)
        if cfg.duration is not None:
            closes = opens + timedelta(seconds=cfg.duration)
        else:
            closes = datetime.combine(day, cfg.closing_time, UTC)
            if closes <= opens:
                raise ConfigError(
                    f"retail.closing_time = {cfg.closing_time}: not after retail.opening_time = "
                    f"{cfg.opening_time} (or set retail.duration)"
                )
        entrance = cfg.entrance or (cfg.store_width // 2, 0)
        if not Store(cfg.store_width, cfg.store_height, entrance).on_wall(entrance):
            raise ConfigError(
                f"retail.entrance = {list(entrance)}: not a cell of the outer wall of a "
                f"{cfg.store_width} × {cfg.store_height} store [env HERALD_RETAIL_ENTRANCE]"
            )
        if "customers" not in params:
            params["customers"], params["weights"] = read_customers(cfg.customers_list_file)
        fields: dict[str, Any] = {
            "opens_at": opens,
            "closes_at": closes,
            "consume_from": cfg.consume_from,
            "speed": cfg.speed,
            "consume_frequency": cfg.consume_frequency,
            "consume_batch_size": cfg.consume_batch_size,
            "store_height": cfg.store_height,
            "store_width": cfg.store_width,
            "entrance": list(entrance),
            "customers_average_in_store": cfg.customers_average_in_store,
            "dwell_mean_secs": cfg.dwell_mean_secs,
            "move_interval_secs": cfg.move_interval_secs,
            "arrival_profile": cfg.arrival_profile,
        }
        fields.update(params)
        unknown = sorted(set(fields) - set(RetailRun.__struct_fields__))
        if unknown:
            raise UnknownParameters(self.name, unknown)
        try:
            return RetailRun(**fields)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid retail run: {exc}") from None

    def source(self, request: RunRequest) -> TimelineSource:
        assert isinstance(request, RetailRun)
        run = RunTimeline(request)
        return TimelineSource(
            timeline=run.timeline,
            clock=request.clock,
            frequency=request.consume_frequency,
            batch_size=request.consume_batch_size,
            render=run.render,
            expand=run.expand,
            inputs=INJECTIONS,
            merge=run.merge,
        )

    def outcome(self, result: Any) -> Any:
        e = result
        return (
            e.id,
            e.run_id,
            self.name,
            0,
            e.status,
            e.latency_ms,
            1,
            e.published_at,
            e.published_at,
            e.published_at,
            None,
            {
                "customer": e.customer,
                "ts": e.ts,
                "x": e.x,
                "y": e.y,
                "seq": e.seq,
                "tick": e.tick,
                "backlog": e.backlog,
                "source": e.source,
            },
        )

    def topic_names(self, settings: Settings) -> Mapping[str, str]:
        cfg: RetailSettings = settings.retail
        return {ENTER.name: cfg.enter_topic, MOVE.name: cfg.move_topic, EXIT.name: cfg.exit_topic}

    def figures(self) -> StoreFigures:
        return StoreFigures()

    def verify(self, engine: Engine, request: RunRequest) -> Verdict:
        """The run's events in Postgres against a replay of its timeline (injections too)."""
        from herald.db import store

        assert isinstance(request, RetailRun)
        start, end = request.starts_at.timestamp(), request.closes_at.timestamp()
        with engine.connect() as conn:
            stored = Truth(**store.retail_truth(conn, request.run_id, start=start, end=end))
            journal = [
                RetailInjection(**row) for row in store.retail_injections_of(conn, request.run_id)
            ]
        run = RunTimeline(request)
        for injection in journal:
            run.merge(injection)
        truth = Truth.of(run.replay(), start, end)
        problems = []
        for label, want, got in (
            ("events", truth.events, stored.events),
            ("events by type", truth.by_type, stored.by_type),
            ("customers entered", truth.entered, stored.entered),
            ("customers left", truth.left, stored.left),
            ("occupancy max", truth.occupancy_max, stored.occupancy_max),
            ("the sequence of events (digest)", truth.digest, stored.digest),
        ):
            if want != got:
                problems.append(f"{label}: Postgres has {got}, the generator {want}")
        for label, a, b in (
            ("occupancy mean", truth.occupancy_mean, stored.occupancy_mean),
            ("dwell p50", truth.dwell_p50_secs, stored.dwell_p50_secs),
            ("dwell p95", truth.dwell_p95_secs, stored.dwell_p95_secs),
        ):
            if (a is None) != (b is None) or (
                a is not None
                and b is not None
                and not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
            ):
                problems.append(f"{label}: Postgres has {b}, the generator {a}")
        model = expected_occupancy(request)

        def mins(v: float | None) -> str:
            return "-" if v is None else f"{v / 60:.1f} min"

        rows = [
            ("customers entered / left", f"{stored.entered:,} / {stored.left:,}"),
            (
                "events enter / move / exit",
                " / ".join(f"{stored.by_type.get(k, 0):,}" for k in ("enter", "move", "exit")),
            ),
            (
                "occupancy mean / max",
                f"{stored.occupancy_mean:.2f} / {stored.occupancy_max} (configured average "
                f"{request.customers_average_in_store:g}; the model expects {model:.2f} over "
                "this period, from an empty store)",
            ),
            ("dwell p50 / p95", f"{mins(stored.dwell_p50_secs)} / {mins(stored.dwell_p95_secs)}"),
            (
                "ground truth",
                "Postgres agrees with the generator"
                if not problems
                else f"{len(problems)} disagreement(s)",
            ),
        ]
        figures = {
            "entered": stored.entered,
            "left": stored.left,
            "events_by_type": stored.by_type,
            "occupancy_mean": stored.occupancy_mean,
            "occupancy_max": stored.occupancy_max,
            "occupancy_model": model,
            "customers_average_in_store": request.customers_average_in_store,
            "dwell_p50_secs": stored.dwell_p50_secs,
            "dwell_p95_secs": stored.dwell_p95_secs,
            "injections": len(journal),
            "turned_away": run.day.turned_away,
            "ground_truth": dataclasses.asdict(truth),
        }
        return Verdict(figures=figures, rows=rows, problems=problems)

    def examples(self) -> Mapping[str, list[Example]]:
        request = checked(
            RetailRun(
                run_id="3c5e0a9b7d21",
                seed=42,
                requested_at=_EXAMPLE_TIME,
                opens_at=_EXAMPLE_TIME.replace(hour=8, minute=0),
                closes_at=_EXAMPLE_TIME.replace(hour=10, minute=0),
                consume_from="earliest",
                speed=600.0,
                consume_frequency=0.1,
                consume_batch_size=1000,
                entrance=[3, 0],
                customers=["1", "2", "3", "4", "5", "6", "7", "8"],
            )
        )
        day = list(RunTimeline(request).replay())
        picks = [next(e for e in day if e.kind == kind) for kind in ("enter", "move", "exit")]
        run = RunTimeline(request)
        at = _EXAMPLE_TIME + timedelta(seconds=3)
        events = [
            checked(
                run.render(
                    e,
                    Published(
                        seq=day.index(e),
                        tick=day.index(e) // 25,
                        backlog=0,
                        due_at=at.timestamp() - 0.004,
                        at=at.timestamp(),
                    ),
                ).value
            )
            for e in picks
        ]
        injection = checked(
            RetailInjection(
                injection_id="5f1d3b9a0c2e4d6f8a1b3c5d7e9f0a2b",
                run_id="3c5e0a9b7d21",
                number=1,
                type="enter",
                customer="997",
                ts=_EXAMPLE_TIME.replace(hour=9, minute=45).timestamp(),
                x=3,
                y=0,
                requested_at=_EXAMPLE_TIME,
            )
        )
        return {
            "RetailRun": [
                Example(
                    "two-hours", "Two hours of the store from opening, at 600× real time", request
                )
            ],
            "RetailEnter": [Example("enter", "A customer enters", events[0])],
            "RetailMove": [Example("move", "A customer moves to an adjacent cell", events[1])],
            "RetailExit": [Example("exit", "A customer leaves", events[2])],
            "RetailInjection": [Example("inject-enter", "Customer 997 is injected", injection)],
        }


SCENARIO: Final = Retail()
