"""Delivery policy: what an HTTP answer or error means, and when (whether) to try again.

Pure and deterministic: no I/O, the clock and the random generator are arguments.
"""

from __future__ import annotations

import datetime
import email.utils
import enum
import math
import random
from dataclasses import dataclass, field


class Mode(enum.StrEnum):
    """What may be repeated after an attempt whose outcome is unknown."""

    AT_LEAST_ONCE = "at_least_once"  # try again: the receiver dedupes on the webhook-id
    AT_MOST_ONCE = "at_most_once"  # never repeat a request that may have reached the peer


class Result(enum.StrEnum):
    """What one attempt says about the webhook, before the policy decides what follows."""

    DELIVERED = "delivered"  # a 2xx answer
    GONE = "gone"  # 410: the endpoint asks never to be called again
    FAILED = "failed"  # a permanent refusal (3xx, other 4xx, an unsafe or invalid URL)
    RETRY = "retry"  # a transient answer (408, 429, 5xx), or nothing reached the peer
    UNKNOWN = "unknown"  # the request may have reached the peer, and no answer came back


class Outcome(enum.StrEnum):
    """An attempt's outcome; the last attempt's is the delivery's (never ``retry``)."""

    DELIVERED = "delivered"
    RETRY = "retry"  # another attempt follows, at ``next_attempt_at``
    FAILED = "failed"
    GONE = "gone"
    OUTCOME_UNKNOWN = "outcome_unknown"  # at_most_once: the peer may or may not have it
    EXPIRED = "expired"  # still retryable, but out of attempts or past the deadline
    ABANDONED = "abandoned"  # the deliverer was stopped during the attempt or the wait


FINAL = frozenset(
    {Outcome.DELIVERED, Outcome.FAILED, Outcome.GONE, Outcome.OUTCOME_UNKNOWN, Outcome.EXPIRED}
)

_TERMINAL = {
    Result.DELIVERED: Outcome.DELIVERED,
    Result.GONE: Outcome.GONE,
    Result.FAILED: Outcome.FAILED,
}

STATUS_GONE = 410
RETRY_STATUSES = frozenset({408, 429})


def classify_status(status: int) -> Result:
    """The result of an HTTP answer: 2xx delivered, 410 gone, 408/429/5xx retry, else failed."""
    if 200 <= status <= 299:
        return Result.DELIVERED
    if status == STATUS_GONE:
        return Result.GONE
    if status in RETRY_STATUSES or 500 <= status <= 599:
        return Result.RETRY
    # 1xx as a final answer, 3xx (redirects are not followed) and the other 4xx.
    return Result.FAILED


def classify_error(*, sent: bool, permanent: bool = False) -> Result:
    """The result of an attempt that got no HTTP answer.

    ``sent`` is whether the request may have reached the peer (a connection was handed to
    it); ``permanent`` marks errors a retry cannot cure (an unsafe or invalid URL).
    """
    if permanent:
        return Result.FAILED
    return Result.UNKNOWN if sent else Result.RETRY


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait asked by a ``Retry-After`` header (delta-seconds or HTTP-date), or None.

    All three HTTP-date forms are read (IMF-fixdate, RFC 850, asctime); a date in the past
    means 0; an unparseable value (a negative or fractional number too) is ignored (None).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime form: RFC 9110 dates are always GMT
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Exponential backoff, full jitter: uniform(0, min(cap, base * 2**(n-1))) after attempt n."""

    base: float = 1.0  # seconds: the first retry waits up to this
    cap: float = 600.0  # seconds: no single wait is longer

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={self.base} cap={self.cap}")

    def ceiling(self, attempt: int) -> float:
        """The longest wait after attempt number ``attempt`` (1-based)."""
        # Capped before exponentiating so attempt 5000 cannot overflow a float.
        exponent = min(attempt - 1, math.ceil(math.log2(self.cap / self.base)) + 1)
        return min(self.cap, self.base * 2.0**exponent)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """A random wait after attempt number ``attempt`` (AWS "Full Jitter")."""
        return rng.uniform(0.0, self.ceiling(attempt))


@dataclass(frozen=True)
class Decision:
    """What follows an attempt: its outcome, and the retry's delay and time when there is one."""

    outcome: Outcome
    delay: float | None = None
    next_attempt_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class Policy:
    """When to try again; at least one of ``max_attempts`` and ``deadline`` bounds the retries."""

    mode: Mode = Mode.AT_LEAST_ONCE
    max_attempts: int | None = 10  # attempts in all, the first included; None: no limit
    deadline: float | None = 24 * 3600.0  # seconds after the first attempt; None: no limit
    backoff: Backoff = field(default_factory=Backoff)
    max_retry_after: float = 3600.0  # a longer Retry-After is cut to this
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts is None and self.deadline is None:
            raise ValueError("a webhook policy needs max_attempts or deadline (or both)")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"deadline must be positive, got {self.deadline}")
        if self.max_retry_after < 0:
            raise ValueError(f"max_retry_after must not be negative, got {self.max_retry_after}")

    def exhausted(self, *, attempts_made: int, first_attempt_at: float | None, now: float) -> bool:
        """Whether a resumed delivery has no attempt left (its count or its deadline)."""
        if self.max_attempts is not None and attempts_made >= self.max_attempts:
            return True
        return (
            self.deadline is not None
            and first_attempt_at is not None
            and now > first_attempt_at + self.deadline
        )

    def decide(
        self,
        result: Result,
        *,
        attempt: int,
        now: float,
        first_attempt_at: float,
        retry_after: float | None = None,
    ) -> Decision:
        """The outcome of attempt number ``attempt`` (1-based) that ended at ``now``."""
        terminal = _TERMINAL.get(result)
        if terminal is not None:
            return Decision(terminal)
        if result is Result.UNKNOWN and self.mode is Mode.AT_MOST_ONCE:
            return Decision(Outcome.OUTCOME_UNKNOWN)
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return Decision(Outcome.EXPIRED)
        delay = self.backoff.delay(attempt, self.rng)
        if retry_after is not None:
            # The peer's wish is a floor; the jittered delay still spreads a herd of retries.
            delay = max(delay, min(retry_after, self.max_retry_after))
        next_attempt_at = now + delay
        if self.deadline is not None and next_attempt_at > first_attempt_at + self.deadline:
            return Decision(Outcome.EXPIRED)
        return Decision(Outcome.RETRY, delay, next_attempt_at)
