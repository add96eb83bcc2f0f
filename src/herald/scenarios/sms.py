"""The SMS campaign: a producer generates N messages (a random phone number, a random text of
1-100 characters); a consumer group of senders, each with its own mean send time and failure
rate, "sends" them; each message yields one result, ``sent`` or ``failed``.

Generation is cheap per message: texts are slices of a pool of random characters made once
per run, not strings built a character at a time, and nothing is kept per message, so memory
does not grow with the run's size.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct

from herald.contracts import MessageId, RunId, RunRequest, Timestamp, Topic, WorkerId
from herald.scenarios.base import (
    CountSource,
    Emit,
    Example,
    Scenario,
    SimulatedAttempts,
    WorkerSpec,
    checked,
)

if TYPE_CHECKING:
    from herald.config import Settings, WorkerSettings

# -- parameters: what a run is asked with ---------------------------------------------------


class SmsRun(RunRequest, kw_only=True, forbid_unknown_fields=True):
    """A request to run an SMS campaign: the producer generates `messages` messages for it."""

    scenario: Annotated[Literal["sms"], Meta(description="The workload generator")] = "sms"
    messages: Annotated[
        int, Meta(ge=1, le=1_000_000_000, description="How many messages the run produces")
    ]
    rate: (
        Annotated[float, Meta(gt=0, description="Producer rate limit, messages/s; null: unpaced")]
        | None
    ) = None

    @property
    def expected(self) -> int:
        return self.messages

    @property
    def duration_secs(self) -> float | None:
        return self.messages / self.rate if self.rate else None


# -- topics and contracts -------------------------------------------------------------------

Phone = Annotated[
    str,
    Meta(
        pattern=r"^\+[1-9][0-9]{7,14}$", description="E.164 phone number", examples=["+14155550123"]
    ),
]
SmsText = Annotated[str, Meta(min_length=1, max_length=100, description="SMS body, 1-100 chars")]
Status = Literal["sent", "failed"]


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

    id: Annotated[MessageId, Meta(description="The message's id; the record key")] = msgspec.field(
        name="message_id"
    )
    run_id: RunId
    seq: Annotated[int, Meta(ge=0, description="The message's position in its run")]
    worker: Annotated[WorkerId, Meta(description="Sender index")] = msgspec.field(name="sender_id")
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


OUTBOUND: Final = Topic(
    "herald.sms.outbound",
    "message id",
    SmsMessage,
    "SMS messages waiting to be sent (work).",
    "work",
)
RESULTS: Final = Topic(
    "herald.sms.results",
    "message id",
    SmsResult,
    "One delivery outcome per message (facts).",
    "facts",
)

# -- source: N messages, reproducible from the run's seed ----------------------------------

ALPHABET = string.ascii_letters + string.digits + " " * 12 + ".,!?'-:;()"
POOL_SIZE = 1 << 16
MAX_TEXT = 100
CLOCK_EVERY = 16  # messages that share one reading of the clock (SmsGenerator.messages)
# (country code, digits in the national number): E.164 allows 15 digits in all.
COUNTRIES = ((1, 10), (44, 10), (49, 11), (33, 9), (81, 10), (61, 9), (55, 11), (91, 10))


def message_id(run_id: str, seq: int) -> str:
    """The stable id of message ``seq`` of a run: replays produce the same ids."""
    return f"{run_id}-{seq}"


class SmsGenerator:
    """Messages ``start``, ``start+1``, ... of one run, the same for the same seed."""

    def __init__(self, run_id: str, seed: int) -> None:
        self.run_id = run_id
        self._rng = random.Random(seed)
        self._pool = "".join(self._rng.choices(ALPHABET, k=POOL_SIZE))
        # (prefix, lowest national number, how many there are): numbers of exactly n digits.
        self._ranges = [(f"+{cc}", 10 ** (n - 1), 10**n - 10 ** (n - 1)) for cc, n in COUNTRIES]

    def messages(self, count: int, *, start: int = 0) -> Iterator[SmsMessage]:
        """Yield ``count`` messages, lazily."""
        # Per message, this runs once per record of the run: ``random()`` scaled, not
        # ``randrange`` (pure Python, 0.4 µs a call), and the clock read once every
        # CLOCK_EVERY messages (0.5 µs a read): a message's ``created_at`` is then at most
        # the time to make CLOCK_EVERY - 1 others (about 0.05 ms) before it was made.
        rnd = self._rng.random
        pool, ranges, run_id = self._pool, self._ranges, self.run_id
        last_offset = POOL_SIZE - MAX_TEXT
        n_ranges = len(ranges)
        now = datetime.now
        created = now(UTC)
        for seq in range(start, start + count):
            if not seq % CLOCK_EVERY:
                created = now(UTC)
            prefix, low, span = ranges[int(rnd() * n_ranges)]
            offset = int(rnd() * last_offset)
            text = pool[offset : offset + 1 + int(rnd() * MAX_TEXT)]
            if text[0] == " " or text[-1] == " ":
                # A text with spaces at its ends reads like a bug; keep it within 1-100 chars.
                text = text.strip() or "hello"
            yield SmsMessage(
                id=f"{run_id}-{seq}",
                run_id=run_id,
                seq=seq,
                phone=f"{prefix}{low + int(rnd() * span)}",
                text=text,
                created_at=created,
            )


# -- the sender's step: one simulated delivery ----------------------------------------------

FAILURE_REASONS: Final = (
    "carrier rejected",
    "handset unreachable",
    "number not in service",
    "carrier timeout",
    "spam filter",
)


class SendStep:
    """One sender's delivery of a message: attempts as its profile says, and the result."""

    def __init__(self, profile: WorkerSettings, sender_id: int, rng: random.Random) -> None:
        self._attempts = SimulatedAttempts(profile, rng)
        self._choice = rng.choice
        self._sender_id = sender_id

    def __call__(self, sms: SmsMessage, received: datetime) -> tuple[SmsResult, float]:
        ok, attempts, wait = self._attempts()
        result = SmsResult(
            id=sms.id,
            run_id=sms.run_id,
            seq=sms.seq,
            worker=self._sender_id,
            status="sent" if ok else "failed",
            latency_ms=wait * 1000.0,
            attempts=attempts,
            created_at=sms.created_at,
            received_at=received,
            completed_at=received + timedelta(seconds=wait),
            failure_reason=None if ok else self._choice(FAILURE_REASONS),
        )
        return result, wait


# -- the scenario ---------------------------------------------------------------------------

_EXAMPLE_TIME: Final = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


class Sms(Scenario):
    """The SMS campaign (the default scenario)."""

    name = "sms"
    title = "SMS campaign"
    request_type = SmsRun
    topics = (OUTBOUND, RESULTS)
    facts = (RESULTS,)
    statuses = MappingProxyType({"sent": True, "failed": False})
    worker_label = "sender"
    worker = WorkerSpec(
        service="sender", role="senders", work=OUTBOUND, results=RESULTS, make_step=SendStep
    )

    def make_request(self, settings: Settings, **params: Any) -> SmsRun:
        messages = params.pop("messages", None)
        rate = params.pop("rate", None)
        return SmsRun(
            messages=messages if messages is not None else settings.producer.num_messages,
            rate=rate if rate is not None else settings.producer.rate,
            **params,
        )

    def source(self, request: RunRequest) -> CountSource:
        assert isinstance(request, SmsRun)
        generator = SmsGenerator(request.run_id, request.seed)

        def records(start: int, count: int) -> Iterator[Emit]:
            for message in generator.messages(count, start=start):
                yield Emit(OUTBOUND, message.id, message)

        return CountSource(total=request.messages, rate=request.rate, records=records)

    def examples(self) -> Mapping[str, list[Example]]:
        request = checked(SmsRun(run_id="7f3a9c2e41b0", messages=10_000, seed=42,
                                 requested_at=_EXAMPLE_TIME))  # fmt: skip
        paced = msgspec.structs.replace(request, run_id="5b61d0e8a9c3", rate=500.0)
        sms = [
            checked(msgspec.structs.replace(m, created_at=_EXAMPLE_TIME + timedelta(seconds=0.5)))
            for m in SmsGenerator("7f3a9c2e41b0", 42).messages(2)
        ]
        received = sms[0].created_at + timedelta(milliseconds=200)
        sent = checked(
            SmsResult(
                id=sms[0].id,
                run_id=sms[0].run_id,
                seq=sms[0].seq,
                worker=2,
                status="sent",
                latency_ms=84.25,
                attempts=1,
                created_at=sms[0].created_at,
                received_at=received,
                completed_at=received + timedelta(milliseconds=84.25),
            )
        )
        failed = checked(
            msgspec.structs.replace(
                sent,
                id=sms[1].id,
                seq=sms[1].seq,
                status="failed",
                latency_ms=312.5,
                attempts=3,
                completed_at=received + timedelta(milliseconds=312.5),
                failure_reason=FAILURE_REASONS[0],
            )
        )
        return {
            "SmsRun": [
                Example("unpaced", "10,000 messages as fast as the broker takes them", request),
                Example("paced", "The same, at most 500 messages/s", paced),
            ],
            "SmsMessage": [Example("message", "Message 0 of a run", sms[0])],
            "SmsResult": [
                Example("sent", "Delivered at the first attempt", sent),
                Example("failed", "Failed after three attempts", failed),
            ],
        }


SCENARIO: Final = Sms()
