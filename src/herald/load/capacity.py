"""An endpoint's requests/s at a p99 limit, for the benchmarks: the timers issue's
"POST /api/timers under Locust (requests/s at p99 <= 50 ms)", and POST /api/runs today."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from herald.errors import HeraldError
from herald.load.locust_process import EndpointStats, locust_env, require_locust, run_locust
from herald.load.report import report_dir_for
from herald.load.scenarios import scenario
from herald.load.stack import target


@dataclass(frozen=True)
class CapacityStep:
    users: int
    stats: EndpointStats


@dataclass(frozen=True)
class Capacity:
    """The endpoint's figures at each number of users tried; :attr:`best` is the step with
    the most requests/s whose p99 stayed within the limit, with no failure."""

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
    users: Sequence[int] = (1, 2, 4, 8),
    step_secs: float = 10.0,
    p99_limit_ms: float = 50.0,
    tags: Sequence[str] = ("write",),
    host: str | None = None,
    token: str | None = None,
    out: Callable[[str], None] = lambda _line: None,
) -> Capacity:
    """One Locust run of ``step_secs`` per number of ``users``, each user sending its next
    request as soon as it has an answer (only the tasks tagged ``tags``), against one stack
    (embedded unless ``host``); stops after the first step whose p99 is over the limit."""
    chosen = scenario(scenario_name)
    require_locust()
    report_dir = report_dir_for(home, f"{chosen.name}-capacity")
    steps: list[CapacityStep] = []
    with target(
        host=host,
        token=token,
        report_dir=report_dir,
        environ=environ,
        stack_env=chosen.stack_env,
        stop=threading.Event(),
        out=out,
    ) as under_load:
        under_load.keep_data = False
        for n in users:
            step_dir = report_dir / f"users-{n}"
            result = run_locust(
                locustfile=load_dir / chosen.locustfile,
                url=under_load.api.base_url,
                users=n,
                spawn_rate=n,
                run_secs=step_secs,
                report_dir=step_dir,
                env=locust_env(environ, step_dir, token=token, wait_scale=0.0),
                tags=tags,
            )
            found = next((e for e in result.endpoints if e.key == endpoint), None)
            if found is None:
                raise HeraldError(f"{n} users made no {endpoint} request (report {step_dir})")
            steps.append(CapacityStep(users=n, stats=found))
            p99 = "-" if found.p99_ms is None else f"{found.p99_ms:g}"
            out(f"{n} users: {found.rps:,.1f} req/s, p99 {p99} ms, {found.failures} failures")
            if found.p99_ms is None or found.p99_ms > p99_limit_ms:
                break
    return Capacity(endpoint=endpoint, p99_limit_ms=p99_limit_ms, steps=tuple(steps))
