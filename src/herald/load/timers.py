"""The timers load scenario's receiver and check: was every timer the load created delivered,
once, signed, not early, and how late?

The fixture (:func:`webhook_receiver`) starts a :class:`~herald.load.receiver.Receiver` on
loopback before Locust and tells the locustfile its URL; the check (:func:`check_timers`)
waits, after the load, until every created timer has come due and reached its receiver (or
the check timeout has passed since the last due time), then until the ledger shows each one
finished, and compares the three lists: created, arrived, ledger.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herald.errors import ConfigError
from herald.load import RECEIVER_ENV
from herald.load.context import CheckResult, LoadContext
from herald.load.receiver import Receiver
from herald.load.stack import WARM_UP_SECS, StackError
from herald.timers import FINAL
from herald.waiting import Deadline, wait_until

if TYPE_CHECKING:
    from herald.config import Settings

SHOWN = 5  # timers named in a printed line; every one is in summary.json
ENDPOINT = "POST /api/timers"


def known_secrets(settings: Settings) -> tuple[str, ...]:
    """The secrets a stack with these settings signs callbacks with: ``timers.signing_secrets``,
    or the one its notifier keeps in ``<home>/webhook-secret`` if it made one (none is made
    here)."""
    from herald.services.notifier import SECRET_FILE

    if settings.timers.signing_secrets:
        return tuple(s.get_secret_value() for s in settings.timers.signing_secrets)
    kept = Path(settings.home).expanduser() / SECRET_FILE
    return (kept.read_text().strip(),) if kept.is_file() else ()


@dataclass(frozen=True)
class TimersFixture:
    """What the check is given: the receiver, and the warm-up timer it ignores."""

    receiver: Receiver
    warm_up_id: str


@contextlib.contextmanager
def webhook_receiver(ctx: LoadContext) -> Iterator[TimersFixture]:
    """A receiver on 127.0.0.1 verifying with ``ctx.webhook_secrets``, for the whole test,
    and one timer delivered to it first: the load then meets a warm API, scheduler and
    notifier (the first timer's POST takes seconds here: imports, connections)."""
    if not ctx.webhook_secrets:
        raise ConfigError(
            "the timers load test verifies every callback's signature: give the secret the "
            "stack signs with (HERALD_TIMERS_SIGNING_SECRETS, or its home's webhook-secret)"
        )
    with Receiver(secrets=ctx.webhook_secrets) as receiver:
        ctx.locust_env[RECEIVER_ENV] = receiver.url
        yield TimersFixture(receiver=receiver, warm_up_id=_warm_up(ctx, receiver))


def _warm_up(ctx: LoadContext, receiver: Receiver) -> str:
    status, body = ctx.api.post("/api/timers", {"seconds": 1, "url": receiver.url})
    if status != HTTPStatus.CREATED or not isinstance(body, dict) or "id" not in body:
        raise StackError(f"warm-up timer: POST /api/timers answered {status}: {str(body)[:200]}")
    timer_id = str(body["id"])

    def delivered() -> bool:
        code, row = ctx.api.get(f"/api/timers/{timer_id}")
        return code == HTTPStatus.OK and isinstance(row, dict) and row.get("state") in FINAL

    wait_until(delivered, timeout=WARM_UP_SECS, what=f"the warm-up timer {timer_id} finished",
               every=0.2, stop=ctx.stop, error=StackError)  # fmt: skip
    if receiver.counts()[timer_id] != 1:
        refused = [a.error for a in receiver.arrivals() if a.webhook_id == timer_id]
        found = "; ".join(str(e) for e in refused) or "no callback"
        raise StackError(f"the warm-up timer {timer_id} did not reach the receiver: {found}")
    return timer_id


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0-100) of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def lateness(values: Sequence[float]) -> dict[str, float] | None:
    """p50, p99 and max of ``values`` (milliseconds); None if there are none."""
    if not values:
        return None
    return {
        "p50_ms": percentile(values, 50),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values),
        "count": len(values),
    }


def _lateness_line(what: str, figures: dict[str, float] | None) -> str:
    if figures is None:
        return f"lateness {what}: none delivered"
    return (
        f"lateness {what}: p50 {figures['p50_ms']:,.0f} ms, p99 {figures['p99_ms']:,.0f} ms, "
        f"max {figures['max_ms']:,.0f} ms ({figures['count']:,} timers)"
    )


def _named(ids: Sequence[str]) -> str:
    return ", ".join(ids[:SHOWN]) + (", ..." if len(ids) > SHOWN else "")


def check_timers(ctx: LoadContext) -> CheckResult:
    """Every timer the load created was delivered exactly once to the receiver, signed, not
    before its due time, and the ledger (``GET /api/timers/{id}``) shows it ``delivered``;
    duplicates are counted and reported but do not fail it (at least once: docs/guarantees.md).
    """
    created = ctx.created("timer")
    ids = [str(c["id"]) for c in created]
    accepted = ctx.successes(ENDPOINT)
    if len(ids) != accepted:
        return CheckResult(
            passed=False, summary=f"{accepted} timers were accepted but {len(ids)} recorded"
        )
    twice = sorted(i for i, n in Counter(ids).items() if n > 1)
    if twice:
        return CheckResult(passed=False, summary=f"timer ids created twice: {_named(twice)}")
    if not ids:
        return CheckResult(passed=True, summary="nothing to check: the load created no timer")
    fixture = ctx.fixture
    assert isinstance(fixture, TimersFixture)  # the scenario's fixture
    receiver = fixture.receiver
    due = {str(c["id"]): datetime.fromisoformat(str(c["due_at"])).timestamp() for c in created}

    # Until every timer has come due and arrived, or the timeout since the last due time.
    deadline = Deadline(max(0.0, max(due.values()) - time.time()) + ctx.check_timeout)
    while True:
        counts = receiver.counts()
        if all(counts[i] for i in ids) or deadline.expired() or ctx.pause():
            break
    # Then until the ledger shows each arrived timer finished (its 200 recorded).
    ledger: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    while True:
        counts = receiver.counts()
        for timer_id in ids:
            if timer_id in ledger:
                continue
            status, body = ctx.api.get(f"/api/timers/{timer_id}")
            if status != 200 or not isinstance(body, dict):
                seen[timer_id] = f"HTTP {status}: {str(body)[:120]}"
                continue
            seen[timer_id] = str(body.get("state"))
            if body.get("state") in FINAL or not counts[timer_id]:
                ledger[timer_id] = body
        if len(ledger) == len(ids) or deadline.expired() or ctx.pause():
            break
    return _verdict(ctx, ids=ids, due=due, fixture=fixture, ledger=ledger, seen=seen)


def _verdict(
    ctx: LoadContext,
    *,
    ids: list[str],
    due: dict[str, float],
    fixture: TimersFixture,
    ledger: dict[str, dict[str, Any]],
    seen: dict[str, str],
) -> CheckResult:
    arrivals = fixture.receiver.arrivals()
    mine = set(ids)
    counts = fixture.receiver.counts()
    missing = [i for i in ids if counts[i] == 0]
    duplicates = [i for i in ids if counts[i] > 1]
    extra = sum(counts[i] - 1 for i in duplicates)
    known = mine | {fixture.warm_up_id}
    strangers = sorted({str(a.webhook_id) for a in arrivals if a.webhook_id not in known})
    refused = [a for a in arrivals if a.error is not None]
    first: dict[str, float] = {}
    for a in arrivals:
        if a.webhook_id in mine and a.error is None:
            first.setdefault(a.webhook_id, a.arrived_at)
    early = [i for i, at in first.items() if at < due[i]]
    not_delivered = [
        f"{i} ({seen.get(i, 'not asked')})"
        for i in ids
        if counts[i] and ledger.get(i, {}).get("state") != "delivered"
    ]
    retried = [i for i, row in ledger.items() if (row.get("attempts") or 0) > 1]
    at_receiver = lateness([(first[i] - due[i]) * 1000.0 for i in first])
    in_ledger = lateness(
        [float(row["lateness_ms"]) for row in ledger.values() if row.get("lateness_ms") is not None]
    )

    problems: list[str] = []
    if missing:
        named = [f"{i} ({seen.get(i, 'not asked')})" for i in missing]
        problems.append(f"{len(missing)} missing: {_named(named)}")
    if refused:
        problems.append(
            f"{len(refused)} callbacks refused (signature or body): "
            f"{refused[0].webhook_id}: {refused[0].error}"
        )
    if early:
        problems.append(f"{len(early)} arrived before their due time: {_named(early)}")
    if not_delivered:
        problems.append(f"{len(not_delivered)} not 'delivered' in the ledger: "
                        f"{_named(not_delivered)}")  # fmt: skip
    counted = (
        f"{len(ids):,} timers created, {len(ids) - len(missing) - len(duplicates):,} delivered "
        f"exactly once, {len(missing):,} missing, {len(duplicates):,} duplicated "
        f"({extra:,} extra callbacks)"
    )
    notes = [
        _lateness_line("at the receiver (arrival - due)", at_receiver),
        _lateness_line("in the ledger (first attempt - due, lateness_ms)", in_ledger),
    ]
    if duplicates:
        notes.append(f"duplicates (same webhook-id, at least once): {_named(duplicates)}")
    if strangers:
        notes.append(f"{len(strangers)} callbacks for timers this load did not record: "
                     f"{_named(strangers)}")  # fmt: skip
    if retried:
        notes.append(f"{len(retried)} timers needed more than one attempt: {_named(retried)}")
    after = time.monotonic() - ctx.load_ended
    figures = {
        "created": len(ids),
        "delivered_once": len(ids) - len(missing) - len(duplicates),
        "missing": missing,
        "duplicates": {i: counts[i] for i in duplicates},
        "strangers": strangers,
        "refused": [{"webhook_id": a.webhook_id, "error": a.error} for a in refused],
        "early": early,
        "not_delivered_in_ledger": not_delivered,
        "retried": retried,
        "lateness_at_receiver": at_receiver,
        "lateness_in_ledger": in_ledger,
        "checked_secs_after_load": round(after, 3),
    }
    return CheckResult.of(counted, problems, after=after, notes=notes, figures=figures)
