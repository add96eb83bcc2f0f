"""Topic names and message schemas: the one definition every service uses.

Each topic's payload is a msgspec Struct: decoding validates (types, ranges, patterns) in C,
encoding is the serialisation, and ``msgspec.json.schema`` gives the JSON Schema the AsyncAPI
document is built from.
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
Phone = Annotated[
    str,
    Meta(
        pattern=r"^\+[1-9][0-9]{7,14}$", description="E.164 phone number", examples=["+14155550123"]
    ),
]
SmsText = Annotated[str, Meta(min_length=1, max_length=100, description="SMS body, 1-100 chars")]
SenderId = Annotated[int, Meta(ge=0, le=1_000_000, description="Sender index")]
Status = Literal["sent", "failed"]


class RunRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """A request to run a workload: the producer generates `messages` records for it."""

    run_id: RunId
    messages: Annotated[int, Meta(ge=1, le=1_000_000_000)]
    seed: Annotated[int, Meta(ge=0)]
    rate: Annotated[float, Meta(gt=0)] | None = None
    scenario: Literal["sms"] = "sms"
    requested_at: datetime
    config: dict[str, Any] = msgspec.field(default_factory=dict)


class SmsMessage(Struct, kw_only=True, forbid_unknown_fields=True):
    """One SMS to deliver."""

    id: MessageId
    run_id: RunId
    seq: Annotated[int, Meta(ge=0)]
    phone: Phone
    text: SmsText
    created_at: datetime


class SmsResult(Struct, kw_only=True, forbid_unknown_fields=True):
    """The outcome of delivering one SMS: exactly one per message."""

    message_id: MessageId
    run_id: RunId
    seq: Annotated[int, Meta(ge=0, description="The message's position in its run")]
    sender_id: SenderId
    status: Status
    latency_ms: Annotated[float, Meta(ge=0)]
    attempts: Annotated[int, Meta(ge=1)]
    created_at: datetime
    received_at: datetime
    completed_at: datetime
    failure_reason: str | None = None


class ResultView(Struct):
    """The fields of a result the monitor reads (unknown fields ignored: cheaper decode)."""

    run_id: str
    seq: int
    sender_id: int
    status: Status
    latency_ms: float


# Headers on every dead-letter record.
DLQ_REASON: Final = "herald.dlq.reason"
DLQ_TOPIC: Final = "herald.dlq.topic"
DLQ_PARTITION: Final = "herald.dlq.partition"
DLQ_OFFSET: Final = "herald.dlq.offset"
DLQ_SERVICE: Final = "herald.dlq.service"


@dataclass(frozen=True)
class Topic:
    """A topic: its name, key, payload type and what it is for."""

    name: str
    key: str
    payload: type[Struct] | None
    description: str

    def qualified(self, namespace: str) -> str:
        """The topic's name under a namespace (``""``: the plain name)."""
        return f"{namespace}.{self.name}" if namespace else self.name


RUNS = Topic("herald.runs", "run_id", RunRequest, "Requests to run a workload (control).")
OUTBOUND = Topic(
    "herald.sms.outbound", "message id", SmsMessage, "SMS messages waiting to be sent (work)."
)
RESULTS = Topic(
    "herald.sms.results", "message id", SmsResult, "One delivery outcome per message (facts)."
)
DLQ = Topic(
    "herald.dlq",
    "the original key",
    None,
    "Records that could not be processed: the original bytes, with the reason and the "
    "source topic/partition/offset in headers.",
)
ALL_TOPICS: Final = (RUNS, OUTBOUND, RESULTS, DLQ)


def group_id(namespace: str, role: str) -> str:
    """The consumer-group id of a role (``senders``, ``recorders``, ...) under a namespace."""
    return f"{namespace}.herald-{role}" if namespace else f"herald-{role}"
