"""herald's front door: `poetry run invoke --list`. Each task parses its flags and calls herald."""

from __future__ import annotations

import contextlib
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

if TYPE_CHECKING:
    from herald.config import Settings
    from herald.runtime.database import EmbeddedDatabase
    from herald.runtime.local_stack import LocalStack

ROOT = Path(__file__).parent
Num = TypeVar("Num", int, float)
PY = sys.executable


def _byte_compile() -> None:
    """Write herald's own bytecode (again only for what changed, in milliseconds): where
    PYTHONDONTWRITEBYTECODE is set, as on these machines, every herald process would
    otherwise compile its sources at start-up. The dependencies' bytecode comes from
    ``poetry install --compile`` (the README's install command)."""
    import compileall

    compileall.compile_dir(ROOT / "src" / "herald", quiet=2)


_byte_compile()


# -- sim ------------------------------------------------------------------------------------

ENGINE_HELP = (
    "the broker started when kafka.bootstrap is unset: tansu (default, embedded) or kafka "
    "(Apache Kafka from its jars: Java 17+ and Maven; env HERALD_KAFKA_ENGINE)"
)
BROKERS_HELP = "nodes of the kafka engine: 1 (default) or 3 (env HERALD_KAFKA_BROKERS)"


@task(
    help={
        "scenario": "the scenario to run (default producer.scenario: sms)",
        "messages": "messages in the run (default 10,000, or producer.num_messages)",
        "senders": "number of sender processes (default: the configured list, 4)",
        "mean_wait": "mean simulated send time of every sender, seconds",
        "failure_rate": "failure probability of every sender, 0-1",
        "max_in_flight": "messages each sender has in flight at once (1: one at a time)",
        "rate": "producer rate limit, messages/s",
        "seed": "seed for reproducible content",
        "config": "config file (JSON; the classic layout works)",
        "json": "write the final summary here as JSON",
        "refresh": "monitor refresh, seconds",
        "monitor_output": "stdout, stderr or a file path",
        "monitor": "file, terminal or web (web: also serve the run's live page)",
        "timeout": "give up after this many seconds",
        "engine": ENGINE_HELP,
        "brokers": BROKERS_HELP,
        "incident": "KIND:SERVICE@START[-END] or db-outage@START-END, repeatable "
        "(kill, crash, restart, pause; e.g. kill:sender-2@3s)",
        "no_restart": "do not restart a service that exits unplanned (default: restart it)",
        "duration": "a timeline's simulated period from its start (2h, 90m, seconds)",
        "speed": "simulated seconds per wall second (max: as fast as possible)",
        "consume_from": "where the timeline starts: earliest, latest or an ISO 8601 time",
        "param": "KEY=VALUE, any parameter of the scenario's settings; repeatable",
        "sink": "kafka (default) or stdout: print the run's records instead of running it",
    },
    iterable=["incident", "param"],
)
def run(
    c: Context,
    scenario: str | None = None,
    messages: int | None = None,
    senders: int | None = None,
    mean_wait: float | None = None,
    failure_rate: float | None = None,
    max_in_flight: int | None = None,
    rate: float | None = None,
    seed: int | None = None,
    config: str | None = None,
    json: str | None = None,
    refresh: float | None = None,
    monitor_output: str | None = None,
    monitor: str | None = None,
    timeout: float | None = None,
    engine: str | None = None,
    brokers: int | None = None,
    incident: list[str] | None = None,
    no_restart: bool = False,
    duration: str | None = None,
    speed: str | None = None,
    consume_from: str | None = None,
    param: list[str] | None = None,
    sink: str = "kafka",
    ships: int | None = None,
) -> None:
    """Run one complete simulation end to end: live progress, final report."""
    from herald.sim import SimOptions, run_cli

    # invoke passes flags whose default is None as strings: convert them here, and let
    # herald's settings validation report values that are not numbers.
    code = run_cli(
        SimOptions(
            config=Path(config) if config else None,
            scenario=scenario,
            messages=_number(int, "messages", messages),
            senders=_number(int, "senders", senders),
            mean_wait=_number(float, "mean-wait", mean_wait),
            failure_rate=_number(float, "failure-rate", failure_rate),
            max_in_flight=_number(int, "max-in-flight", max_in_flight),
            rate=_number(float, "rate", rate),
            seed=_number(int, "seed", seed),
            refresh=_number(float, "refresh", refresh),
            monitor_output=monitor_output,
            monitor=monitor,
            json_path=Path(json) if json else None,
            timeout=_number(float, "timeout", timeout),
            engine=engine,
            brokers=_number(int, "brokers", brokers),
            incidents=tuple(incident or ()),
            no_restart=no_restart,
            duration=str(duration) if duration is not None else None,
            speed=str(speed) if speed is not None else None,
            consume_from=consume_from,
            params=tuple(param or ()),
            sink=sink,
            ships=_number(int, "ships", ships),
        )
    )
    if code:
        raise Exit(code=code)


def _number(kind: type[Num], flag: str, value: object) -> Num | None:
    if value is None:
        return None
    try:
        return kind(str(value))
    except ValueError:
        raise Exit(f"herald: --{flag} {value!r}: not a number", code=2) from None


# -- db -------------------------------------------------------------------------------------


def _database_url(c: Context) -> tuple[str, EmbeddedDatabase | None]:
    """The configured database URL, or the embedded database started for this task."""
    from herald.config import load_settings
    from herald.errors import HeraldError

    try:
        settings = load_settings()
    except HeraldError as exc:
        raise Exit(str(exc), code=exc.exit_code) from None
    if settings.database.url:
        return settings.database.url, None
    from herald.runtime.database import EmbeddedDatabase

    db = EmbeddedDatabase(settings.home / "pgdata").start()
    assert db.url is not None
    return db.url, db


@task
def create(c: Context) -> None:
    """Create the database (the embedded one under .herald/ unless HERALD_DATABASE_URL)."""
    from herald.db.engine import create_database
    from herald.db.pg import safe_url

    url, embedded = _database_url(c)
    try:
        created = create_database(url)
        print(f"{'created' if created else 'already exists'}: {safe_url(url)}")
    finally:
        if embedded is not None:
            embedded.stop()


@task
def drop(c: Context) -> None:
    """Drop the database (every run and outcome in it)."""
    from herald.db.engine import drop_database
    from herald.db.pg import safe_url

    url, embedded = _database_url(c)
    try:
        dropped = drop_database(url)
        print(f"{'dropped' if dropped else 'no such database'}: {safe_url(url)}")
    finally:
        if embedded is not None:
            embedded.stop()


@task
def migrate(c: Context) -> None:
    """Apply the Alembic migrations (creating the database first if needed)."""
    from herald.db.engine import create_database
    from herald.db.engine import migrate as upgrade
    from herald.db.pg import safe_url

    url, embedded = _database_url(c)
    try:
        create_database(url)
        upgrade(url)
        print(f"migrated: {safe_url(url)}")
    finally:
        if embedded is not None:
            embedded.stop()


# -- app ------------------------------------------------------------------------------------


@task(name="gen-config-docs")
def gen_config_docs(c: Context) -> None:
    """Write docs/configuration.md from the settings tree."""
    from herald.docs import configuration_reference

    path = ROOT / "docs" / "configuration.md"
    path.write_text(configuration_reference())
    print(f"wrote {path.relative_to(ROOT)}")


@task(name="gen-asyncapi-spec", help={"fmt": "json, yaml (default) or html (docs/asyncapi/)"})
def gen_asyncapi_spec(c: Context, fmt: str = "yaml") -> None:
    """Write docs/asyncapi.yaml (or .json, or the HTML docs) from herald.contracts."""
    from herald.asyncapi import write_docs
    from herald.errors import HeraldError

    try:
        write_docs(ROOT, fmt)
    except HeraldError as exc:
        raise Exit(f"herald: {exc}", code=exc.exit_code) from None


@task(
    name="run",
    help={
        "host": "address to bind (default 127.0.0.1)",
        "port": "port (default 8000)",
        "dev": "Flask's development server instead of waitress",
        "no_services": "do not run producer, senders and recorder (by default they run when "
        "the broker is embedded, so that runs started from the dashboard progress)",
        "config": "config file (JSON)",
        "engine": ENGINE_HELP,
        "brokers": BROKERS_HELP,
    },
)
def app_run(
    c: Context,
    host: str = "127.0.0.1",
    port: int = 8000,
    dev: bool = False,
    no_services: bool = False,
    config: str | None = None,
    engine: str | None = None,
    brokers: int | None = None,
) -> None:
    """Serve the dashboard and REST API (embedded broker and database unless configured)."""
    from herald.web.server import main as web_main

    args = ["--host", host, "--port", str(port)] + (["--dev"] if dev else [])
    args += ["--no-services"] if no_services else []
    args += ["--config", config] if config else []
    args += ["--engine", engine] if engine else []
    args += ["--brokers", str(brokers)] if brokers is not None else []
    code = web_main(args)
    if code:
        raise Exit(code=code)


@task(name="gen-api-spec", help={"fmt": "json (docs/openapi.json) or yaml (docs/openapi.yaml)"})
def gen_api_spec(c: Context, fmt: str = "json") -> None:
    """Write the OpenAPI document generated from the web app's code."""
    from herald.web.app import openapi_text

    if fmt not in ("json", "yaml"):
        raise Exit(f"--fmt must be json or yaml, not {fmt!r}", code=2)
    path = ROOT / "docs" / f"openapi.{fmt}"
    path.write_text(openapi_text(fmt))
    print(f"wrote {path.relative_to(ROOT)}")


# -- quality --------------------------------------------------------------------------------


@task
def lint(c: Context) -> None:
    """ruff check and ruff format --check."""
    paths = ["src", "tests", "benchmarks", "load", "tasks.py"]
    c.run(shlex.join([PY, "-m", "ruff", "check", *paths]), pty=False)
    c.run(shlex.join([PY, "-m", "ruff", "format", "--check", *paths]), pty=False)


@task(name="type-check")
def type_check(c: Context) -> None:
    """mypy, strict, on src/."""
    c.run(shlex.join([PY, "-m", "mypy"]), pty=False)


WORKERS_HELP = (
    "test processes run side by side, each with its own broker and database (default 2; 1: one "
    "process)"
)


def _pytest(c: Context, *args: str, workers: int = 1) -> None:
    import hashlib
    import tempfile

    from herald.tools import ensure_browser

    ensure_browser(print)
    # This checkout's own temporary folder: pytest's shared default (/tmp/pytest-of-<user>)
    # is cleaned up by any other test session on the machine, embedded databases included.
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
    basetemp = Path(tempfile.gettempdir()) / f"herald-tests-{checkout}"
    # Worker processes (pytest-xdist), each with its own session broker and database: the
    # suite waits mostly on processes starting and stopping, so two workers on two cores
    # take about half the time of one.
    parallel = [f"--numprocesses={workers}"] if workers > 1 else []
    argv = [PY, "-m", "pytest", f"--basetemp={basetemp}", *parallel, *args]
    c.run(shlex.join(argv), pty=False, env={"PYTHONUNBUFFERED": "1"})


@task(
    help={
        "k": "only tests matching this expression",
        "m": "only tests with this marker",
        "engine": "the broker the integration tests use: tansu (default) or kafka (Apache "
        "Kafka, one broker, started once for each worker)",
        "workers": WORKERS_HELP,
    }
)
def tests(c: Context, k: str = "", m: str = "", engine: str = "", workers: int = 2) -> None:
    """Run every test tier (unit, integration, e2e) without coverage."""
    _pytest(
        c,
        *_engine_args(engine),
        *(["-k", k] if k else []),
        *(["-m", m] if m else []),
        workers=workers,
    )


def _engine_args(engine: str) -> list[str]:
    from herald.config import ENGINES

    if engine and engine not in ENGINES:
        raise Exit(f"--engine {engine!r}: one of {', '.join(ENGINES)}", code=2)
    return [f"--engine={engine}"] if engine else []


@task(
    help={
        "engine": "the broker the integration tests use: tansu (default) or kafka",
        "workers": WORKERS_HELP,
    }
)
def coverage(c: Context, engine: str = "", workers: int = 2) -> None:
    """Run every test with coverage (subprocesses included); fail under 95%.

    First makes sure the browser tests' Chromium is there (Debian's chromium and
    chromium-driver, installed when it can be), so that this is all a fresh machine needs.
    """
    for stale in ROOT.glob(".coverage*"):
        stale.unlink()
    # pytest-cov measures the service processes the tests start, too (they inherit its
    # environment and exit cleanly on SIGTERM, which writes their data).
    _pytest(
        c,
        *_engine_args(engine),
        "--cov=herald",
        "--cov-report=term-missing:skip-covered",
        "--cov-fail-under=95",
        "--durations=25",  # where the suite's time goes, in every CI log
        workers=workers,
    )


# -- stack ----------------------------------------------------------------------------------

_PROFILES = "all, dev, testing or cluster"
SEED_HELP = "seed data (default: the sample file shipped in the package, herald/data/seed.json)"


def _settings(
    overrides: dict[str, Any] | None = None, flags: dict[str, str] | None = None
) -> Settings:
    from herald.config import load_settings
    from herald.errors import HeraldError

    try:
        return load_settings(overrides=overrides, flags=flags)
    except HeraldError as exc:
        raise Exit(f"herald: {exc}", code=exc.exit_code) from None


def _local_stack() -> LocalStack:
    from herald.runtime.local_stack import LocalStack

    return LocalStack(_settings(), cwd=Path.cwd())


def _compose(c: Context, profile: str, *args: str) -> None:
    from herald.runtime.compose import compose_argv, compose_environment
    from herald.runtime.stack import PROFILES

    profiles = (profile,) if profile else PROFILES
    argv = compose_argv(ROOT, profiles, *args)
    env = compose_environment(_settings().home, profile or "all")
    c.run(" ".join(shlex.quote(a) for a in argv), env=env, pty=False)


def _docker() -> bool:
    from herald.runtime.compose import docker_available

    return docker_available()


@task(
    help={
        "profile": f"{_PROFILES} (default all)",
        "build": "build herald's image first (Docker only)",
        "timeout": "seconds to wait for every service to be healthy",
        "engine": "without Docker, the broker: tansu (default, embedded) or kafka (Apache Kafka "
        "from its jars: Java 17+ and Maven; env HERALD_KAFKA_ENGINE); --profile=cluster is "
        "always three Apache Kafka nodes",
        "brokers": BROKERS_HELP,
    }
)
def up(
    c: Context,
    profile: str = "all",
    build: bool = False,
    timeout: float = 180,
    engine: str | None = None,
    brokers: int | None = None,
) -> None:
    """Bring the stack up: docker compose with a Docker engine, else supervised local processes."""
    from herald.errors import HeraldError
    from herald.runtime.local_stack import LocalStack, format_status
    from herald.runtime.stack import PROFILES

    if profile not in PROFILES:
        raise Exit(f"--profile must be {_PROFILES}, not {profile!r}", code=2)
    if profile == "cluster" and engine == "tansu":
        raise Exit("--profile=cluster runs three Apache Kafka brokers: not --engine tansu", code=2)
    if _docker():
        if engine or brokers is not None:
            print("docker compose runs Apache Kafka (one broker, three with --profile=cluster): "
                  "--engine and --brokers apply to the stack without Docker")  # fmt: skip
        _compose(c, profile, "up", "--detach", "--wait", *(["--build"] if build else []))
        return
    if build:
        print("no Docker engine: services run from this checkout; nothing to build")
    overrides = {"engine": engine, "brokers": _number(int, "brokers", brokers)}
    flags = {"kafka.engine": f"--engine {engine}", "kafka.brokers": f"--brokers {brokers}"}
    kafka = {k: v for k, v in overrides.items() if v is not None}
    stack = LocalStack(_settings({"kafka": kafka} if kafka else None, flags), cwd=Path.cwd())
    running = stack.state() if stack.is_up() else None
    if running is not None:
        if running.profile == profile:
            print(f"profile {profile} is already up in {stack.dir}")
            print(format_status(stack.status(), running))
            return
        raise Exit(
            f"profile {running.profile} is up in {stack.dir}: `poetry run invoke stack.down`, "
            f"then stack.up --profile={profile}",
            code=1,
        )
    name, nodes = stack.engine(profile)
    broker = "Tansu" if name == "tansu" else f"Apache Kafka ({nodes} node{'s' * (nodes > 1)})"
    print(f"no Docker engine: starting profile {profile} as local processes in {stack.dir}, "
          f"broker {broker}")  # fmt: skip
    try:
        state = stack.up(profile, timeout=float(timeout))
    except HeraldError as exc:
        raise Exit(f"herald: {exc}", code=exc.exit_code) from None
    print(format_status(stack.status(), state))


@task(name="gen-compose")
def gen_compose(c: Context) -> None:
    """Write docker-compose.yml's cluster brokers from the local engine's node settings."""
    from herald.runtime.compose import with_cluster_services

    path = ROOT / "docker-compose.yml"
    path.write_text(with_cluster_services(path.read_text()))
    print(f"wrote the cluster's brokers in {path.relative_to(ROOT)}")


@task
def down(c: Context) -> None:
    """Stop every service of the stack (its data stays)."""
    if _docker():
        _compose(c, "", "down", "--remove-orphans")
        return
    stack = _local_stack()
    print("stack stopped" if stack.down() else "no local stack is running")


@task(help={"yes": "do not ask: delete every run's history"})
def destroy(c: Context, yes: bool = False) -> None:
    """Stop the stack and delete its data: volumes, or the embedded database and stack files
    (every run's history). Asks first, unless --yes."""
    if not yes:
        where = "the compose volumes" if _docker() else f"{_settings().home}"
        try:
            answer = input(f"delete every run's history and the stack's data in {where}? [y/N] ")
        except EOFError:  # no terminal to ask on
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            raise Exit("nothing deleted", code=1)
    if _docker():
        _compose(c, "", "down", "--volumes", "--remove-orphans")
        return
    stack = _local_stack()
    deleted = stack.destroy()
    if deleted:
        print("stack stopped; deleted " + " and ".join(str(d) for d in deleted))
    else:
        print(f"nothing to delete: no stack data in {stack.home}")


@task(help={"json": "print JSON instead of a table"})
def ps(c: Context, json: bool = False) -> None:
    """Show every service of the stack: state, pid, health."""
    if _docker():
        _compose(c, "", "ps", *(["--format", "json"] if json else []))
        return
    import dataclasses
    import json as json_

    from herald.runtime.local_stack import format_status

    stack = _local_stack()
    statuses = stack.status()
    if json:
        state = stack.state()
        print(
            json_.dumps(
                {
                    "services": [dataclasses.asdict(s) for s in statuses],
                    "state": dataclasses.asdict(state) if state and statuses else None,
                },
                indent=2,
            )
        )
    elif not statuses:
        print("no local stack is running (stack.up)")
    else:
        print(format_status(statuses, stack.state()))


@task(
    help={
        "service": "one service (default: every one)",
        "follow": "keep printing new lines until Ctrl-C",
        "lines": "lines of each log to show first",
    },
    positional=["service"],
)
def logs(c: Context, service: str | None = None, follow: bool = False, lines: int = 50) -> None:
    """Show the services' logs."""
    if _docker():
        args = ["logs", "--tail", str(lines), *(["--follow"] if follow else [])]
        _compose(c, "", *args, *([service] if service else []))
        return
    import threading

    from herald.runtime.local_stack import show_logs

    if service in ("--help", "-h"):  # a positional argument takes the flag as its value
        c.run(shlex.join([PY, "-m", "invoke", "--help", "stack.logs"]), pty=False)
        return
    stack = _local_stack()
    names = stack.log_names()
    if service:
        chosen = [n for n in names if n == service or n.startswith(f"{service}-")]
        if not chosen:
            raise Exit(f"no service {service!r}; the stack has {', '.join(names) or 'none'}", 2)
        names = chosen
    stop = threading.Event() if follow else None
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --follow
        show_logs(stack, names, print, lines=int(lines), stop=stop)


@task(name="build-service", help={"service": "a herald service (producer, sender, web, ...)"})
def build_service(c: Context, service: str) -> None:
    """Build the image of a herald service (one image serves them all); needs Docker."""
    from herald.runtime.stack import stack_services

    names = [s.name for s in stack_services()]
    if service not in names:
        raise Exit(f"no herald service {service!r}; choose one of {', '.join(names)}", code=2)
    if not _docker():
        raise Exit("stack.build-service needs a Docker engine (docker info failed)", code=1)
    _compose(c, "all", "build", service)


# -- seed -----------------------------------------------------------------------------------


@task(name="database", help={"file": SEED_HELP})
def seed_database(c: Context, file: str = "") -> None:
    """Write sample runs and outcomes to Postgres (again: nothing is duplicated)."""
    from herald.db.engine import migrate as upgrade
    from herald.seed import load_seed
    from herald.seed import seed_database as write

    stack_url = _running_stack_value("database_url")
    url, embedded = (stack_url, None) if stack_url else _database_url(c)
    try:
        upgrade(url)
        counts = write(url, load_seed(Path(file) if file else None))
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"seeded {counts['runs']} runs, {counts['outcomes']} outcomes")


@task(name="kafka", help={"file": SEED_HELP})
def seed_kafka(c: Context, file: str = "") -> None:
    """Publish sample records on every topic (valid against the AsyncAPI schemas)."""
    from herald.seed import load_seed
    from herald.seed import seed_kafka as publish

    settings = _settings()
    bootstrap = settings.kafka.bootstrap or _running_stack_value("kafka_bootstrap")
    if not bootstrap:
        raise Exit("no broker: set HERALD_KAFKA_BOOTSTRAP, or run stack.up first", code=3)
    ks = settings.kafka.model_copy(update={"bootstrap": bootstrap})
    counts = publish(ks, load_seed(Path(file) if file else None))
    print("published " + ", ".join(f"{n} on {topic}" for topic, n in counts.items()))


def _running_stack_value(field: str) -> str | None:
    stack = _local_stack()
    state = stack.state() if stack.is_up() else None
    return str(getattr(state, field)) if state else None


# -- load -----------------------------------------------------------------------------------


@task(
    name="run",
    help={
        "scenario": "the load scenario: a locustfile under load/ (default runs; docs/load.md)",
        "users": "simulated users (default: the scenario's)",
        "spawn_rate": "users started per second (default: the scenario's)",
        "run_time": "how long the load lasts: 90, 30s, 1m30s (default: the scenario's)",
        "host": "load this herald (http://HOST:PORT) instead of an embedded stack started for it",
        "token": "the web API's bearer token (default HERALD_WEB_API_TOKEN)",
        "max_failures": "fail when more than this ratio of requests failed (default 0.01)",
        "check_timeout": "seconds the check may wait after the load (default: the scenario's)",
        "no_check": "skip the scenario's correctness check",
        "tags": "only the locustfile's tasks with these tags (comma-separated: write,read)",
        "exclude_tags": "not the tasks with these tags (comma-separated)",
        "wait_scale": "multiply the users' wait times (0: no wait between requests)",
    },
)
def load_run(
    c: Context,
    scenario: str = "runs",
    users: int | None = None,
    spawn_rate: float | None = None,
    run_time: str | None = None,
    host: str | None = None,
    token: str | None = None,
    max_failures: float | None = None,
    check_timeout: float | None = None,
    no_check: bool = False,
    tags: str = "",
    exclude_tags: str = "",
    wait_scale: float | None = None,
) -> None:
    """Load herald's HTTP API with Locust (headless), report under .herald/load/, then check."""
    import os

    from herald.load.run import DEFAULT_MAX_FAILURES, LoadOptions, run_cli
    from herald.load.timers import known_secrets

    settings = _settings()
    secret = settings.web.api_token
    failures = _number(float, "max-failures", max_failures)
    code = run_cli(
        LoadOptions(
            scenario=scenario,
            users=_number(int, "users", users),
            spawn_rate=_number(float, "spawn-rate", spawn_rate),
            run_time=run_time,
            host=host,
            token=token or (secret.get_secret_value() if secret else None),
            max_failures=DEFAULT_MAX_FAILURES if failures is None else failures,
            check=not no_check,
            check_timeout=_number(float, "check-timeout", check_timeout),
            tags=tuple(t for t in tags.split(",") if t),
            exclude_tags=tuple(t for t in exclude_tags.split(",") if t),
            wait_scale=_number(float, "wait-scale", wait_scale),
            webhook_secrets=known_secrets(settings) if host else (),
        ),
        load_dir=ROOT / "load",
        home=settings.home,
        environ=os.environ,
        out=print,
    )
    if code:
        raise Exit(code=code)


# -- benchmarks -----------------------------------------------------------------------------


@task(
    help={
        "repeat": "runs of each benchmark (the median is reported)",
        "quick": "small sizes, to check the scripts work (figures not meaningful)",
    }
)
def bench(c: Context, repeat: int = 3, quick: bool = False) -> None:
    """Run the benchmarks in benchmarks/ and write docs/benchmarks.md."""
    argv = [PY, str(ROOT / "benchmarks" / "run.py"), "--repeat", str(repeat)]
    c.run(shlex.join(argv + (["--quick"] if quick else [])), pty=False)


@task(
    help={
        "messages": "messages in the profiled herald sim run (default 1,000,000)",
        "rate": "py-spy samples a second per process (default 100)",
    }
)
def profile(c: Context, messages: int = 1_000_000, rate: int = 100) -> None:
    """Run herald sim with py-spy on every service process and write docs/profile.md."""
    argv = [PY, str(ROOT / "benchmarks" / "cpu_profile.py"), "--messages", str(messages)]
    c.run(shlex.join([*argv, "--rate", str(rate)]), pty=False)


ns = Collection()
ns.add_collection(Collection("sim", run))
ns.add_collection(Collection("db", create, drop, migrate))
ns.add_collection(Collection("app", gen_config_docs, gen_asyncapi_spec, app_run, gen_api_spec))
ns.add_collection(Collection("linting", lint, type_check))
ns.add_collection(Collection("testing", tests, coverage))
ns.add_collection(Collection("stack", up, down, destroy, ps, logs, build_service, gen_compose))
ns.add_collection(Collection("seed", seed_database, seed_kafka))
ns.add_collection(Collection("load", load_run))
bench_ns = Collection("bench")
bench_ns.add_task(bench, name="run")
bench_ns.add_task(profile)
ns.add_collection(bench_ns)
