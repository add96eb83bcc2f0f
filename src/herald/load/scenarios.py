"""The registry of load scenarios: name -> locustfile, check, fixture, defaults.

Adding one (docs/load.md): a locustfile ``load/<name>.py``, a check in
:mod:`herald.load.checks` if the load must also be right, and an entry in :data:`SCENARIOS`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from herald.errors import ConfigError
from herald.load.checks import check_runs
from herald.load.context import CheckResult, LoadContext
from herald.load.telemetry import check_schedules, udp_receiver
from herald.load.timers import check_timers, webhook_receiver

Check = Callable[[LoadContext], CheckResult]
Fixture = Callable[[LoadContext], contextlib.AbstractContextManager[object]]


@dataclass(frozen=True, kw_only=True)
class LoadScenario:
    """One load scenario.

    ``locustfile``: its file under ``load/``. ``check``: run after the load against the same
    target; the load test fails when it does. ``fixture``: a context manager entered before
    Locust starts and left after the check, in this process (a webhook receiver that must
    outlive the load, say); it may add variables to ``ctx.locust_env``, and what it yields is
    ``ctx.fixture``. ``stack_env``: ``HERALD_*`` settings the embedded stack needs for this
    load (a remote stack has its own). ``receives_webhooks``: the load receives the stack's
    signed callbacks (:func:`stack_settings`). ``users``, ``spawn_rate``, ``run_time``,
    ``check_timeout``: the defaults of ``load.run``'s flags.
    """

    name: str
    locustfile: str
    description: str
    check: Check | None = None
    fixture: Fixture | None = None
    users: int = 10
    spawn_rate: float = 2.0
    run_time: str = "30s"
    check_timeout: float = 60.0
    stack_env: Mapping[str, str] = field(default_factory=dict)
    receives_webhooks: bool = False


SCENARIOS: dict[str, LoadScenario] = {
    s.name: s
    for s in (
        LoadScenario(
            name="runs",
            locustfile="runs.py",
            description="users start small runs (POST /api/runs) and follow them "
            "(GET /api/runs/{id}); check: every run finished with done == expected",
            check=check_runs,
            # Each run the load starts is unfinished for a while; the default limit (4 at
            # once) would answer most of them 429.
            stack_env={"HERALD_LIMITS_MAX_CONCURRENT_RUNS": "100000"},
        ),
        LoadScenario(
            name="timers",
            locustfile="timers.py",
            description="users create timers due a few seconds ahead (POST /api/timers) with "
            "a webhook receiver of this process as callback, and watch them count down "
            "(GET /api/timers/{id}); check: each delivered exactly once, signed, and how late",
            check=check_timers,
            fixture=webhook_receiver,
            receives_webhooks=True,
        ),
        LoadScenario(
            name="telemetry-schedules",
            locustfile="telemetry_schedules.py",
            description="users schedule telemetry streams a second or two ahead, 1-2 s long "
            "at 10 Hz (POST /api/telemetry/schedules), to a UDP receiver of this process, and "
            "follow them (GET /api/telemetry/schedules/{id}); check: each ran (done, packets "
            "sent as asked) and its packets reached the receiver",
            check=check_schedules,
            fixture=udp_receiver,
        ),
    )
}


def scenario(name: str) -> LoadScenario:
    """The registered load scenario ``name``, or ConfigError naming the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise ConfigError(f"--scenario {name!r}: no such load scenario; choose {known}") from None


def prepare_stack(
    chosen: LoadScenario, *, stack_home: Path | None, secrets: Sequence[str] = ()
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The embedded stack's ``HERALD_*`` settings for ``chosen``, and the secrets its
    callbacks are verified with. For a scenario that receives webhooks: an embedded stack
    (``stack_home``, its home) gets a new secret; a stack elsewhere signs with ``secrets``."""
    env = dict(chosen.stack_env)
    if not chosen.receives_webhooks:
        return env, ()
    if stack_home is None:
        return env, tuple(secrets)
    from herald.services.notifier import SECRET_FILE
    from herald.webhooks import generate_secret

    secret = generate_secret()
    env["HERALD_TIMERS_SIGNING_SECRETS"] = json.dumps([secret])
    # Also where the notifier keeps its secret when none is configured: the services herald
    # web starts are given its settings without the secrets (they are never written to a
    # file) and without HERALD_* variables, so they read this one.
    stack_home.mkdir(parents=True, exist_ok=True)
    fd = os.open(stack_home / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return env, (secret,)
