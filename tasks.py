"""herald's front door: `poetry run invoke --list`. Each task parses its flags and calls herald."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

if TYPE_CHECKING:
    from herald.runtime.database import EmbeddedDatabase

ROOT = Path(__file__).parent
Num = TypeVar("Num", int, float)
PY = sys.executable


# -- sim ------------------------------------------------------------------------------------


@task(
    help={
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
        "incident": "KIND:SERVICE@START[-END] or db-outage@START-END, repeatable "
        "(kill, crash, restart, pause; e.g. kill:sender-2@3s)",
    },
    iterable=["incident"],
)
def run(
    c: Context,
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
    incident: list[str] | None = None,
) -> None:
    """Run one complete simulation end to end: live progress, final report."""
    from herald.sim import SimOptions, run_cli

    # invoke passes flags whose default is None as strings: convert them here, and let
    # herald's settings validation report values that are not numbers.
    code = run_cli(
        SimOptions(
            config=Path(config) if config else None,
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
            incidents=tuple(incident or ()),
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
    },
)
def app_run(
    c: Context,
    host: str = "127.0.0.1",
    port: int = 8000,
    dev: bool = False,
    no_services: bool = False,
    config: str | None = None,
) -> None:
    """Serve the dashboard and REST API (embedded broker and database unless configured)."""
    from herald.web.server import main as web_main

    args = ["--host", host, "--port", str(port)] + (["--dev"] if dev else [])
    args += ["--no-services"] if no_services else []
    args += ["--config", config] if config else []
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
    c.run(f"{PY} -m ruff check src tests benchmarks tasks.py", pty=False)
    c.run(f"{PY} -m ruff format --check src tests benchmarks tasks.py", pty=False)


@task(name="type-check")
def type_check(c: Context) -> None:
    """mypy, strict, on src/."""
    c.run(f"{PY} -m mypy", pty=False)


@task(help={"k": "only tests matching this expression", "m": "only tests with this marker"})
def tests(c: Context, k: str = "", m: str = "") -> None:
    """Run every test tier (unit, integration, e2e) without coverage."""
    args = (f" -k {k!r}" if k else "") + (f" -m {m!r}" if m else "")
    c.run(f"{PY} -m pytest{args}", pty=False)


@task
def coverage(c: Context) -> None:
    """Run every test with coverage (subprocesses included); fail under 95%."""
    for stale in ROOT.glob(".coverage*"):
        stale.unlink()
    # pytest-cov measures the service processes the tests start, too (they inherit its
    # environment and exit cleanly on SIGTERM, which writes their data).
    c.run(
        f"{PY} -m pytest --cov=herald --cov-report=term-missing:skip-covered --cov-fail-under=95",
        pty=False,
    )


# -- benchmarks -----------------------------------------------------------------------------


@task(
    help={
        "repeat": "runs of each benchmark (the median is reported)",
        "quick": "small sizes, to check the scripts work (figures not meaningful)",
    }
)
def bench(c: Context, repeat: int = 3, quick: bool = False) -> None:
    """Run the benchmarks in benchmarks/ and write docs/benchmarks.md."""
    args = f" --repeat {repeat}" + (" --quick" if quick else "")
    c.run(f"{PY} {ROOT / 'benchmarks' / 'run.py'}{args}", pty=False)


ns = Collection()
ns.add_collection(Collection("sim", run))
ns.add_collection(Collection("db", create, drop, migrate))
ns.add_collection(Collection("app", gen_config_docs, gen_asyncapi_spec, app_run, gen_api_spec))
ns.add_collection(Collection("linting", lint, type_check))
ns.add_collection(Collection("testing", tests, coverage))
bench_ns = Collection("bench")
bench_ns.add_task(bench, name="run")
ns.add_collection(bench_ns)
os.environ.setdefault("PYTHONUNBUFFERED", "1")
