"""The registry of load scenarios: name -> locustfile, check, fixture, defaults.

Adding one (docs/load.md): a locustfile ``load/<name>.py``, a check in
:mod:`herald.load.checks` if the load must also be right, and an entry in :data:`SCENARIOS`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from herald.errors import ConfigError
from herald.load.checks import check_runs
from herald.load.context import CheckResult, LoadContext

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
    load (a remote stack has its own). ``users``, ``spawn_rate``, ``run_time``,
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
    )
}


def scenario(name: str) -> LoadScenario:
    """The registered load scenario ``name``, or ConfigError naming the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise ConfigError(f"--scenario {name!r}: no such load scenario; choose {known}") from None
