"""What is delivered (a webhook) and what is kept of it (one ledger row per attempt)."""

from __future__ import annotations

import msgspec

from herald.webhooks.policy import Outcome
from herald.webhooks.signing import SecretLike, check_id, parse_secret

CONTENT_TYPE_JSON = "application/json"


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    """One callback to deliver: the same ``id`` (the ``webhook-id`` header) on every attempt.

    ``attempts_made`` and ``first_attempt_at`` resume a delivery from its ledger (after a
    restart): numbering and the policy's deadline continue from there.
    """

    id: str
    url: str
    body: bytes
    content_type: str = CONTENT_TYPE_JSON
    secrets: tuple[SecretLike, ...] | None = None  # this endpoint's own; None: the deliverer's
    attempts_made: int = 0
    first_attempt_at: float | None = None

    def __post_init__(self) -> None:
        check_id(self.id)
        if self.attempts_made < 0:
            raise ValueError(f"attempts_made must not be negative, got {self.attempts_made}")
        for secret in self.secrets or ():
            parse_secret(secret)


def timer_webhook(
    timer_id: str, url: str, *, secrets: tuple[SecretLike, ...] | None = None
) -> Webhook:
    """The webhook that fires timer ``timer_id``: ``{"id": "<timer id>"}`` POSTed to ``url``."""
    body = msgspec.json.encode({"id": timer_id})
    return Webhook(id=timer_id, url=url, body=body, secrets=secrets)


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP attempt, as the notifier's ledger keeps it (one row each)."""

    webhook_id: str
    number: int  # 1-based, continuing a resumed delivery's count
    url: str
    started_at: float  # unix seconds, when the request started (after any per-host wait)
    duration_ms: float
    status: int | None  # the HTTP status, when an answer came back
    error: str | None  # the kind of failure when no (acceptable) answer: see ERROR_KINDS
    detail: str | None  # human-readable reason: the exception, the refused rule, the redirect
    sent: bool  # whether the request may have reached the peer
    outcome: Outcome
    retry_after: float | None = None  # seconds the peer asked for (Retry-After), if any
    retry_delay: float | None = None  # seconds waited before the next attempt
    next_attempt_at: float | None = None  # unix seconds of the next attempt (outcome retry)
    response_excerpt: str | None = None  # the start of the answer's body, for the ledger


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """The end of a delivery: its final outcome and every attempt it took."""

    webhook_id: str
    url: str
    outcome: Outcome  # delivered | failed | gone | outcome_unknown | expired
    attempts: tuple[Attempt, ...]

    @property
    def reason(self) -> str | None:
        """Why the last attempt ended as it did (its detail, or its status)."""
        if not self.attempts:
            return "no attempt left: out of attempts or past the deadline"
        last = self.attempts[-1]
        return last.detail or (f"HTTP {last.status}" if last.status is not None else None)

    @property
    def maybe_received(self) -> bool:
        """Whether the peer may hold the webhook (an attempt was delivered or may have been)."""
        return any(
            a.outcome is Outcome.DELIVERED or (a.sent and a.status is None) for a in self.attempts
        )
