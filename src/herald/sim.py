"""``sim.run``: one complete run end to end, with a live view and a final report.

Starts the embedded broker and database (unless ``kafka.bootstrap`` / ``database.url`` point
elsewhere), every service as its own process, asks for a run on ``herald.runs``, waits until
Postgres holds every outcome, prints the summary and stops everything in order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from rich.console import Console

from herald import kafka, runs
from herald.config import Settings, load_settings, resolved_json
from herald.contracts import RunRequest
from herald.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    HeraldError,
)
from herald.incidents import Incident, Timeline
from herald.incidents import check as check_incidents
from herald.report import print_summary, report
from herald.report import recorded as recorded_count
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import publish_url
from herald.runtime.launcher import Launcher, RunDatabase, incident_actions
from herald.runtime.processes import (
    ProcessGroup,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimOptions:
    """What ``sim.run``'s flags ask for, on top of the settings."""

    config: Path | None = None
    messages: int | None = None
    senders: int | None = None
    mean_wait: float | None = None
    failure_rate: float | None = None
    max_in_flight: int | None = None
    rate: float | None = None
    seed: int | None = None
    refresh: float | None = None
    monitor_output: str | None = None
    monitor: str | None = None
    json_path: Path | None = None
    timeout: float | None = None
    incidents: tuple[str, ...] = ()


@dataclass
class SimResult:
    """What a finished (or failed) run reports."""

    run_id: str
    expected: int
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int = EXIT_OK


def settings_for(options: SimOptions) -> Settings:
    """The settings tree with the flags applied (raises ConfigError)."""
    overrides: dict[str, Any] = {}
    if options.messages is not None:
        overrides["producer"] = {"num_messages": options.messages}
    if options.rate is not None:
        overrides.setdefault("producer", {})["rate"] = options.rate
    if options.seed is not None:
        overrides.setdefault("producer", {})["seed"] = options.seed
    monitor: dict[str, Any] = {}
    if options.refresh is not None:
        monitor["refresh_secs"] = options.refresh
    if options.monitor_output is not None:
        monitor["output_location"] = options.monitor_output
    if options.monitor is not None:
        monitor["kind"] = options.monitor
    if monitor:
        overrides["monitor"] = monitor
    settings = load_settings(options.config, overrides)
    sender_flags = {
        k: v
        for k, v in (
            ("mean_wait_time", options.mean_wait),
            ("failure_rate", options.failure_rate),
            ("max_in_flight", options.max_in_flight),
        )
        if v is not None
    }
    if options.senders is not None or sender_flags:
        count = options.senders if options.senders is not None else len(settings.senders)
        base = [s.model_dump() for s in settings.senders]
        senders = [{**base[i % len(base)], **sender_flags} for i in range(count)]
        overrides["senders"] = senders
        settings = load_settings(options.config, overrides)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """``herald sim``: the same as ``invoke sim.run``."""
    import argparse

    p = argparse.ArgumentParser(prog="herald sim", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path)
    p.add_argument("--messages", type=int)
    p.add_argument("--senders", type=int)
    p.add_argument("--mean-wait", type=float)
    p.add_argument("--failure-rate", type=float)
    p.add_argument("--max-in-flight", type=int)
    p.add_argument("--rate", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--refresh", type=float)
    p.add_argument("--monitor-output")
    p.add_argument("--monitor", choices=("file", "terminal", "web"))
    p.add_argument("--json", dest="json_path", type=Path)
    p.add_argument("--timeout", type=float)
    p.add_argument(
        "--incident",
        dest="incidents",
        action="append",
        default=[],
        help="KIND:SERVICE@START[-END] or db-outage@START-END; repeatable (see herald.incidents)",
    )
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    args.incidents = tuple(args.incidents)
    return run_cli(SimOptions(**vars(args)))


def run_cli(options: SimOptions, *, out: IO[str] | None = None) -> int:
    """Validate, simulate, report; return the exit code."""
    console = Console(file=out or sys.stdout, highlight=False, soft_wrap=True)
    try:
        settings = settings_for(options)
        incidents = [Incident.parse(spec) for spec in options.incidents]
        check_incidents(incidents, service_names(settings), settings.database.url is None)
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return exc.exit_code
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s [sim] %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger().setLevel("WARNING")  # the console shows progress; logs are for services
    stop = threading.Event()
    restore = _install_signals(stop)
    try:
        result = simulate(settings, options, stop=stop, console=console, incidents=incidents)
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        restore()
    if options.json_path is not None and result.summary:
        options.json_path.write_text(json.dumps(result.summary, indent=2, default=str) + "\n")
        console.print(f"summary written to {options.json_path}")
    return result.exit_code


def _install_signals(stop: threading.Event) -> Any:
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise SystemExit(EXIT_INTERRUPTED)
        stop.set()

    for s in previous:
        signal.signal(s, handle)

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


def service_names(settings: Settings) -> list[str]:
    """The services of a run, by the names incidents and logs use."""
    return [f"sender-{i}" for i in range(len(settings.senders))] + [
        "producer",
        "monitor",
        "recorder",
    ]


def simulate(
    settings: Settings,
    options: SimOptions,
    *,
    stop: threading.Event,
    console: Console,
    incidents: Sequence[Incident] = (),
) -> SimResult:
    """One run, start to finish.

    The order is chosen for the time to the first result: the broker first (milliseconds),
    then the senders, producer and monitor (their group joins are the slowest step), then the
    database and the recorder while they join.
    """
    started_wall = time.time()
    started = time.monotonic()
    home = settings.home.expanduser().resolve()
    request = runs.make_request(
        settings.producer.num_messages,
        seed=settings.producer.seed,
        rate=settings.producer.rate,
        config={"senders": [s.model_dump() for s in settings.senders]},
    )
    run_dir = home / "runs" / request.run_id
    logs = run_dir / "logs"
    run_dir.mkdir(parents=True, exist_ok=True)
    console.print(
        f"herald run [bold]{request.run_id}[/]: {request.messages:,} messages, "
        f"{len(settings.senders)} senders (logs in {run_dir})"
    )
    broker: EmbeddedBroker | None = None
    database = RunDatabase(settings, home)  # the embedded one starts in the background
    group = ProcessGroup()
    timeline = Timeline(list(incidents))
    stack_stops: list[Callable[[], object]] = []
    try:
        ks = settings.kafka
        if ks.bootstrap is None:
            broker = EmbeddedBroker(log_path=logs / "broker.log").start()
            ks = broker.client_settings(ks)
        kafka.wait_for_broker(ks, stop=stop.is_set)
        kafka.ensure_topics(ks)
        # Made now, it has its producer id by the time the run is submitted. Closed with the
        # run (stack_stops run first): the broker waits for open connections when it stops.
        submitter = runs.submitter(ks)
        stack_stops.append(submitter.close)
        live = settings.model_copy(update={"kafka": ks})
        settings_file = run_dir / "settings.json"
        settings_file.write_text(resolved_json(live))
        launcher = Launcher(group, settings_file, logs)
        ready = run_dir / "ready"
        summary_path = run_dir / "monitor.json"
        url_file = run_dir / "database-url"
        _start_services(
            launcher,
            live,
            request.run_id,
            ready=ready,
            summary_path=summary_path,
            url_file=url_file,
        )
        url = database.ready(stop)  # started, answering and migrated
        live = _with_database(live, url, settings_file, url_file)
        web_url = _serve_web(live, stack_stops) if live.monitor.kind == "web" else None
        # The run starts (and its clock with it) once every consumer-group member holds
        # partitions, so that no message waits in a topic for a group join.
        _wait_until_ready(group, ready, len(live.senders) + 2, stop)
        runs.submit(ks, request, producer=submitter)
        if web_url is not None:
            _announce_page(url, request.run_id, f"{web_url}/runs/{request.run_id}", console)
        timeline.actions = incident_actions(launcher, database)
        return _wait_and_report(
            url,
            request,
            group=group,
            timeline=timeline,
            summary_path=summary_path,
            timeout=options.timeout or _default_timeout(live, request.messages),
            stop=stop,
            console=console,
            started=started,
            started_wall=started_wall,
        )
    finally:
        for stop_extra in stack_stops:
            stop_extra()
        codes = group.stop()
        bad = {
            n: c
            for n, c in codes.items()
            if c not in (0, -signal.SIGTERM) and n not in timeline.killed
        }
        if bad:
            console.print(f"[yellow]services exited with {bad}; logs in {logs}[/]")
        database.stop()
        if broker is not None:
            broker.stop()


def _with_database(live: Settings, url: str, settings_file: Path, url_file: Path) -> Settings:
    """The settings with the database URL, written for whoever reads them: the settings
    file (for services started later) and the URL file the recorder waits for."""
    live = live.model_copy(update={"database": live.database.model_copy(update={"url": url})})
    settings_file.write_text(resolved_json(live))
    publish_url(url_file, url)
    return live


def _start_services(
    launcher: Launcher,
    live: Settings,
    run_id: str,
    *,
    ready: Path,
    summary_path: Path,
    url_file: Path,
) -> None:
    """Senders first (their group join is the slowest step of a start), producer, monitor,
    and the recorder, which joins its group while the database starts: it waits for the
    database URL in ``url_file``."""
    ready.mkdir()
    for i in range(len(live.senders)):
        launcher.spawn(f"sender-{i}", "sender", "--id", str(i), "--ready-file", str(ready / str(i)))
    launcher.spawn("producer", "producer", "--ready-file", str(ready / "producer"))
    launcher.spawn(
        "monitor",
        "monitor",
        "--run-id",
        run_id,
        "--exit-when-complete",
        "--summary-json",
        str(summary_path),
        stdout=sys.stdout if live.monitor.output_location == "stdout" else None,
    )
    launcher.spawn(
        "recorder",
        "recorder",
        "--ready-file",
        str(ready / "recorder"),
        "--database-url-file",
        str(url_file),
    )


def _serve_web(live: Settings, stops: list[Callable[[], object]]) -> str:
    """Serve the web monitor in a thread (its stop added to ``stops``); its base URL."""
    from herald.web.server import serve

    stop = threading.Event()
    ready = threading.Event()
    base: list[str] = []

    def announce(url: str) -> None:
        base.append(url)
        ready.set()

    worker = threading.Thread(
        target=serve,
        kwargs={
            "settings": live,
            "host": live.monitor.web_host,
            "port": live.monitor.web_port,
            "stop": stop,
            "on_ready": announce,
        },
        name="web-monitor",
        daemon=True,
    )
    worker.start()
    stops.append(stop.set)
    if not ready.wait(30):
        raise HeraldError(
            f"the web monitor did not start on {live.monitor.web_host}:{live.monitor.web_port}"
        )
    return base[0]


def _announce_page(url: str, run_id: str, page: str, console: Console) -> None:
    """Print the run's live page once the run is known to the database (the page needs it)."""
    import psycopg

    from herald.db.pg import conninfo

    deadline = time.monotonic() + 15
    with psycopg.connect(conninfo(url)) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = %s", (run_id,)).fetchone():
                break
            time.sleep(0.05)
    console.print(f"live page: {page}")


def _wait_until_ready(
    group: ProcessGroup, ready: Path, members: int, stop: threading.Event, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while len(list(ready.iterdir())) < members:
        for member in group.exited():
            raise HeraldError(
                f"{member.name} exited with code {member.poll()} while starting; its log "
                f"({member.log_path}) ends with:\n{member.tail()}"
            )
        if time.monotonic() > deadline:
            logger.warning("not every service is ready after %gs; starting anyway", timeout)
            return
        if stop.wait(0.02):
            return


def _wait_and_report(
    url: str,
    request: RunRequest,
    *,
    group: ProcessGroup,
    timeline: Timeline,
    summary_path: Path,
    timeout: float,
    stop: threading.Event,
    console: Console,
    started: float,
    started_wall: float,
) -> SimResult:
    """Wait until Postgres holds every outcome and the monitor has seen every result."""
    from sqlalchemy.exc import OperationalError

    from herald.db.engine import make_engine

    engine = make_engine(url)
    run_started = time.monotonic()
    deadline = run_started + timeout
    recorded = 0
    try:
        while True:
            timeline.apply_due(time.monotonic() - run_started)
            monitor = group.get("monitor")
            if stop.is_set():
                console.print(
                    f"[yellow]interrupted: {recorded:,} of {request.messages:,} "
                    "outcomes recorded; stopping services[/]"
                )
                return SimResult(request.run_id, request.messages, exit_code=EXIT_INTERRUPTED)
            dead = [m for m in group.exited() if m is not monitor and m.name not in timeline.killed]
            if dead or (monitor.poll() not in (None, 0)):
                failed = dead[0] if dead else monitor
                raise HeraldError(
                    f"{failed.name} exited with code {failed.poll()} before the run completed; "
                    f"its log ({failed.log_path}) ends with:\n{failed.tail()}"
                )
            with contextlib.suppress(OperationalError):  # a database outage, rehearsed
                recorded = recorded_count(engine, request.run_id)
            if recorded >= request.messages and monitor.poll() == 0:
                break
            if time.monotonic() > deadline:
                raise HeraldError(
                    f"run {request.run_id} not complete after {timeout:g}s: "
                    f"{recorded:,} of {request.messages:,} outcomes recorded (--timeout)"
                )
            stop.wait(0.1)
        elapsed = time.monotonic() - started
        monitor_summary = json.loads(summary_path.read_text())
        summary = report(engine, request.run_id, monitor_summary, elapsed, started_wall)
        summary["duplicate_results_ignored"] = monitor_summary.get("duplicates_ignored", 0)
        summary["incidents"] = timeline.applied + [
            {"incident": i.spec, "action": "not applied: the run had completed"}
            for i in timeline.pending()
        ]
    finally:
        engine.dispose()
    print_summary(console, summary)
    ok = summary["outcomes_in_database"] == summary["total"] == request.messages
    if not ok:
        console.print("[red]the monitor's totals and Postgres disagree[/]")
    return SimResult(request.run_id, request.messages, summary, EXIT_OK if ok else EXIT_FAILURE)


def _default_timeout(settings: Settings, messages: int) -> float:
    # Generous: a minute to start, plus the slowest possible sending at 1,000 msg/s, plus the
    # time a one-at-a-time sender needs at its mean wait.
    slowest = max(s.mean_wait_time * s.max_attempts / s.max_in_flight for s in settings.senders)
    paced = messages / settings.producer.rate if settings.producer.rate else 0.0
    return 60.0 + messages / 1000.0 + messages * slowest / len(settings.senders) * 3 + paced
