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
# msgspec's schema for datetime says only "string"; the format says what herald writes:
# RFC 3339 in UTC with an offset (``2025-01-15T09:30:00.125000Z``).
Timestamp = Annotated[datetime, Meta(extra_json_schema={"format": "date-time"})]


class RunRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """A request to run a workload: the producer generates `messages` records for it."""

    run_id: RunId
    messages: Annotated[
        int, Meta(ge=1, le=1_000_000_000, description="How many messages the run produces")
    ]
    seed: Annotated[
        int, Meta(ge=0, description="Seed of the content: the same seed, the same messages")
    ]
    rate: (
        Annotated[float, Meta(gt=0, description="Producer rate limit, messages/s; null: unpaced")]
        | None
    ) = None
    scenario: Annotated[Literal["sms"], Meta(description="The workload generator")] = "sms"
    requested_at: Annotated[Timestamp, Meta(description="When the run was asked for")]
    config: Annotated[
        dict[str, Any], Meta(description="Settings the run was asked with, for the record")
    ] = msgspec.field(default_factory=dict)


class SmsMessage(Struct, kw_only=True, forbid_unknown_fields=True):
    """One SMS to deliver."""

    id: Annotated[MessageId, Meta(description="Stable message id: `{run_id}-{seq}`; the key")]
    run_id: RunId
    seq: Annotated[int, Meta(ge=0, description="The message's position in its run, from 0")]
    phone: Phone
    text: SmsText
    created_at: Annotated[Timestamp, Meta(description="When the producer created the message")]


class SmsResult(Struct, kw_only=True, forbid_unknown_fields=True):
    """The outcome of delivering one SMS: exactly one per message."""

    message_id: Annotated[MessageId, Meta(description="The message's id; the record key")]
    run_id: RunId
    seq: Annotated[int, Meta(ge=0, description="The message's position in its run")]
    sender_id: SenderId
    status: Annotated[Status, Meta(description="`sent`, or `failed` after the last attempt")]
    latency_ms: Annotated[
        float, Meta(ge=0, description="Simulated send time, all attempts and backoff included")
    ]
    attempts: Annotated[int, Meta(ge=1, description="Send attempts made (1 = no retry)")]
    created_at: Annotated[Timestamp, Meta(description="When the producer created the message")]
    received_at: Annotated[Timestamp, Meta(description="When the sender took the message")]
    completed_at: Annotated[Timestamp, Meta(description="When the send completed or failed")]
    failure_reason: Annotated[
        str | None, Meta(description="Why the send failed; null when sent")
    ] = None


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
