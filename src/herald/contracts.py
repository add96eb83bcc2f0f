"""The platform's topics and message schemas: what every scenario and service shares.

Each topic's payload is a msgspec Struct: decoding validates (types, ranges, patterns) in C,
encoding is the serialisation, and ``msgspec.json.schema`` gives the JSON Schema the AsyncAPI
document is built from. A scenario's own topics and payloads live in its module under
:mod:`herald.scenarios`; this module holds what they all share: ids, the run request's
envelope, the control topic and dead letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct

RunId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Run id")]
MessageId = Annotated[
    str, Meta(pattern=r"^[A-Za-z0-9_:.-]{1,128}$", description="Stable message id")
]
WorkerId = Annotated[int, Meta(ge=0, le=1_000_000, description="Worker index")]
# msgspec's schema for datetime says only "string"; the format says what herald writes:
# RFC 3339 in UTC with an offset (``2025-01-15T09:30:00.125000Z``).
Timestamp = Annotated[datetime, Meta(extra_json_schema={"format": "date-time"})]
Tag = Literal["control", "work", "facts", "dead letters"]


@dataclass(frozen=True)
class Topic:
    """A topic: its name, key, payload type and what it is for."""

    name: str
    key: str
    payload: type[Struct] | None
    description: str
    tag: Tag
    partitions: int | None = None  # None: ``kafka.partitions``

    def qualified(self, namespace: str) -> str:
        """The topic's name under a namespace (``""``: the plain name)."""
        return f"{namespace}.{self.name}" if namespace else self.name


class RunRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """A request to run a workload; each scenario's request adds its parameters to these."""

    run_id: RunId
    scenario: Annotated[str, Meta(description="The workload: a registered scenario's name")]
    seed: Annotated[
        int, Meta(ge=0, description="Seed of the content: the same seed, the same messages")
    ]
    requested_at: Annotated[Timestamp, Meta(description="When the run was asked for")]
    config: Annotated[
        dict[str, Any], Meta(description="Settings the run was asked with, for the record")
    ] = msgspec.field(default_factory=dict)
    callback_url: (
        Annotated[
            str,
            Meta(
                max_length=2048,
                description="POSTed once, with the run's totals, when it completes (a webhook "
                "the notifier delivers, `webhook-id` `run-<run_id>-completed`)",
            ),
        ]
        | None
    ) = None
    status_callback_url: (
        Annotated[
            str,
            Meta(
                max_length=2048,
                description="POSTed once per message outcome (`webhook-id` "
                "`<message id>-status`), as the recorder stores it",
            ),
        ]
        | None
    ) = None

    @property
    def expected(self) -> int | None:
        """How many outcomes the run yields, when that is known up front (otherwise the
        producer announces it once the run is produced: :class:`RunProduced`)."""
        return None

    @property
    def duration_secs(self) -> float | None:
        """How long producing the run takes by its own pacing (a rate, a timeline's clock),
        when that is known: None for a run produced as fast as the broker takes it."""
        return None


class _ScenarioTag(Struct):
    scenario: str = "sms"  # a request without one is the default scenario's (as before)


def scenario_of(raw: bytes) -> str:
    """The scenario a raw run request names (raises msgspec.DecodeError)."""
    return msgspec.json.decode(raw, type=_ScenarioTag).scenario


# -- control: services and runs announce themselves here, never through files ------------


class ServiceEvent(Struct, kw_only=True, tag_field="type", tag="service"):
    """A service instance's lifecycle: started, ready (holds its first partitions), stopped."""

    service: Annotated[str, Meta(description="The service's name in the registry")]
    instance: Annotated[str, Meta(description="The instance: `sender-2`, `recorder`, ...")]
    host: Annotated[str, Meta(description="The host it runs on")]
    pid: Annotated[int, Meta(ge=1, description="Its process id on that host")]
    state: Literal["started", "ready", "stopped"]
    at: Timestamp
    partitions: Annotated[
        list[str], Meta(description="`topic[partition]`s it holds, when ready")
    ] = msgspec.field(default_factory=list)
    exit_code: Annotated[int | None, Meta(description="Its exit code, when stopped")] = None


class RunCompleted(Struct, kw_only=True, tag_field="type", tag="run-completed"):
    """A run's every outcome is stored: the recorder's committed totals, published once the
    database transaction that completed the run has committed."""

    run_id: RunId
    scenario: str
    expected: Annotated[int, Meta(ge=0)]
    counts: Annotated[dict[str, int], Meta(description="Outcomes stored, by status")]
    at: Timestamp


class RunProduced(Struct, kw_only=True, tag_field="type", tag="run-produced"):
    """The producer published every record of a run whose size was not known up front (a
    timeline's): how many outcomes it yields, so that its completion can be judged. Published
    after the records are acknowledged, again if the run is produced again."""

    run_id: RunId
    scenario: str
    produced: Annotated[int, Meta(ge=0, description="Records published: the run's outcomes")]
    at: Timestamp


class RunFigures(Struct, kw_only=True, tag_field="type", tag="run-figures"):
    """The monitor's figures for a run, once it has seen every result (or at shutdown)."""

    run_id: RunId
    complete: bool
    figures: Annotated[dict[str, Any], Meta(description="The monitor's summary of the run")]
    at: Timestamp


ControlEvent = ServiceEvent | RunCompleted | RunProduced | RunFigures


# -- dead letters -------------------------------------------------------------------------

# Headers on every dead-letter record.
DLQ_REASON: Final = "herald.dlq.reason"
DLQ_TOPIC: Final = "herald.dlq.topic"
DLQ_PARTITION: Final = "herald.dlq.partition"
DLQ_OFFSET: Final = "herald.dlq.offset"
DLQ_SERVICE: Final = "herald.dlq.service"
DLQ_HEADERS: Final = (DLQ_REASON, DLQ_TOPIC, DLQ_PARTITION, DLQ_OFFSET, DLQ_SERVICE)
# A datagram's dead letter (the telemetry ingestor's) also says who sent it: "host:port".
DLQ_SENDER: Final = "herald.dlq.sender"
# Bytes kept of a dead record's reason and value: with its headers, a dead letter must stay
# under the producer's message.max.bytes (1,000,000), or dead-lettering it would fail in turn.
DLQ_MAX_REASON: Final = 1000
DLQ_MAX_VALUE: Final = 900_000


RUNS = Topic(
    "herald.runs",
    "run_id",
    RunRequest,
    "Requests to run a workload (control).",
    "control",
)
CONTROL = Topic(
    "herald.control",
    "the service instance, or the run id",
    None,  # a union: see CONTROL_EVENTS
    "Lifecycle of services and runs: started, ready, stopped, run produced, run completed, "
    "run figures (control). One partition, so that every reader sees the events in order.",
    "control",
    partitions=1,
)
CONTROL_EVENTS: Final = (ServiceEvent, RunCompleted, RunProduced, RunFigures)
DLQ = Topic(
    "herald.dlq",
    "the original key",
    None,
    "Records that could not be processed: the original bytes, with the reason and the "
    "source topic/partition/offset in headers.",
    "dead letters",
)
PLATFORM_TOPICS: Final = (RUNS, CONTROL, DLQ)


def group_id(namespace: str, role: str) -> str:
    """The consumer-group id of a role (``senders``, ``recorders``, ...) under a namespace."""
    return f"{namespace}.herald-{role}" if namespace else f"herald-{role}"


def transactional_id(group: str, topic: str, partition: int) -> str:
    """The transactional id of a worker group's partition of a (qualified) topic.

    Scoped by group and topic, so that two workloads' partition 0 never fence each other,
    and by partition, so that whoever takes a partition over fences its previous owner.
    """
    return f"{group}:{topic}:p{partition}"
