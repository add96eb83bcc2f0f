"""An endpoint's requests/s at a p99 limit, for the benchmarks: "POST /api/timers under
Locust (requests/s at p99 <= 50 ms)" (bench.run), and POST /api/runs."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from herald.errors import ConfigError, HeraldError
from herald.load import STACK_DIR
from herald.load.context import LoadContext
from herald.load.locust_process import EndpointStats, locust_env, require_locust, run_locust
from herald.load.report import report_dir_for
from herald.load.scenarios import prepare_stack, scenario
from herald.load.stack import target


@dataclass(frozen=True)
class CapacityStep:
    offered: float | None  # requests/s asked of the users; None: as fast as they can
    users: int
    stats: EndpointStats


@dataclass(frozen=True)
class Capacity:
    """The endpoint's figures at each step; :attr:`best` is the step with the most
    requests/s whose p99 stayed within the limit, with no failure."""

    endpoint: str
    p99_limit_ms: float
    steps: tuple[CapacityStep, ...]

    @property
    def best(self) -> CapacityStep | None:
        within = [
            s
            for s in self.steps
            if s.stats.p99_ms is not None
            and s.stats.p99_ms <= self.p99_limit_ms
            and s.stats.failures == 0
        ]
        return max(within, key=lambda s: s.stats.rps, default=None)


def measure_capacity(
    *,
    load_dir: Path,
    home: Path,
    environ: Mapping[str, str],
    scenario_name: str = "runs",
    endpoint: str = "POST /api/runs",
    rates: Sequence[float | None] = (5, 10, 20, 40, None),
    users: int = 8,
    step_secs: float = 10.0,
    p99_limit_ms: float = 50.0,
    warmup_secs: float = 0.0,
    tags: Sequence[str] = ("write",),
    host: str | None = None,
    token: str | None = None,
    secrets: Sequence[str] = (),
    out: Callable[[str], None] = lambda _line: None,
) -> Capacity:
    """One Locust run of ``step_secs`` per offered rate (requests/s shared by ``users``, each
    paced; None: each sends its next request as soon as it has an answer), only the tasks
    tagged ``tags``, against one stack (embedded unless ``host``); stops after the first
    step whose p99 is over the limit; the scenario's fixture (the timers' webhook receiver)
    is up throughout (``secrets``: those a stack at ``host`` signs callbacks with). The
    figures include the users' start-up requests (``on_start``), sent as each user starts.
    ``warmup_secs``: a first Locust run at the first rate that is neither recorded nor judged
    (a cold stack's first requests, its connections and caches, would otherwise be most of a
    slow step's p99: at 5 requests/s for 20 s, the p99 of 100 requests is their second
    slowest)."""
    chosen = scenario(scenario_name)
    if users < 1 or any(r is not None and r <= 0 for r in rates):
        raise ConfigError(f"users {users}, rates {list(rates)}: at least 1 user, rates above 0")
    require_locust()
    report_dir = report_dir_for(home, f"{chosen.name}-capacity")
    stack_env, secrets = prepare_stack(
        chosen, stack_home=report_dir / STACK_DIR if host is None else None, secrets=secrets
    )
    steps: list[CapacityStep] = []
    stop = threading.Event()
    with (
        target(
            host=host,
            token=token,
            report_dir=report_dir,
            environ=environ,
            stack_env=stack_env,
            stop=stop,
            out=out,
        ) as under_load,
        contextlib.ExitStack() as fixture,
    ):
        under_load.keep_data = False
        ctx = LoadContext(
            scenario=chosen.name,
            report_dir=report_dir,
            api=under_load.api,
            check_timeout=chosen.check_timeout,
            locust_env={},
            stop=stop,
            webhook_secrets=secrets,
        )
        # The scenario's peers (a webhook receiver) are up for every step, and stay up until
        # the last step's callbacks were made; no check runs.
        if chosen.fixture is not None:
            ctx.fixture = fixture.enter_context(chosen.fixture(ctx))

        def step(name: str, rate: float | None, secs: float) -> EndpointStats:
            """One Locust run at ``rate``: the endpoint's figures."""
            step_dir = report_dir / name
            pace = rate / users if rate is not None else None
            env = locust_env(environ, step_dir, token=token, wait_scale=0.0, pace=pace)
            result = run_locust(
                locustfile=load_dir / chosen.locustfile,
                url=under_load.api.base_url,
                users=users,
                spawn_rate=users,
                run_secs=secs,
                report_dir=step_dir,
                env={**env, **ctx.locust_env},
                tags=tags,
            )
            found = next((e for e in result.endpoints if e.key == endpoint), None)
            if found is None:
                raise HeraldError(f"{name} made no {endpoint} request (report {step_dir})")
            return found

        if warmup_secs > 0 and rates:
            warm = step("warm-up", rates[0], warmup_secs)
            out(f"warm-up: {warm.rps:,.1f} req/s, p99 {warm.p99_ms} ms (not judged)")
        for i, rate in enumerate(rates):
            found = step(f"step-{i + 1}", rate, step_secs)
            steps.append(CapacityStep(offered=rate, users=users, stats=found))
            p99 = "-" if found.p99_ms is None else f"{found.p99_ms:g}"
            asked = "as fast as they can" if rate is None else f"{rate:g} req/s offered"
            out(f"{users} users, {asked}: {found.rps:,.1f} req/s, p99 {p99} ms, "
                f"{found.failures} failures")  # fmt: skip
            if found.p99_ms is None or found.p99_ms > p99_limit_ms:
                break
    return Capacity(endpoint=endpoint, p99_limit_ms=p99_limit_ms, steps=tuple(steps))
