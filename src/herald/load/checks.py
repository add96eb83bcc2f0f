"""The checks that run after a load: is what the load created right, and in time?

A check reads what the locustfile recorded (``ctx.created(kind)``), asks the API under load
(``ctx.api``) until everything is as it must be or ``ctx.check_timeout`` has passed, polling
every ``ctx.poll_every``, and says what it found in one line.
"""

from __future__ import annotations

import time

from herald.load import CREATED_FILE
from herald.load.context import CheckResult, LoadContext
from herald.waiting import Deadline

SHOWN = 5  # problems named in the summary line; every one is in summary.json


def check_runs(ctx: LoadContext) -> CheckResult:
    """Every run the load started reached ``finished`` with ``done == expected`` in time."""
    created = ctx.created("run")
    ids = [str(c["id"]) for c in created]
    accepted = ctx.successes("POST /api/runs")
    if len(ids) != accepted:
        return CheckResult(
            passed=False,
            summary=f"{accepted} runs were accepted but {len(ids)} recorded in {CREATED_FILE}",
        )
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        return CheckResult(passed=False, summary=f"run ids accepted twice: {', '.join(twice)}")
    if not ids:
        return CheckResult(passed=True, summary="nothing to check: the load started no run")
    pending = {str(c["id"]): c.get("expected") for c in created}
    wrong: list[str] = []
    seen: dict[str, str] = {}
    deadline = Deadline(ctx.check_timeout)
    while True:
        for run_id in list(pending):
            status, body = ctx.api.get(f"/api/runs/{run_id}")
            if status != 200 or not isinstance(body, dict):
                seen[run_id] = f"HTTP {status}: {str(body)[:120]}"
                continue
            done, expected = body.get("done"), body.get("expected")
            seen[run_id] = f"{body.get('status')}, done {done}/{expected}"
            if body.get("status") == "completed":
                asked = pending.pop(run_id)
                if done != expected or (asked is not None and expected != asked):
                    wrong.append(f"{run_id} finished with done {done}/{expected}, asked {asked}")
        if not pending or deadline.expired() or ctx.pause():
            break
    if pending:
        shown = [f"{run_id} ({seen.get(run_id, 'not asked')})" for run_id in pending]
        more = ", ..." if len(shown) > SHOWN else ""
        return CheckResult(
            passed=False,
            summary=f"{len(pending)} of {len(ids)} runs not finished {ctx.check_timeout:g}s "
            f"after the load: {', '.join(shown[:SHOWN])}{more}",
            details=tuple(shown + wrong),
        )
    if wrong:
        return CheckResult(
            passed=False,
            summary=f"{len(wrong)} of {len(ids)} runs finished with done != expected: {wrong[0]}",
            details=tuple(wrong),
        )
    after = time.monotonic() - ctx.load_ended
    return CheckResult(
        passed=True,
        summary=f"{len(ids)} runs finished with done == expected ({after:.1f}s after the load)",
    )
