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
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from herald import kafka, runs
from herald.config import KafkaSettings, Settings, load_settings, resolved_json
from herald.contracts import RunRequest
from herald.db.pg import wait_for_database
from herald.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    HeraldError,
)
from herald.incidents import Incident, Timeline
from herald.incidents import check as check_incidents
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.runtime.processes import (
    ProcessGroup,
    ServiceProcess,
    child_environment,
    herald_command,
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


class _Database:
    """The run's database: the configured one, or the embedded one, started in the background
    while the broker and the services start."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self._settings = settings.database
        self._embedded: EmbeddedDatabase | None = None
        self._starting: Future[EmbeddedDatabase] | None = None
        if self._settings.url is None:
            self._embedded = EmbeddedDatabase(home / "pgdata")
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="database")
            self._starting = self._pool.submit(self._embedded.start)

    def ready(self, stop: threading.Event) -> str:
        """The database URL, once the database answers and is migrated."""
        url = self._settings.url
        if self._starting is not None:
            url = self._starting.result().url
        assert url is not None
        wait_for_database(url, self._settings.connect_timeout_secs, stop=stop.is_set)
        # SQLAlchemy and Alembic are imported only now, while the services start.
        from herald.db.engine import migrate

        migrate(url)
        return url

    def outage(self, *, down: bool) -> str:
        """Stop (``down``) or start the embedded database: a rehearsed outage."""
        assert self._embedded is not None
        if down:
            self._embedded.stop(force=True)
            return "embedded database stopped"
        self._embedded.start()
        return "embedded database started"

    def stop(self) -> None:
        if self._starting is None or self._embedded is None:
            return
        with contextlib.suppress(HeraldError):
            self._starting.result()  # a start still in progress finishes first
        self._embedded.stop()
        self._pool.shutdown()


@dataclass
class Launcher:
    """Starts herald services as processes of ``group``, each with the run's settings file."""

    group: ProcessGroup
    settings_file: Path
    logs: Path
    env: dict[str, str] = field(default_factory=child_environment)

    commands: dict[str, tuple[tuple[str, ...], IO[str] | None]] = field(default_factory=dict)

    def spawn(self, name: str, *args: str, stdout: IO[str] | None = None) -> ServiceProcess:
        """Start ``herald ARGS --settings FILE`` as service ``name``."""
        self.commands[name] = (args, stdout)
        return self.group.add(
            ServiceProcess(
                name,
                herald_command(*args, "--settings", str(self.settings_file)),
                log_path=self.logs / f"{name}.log",
                env=self.env,
                stdout=stdout,
            )
        )


def _incident_actions(
    launcher: Launcher, database: _Database
) -> dict[str, Callable[[str | None], str]]:
    """What each incident event does to the run's processes and database."""
    group = launcher.group

    def stop_it(name: str | None, signum: int) -> str:
        assert name is not None
        proc = group.get(name)
        proc.signal(signum)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.signal(signal.SIGKILL)
            proc.wait()
        return f"{signal.Signals(signum).name} {name} (pid {proc.pid})"

    def again(name: str | None, what: str) -> str:
        assert name is not None
        args, stdout = launcher.commands[name]
        new = launcher.spawn(name, *args, stdout=stdout)
        return f"{what}; started again (pid {new.pid})"

    def signal_only(signum: int) -> Callable[[str | None], str]:
        def act(name: str | None) -> str:
            assert name is not None
            proc = group.get(name)
            proc.signal(signum)
            return f"{signal.Signals(signum).name} {name} (pid {proc.pid})"

        return act

    return {
        "kill": lambda n: stop_it(n, signal.SIGKILL),
        "crash": lambda n: again(n, stop_it(n, signal.SIGKILL)),
        "restart": lambda n: again(n, stop_it(n, signal.SIGTERM)),
        "pause": signal_only(signal.SIGSTOP),
        "resume": signal_only(signal.SIGCONT),
        "db-down": lambda _n: database.outage(down=True),
        "db-up": lambda _n: database.outage(down=False),
    }


def _embedded_kafka(settings: KafkaSettings, broker: EmbeddedBroker) -> KafkaSettings:
    # Short session timeouts against the embedded broker only: its group joins take about
    # half of the session timeout, and a run's first result waits for them.
    return settings.model_copy(
        update={
            "bootstrap": broker.bootstrap,
            "session_timeout_ms": settings.session_timeout_ms or kafka.EMBEDDED_SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": settings.heartbeat_interval_ms or kafka.EMBEDDED_HEARTBEAT_MS,
        }
    )


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
    database = _Database(settings, home)  # the embedded one starts in the background
    group = ProcessGroup()
    timeline = Timeline(list(incidents))
    stack_stops: list[Callable[[], None]] = []
    try:
        ks = settings.kafka
        if ks.bootstrap is None:
            broker = EmbeddedBroker(log_path=logs / "broker.log").start()
            ks = _embedded_kafka(ks, broker)
        kafka.wait_for_broker(ks, stop=stop.is_set)
        kafka.ensure_topics(ks)
        live = settings.model_copy(update={"kafka": ks})
        settings_file = run_dir / "settings.json"
        settings_file.write_text(resolved_json(live))
        launcher = Launcher(group, settings_file, logs)
        ready = run_dir / "ready"
        summary_path = run_dir / "monitor.json"
        _start_kafka_services(launcher, live, request.run_id, ready, summary_path)
        url = database.ready(stop)
        # The database URL is known only now: the settings file is completed for the recorder.
        live = live.model_copy(update={"database": live.database.model_copy(update={"url": url})})
        settings_file.write_text(resolved_json(live))
        launcher.spawn("recorder", "recorder", "--ready-file", str(ready / "recorder"))
        web_url = _serve_web(live, stack_stops) if live.monitor.kind == "web" else None
        # The run starts (and its clock with it) once every consumer-group member holds
        # partitions, so that no message waits in a topic for a group join.
        _wait_until_ready(group, ready, len(live.senders) + 2, stop)
        runs.submit(ks, request)
        if web_url is not None:
            _announce_page(url, request.run_id, f"{web_url}/runs/{request.run_id}", console)
        timeline.actions = _incident_actions(launcher, database)
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


def _start_kafka_services(
    launcher: Launcher, live: Settings, run_id: str, ready: Path, summary_path: Path
) -> None:
    """Senders first (their group join is the slowest step of a start), producer, monitor."""
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


def _serve_web(live: Settings, stops: list[Callable[[], None]]) -> str:
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
                recorded = _recorded(engine, request.run_id)
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


def _recorded(engine: Any, run_id: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT sent + failed FROM runs WHERE run_id = :r"), {"r": run_id}
        ).first()
    return int(row[0]) if row else 0


def report(
    engine: Any, run_id: str, monitor: dict[str, Any], elapsed: float, started_wall: float
) -> dict[str, Any]:
    """The final summary: the monitor's figures, checked against what Postgres holds."""
    from sqlalchemy import text

    with engine.connect() as conn:
        db = conn.execute(
            text(
                """
                SELECT count(*) AS n,
                       count(*) FILTER (WHERE status = 'sent') AS sent,
                       count(*) FILTER (WHERE status = 'failed') AS failed,
                       avg(latency_ms) AS avg_ms,
                       percentile_cont(ARRAY[0.5, 0.95, 0.99])
                           WITHIN GROUP (ORDER BY latency_ms) AS pct,
                       extract(epoch FROM min(created_at)) AS first_created,
                       extract(epoch FROM max(recorded_at)) AS last_recorded,
                       extract(epoch FROM min(received_at)) AS first_received
                FROM outcomes WHERE run_id = :r
                """
            ),
            {"r": run_id},
        ).one()
        per_sender = conn.execute(
            text(
                """
                SELECT sender_id, count(*) FILTER (WHERE status = 'sent'),
                       count(*) FILTER (WHERE status = 'failed'), avg(latency_ms)
                FROM outcomes WHERE run_id = :r GROUP BY sender_id ORDER BY sender_id
                """
            ),
            {"r": run_id},
        ).all()
    span = float(db.last_recorded - db.first_created) if db.n else 0.0
    senders = {
        str(sid): {
            "sent": sent,
            "failed": failed,
            "failure_fraction": failed / (sent + failed),
            "avg_latency_ms": float(avg),
        }
        for sid, sent, failed, avg in per_sender
    }
    p50, p95, p99 = (float(x) for x in db.pct) if db.n else (None, None, None)
    return {
        "run_id": run_id,
        "total": monitor.get("total", 0),
        "sent": monitor.get("sent", 0),
        "failed": monitor.get("failed", 0),
        "invalid": monitor.get("invalid", 0),
        "expected": monitor.get("expected"),
        "outcomes_in_database": db.n,
        "sent_in_database": db.sent,
        "failed_in_database": db.failed,
        "avg_latency_ms": float(db.avg_ms) if db.n else None,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "throughput": db.n / span if span > 0 else None,
        "throughput_basis": "outcomes / (last outcome recorded - first message created)",
        "wall_secs": elapsed,
        "first_result_secs": (
            float(db.first_received) - started_wall if db.first_received is not None else None
        ),
        "senders": senders,
        "monitor": monitor,
    }


def print_summary(console: Console, s: dict[str, Any]) -> None:
    """The final report, as a table."""
    table = Table(title=f"run {s['run_id']}", show_header=False, box=None)

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:,.1f} ms"

    rows = [
        ("messages", f"{s['expected']:,}"),
        ("sent / failed", f"{s['sent']:,} / {s['failed']:,}"),
        (
            "outcomes in Postgres",
            f"{s['outcomes_in_database']:,} "
            f"({s['sent_in_database']:,} sent, {s['failed_in_database']:,} failed)",
        ),
        (
            "latency avg / p50 / p95 / p99",
            " / ".join(ms(s[k]) for k in ("avg_latency_ms", "p50_ms", "p95_ms", "p99_ms")),
        ),
        ("throughput", f"{s['throughput']:,.0f} msg/s" if s["throughput"] else "-"),
        (
            "first result after",
            f"{s['first_result_secs']:.2f} s" if s["first_result_secs"] is not None else "-",
        ),
        ("wall time", f"{s['wall_secs']:.2f} s"),
    ]
    if s.get("duplicate_results_ignored"):
        rows.append(
            (
                "duplicate results ignored",
                f"{s['duplicate_results_ignored']:,} (records of aborted transactions that the "
                "broker showed; counted once)",
            )
        )
    for applied in s.get("incidents", []):
        rows.append(
            (
                f"incident {applied['incident']}",
                f"{applied.get('what', applied['action'])}"
                + (f" at {applied['at_secs']:.2f} s" if "at_secs" in applied else ""),
            )
        )
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    senders = Table("sender", "sent", "failed", "failure %", "avg latency")
    for sid, row in s["senders"].items():
        senders.add_row(
            sid,
            f"{row['sent']:,}",
            f"{row['failed']:,}",
            f"{100 * row['failure_fraction']:.2f}",
            ms(row["avg_latency_ms"]),
        )
    console.print(senders)
