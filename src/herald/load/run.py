"""One load test: ``invoke load.run`` (docs/load.md)."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from herald.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, ConfigError, HeraldError
from herald.load import HTML_FILE, LOCUST_LOG, STACK_DIR, STATS_PREFIX, SUMMARY_FILE
from herald.load.context import CheckResult, LoadContext
from herald.load.locust_process import LocustResult, locust_env, require_locust, run_locust
from herald.load.report import format_summary, report_dir_for, write_summary
from herald.load.scenarios import LoadScenario, prepare_stack, scenario
from herald.load.stack import target

DEFAULT_MAX_FAILURES = 0.01


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """``load.run``'s flags; None: the scenario's default."""

    scenario: str = "runs"
    users: int | None = None
    spawn_rate: float | None = None
    run_time: str | None = None
    host: str | None = None
    token: str | None = None
    max_failures: float = DEFAULT_MAX_FAILURES
    check: bool = True
    check_timeout: float | None = None
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    wait_scale: float | None = None
    # A stack at ``host``: the secrets it signs callbacks with (a scenario that receives them).
    webhook_secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    users: int
    spawn_rate: float
    run_secs: float
    check_timeout: float


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``5s``, ``1m30s`` or ``1h`` (Locust's forms); ValueError if none."""
    text = text.strip()
    with contextlib.suppress(ValueError):
        return float(text)
    found = _DURATION.fullmatch(text)
    if not text or found is None:
        raise ValueError(f"{text!r} is not a duration (90, 5s, 1m30s, 1h)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def plan(options: LoadOptions, chosen: LoadScenario) -> Plan:
    """The figures of this load test, or ConfigError naming every bad flag."""
    problems: list[str] = []
    users = options.users if options.users is not None else chosen.users
    if users < 1:
        problems.append(f"--users {users}: at least 1")
    rate = options.spawn_rate if options.spawn_rate is not None else chosen.spawn_rate
    if not rate > 0:
        problems.append(f"--spawn-rate {rate:g}: more than 0 users/s")
    run_time = options.run_time or chosen.run_time
    run_secs = 0.0
    try:
        run_secs = parse_duration(run_time)
    except ValueError as exc:
        problems.append(f"--run-time {exc}")
    else:
        if run_secs < 1:
            problems.append(f"--run-time {run_time}: at least 1 second")
    if not 0 <= options.max_failures <= 1:
        problems.append(f"--max-failures {options.max_failures:g}: a ratio from 0 to 1")
    timeout = options.check_timeout if options.check_timeout is not None else chosen.check_timeout
    if not timeout > 0:
        problems.append(f"--check-timeout {timeout:g}: more than 0 seconds")
    if options.wait_scale is not None and options.wait_scale < 0:
        problems.append(f"--wait-scale {options.wait_scale:g}: 0 or more")
    if options.host is not None and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", options.host):
        problems.append(f"--host {options.host!r}: an http:// or https:// URL")
    if chosen.receives_webhooks and options.host is not None and not options.webhook_secrets:
        problems.append(
            f"--scenario {chosen.name} with --host: the secret that stack signs callbacks with "
            "is needed to verify them (HERALD_TIMERS_SIGNING_SECRETS, or HERALD_HOME with "
            "its webhook-secret)"
        )
    if problems:
        raise ConfigError("; ".join(problems))
    return Plan(users=users, spawn_rate=rate, run_secs=run_secs, check_timeout=timeout)


def run(
    options: LoadOptions,
    *,
    load_dir: Path,
    home: Path,
    environ: Mapping[str, str],
    out: Callable[[str], None],
    stop: threading.Event | None = None,
) -> int:
    """Locust against the target, the report under ``home/load``, the scenario's check; the
    exit code (1: too many failures, or the check failed)."""
    chosen = scenario(options.scenario)
    figures = plan(options, chosen)
    locustfile = load_dir / chosen.locustfile
    if not locustfile.exists():
        raise ConfigError(f"load scenario {chosen.name}: no locustfile {locustfile}")
    require_locust()
    stop = stop or threading.Event()
    report_dir = report_dir_for(home, chosen.name)
    stack_env, secrets = prepare_stack(
        chosen,
        stack_home=report_dir / STACK_DIR if options.host is None else None,
        secrets=options.webhook_secrets,
    )
    with target(
        host=options.host,
        token=options.token,
        report_dir=report_dir,
        environ=environ,
        stack_env=stack_env,
        stop=stop,
        out=out,
    ) as under_load:
        ctx = LoadContext(
            scenario=chosen.name,
            report_dir=report_dir,
            api=under_load.api,
            check_timeout=figures.check_timeout,
            locust_env=locust_env(
                environ, report_dir, token=options.token, wait_scale=options.wait_scale
            ),
            stop=stop,
            webhook_secrets=secrets,
        )
        with contextlib.ExitStack() as fixture:
            if chosen.fixture is not None:
                ctx.fixture = fixture.enter_context(chosen.fixture(ctx))
            out(
                f"load {chosen.name}: {figures.users} users ({figures.spawn_rate:g}/s) for "
                f"{figures.run_secs:g}s against {ctx.api.base_url} (Locust's log: "
                f"{report_dir / LOCUST_LOG})"
            )
            result = run_locust(
                locustfile=locustfile,
                url=ctx.api.base_url,
                users=figures.users,
                spawn_rate=figures.spawn_rate,
                run_secs=figures.run_secs,
                report_dir=report_dir,
                env=ctx.locust_env,
                tags=options.tags,
                exclude_tags=options.exclude_tags,
            )
            ctx.load_ended = time.monotonic()
            ctx.stats = {e.key: e for e in result.endpoints}
            checked = chosen.check(ctx) if chosen.check is not None and options.check else None
        problems = verdict(result, checked, options.max_failures)
        under_load.keep_data = bool(problems)  # for a post-mortem
    write_summary(
        report_dir,
        plan={
            "scenario": chosen.name,
            "target": ctx.api.base_url,
            "embedded": under_load.embedded,
            "users": figures.users,
            "spawn_rate": figures.spawn_rate,
            "run_secs": figures.run_secs,
            "max_failures": options.max_failures,
        },
        result=result,
        checked=checked,
        problems=problems,
    )
    for line in format_summary(result, max_failures=options.max_failures):
        out(line)
    if checked is not None:
        out(f"check {chosen.name}: {'passed' if checked.passed else 'FAILED'}: {checked.summary}")
        for note in checked.notes:
            out(f"  {note}")
    elif chosen.check is not None:
        out(f"check {chosen.name}: skipped (--no-check)")
    out(f"report: {report_dir} ({HTML_FILE}, {STATS_PREFIX}_stats.csv, {SUMMARY_FILE})")
    if problems:
        out(f"load {chosen.name}: FAILED: {'; '.join(problems)}")
        return EXIT_FAILURE
    return EXIT_OK


def verdict(result: LocustResult, checked: CheckResult | None, max_failures: float) -> list[str]:
    """Why the load test failed; empty if it passed."""
    problems = []
    total = result.total
    if total is None or total.requests == 0:
        problems.append("no request was made")
    elif result.failure_ratio > max_failures:
        problems.append(
            f"{total.failures:,} of {total.requests:,} requests failed "
            f"({result.failure_ratio:.2%}, more than --max-failures {max_failures:g})"
        )
    if checked is not None and not checked.passed:
        problems.append("the check failed")
    return problems


def run_cli(
    options: LoadOptions,
    *,
    load_dir: Path,
    home: Path,
    environ: Mapping[str, str],
    out: Callable[[str], None],
) -> int:
    """:func:`run` for ``invoke load.run``: herald's errors as one message and their code."""
    try:
        return run(options, load_dir=load_dir, home=home, environ=environ, out=out)
    except HeraldError as exc:
        out(f"herald: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        out("herald: interrupted")
        return EXIT_INTERRUPTED
