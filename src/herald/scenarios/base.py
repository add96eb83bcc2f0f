"""The scenario protocol, and the registry every service finds scenarios in.

A scenario is one module under :mod:`herald.scenarios` that defines a :class:`Scenario`
subclass and an instance of it named ``SCENARIO``. It declares, top to bottom:

* its **run request** (a :class:`herald.contracts.RunRequest` subclass whose ``scenario``
  field is the scenario's name) — the parameters a run is asked with;
* its **topics** (``herald.<name>.<stream>``) with their key and payload contracts;
* its **source**: what the producer publishes for a run (:class:`CountSource`: a finite
  count, paced by a rate);
* its optional **worker step** (:class:`WorkerSpec`): ``message, received -> result, delay``,
  run by the platform's transactional worker, never by the scenario itself;
* its **results**: the facts the recorder stores and the monitor counts. A result carries the
  outcome envelope (:data:`RESULT_FIELDS`, whatever their JSON names), from which
  :meth:`Scenario.outcome` makes the row the recorder stores;
* its **statuses** (which count as success) and its AsyncAPI **examples**.

Nothing in a scenario touches a Kafka client, SQL or a process: the platform's producer,
worker, recorder and monitor do, for every scenario alike. See ``docs/scenarios.md``.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple, Protocol, TypeVar

import msgspec
from msgspec import Struct

from herald.contracts import RunRequest, Topic, scenario_of
from herald.errors import ConfigError

if TYPE_CHECKING:
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


class Example(NamedTuple):
    """An AsyncAPI example: a name, a one-line summary and a valid payload."""

    name: str
    summary: str
    value: Struct


@dataclass(frozen=True)
class Emit:
    """One record a source publishes: where, its key and its payload."""

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


Source = CountSource


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


class Scenario(ABC):
    """A workload: see the module docstring."""

    name: ClassVar[str]
    title: ClassVar[str]
    request_type: ClassVar[type[RunRequest]]
    topics: ClassVar[tuple[Topic, ...]]
    results: ClassVar[Topic]  # the facts: its payload carries the outcome envelope
    statuses: ClassVar[Mapping[str, bool]]  # every status a result can have -> success?
    worker_label: ClassVar[str] = "worker"  # how one worker is named in views ("sender")
    worker: ClassVar[WorkerSpec | None] = None

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


def by_results_topic(namespace: str) -> dict[str, Scenario]:
    """Each scenario by the qualified name of its results topic."""
    return {s.results.qualified(namespace): s for s in scenarios().values()}


def all_topics() -> tuple[Topic, ...]:
    """Every scenario's topics, in registry order."""
    return tuple(t for s in scenarios().values() for t in s.topics)


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
    status, latency_ms) of ``result_type``'s JSON: unknown fields ignored, a cheaper decode."""
    names = {f.name: f.encode_name for f in msgspec.structs.fields(result_type)}
    wanted: tuple[tuple[str, type], ...] = (
        ("run_id", str),
        ("seq", int),
        ("worker", int),
        ("status", str),
        ("latency_ms", float),
    )
    return msgspec.defstruct(
        f"{result_type.__name__}View",
        [(attr, kind, msgspec.field(name=names[attr])) for attr, kind in wanted],
    )
