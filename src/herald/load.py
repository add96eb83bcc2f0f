"""Load tests of herald's HTTP API with Locust: ``invoke load.run`` (docs/load.md).

A *load scenario* is a locustfile under ``load/`` plus what this module knows about it: its
defaults, the settings the embedded stack needs for it, an optional fixture that runs beside
the load (a webhook receiver, say) and an optional check that runs after it (every run the
load started finished, say). :data:`SCENARIOS` is their registry.

Locust always runs in a subprocess: it monkey-patches the standard library with gevent when
it is imported, which neither this process's threads nor pytest's warnings-as-errors survive.
This module never imports it.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import logging
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, ConfigError, HeraldError
from herald.waiting import Deadline, wait_until

logger = logging.getLogger(__name__)

# What herald.load tells the locustfiles (load/common.py reads them).
TOKEN_ENV = "HERALD_LOAD_TOKEN"  # noqa: S105 (the name of a variable, not a token)
CREATED_ENV = "HERALD_LOAD_CREATED"
WAIT_SCALE_ENV = "HERALD_LOAD_WAIT_SCALE"

# The files of a report directory.
CREATED_FILE = "created.jsonl"
STATS_PREFIX = "locust"  # locust_stats.csv, locust_failures.csv, locust_stats_history.csv, ...
HTML_FILE = "report.html"
SUMMARY_FILE = "summary.json"
LOCUST_LOG = "locust.log"
STACK_DIR = "stack"  # the embedded stack's home: its logs (and database, while kept)

DEFAULT_MAX_FAILURES = 0.01
# Locust lets a user finish the task it is in for this long when the run time is up, so that
# every request it sent is answered, counted and (if it created something) recorded.
STOP_TIMEOUT_SECS = 10
STACK_START_SECS = 180.0
WARM_UP_SECS = 120.0
POLL_SECS = 0.5


# -- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """What a check found: ``summary`` is its one printed line, ``details`` the problems."""

    passed: bool
    summary: str
    details: tuple[str, ...] = ()


Check = Callable[["LoadContext"], CheckResult]
Fixture = Callable[["LoadContext"], contextlib.AbstractContextManager[object]]


@dataclass(frozen=True, kw_only=True)
class LoadScenario:
    """One load scenario.

    ``locustfile``: its file under ``load/``. ``check``: run after the load against the same
    target; the task fails when it does. ``fixture``: a context manager entered before Locust
    starts and left after the check; it may add variables to ``ctx.locust_env`` (a receiver's
    URL, say), and what it yields is ``ctx.fixture`` for the check. ``stack_env``: settings
    of the embedded stack (``HERALD_*``) this load needs; a remote stack has its own.
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


def check_runs(ctx: LoadContext) -> CheckResult:
    """Every run the load started reached ``finished`` with ``done == expected`` in time."""
    created = ctx.created("run")
    ids = [str(c["id"]) for c in created]
    accepted = ctx.successes("POST /api/runs")
    if len(ids) != accepted:
        return CheckResult(
            passed=False,
            summary=f"{accepted} runs were accepted (202) but {len(ids)} recorded in "
            f"{CREATED_FILE}",
        )
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        return CheckResult(passed=False, summary=f"run ids accepted twice: {', '.join(twice)}")
    if not ids:
        return CheckResult(passed=True, summary="nothing to check: the load started no run")
    pending = {str(c["id"]): c.get("expected") for c in created}
    wrong: list[str] = []
    last: dict[str, str] = {}
    deadline = Deadline(ctx.check_timeout)
    while True:
        for run_id in list(pending):
            status, body = ctx.api.get(f"/api/runs/{run_id}")
            if status != 200 or not isinstance(body, dict):
                last[run_id] = f"HTTP {status}: {str(body)[:120]}"
                continue
            done, expected = body.get("done"), body.get("expected")
            last[run_id] = f"{body.get('status')}, done {done}/{expected}"
            if body.get("status") != "finished":
                continue
            asked = pending.pop(run_id)
            if done != expected or (asked is not None and expected != asked):
                wrong.append(
                    f"{run_id} finished with done {done}, expected {expected} (asked {asked})"
                )
        if (
            not pending
            or deadline.expired()
            or ctx.stop.wait(min(ctx.poll_every, deadline.remaining))
        ):
            break
    after = time.monotonic() - ctx.load_ended
    if pending:
        shown = [f"{run_id} ({last.get(run_id, 'not asked')})" for run_id in pending]
        return CheckResult(
            passed=False,
            summary=f"{len(pending)} of {len(ids)} runs not finished {ctx.check_timeout:g}s "
            f"after the load: {', '.join(shown[:5])}{', ...' if len(shown) > 5 else ''}",
            details=tuple(shown + wrong),
        )
    if wrong:
        return CheckResult(
            passed=False,
            summary=f"{len(wrong)} of {len(ids)} runs finished with done != expected: {wrong[0]}",
            details=tuple(wrong),
        )
    return CheckResult(
        passed=True,
        summary=f"{len(ids)} runs finished with done == expected ({after:.1f}s after the load)",
    )


SCENARIOS: dict[str, LoadScenario] = {
    s.name: s
    for s in (
        LoadScenario(
            name="runs",
            locustfile="runs.py",
            description="users start small runs (POST /api/runs) and follow them "
            "(GET /api/runs/{id}); check: every run finished with done == expected",
            check=check_runs,
            # Every run the load starts is unfinished for a moment; the default limit (4)
            # would answer most of them 429.
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


# -- options --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """``load.run``'s flags; None means the scenario's default."""

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


@dataclass(frozen=True)
class _Plan:
    users: int
    spawn_rate: float
    run_secs: float
    check_timeout: float


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"5s"``, ``"1m30s"`` or ``"1h"`` (Locust's forms); ValueError else."""
    text = text.strip()
    with contextlib.suppress(ValueError):
        return float(text)
    found = _DURATION.fullmatch(text)
    if not text or found is None:
        raise ValueError(f"{text!r} is not a duration (90, 5s, 1m30s, 1h)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def _plan(options: LoadOptions, chosen: LoadScenario) -> _Plan:
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
    if options.host is not None and not re.match(r"https?://[^/\s]+", options.host):
        problems.append(f"--host {options.host!r}: an http:// or https:// URL")
    if problems:
        raise ConfigError("; ".join(problems))
    return _Plan(users=users, spawn_rate=rate, run_secs=run_secs, check_timeout=timeout)


# -- talking to the API ---------------------------------------------------------------------


class Api:
    """A small JSON client of herald's API for the harness itself (warm-up, checks)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def get(self, path: str) -> tuple[int, Any]:
        """``(status, JSON body or text)``; status 0 when nothing answered (the error's text)."""
        return self._call("GET", path, None)

    def post(self, path: str, body: object) -> tuple[int, Any]:
        """As :meth:`get`, for a POST of ``body`` as JSON."""
        return self._call("POST", path, json.dumps(body).encode())

    def _call(self, method: str, path: str, data: bytes | None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        # The base URL is the one the user gave (checked: http or https), not a peer's input.
        request = urllib.request.Request(  # noqa: S310
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())
        except (OSError, ValueError) as exc:
            return 0, str(exc)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


# -- the embedded stack ---------------------------------------------------------------------


class StackError(HeraldError):
    """The embedded stack did not come up (the exit code is ``herald web``'s, when it exited)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


_URL_LINE = re.compile(r"herald web on (http://\S+) \(")


class EmbeddedWeb:
    """``herald web`` on a free loopback port for one load test: the embedded broker and
    database (unless the environment configures others) and the services of a run, with its
    home (logs, database) in ``home``."""

    def __init__(
        self,
        *,
        home: Path,
        env: Mapping[str, str],
        start_timeout: float = STACK_START_SECS,
        stop_timeout: float = 60.0,
    ) -> None:
        self.home = home
        self.log_path = home / "web.log"
        self._env = {**env, "HERALD_HOME": str(home)}
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self.url: str | None = None

    def start(self) -> str:
        """Start it and return its base URL, once it serves; StackError if it does not."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # Its own session: Ctrl-C reaches this process only, which stops it once, in
            # order (a second signal would make it exit at once).
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "herald", "web", "--host", "127.0.0.1", "--port", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
            )
        url = wait_until(
            self._announced,
            timeout=self._start_timeout,
            what=f"herald web serving (log {self.log_path})",
            every=0.1,
            error=StackError,
        )
        assert url is not None  # no stop event: it returns a URL or raises
        self.url = url
        return url

    def _announced(self) -> str | None:
        found = _URL_LINE.search(self.log_path.read_text(errors="replace"))
        if found:
            return found.group(1)
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            raise StackError(
                f"herald web exited with code {code} before serving; the end of its log "
                f"({self.log_path}):\n{_tail(self.log_path)}",
                exit_code=code or EXIT_FAILURE,
            )
        return None

    def stop(self, *, keep_data: bool = True) -> int | None:
        """SIGTERM, then wait for it (SIGKILL past ``stop_timeout``); its exit code. Without
        ``keep_data``, its embedded database's files are deleted (its logs stay)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(self._stop_timeout)
        except subprocess.TimeoutExpired:
            logger.warning("herald web did not stop in %gs: killed", self._stop_timeout)
            proc.kill()
            code = proc.wait()
        if not keep_data:
            shutil.rmtree(self.home / "pgdata", ignore_errors=True)
        return code


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def warm_up(api: Api, *, timeout: float = WARM_UP_SECS, stop: threading.Event) -> float:
    """Start a 1-message run and wait until it finished: every service of the stack is up and
    the load measures a warm stack. Returns the seconds it took; StackError at the deadline."""
    started = time.monotonic()
    status, body = api.post("/api/runs", {"messages": 1})
    if status != 202 or not isinstance(body, dict):
        raise StackError(f"warm-up run: POST /api/runs answered {status}: {str(body)[:200]}")
    url = str(body["url"])

    def finished() -> bool:
        code, run = api.get(url)
        return code == 200 and isinstance(run, dict) and run.get("status") == "finished"

    wait_until(finished, timeout=timeout, what="warm-up run finished", every=0.2, stop=stop,
               error=StackError)  # fmt: skip
    return time.monotonic() - started


def _reachable(api: Api, *, timeout: float, stop: threading.Event) -> None:
    last: list[str] = []

    def healthy() -> bool:
        status, body = api.get("/api/health")
        last[:] = [f"HTTP {status}: {str(body)[:200]}"]
        return status == 200

    try:
        wait_until(healthy, timeout=timeout, what="GET /api/health", every=0.5, stop=stop,
                   error=StackError)  # fmt: skip
    except StackError as exc:
        raise StackError(f"{api.base_url}: {exc} (last answer {last[0]})") from None


# -- Locust ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointStats:
    """One row of Locust's ``*_stats.csv``: times in milliseconds (None: no request)."""

    method: str
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @property
    def key(self) -> str:
        """``POST /api/runs``; the aggregated row is ``all``."""
        return f"{self.method} {self.name}" if self.method else "all"


@dataclass(frozen=True)
class LocustResult:
    exit_code: int
    endpoints: tuple[EndpointStats, ...]
    total: EndpointStats | None
    failures: tuple[tuple[str, str, int], ...]  # (endpoint, error, occurrences)

    @property
    def failure_ratio(self) -> float:
        return (
            self.total.failures / self.total.requests if self.total and self.total.requests else 0.0
        )


def locust_available() -> bool:
    """Whether Locust is installed (without importing it: that would monkey-patch us)."""
    return importlib.util.find_spec("locust") is not None


def run_locust(
    *,
    locustfile: Path,
    url: str,
    users: int,
    spawn_rate: float,
    run_secs: float,
    report_dir: Path,
    env: Mapping[str, str],
    tags: Sequence[str] = (),
    exclude_tags: Sequence[str] = (),
) -> LocustResult:
    """Locust, headless, in a subprocess: its CSV and HTML reports and its log in
    ``report_dir``; the parsed figures."""
    report_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "locust", "--locustfile", str(locustfile), "--headless",
        "--host", url, "--users", str(users), "--spawn-rate", f"{spawn_rate:g}",
        "--run-time", f"{max(1, round(run_secs))}s", "--stop-timeout", str(STOP_TIMEOUT_SECS),
        "--csv", str(report_dir / STATS_PREFIX), "--html", str(report_dir / HTML_FILE),
        "--only-summary",
        # Failures are judged here (--max-failures); a non-zero exit is Locust's own trouble.
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    argv += ["--tags", *tags] if tags else []
    argv += ["--exclude-tags", *exclude_tags] if exclude_tags else []
    limit = run_secs + STOP_TIMEOUT_SECS + 120  # and its start-up, on a busy machine
    with (report_dir / LOCUST_LOG).open("wb") as log:
        # In the repository's root: the locustfiles import ``load.common``.
        proc = subprocess.Popen(
            argv, cwd=locustfile.parent.parent, env=dict(env), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            code = proc.wait(limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise HeraldError(f"Locust did not finish in {limit:g}s (log {log.name})") from None
        except BaseException:  # Ctrl-C: Locust stops on SIGTERM, writing its reports
            proc.terminate()
            proc.wait(STOP_TIMEOUT_SECS + 10)
            raise
    rows = read_stats(report_dir / f"{STATS_PREFIX}_stats.csv")
    return LocustResult(
        exit_code=code,
        endpoints=tuple(r for r in rows if r.method),
        total=next((r for r in rows if not r.method), None),
        failures=read_failures(report_dir / f"{STATS_PREFIX}_failures.csv"),
    )


def read_stats(path: Path) -> list[EndpointStats]:
    """The rows of Locust's ``*_stats.csv`` (none if it is missing)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [
            EndpointStats(
                method=row["Type"],
                name=row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                rps=float(row["Requests/s"]),
                p50_ms=_ms(row["50%"]),
                p95_ms=_ms(row["95%"]),
                p99_ms=_ms(row["99%"]),
                max_ms=_ms(row["Max Response Time"]),
            )
            for row in csv.DictReader(f)
        ]


def read_failures(path: Path) -> tuple[tuple[str, str, int], ...]:
    """Locust's ``*_failures.csv``: (endpoint, error, occurrences), most frequent first."""
    if not path.exists():
        return ()
    with path.open(newline="") as f:
        rows = [
            (f"{r['Method']} {r['Name']}", r["Error"], int(r["Occurrences"]))
            for r in csv.DictReader(f)
        ]
    return tuple(sorted(rows, key=lambda r: -r[2]))


def _ms(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:  # "N/A": no request
        return None


# -- one load test --------------------------------------------------------------------------


@dataclass(kw_only=True)
class LoadContext:
    """What a check (and a fixture) gets: the target, the report directory, the figures."""

    scenario: LoadScenario
    report_dir: Path
    api: Api
    check_timeout: float
    locust_env: dict[str, str]
    stop: threading.Event
    poll_every: float = POLL_SECS
    fixture: object = None
    stats: dict[str, EndpointStats] = field(default_factory=dict)
    load_ended: float = 0.0  # time.monotonic() when Locust exited

    def created(self, kind: str) -> list[dict[str, Any]]:
        """What the load recorded creating, of ``kind`` (``run``, ...), in order."""
        path = self.report_dir / CREATED_FILE
        if not path.exists():
            return []
        lines = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
        return [entry for entry in lines if entry.get("kind") == kind]

    def successes(self, endpoint: str) -> int:
        """Requests to ``endpoint`` (``POST /api/runs``) that did not fail."""
        found = self.stats.get(endpoint)
        return found.requests - found.failures if found else 0


def report_dir_for(home: Path, scenario_name: str, now: datetime | None = None) -> Path:
    """``HOME/load/<UTC time>-<scenario>``, new."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = home / "load" / f"{stamp}-{scenario_name}"
    path, n = base, 1
    while path.exists():  # two in the same second
        n += 1
        path = base.with_name(f"{base.name}.{n}")
    path.mkdir(parents=True)
    return path


@contextlib.contextmanager
def target(
    chosen: LoadScenario,
    *,
    host: str | None,
    token: str | None,
    report_dir: Path,
    environ: Mapping[str, str],
    stop: threading.Event,
    out: Callable[[str], None],
    keep_data: Callable[[], bool] = lambda: True,
) -> Iterator[Api]:
    """The API under load: ``host``, or an embedded stack started (and warmed up) for it and
    stopped afterwards, keeping its database's files only if ``keep_data()`` says so."""
    if host is not None:
        api = Api(host, token=token)
        _reachable(api, timeout=10.0, stop=stop)
        yield api
        return
    env = {**environ, **chosen.stack_env}
    if token:
        env["HERALD_WEB_API_TOKEN"] = token
    web = EmbeddedWeb(home=report_dir / STACK_DIR, env=env)
    out(f"starting the embedded stack (herald web; log {web.log_path})")
    try:
        api = Api(web.start(), token=token)
        took = warm_up(api, stop=stop)
        out(f"stack ready at {api.base_url}: a 1-message warm-up run finished in {took:.1f}s")
        yield api
    finally:
        code = web.stop(keep_data=keep_data())
        if code:
            logger.warning("herald web exited with code %s (log %s)", code, web.log_path)


def run(
    options: LoadOptions,
    *,
    load_dir: Path,
    home: Path,
    environ: Mapping[str, str],
    out: Callable[[str], None],
    stop: threading.Event | None = None,
) -> int:
    """One load test: Locust against the target, the report, the check; the exit code."""
    chosen = scenario(options.scenario)
    plan = _plan(options, chosen)
    locustfile = load_dir / chosen.locustfile
    if not locustfile.exists():
        raise ConfigError(f"load scenario {chosen.name}: no locustfile {locustfile}")
    if not locust_available():
        raise ConfigError("Locust is not installed: it is a dev dependency (poetry install)")
    stop = stop or threading.Event()
    report_dir = report_dir_for(home, chosen.name)
    verdict: dict[str, bool] = {}
    with target(
        chosen,
        host=options.host,
        token=options.token,
        report_dir=report_dir,
        environ=environ,
        stop=stop,
        out=out,
        keep_data=lambda: not verdict.get("passed", False),
    ) as api:
        ctx = LoadContext(
            scenario=chosen,
            report_dir=report_dir,
            api=api,
            check_timeout=plan.check_timeout,
            locust_env=_locust_env(environ, report_dir, options.token, options.wait_scale),
            stop=stop,
        )
        with contextlib.ExitStack() as fixtures:
            if chosen.fixture is not None:
                ctx.fixture = fixtures.enter_context(chosen.fixture(ctx))
            out(
                f"load {chosen.name}: {plan.users} users ({plan.spawn_rate:g}/s) for "
                f"{plan.run_secs:g}s against {api.base_url}; Locust's log {report_dir / LOCUST_LOG}"
            )
            result = run_locust(
                locustfile=locustfile,
                url=api.base_url,
                users=plan.users,
                spawn_rate=plan.spawn_rate,
                run_secs=plan.run_secs,
                report_dir=report_dir,
                env=ctx.locust_env,
                tags=options.tags,
                exclude_tags=options.exclude_tags,
            )
            ctx.load_ended = time.monotonic()
            ctx.stats = {e.key: e for e in result.endpoints}
            if result.exit_code != 0 or result.total is None:
                raise HeraldError(
                    f"Locust exited with code {result.exit_code}; the end of its log:\n"
                    f"{_tail(report_dir / LOCUST_LOG)}"
                )
            checked = chosen.check(ctx) if chosen.check is not None and options.check else None
        problems = _verdict(result, checked, options.max_failures)
        verdict["passed"] = not problems
    _write_summary(
        report_dir=report_dir,
        chosen=chosen,
        plan=plan,
        url=api.base_url,
        result=result,
        checked=checked,
        problems=problems,
    )
    for line in format_summary(result, max_failures=options.max_failures):
        out(line)
    if checked is not None:
        out(f"check {chosen.name}: {'passed' if checked.passed else 'FAILED'}: {checked.summary}")
    elif chosen.check is not None:
        out(f"check {chosen.name}: skipped (--no-check)")
    out(f"report: {report_dir} ({HTML_FILE}, {STATS_PREFIX}_stats.csv, {SUMMARY_FILE})")
    if problems:
        out(f"load {chosen.name}: FAILED: {'; '.join(problems)}")
        return EXIT_FAILURE
    return EXIT_OK


def _locust_env(
    environ: Mapping[str, str], report_dir: Path, token: str | None, wait_scale: float | None
) -> dict[str, str]:
    env = {**environ, CREATED_ENV: str(report_dir / CREATED_FILE), "PYTHONUNBUFFERED": "1"}
    if token:
        env[TOKEN_ENV] = token
    if wait_scale is not None:
        env[WAIT_SCALE_ENV] = f"{wait_scale:g}"
    return env


def _verdict(result: LocustResult, checked: CheckResult | None, max_failures: float) -> list[str]:
    problems = []
    if result.total is None or result.total.requests == 0:
        problems.append("no request was made")
    elif result.failure_ratio > max_failures:
        problems.append(
            f"{result.total.failures} of {result.total.requests} requests failed "
            f"({result.failure_ratio:.2%}; at most {max_failures:.2%}: --max-failures)"
        )
    if checked is not None and not checked.passed:
        problems.append(f"the check failed: {checked.summary}")
    return problems


def format_summary(result: LocustResult, *, max_failures: float) -> list[str]:
    """The printed table: requests, failures, requests/s and percentiles per endpoint."""
    header = ("endpoint", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
    rows = [
        (
            e.key,
            f"{e.requests:,}",
            f"{e.failures:,}",
            f"{e.rps:,.1f}",
            *(_fmt_ms(v) for v in (e.p50_ms, e.p95_ms, e.p99_ms, e.max_ms)),
        )
        for e in (*result.endpoints, *([result.total] if result.total else []))
    ]
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    lines = [line(header), *(line(r) for r in rows)]
    if result.total is not None:
        lines.append(
            f"failures: {result.total.failures:,} of {result.total.requests:,} "
            f"({result.failure_ratio:.2%}; at most {max_failures:.2%})"
        )
    lines += [f"  {n:,} x {endpoint}: {error}" for endpoint, error, n in result.failures[:5]]
    return lines


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _write_summary(
    *,
    report_dir: Path,
    chosen: LoadScenario,
    plan: _Plan,
    url: str,
    result: LocustResult,
    checked: CheckResult | None,
    problems: list[str],
) -> None:
    summary = {
        "scenario": chosen.name,
        "target": url,
        "users": plan.users,
        "spawn_rate": plan.spawn_rate,
        "run_secs": plan.run_secs,
        "endpoints": [asdict(e) | {"key": e.key} for e in result.endpoints],
        "total": asdict(result.total) if result.total else None,
        "failure_ratio": result.failure_ratio,
        "failures": [{"endpoint": e, "error": m, "occurrences": n} for e, m, n in result.failures],
        "check": asdict(checked) if checked else None,
        "passed": not problems,
        "problems": problems,
    }
    (report_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")


def run_cli(
    options: LoadOptions,
    *,
    load_dir: Path,
    home: Path,
    environ: Mapping[str, str],
    out: Callable[[str], None],
) -> int:
    """:func:`run` for ``invoke load.run``: herald's errors as a message and their exit code."""
    try:
        return run(options, load_dir=load_dir, home=home, environ=environ, out=out)
    except HeraldError as exc:
        out(f"herald: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        out("herald: interrupted")
        return EXIT_INTERRUPTED


# -- benchmarks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CapacityStep:
    users: int
    stats: EndpointStats


@dataclass(frozen=True)
class Capacity:
    """An endpoint's requests/s at a number of users sending without pause, and the best of
    them whose p99 stayed within the limit (with no failure)."""

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
    """``endpoint``'s requests/s at p99 <= ``p99_limit_ms``: one Locust run of ``step_secs`` per
    number of ``users`` (each sending its next request at once, only the tasks tagged
    ``tags``), against one stack, stopping after the first step over the limit."""
    chosen = scenario(scenario_name)
    if not locust_available():
        raise ConfigError("Locust is not installed: it is a dev dependency (poetry install)")
    stop = threading.Event()
    report_dir = report_dir_for(home, f"{chosen.name}-capacity")
    steps: list[CapacityStep] = []
    with target(
        chosen, host=host, token=token, report_dir=report_dir, environ=environ, stop=stop,
        out=out, keep_data=lambda: False,
    ) as api:  # fmt: skip
        for n in users:
            step_dir = report_dir / f"users-{n}"
            result = run_locust(
                locustfile=load_dir / chosen.locustfile,
                url=api.base_url,
                users=n,
                spawn_rate=n,
                run_secs=step_secs,
                report_dir=step_dir,
                env=_locust_env(environ, step_dir, token, 0.0),
                tags=tags,
            )
            found = next((e for e in result.endpoints if e.key == endpoint), None)
            if result.exit_code != 0 or found is None:
                raise HeraldError(f"{n} users: no {endpoint} figures (log {step_dir / LOCUST_LOG})")
            steps.append(CapacityStep(users=n, stats=found))
            out(f"{n} users: {found.rps:,.1f} req/s, p99 {_fmt_ms(found.p99_ms)} ms, "
                f"{found.failures} failures")  # fmt: skip
            if found.p99_ms is None or found.p99_ms > p99_limit_ms:
                break
    return Capacity(endpoint=endpoint, p99_limit_ms=p99_limit_ms, steps=tuple(steps))
