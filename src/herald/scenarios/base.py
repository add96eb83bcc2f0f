"""The scenario protocol, and the registry every service finds scenarios in.

A scenario is one module under :mod:`herald.scenarios` that defines a :class:`Scenario`
subclass and an instance of it named ``SCENARIO``. It declares, top to bottom:

* its **parameters**: the defaults, a settings section (:class:`Parameters`, when it has
  any beyond the producer's), and its **run request** (a
  :class:`herald.contracts.RunRequest` subclass whose ``scenario`` field is the scenario's
  name) — what a run is asked with;
* its **topics** (``herald.<name>.<stream>``) with their key and payload contracts;
* its **source**: what the producer publishes for a run — a :class:`CountSource` (a finite
  count, paced by a rate) or a :class:`TimelineSource` (future events on a clock, published
  every tick as they fall due, with records of an input topic merged in);
* its optional **worker step** (:class:`WorkerSpec`): ``message, received -> result, delay``,
  run by the platform's transactional worker, never by the scenario itself;
* its **facts**: the topics the recorder stores and the monitor counts (a worker's results,
  or a timeline's events). A fact carries the outcome envelope (:data:`RESULT_FIELDS`,
  whatever their JSON names), from which :meth:`Scenario.outcome` makes the row the recorder
  stores;
* its **statuses** (which count as success), its monitor **figures**, its end-of-run
  **verification** and its AsyncAPI **examples**.

Nothing in a scenario touches a Kafka client, SQL or a process: the platform's producer,
worker, recorder and monitor do, for every scenario alike. See ``docs/scenarios.md``.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple, Protocol, TypeVar

import msgspec
from msgspec import Struct
from pydantic import BaseModel, ConfigDict

from herald.contracts import RunRequest, Topic, scenario_of
from herald.errors import ConfigError
from herald.timeline import Clock, Tick, Ticker, Timeline

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Connection, Engine

    from herald.config import Settings, WorkerSettings

DEFAULT: Final = "sms"
S = TypeVar("S", bound=Struct)

# The outcome envelope every result carries (as attributes; the JSON names are the
# scenario's own), and the row the recorder stores from it, in this order.
RESULT_FIELDS: Final = (
    "id",
    "run_id",
    "seq",
    "worker",
    "status",
    "latency_ms",
    "attempts",
    "created_at",
    "received_at",
    "completed_at",
    "failure_reason",
)
OUTCOME_FIELDS: Final = (
    "id",
    "run_id",
    "scenario",
    "worker",
    "status",
    "latency_ms",
    "attempts",
    "created_at",
    "received_at",
    "completed_at",
    "failure_reason",
    "detail",
)
# One stored outcome, in OUTCOME_FIELDS order. A plain tuple: one is made per message.
OutcomeRow = tuple[
    str,
    str,
    str,
    int,
    str,
    float,
    int,
    datetime,
    datetime,
    datetime,
    str | None,
    dict[str, Any] | None,
]


class Parameters(BaseModel):
    """A section of the settings tree (``kafka``, ``producer``, a scenario's own: ``retail``):
    unknown keys are errors, values are frozen once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Example(NamedTuple):
    """An AsyncAPI example: a name, a one-line summary and a valid payload."""

    name: str
    summary: str
    value: Struct


class Emit(NamedTuple):
    """One record a source publishes: where, its key and its payload (a tuple: one is made
    per record, at the producer's full speed)."""

    topic: Topic
    key: str
    value: Struct


@dataclass(frozen=True)
class CountSource:
    """A finite run of ``total`` records, ``records(start, count)`` at a time, at most
    ``rate`` per second (None: as fast as the broker takes them)."""

    total: int
    rate: float | None
    records: Callable[[int, int], Iterator[Emit]]


@dataclass(frozen=True)
class Published:
    """Where and when the platform publishes one event of a timeline."""

    seq: int  # its position among the run's published events, from 0
    tick: int  # the tick that released it, from 0
    backlog: int  # due events still waiting when this tick released it
    due_at: float  # wall epoch seconds at which its event time was reached
    at: float  # wall epoch seconds now


@dataclass(frozen=True)
class TimelineSource:
    """A run's timeline of future events, published as ``clock`` makes them due: every
    ``frequency`` wall seconds, at most ``batch_size`` of them (the rest wait).

    ``expand`` turns an event popped off the timeline into the events published (none, one,
    several); ``render`` makes the record of one with its place in the run. ``inputs`` is a
    topic whose records (keyed by run id) the producer hands to ``merge`` as they arrive, before
    each tick, so that they join the timeline at their time and a replay of the run reads them
    again.
    """

    timeline: Timeline[Any]
    clock: Clock
    frequency: float
    batch_size: int
    render: Callable[[Any, Published], Emit]
    expand: Callable[[Any], Iterable[Any]] = field(default=lambda event: (event,))
    inputs: Topic | None = None
    merge: Callable[[Any], None] | None = None


Source = CountSource | TimelineSource


class TimelineRun:
    """A timeline source being published: tick by tick, each due event rendered with its
    place in the run (what the producer sends, and ``sim --sink stdout`` prints)."""

    def __init__(self, source: TimelineSource) -> None:
        self.source = source
        self.ticker: Ticker[Any, Any] = Ticker(
            source.timeline,
            source.clock,
            frequency=source.frequency,
            batch_size=source.batch_size,
            expand=source.expand,
        )
        self.published = 0

    def ticks(
        self, stop: threading.Event, *, before: Callable[[], None] | None = None
    ) -> Iterator[tuple[Tick[Any], list[Emit]]]:
        """Each tick and its records, until the timeline is done or ``stop``."""
        render, due = self.source.render, self.source.clock.due
        for tick in self.ticker.run(stop, before=before):
            emits = []
            for item in tick.events:
                at = Published(self.published, tick.number, tick.backlog, due(item.ts), tick.wall)
                emits.append(render(item, at))
                self.published += 1
            yield tick, emits

    @property
    def done(self) -> bool:
        return self.ticker.done


class Step(Protocol):
    """A worker's work on one message: its result and how long the work (simulated) takes."""

    def __call__(self, message: Any, received: datetime, /) -> tuple[Struct, float]: ...


@dataclass(frozen=True)
class WorkerSpec:
    """A scenario's worker: the service that runs its step, as one consumer group."""

    service: str  # its name in the service registry and on the command line ("sender")
    role: str  # its consumer group's role ("senders")
    work: Topic  # what it consumes
    results: Topic  # where its results go, in the same transaction as the consumed offsets
    make_step: Callable[[WorkerSettings, int, random.Random], Step]


class Figures(Protocol):
    """A scenario's own figures of one run in the monitor, fed every fact once."""

    def add(self, fact: Any) -> None:
        """Count one fact (decoded with its topic's payload type)."""

    def summary(self) -> dict[str, Any]:
        """The figures, JSON-ready (in the run's summary under ``figures``)."""

    def lines(self) -> list[str]:
        """The figures as short lines for the terminal views."""


class Followed(NamedTuple):
    """How a run that ``sim.run`` followed ended: its summary, what contradicts it, and how
    to print the summary."""

    summary: dict[str, Any]
    problems: list[str]
    print_summary: Callable[[], None]


class SimRunner(Protocol):
    """How ``sim.run`` starts and follows the runs of a scenario the producer does not run
    (:attr:`Scenario.runs_api` False): a module of the platform, named by
    :attr:`Scenario.sim_runner`, that defines these two functions."""

    def start(self, settings: Settings, url: str, request: RunRequest) -> None:
        """Start the run (its services are up; ``url`` is the database's)."""

    def follow(
        self,
        settings: Settings,
        url: str,
        request: RunRequest,
        *,
        timeout: float,
        stopped: Callable[[], bool],
        tick: Callable[[], None],
        console: Console,
        started: float,
    ) -> Followed | None:
        """Until the run ends (``tick`` every round): its summary, or None if ``stopped``."""


class UnknownParameters(ConfigError):
    """A run asked with parameters its scenario does not have: ``fields``, sorted."""

    def __init__(self, scenario: str, fields: Iterable[str]) -> None:
        self.fields = tuple(sorted(fields))
        super().__init__(f"the {scenario} scenario has no parameter {', '.join(self.fields)}")


@dataclass
class Verdict:
    """A scenario's own check of a finished run: its figures in Postgres against the ground
    truth its generator knows, rows for the printed summary, and every disagreement."""

    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Scenario(ABC):
    """A workload: see the module docstring."""

    name: ClassVar[str]
    title: ClassVar[str]
    request_type: ClassVar[type[RunRequest]]
    topics: ClassVar[tuple[Topic, ...]]
    # What the recorder stores and the monitor counts: each payload carries the envelope.
    facts: ClassVar[tuple[Topic, ...]]
    # Topics whose records the producer merges into a run's timeline (keyed by run id).
    inputs: ClassVar[tuple[Topic, ...]] = ()
    statuses: ClassVar[Mapping[str, bool]]  # every status a result can have -> success?
    worker_label: ClassVar[str] = "worker"  # how one worker is named in views ("sender")
    worker: ClassVar[WorkerSpec | None] = None
    # Its runs follow a clock that starts when the run is asked for (a timeline): a caller
    # that prepares a request ahead dates it when it submits it.
    clocked: ClassVar[bool] = False
    # Environment variables of an older tool read as settings: name -> dotted settings key.
    env_aliases: ClassVar[Mapping[str, str]] = {}
    # What `sim.run` asks for when neither a flag nor a setting says (keys of the scenario's
    # settings section): defaults that finish in seconds.
    sim_defaults: ClassVar[Mapping[str, Any]] = {}
    # Whether ``POST /api/runs`` starts its runs (a telemetry run's streams are schedules).
    runs_api: ClassVar[bool] = True
    # The parameter of its settings section that ``sim.run --rate`` sets (None: the
    # producer's rate limit, messages a second).
    rate_param: ClassVar[str | None] = None
    # Services its runs need beyond those every run starts (a telemetry run: the scheduler).
    run_services: ClassVar[tuple[str, ...]] = ()
    # Topics the recorder stores in the scenario's own tables, not as outcomes (:meth:`record`).
    records: ClassVar[tuple[Topic, ...]] = ()
    # The module (a :class:`SimRunner`) that starts and follows its runs in ``sim.run`` when
    # the producer does not (``runs_api`` False), imported when a run needs it.
    sim_runner: ClassVar[str | None] = None

    def runner(self) -> SimRunner:
        """The :attr:`sim_runner` module (a ConfigError if the scenario names none)."""
        if self.sim_runner is None:
            raise ConfigError(f"sim.run cannot run the {self.name} scenario without the producer")
        runner: SimRunner = importlib.import_module(self.sim_runner)
        return runner

    @abstractmethod
    def make_request(self, settings: Settings, **params: Any) -> RunRequest:
        """A run request from the settings and the caller's ``params`` (validated)."""

    @abstractmethod
    def source(self, request: RunRequest) -> Source:
        """What the producer publishes for ``request``."""

    @abstractmethod
    def examples(self) -> Mapping[str, list[Example]]:
        """AsyncAPI examples, by payload type name: fixed values (the document is compared)."""

    def outcome(self, result: Any) -> OutcomeRow:
        """The row the recorder stores for a result (the envelope, and no detail)."""
        r = result
        return (
            r.id,
            r.run_id,
            self.name,
            r.worker,
            r.status,
            r.latency_ms,
            r.attempts,
            r.created_at,
            r.received_at,
            r.completed_at,
            r.failure_reason,
            None,
        )

    def succeeded(self, status: str) -> bool:
        """Whether ``status`` counts as success."""
        return self.statuses[status]

    def topic_names(self, settings: Settings) -> Mapping[str, str]:
        """Topics the settings rename: declared name -> name to use (default: none)."""
        return {}

    def record(self, conn: Connection, topic: Topic, values: list[Any]) -> None:
        """Store a batch of one of :attr:`records` (decoded), in the caller's transaction,
        idempotently (a batch may come again)."""
        raise NotImplementedError(f"{self.name} records no topic of its own")

    def figures(self) -> Figures | None:
        """The monitor's accumulator of this scenario's own figures for one run (or None)."""
        return None

    def verify(self, engine: Engine, request: RunRequest) -> Verdict | None:
        """After a run: its figures in Postgres checked against the generator (or None)."""
        return None

    def sim_settings(self, already_set: set[str]) -> dict[str, Any]:
        """The :attr:`sim_defaults` that apply when the settings set ``already_set`` keys of
        the scenario's section."""
        return {k: v for k, v in self.sim_defaults.items() if k not in already_set}


# -- simulated work, for worker steps ----------------------------------------------------


def latency_sampler(profile: WorkerSettings, rng: random.Random) -> Callable[[], float]:
    """A function returning one simulated work time, in seconds, for ``profile``."""
    mean = profile.mean_wait_time
    if mean == 0 or profile.latency_distribution == "constant":
        return lambda: mean
    if profile.latency_distribution == "exponential":
        rate = 1.0 / mean
        expo = rng.expovariate
        return lambda: expo(rate)
    if profile.latency_distribution == "uniform":
        uniform = rng.uniform
        return lambda: uniform(0.0, 2.0 * mean)
    sd = profile.latency_stddev if profile.latency_stddev is not None else mean / 4
    gauss = rng.gauss
    return lambda: max(0.0, gauss(mean, sd))


class SimulatedAttempts:
    """Attempts at an unreliable piece of work: each fails with ``failure_rate``; a failure
    is retried after ``retry_backoff`` (doubled each time) until ``max_attempts``."""

    def __init__(self, profile: WorkerSettings, rng: random.Random) -> None:
        self._latency = latency_sampler(profile, rng)
        self._random = rng.random
        self._failure_rate = profile.failure_rate
        self._max_attempts = profile.max_attempts
        self._backoff = profile.retry_backoff

    def __call__(self) -> tuple[bool, int, float]:
        """One piece of work: (succeeded, attempts, seconds taken)."""
        latency, random_ = self._latency, self._random
        wait = latency()
        attempts = 1
        while random_() < self._failure_rate:
            if attempts >= self._max_attempts:
                return False, attempts, wait
            wait += self._backoff * (1 << (attempts - 1)) + latency()
            attempts += 1
        return True, attempts, wait


# -- the registry ---------------------------------------------------------------------------


@cache
def scenarios() -> dict[str, Scenario]:
    """Every scenario, by name: each module of this package that defines ``SCENARIO``."""
    package = importlib.import_module("herald.scenarios")
    found: dict[str, Scenario] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"herald.scenarios.{info.name}")
        scenario = getattr(module, "SCENARIO", None)
        if isinstance(scenario, Scenario):
            if scenario.name in found:
                raise RuntimeError(f"two scenarios are named {scenario.name!r}")
            found[scenario.name] = scenario
    return found


def get(name: str) -> Scenario:
    """The scenario called ``name``, or :class:`ConfigError` naming the ones there are."""
    try:
        return scenarios()[name]
    except KeyError:
        raise ConfigError(
            f"no scenario {name!r}; scenarios: {', '.join(sorted(scenarios()))}"
        ) from None


class Fact(NamedTuple):
    """A facts topic as a service reads it: its scenario and its (possibly renamed) topic."""

    scenario: Scenario
    topic: Topic


def renamed(topic: Topic, settings: Settings | None) -> Topic:
    """``topic`` under the name the settings give it (its own name by default)."""
    if settings is None:
        return topic
    for scenario in scenarios().values():
        name = scenario.topic_names(settings).get(topic.name)
        if name is not None and name != topic.name:
            return dataclasses.replace(topic, name=name)
    return topic


def by_facts_topic(settings: Settings) -> dict[str, Fact]:
    """Every scenario's facts topics, by qualified (and possibly renamed) name."""
    namespace = settings.kafka.namespace
    out: dict[str, Fact] = {}
    for scenario in scenarios().values():
        for declared in scenario.facts:
            topic = renamed(declared, settings)
            out[topic.qualified(namespace)] = Fact(scenario, topic)
    return out


def by_records_topic(settings: Settings) -> dict[str, Fact]:
    """Every scenario's own recorded topics (:attr:`Scenario.records`), by qualified name."""
    namespace = settings.kafka.namespace
    return {
        t.qualified(namespace): Fact(scenario, t)
        for scenario in scenarios().values()
        for t in scenario.records
    }


def all_topics(settings: Settings | None = None) -> tuple[Topic, ...]:
    """Every scenario's topics, in registry order (under the settings' names, if given)."""
    return tuple(renamed(t, settings) for s in scenarios().values() for t in s.topics)


@cache
def _request_decoders() -> dict[str, msgspec.json.Decoder[Any]]:
    return {name: msgspec.json.Decoder(s.request_type) for name, s in scenarios().items()}


def decode_request(raw: bytes) -> RunRequest:
    """A run request of any scenario (raises msgspec.DecodeError: invalid, unknown scenario)."""
    name = scenario_of(raw)
    decoder = _request_decoders().get(name)
    if decoder is None:
        raise msgspec.ValidationError(
            f"unknown scenario {name!r} (scenarios: {', '.join(sorted(scenarios()))}) "
            "- at `$.scenario`"
        )
    request: RunRequest = decoder.decode(raw)
    return request


def checked(value: S) -> S:
    """``value`` after a JSON round trip: constructing a Struct checks no constraint."""
    return msgspec.json.decode(msgspec.json.encode(value), type=type(value))


def result_view(result_type: type[Struct]) -> type[Struct]:
    """A Struct that decodes only the envelope fields a monitor counts (run_id, seq, worker,
    status, latency_ms) of ``result_type``'s JSON: unknown fields ignored, a cheaper decode.
    A fact without a worker or a latency (a timeline's event) reads as worker 0, 0 ms."""
    names = {f.name: f.encode_name for f in msgspec.structs.fields(result_type)}
    wanted: tuple[tuple[str, type, Any], ...] = (
        ("run_id", str, msgspec.NODEFAULT),
        ("seq", int, msgspec.NODEFAULT),
        ("worker", int, 0),
        ("status", str, msgspec.NODEFAULT),
        ("latency_ms", float, 0.0),
    )
    return msgspec.defstruct(
        f"{result_type.__name__}View",
        [
            (attr, kind, msgspec.field(name=names.get(attr, attr), default=default))
            for attr, kind, default in wanted
        ],
        kw_only=True,
    )
