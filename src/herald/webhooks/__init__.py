"""Webhook delivery: Standard Webhooks signatures, the retry policy, URL safety, the sender.

The notifier builds a :class:`Deliverer`, runs it on a :class:`BackgroundDeliverer` thread
and submits :class:`Webhook` values; each attempt becomes an :class:`Attempt` ledger row.
The promise is at least once with a constant ``webhook-id`` (or, in ``at_most_once`` mode,
never twice, with ``outcome_unknown`` when an answer was lost); never "exactly once".
"""

from herald.webhooks.background import BackgroundDeliverer, QueueFull
from herald.webhooks.deliverer import ERROR_KINDS, CheckedResolver, Deliverer, HostLoad
from herald.webhooks.policy import (
    Backoff,
    Decision,
    Mode,
    Outcome,
    Policy,
    Result,
    classify_error,
    classify_status,
    parse_retry_after,
)
from herald.webhooks.records import Attempt, Delivery, Webhook, timer_webhook
from herald.webhooks.signing import (
    VerificationError,
    generate_secret,
    headers,
    parse_secret,
    sign,
    verify,
)
from herald.webhooks.urls import (
    DEFAULT_DENY,
    LOOPBACK,
    PRIVATE,
    CheckedUrl,
    UnsafeUrl,
    check_url,
    networks,
)

__all__ = [
    "DEFAULT_DENY",
    "ERROR_KINDS",
    "LOOPBACK",
    "PRIVATE",
    "Attempt",
    "BackgroundDeliverer",
    "Backoff",
    "CheckedResolver",
    "CheckedUrl",
    "Decision",
    "Deliverer",
    "Delivery",
    "HostLoad",
    "Mode",
    "Outcome",
    "Policy",
    "QueueFull",
    "Result",
    "UnsafeUrl",
    "VerificationError",
    "Webhook",
    "check_url",
    "classify_error",
    "classify_status",
    "generate_secret",
    "headers",
    "networks",
    "parse_retry_after",
    "parse_secret",
    "sign",
    "timer_webhook",
    "verify",
]
