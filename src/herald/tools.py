"""Small commands: ask for a run (and, with ``--wait``, follow it to its summary), migrate the
database."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from herald import completion, control, kafka, runs
from herald.completion import Watch
from herald.config import Settings, load_settings
from herald.contracts import RunRequest
from herald.db.pg import safe_url
from herald.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, HeraldError

FIGURES_GRACE_SECS = 10.0  # after completion, how long --wait waits for a monitor's figures


def _submit_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="herald submit", description="ask for a run")
    p.add_argument("--config", type=Path, help="config file (JSON)")
    p.add_argument("--scenario", help="the scenario to run (default producer.scenario: sms)")
    p.add_argument("--messages", type=int, help="messages in the run (default 10,000)")
    p.add_argument("--rate", type=float, help="producer rate limit, messages/s")
    p.add_argument("--seed", type=int, help="seed for reproducible content")
    p.add_argument(
        "--start-at",
        type=_timestamp,
        metavar="TIME",
        help="start the run then, not now: an RFC 3339 time with a UTC offset "
        "(2026-12-01T09:00:00Z); the scheduler publishes it (needs database.url)",
    )
    p.add_argument(
        "--callback-url",
        metavar="URL",
        help="POSTed once with the run's totals when it completes (by the notifier; the "
        "timers' URL rules apply)",
    )
    p.add_argument(
        "--status-callback-url",
        metavar="URL",
        help="POSTed once per message outcome as the recorder stores it (by the notifier)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait until the run completes (the recorder's announcement on the control topic), "
        "re-count Postgres (database.url) and print the summary; exit 1 if they disagree",
    )
    p.add_argument("--json", dest="json_path", type=Path, help="with --wait: the summary as JSON")
    p.add_argument(
        "--timeout", type=float, default=3600.0, help="with --wait: give up after this many s"
    )
    return p


def _submit_problem(settings: Settings, args: argparse.Namespace) -> str | None:
    """Why the command cannot go on with these settings (None: it can)."""
    if args.wait and settings.database.url is None:
        return "--wait re-counts the run in Postgres: set database.url (HERALD_DATABASE_URL)"
    if args.start_at is None:
        return None
    if settings.database.url is None:
        return (
            "--start-at stores the run for the scheduler in Postgres: set database.url "
            "(HERALD_DATABASE_URL)"
        )
    problem = runs.start_at_problem(settings, args.start_at, datetime.now(UTC))
    return None if problem is None else f"--start-at {problem}"


def submit_main(argv: Sequence[str]) -> int:
    """``herald submit --messages N [--wait]``: publish a run request (or, with ``--start-at``,
    schedule it); print its id, or, with ``--wait``, follow the run on the control topic and
    print its final summary."""
    args = _submit_parser().parse_args(argv)
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    try:
        settings = load_settings(args.config)
        problem = _submit_problem(settings, args)
        if problem is not None:
            print(f"herald: {problem}", file=sys.stderr)
            return EXIT_CONFIG
        params = {
            k: v for k, v in (("messages", args.messages), ("rate", args.rate)) if v is not None
        }
        try:
            request = runs.make_request(
                settings,
                scenario=args.scenario,
                seed=args.seed,
                config={"source": "cli"},
                callback_url=args.callback_url,
                status_callback_url=args.status_callback_url,
                **params,
            )
        except runs.CallbackRefused as exc:
            flag = "--" + exc.field.replace("_", "-")
            print(f"herald: {flag} {getattr(args, exc.field)}: {exc.reason}", file=sys.stderr)
            return EXIT_CONFIG
        existing = kafka.wait_for_broker(settings.kafka)
        kafka.ensure_topics(settings.kafka, existing=existing)
        listener = control.Listener(settings.kafka, since=datetime.now(UTC)) if args.wait else None
        started, started_wall = time.monotonic(), time.time()
        if args.start_at is not None:
            _schedule(settings, request, args.start_at)
        else:
            runs.submit(settings.kafka, request)
        if listener is None:
            print(request.run_id)
            return EXIT_OK
        return _follow(
            console, settings, request, listener, args, started=started, started_wall=started_wall
        )
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return exc.exit_code


def _follow(
    console: Console,
    settings: Settings,
    request: RunRequest,
    listener: control.Listener,
    args: argparse.Namespace,
    *,
    started: float,
    started_wall: float,
) -> int:
    """``--wait``: follow the run on the control topic to its completion; print the summary."""
    when = "" if args.start_at is None else f" to start at {args.start_at.isoformat()}"
    console.print(f"run {request.run_id} submitted{when}; waiting for it to complete")
    stop = threading.Event()
    watch = Watch(request.run_id, want_figures=False)
    try:
        done = completion.wait(
            listener.poll, watch, timeout=args.timeout, tick=lambda: None, stopped=stop.is_set
        )
        if done:
            # A monitor, where one runs, publishes its figures as it sees the last result.
            watch.want_figures = True
            completion.wait(
                listener.poll,
                watch,
                timeout=FIGURES_GRACE_SECS,
                tick=lambda: None,
                stopped=stop.is_set,
            )
    except KeyboardInterrupt:
        console.print(f"interrupted: run {request.run_id} goes on without this command")
        return EXIT_INTERRUPTED
    finally:
        listener.close()
    if watch.completed is None:
        console.print(f"[red]run {request.run_id} not complete after {args.timeout:g}s[/]")
        return EXIT_FAILURE
    assert settings.database.url is not None
    summary, problems = completion.summarise(
        settings.database.url,
        watch,
        scenario=request.scenario,
        elapsed=time.monotonic() - started,
        started_wall=started_wall,
    )
    from herald.report import print_summary

    print_summary(console, summary)
    for problem in problems:
        console.print(f"[red]{problem}[/]")
    if args.json_path is not None:
        args.json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        console.print(f"summary written to {args.json_path}")
    return EXIT_FAILURE if problems else EXIT_OK


def _timestamp(text: str) -> datetime:
    """An argparse type: an RFC 3339 time with its UTC offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time (2026-12-01T09:00:00Z)"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (2026-12-01T09:00:00Z)")
    return value


def _schedule(settings: Settings, request: RunRequest, start_at: datetime) -> None:
    """Store a run for the scheduler (committed before the command reports its id)."""
    from herald.db.engine import make_engine

    assert settings.database.url is not None
    engine = make_engine(settings.database.url)
    try:
        with engine.begin() as conn:
            runs.schedule(conn, settings, request, start_at=start_at, now=datetime.now(UTC))
    finally:
        engine.dispose()


def migrate_main(argv: Sequence[str]) -> int:
    """``herald migrate``: apply the Alembic migrations to ``database.url``."""
    from herald.db.engine import migrate

    p = argparse.ArgumentParser(prog="herald migrate", description="apply migrations")
    p.add_argument("--config", type=Path, help="config file (JSON)")
    p.add_argument("--settings", type=Path, help="complete settings (JSON), as for services")
    args = p.parse_args(argv)
    try:
        if args.settings is not None:
            from herald.config import load_resolved

            settings = load_resolved(args.settings)
        else:
            settings = load_settings(args.config)
        if settings.database.url is None:
            print("herald: database.url is unset (HERALD_DATABASE_URL)", file=sys.stderr)
            return EXIT_CONFIG
        migrate(settings.database.url)
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"migrated {safe_url(settings.database.url)}")
    return EXIT_OK


BROWSER_PACKAGES = ("chromium", "chromium-driver")


def ensure_browser(say: Callable[[str], None]) -> bool:
    """Make sure the browser tests' headless Chromium and its driver are installed: Debian's
    packages, installed with apt-get when this process may (root). True when both are there."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return True
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        say(
            "the dashboard's browser test needs Chromium: apt-get install -y "
            + " ".join(BROWSER_PACKAGES)
            + " (as root), then run the tests again"
        )
        return False
    say(f"installing {' '.join(BROWSER_PACKAGES)} for the browser tests (apt-get, once)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", *BROWSER_PACKAGES]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            say(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
            return False
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))
