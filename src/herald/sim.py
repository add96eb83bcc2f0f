"""``sim.run``: one complete run end to end, with a live view and a final report.

Starts the embedded broker and database (unless ``kafka.bootstrap`` / ``database.url`` point
elsewhere) and every service of the registry as its own process, supervised (an unplanned
exit is reported and the service restarted), asks for a run on ``herald.runs``, waits on the
control topic until the recorder announces the run complete and the monitor its figures,
re-counts Postgres, prints the summary and stops everything in order.

Every run it submitted ends in a terminal state in Postgres: ``completed`` (the recorder's),
or, marked here once its services have drained, ``interrupted`` (a signal) or ``failed`` (it
could not complete). A second signal stops everything at once: the services are killed, the
broker and the database stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

import msgspec
from rich.console import Console

from herald import completion, control, kafka, runs
from herald.completion import Watch
from herald.config import ENGINES, Settings, load_settings, resolved_json, secret_environment
from herald.contracts import RunRequest
from herald.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConfigError,
    HeraldError,
    StorageError,
)
from herald.incidents import Incident, Timeline
from herald.incidents import check as check_incidents
from herald.report import print_summary
from herald.runtime import engines
from herald.runtime.forks import ForkServer
from herald.runtime.launcher import Launcher, RunDatabase, incident_actions
from herald.runtime.processes import (
    STOP_GRACE_SECS,
    ProcessGroup,
    Supervisor,
    child_environment,
)
from herald.scenarios import base
from herald.services import registry
from herald.waiting import Deadline, wait_until

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimOptions:
    """What ``sim.run``'s flags ask for, on top of the settings."""

    config: Path | None = None
    scenario: str | None = None
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
    engine: str | None = None
    brokers: int | None = None
    json_path: Path | None = None
    timeout: float | None = None
    incidents: tuple[str, ...] = ()
    no_restart: bool = False
    # A scenario's own parameters (keys of its settings section, e.g. ``retail``): the
    # simulated period, the clock's speed, where the timeline starts, any other ``--param``.
    duration: str | None = None
    speed: str | None = None
    consume_from: str | None = None
    params: tuple[str, ...] = ()
    sink: str = "kafka"
    ships: int | None = None  # telemetry: ships streaming at once


SINKS = ("kafka", "stdout")


@dataclass
class SimResult:
    """What a finished (or failed) run reports."""

    run_id: str
    expected: int | None
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int = EXIT_OK


def settings_for(options: SimOptions) -> Settings:
    """The settings tree with the flags applied (raises ConfigError naming every bad flag)."""
    overrides: dict[str, Any] = {}
    flags: dict[str, str] = {}

    def put(section: str, key: str, value: Any, flag: str) -> None:
        if value is not None:
            overrides.setdefault(section, {})[key] = value
            flags[f"{section}.{key}"] = f"{flag} {value:g}" if _number(value) else f"{flag} {value}"

    put("producer", "scenario", options.scenario, "--scenario")
    put("producer", "num_messages", options.messages, "--messages")
    # --rate is the producer's rate limit, unless the scenario gives it its own meaning
    # (telemetry: each stream's samples a second).
    if options.rate is not None:
        name = options.scenario or load_settings(options.config).producer.scenario
        if base.get(name).rate_param is None:
            put("producer", "rate", options.rate, "--rate")
    put("producer", "seed", options.seed, "--seed")
    put("monitor", "refresh_secs", options.refresh, "--refresh")
    put("monitor", "output_location", options.monitor_output, "--monitor-output")
    put("monitor", "kind", options.monitor, "--monitor")
    put("kafka", "engine", options.engine, "--engine")
    put("kafka", "brokers", options.brokers, "--brokers")
    worker_flags = {
        k: (v, flag)
        for k, v, flag in (
            ("mean_wait_time", options.mean_wait, "--mean-wait"),
            ("failure_rate", options.failure_rate, "--failure-rate"),
            ("max_in_flight", options.max_in_flight, "--max-in-flight"),
        )
        if v is not None
    }
    if options.senders is not None or worker_flags:
        # The profiles the flags apply to: the config file's and environment's (their own
        # errors are theirs to report).
        profiles = [s.model_dump() for s in load_settings(options.config).senders]
        count = options.senders if options.senders is not None else len(profiles)
        worker = {k: v for k, (v, _) in worker_flags.items()}
        overrides["senders"] = [{**profiles[i % len(profiles)], **worker} for i in range(count)]
        if options.senders is not None:
            flags["senders"] = f"--senders {options.senders}"
        flags.update({f"senders[*].{k}": f"{flag} {v:g}" for k, (v, flag) in worker_flags.items()})
    settings = load_settings(options.config, overrides, flags)
    chosen = _scenario_parameters(settings, options)
    if chosen:
        name = settings.producer.scenario
        overrides[name] = chosen
        flags.update({f"{name}.{k}": f"--{k.replace('_', '-')} {v}" for k, v in chosen.items()})
        settings = load_settings(options.config, overrides, flags)
    return settings


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scenario_parameters(settings: Settings, options: SimOptions) -> dict[str, Any]:
    """The run's scenario's own settings from the flags (``--duration``, ``--speed``,
    ``--consume-from``, ``--param KEY=VALUE``), over its defaults for ``sim.run`` (those the
    settings do not set already). Raises ConfigError for a scenario without such settings."""
    name = settings.producer.scenario
    scenario = base.get(name)
    params: dict[str, Any] = {
        k: v
        for k, v in (
            ("duration", options.duration),
            ("speed", options.speed),
            ("consume_from", options.consume_from),
            ("ships", options.ships),
            (scenario.rate_param, options.rate if scenario.rate_param else None),
        )
        if v is not None and k is not None
    }
    for item in options.params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: not KEY=VALUE")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    section = getattr(settings, name, None)
    if not isinstance(section, base.Parameters):
        if params:
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in params)
            raise ConfigError(f"the {name} scenario has no parameters of its own: {flags}")
        return {}
    return {**scenario.sim_settings(set(section.model_fields_set)), **params}


def parser() -> argparse.ArgumentParser:
    """``herald sim``'s options (the same as ``invoke sim.run``'s)."""
    p = argparse.ArgumentParser(prog="herald sim", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, help="config file (JSON; the classic layout works)")
    p.add_argument("--scenario", help="the scenario to run (default producer.scenario: sms)")
    p.add_argument("--messages", type=int, help="messages in the run (default 10,000)")
    p.add_argument("--senders", type=int, help="worker (sender) processes (default: 4)")
    p.add_argument("--mean-wait", type=float, help="every sender's mean send time, seconds")
    p.add_argument("--failure-rate", type=float, help="every sender's failure probability, 0-1")
    p.add_argument("--max-in-flight", type=int, help="messages each sender has in flight at once")
    p.add_argument("--rate", type=float, help="producer rate limit, messages/s")
    p.add_argument("--seed", type=int, help="seed for reproducible content")
    p.add_argument("--refresh", type=float, help="monitor refresh, seconds")
    p.add_argument("--monitor-output", help="stdout, stderr or a file path")
    p.add_argument(
        "--monitor", choices=("file", "terminal", "web"), help="web: also serve the live page"
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        help="the broker to start when kafka.bootstrap is unset: tansu (default) or kafka",
    )
    p.add_argument("--brokers", type=int, help="nodes of the kafka engine: 1 (default) or 3")
    p.add_argument("--json", dest="json_path", type=Path, help="write the summary here as JSON")
    p.add_argument(
        "--timeout",
        type=float,
        help="give up (exit 1) after this many seconds (default: 60 s plus the run's size at "
        "1,000 messages/s plus its simulated work time; see docs/guarantees.md)",
    )
    p.add_argument(
        "--incident",
        dest="incidents",
        action="append",
        default=[],
        help="KIND:SERVICE@START[-END] or db-outage@START-END; repeatable (see herald.incidents)",
    )
    p.add_argument(
        "--no-restart",
        action="store_true",
        help="do not restart a service that exits unplanned (its consumer group carries on)",
    )
    p.add_argument(
        "--duration", help="a timeline's simulated period from its start: 2h, 90m, seconds"
    )
    p.add_argument("--speed", help="simulated seconds per wall second; max: as fast as possible")
    p.add_argument("--consume-from", help="where the timeline starts: earliest, latest, a time")
    p.add_argument("--ships", type=int, help="telemetry: ships streaming at once (default 5)")
    p.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        help="KEY=VALUE: any parameter of the scenario's settings (e.g. store_width=8); repeatable",
    )
    p.add_argument(
        "--sink",
        choices=SINKS,
        default="kafka",
        help="stdout: print the run's records as JSON lines instead of running it (no broker, "
        "no database)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``herald sim``: the same as ``invoke sim.run``."""
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    args.incidents = tuple(args.incidents)
    args.params = tuple(args.params)
    return run_cli(SimOptions(**vars(args)))


def run_cli(options: SimOptions, *, out: IO[str] | None = None) -> int:
    """Validate, simulate, report; return the exit code."""
    console = Console(file=out or sys.stdout, highlight=False, soft_wrap=True)
    try:
        if options.sink not in SINKS:
            raise ConfigError(f"--sink {options.sink!r}: one of {', '.join(SINKS)}")
        settings = settings_for(options)
        incidents = [Incident.parse(spec) for spec in options.incidents]
        names = [i.name for i in registry.instances(settings, scenario=settings.producer.scenario)]
        check_incidents(
            incidents, names, settings.database.url is None, engines.broker_names(settings)
        )
        base.get(settings.producer.scenario)
        if options.sink == "stdout":
            return print_records(settings, out or sys.stdout)
        engines.check(settings)  # Java and Kafka's jars, before anything starts
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return exc.exit_code
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s [sim] %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger().setLevel("WARNING")  # the console shows progress; logs are for services
    # librdkafka's retried hiccups (a coordinator loading, a broker killed by an incident)
    # are the services' to log; the console keeps its errors only.
    logging.getLogger("librdkafka").setLevel("ERROR")
    stop = threading.Event()
    urgent = threading.Event()
    restore = _install_signals(stop, urgent)
    try:
        result = simulate(
            settings, options, stop=stop, console=console, incidents=incidents, urgent=urgent
        )
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        restore()
    if options.json_path is not None and result.summary:
        options.json_path.write_text(json.dumps(result.summary, indent=2, default=str) + "\n")
        console.print(f"summary written to {options.json_path}")
    return result.exit_code


def print_records(settings: Settings, out: IO[str]) -> int:
    """``--sink stdout`` (the classic mock mode): the run's records as JSON lines, on the
    run's clock, with nothing started (a timeline's input topic is not read)."""
    request = runs.make_request(settings)
    source = base.get(request.scenario).source(request)
    encode = msgspec.json.Encoder().encode
    stop = threading.Event()
    restore = _install_signals(stop)
    try:
        if isinstance(source, base.CountSource):
            for emit in source.records(0, source.total):
                out.write(encode(emit.value).decode() + "\n")
        else:
            for _tick, emits in base.TimelineRun(source).ticks(stop):
                out.writelines(encode(emit.value).decode() + "\n" for emit in emits)
                out.flush()
    except BrokenPipeError:  # `| head`: the reader has seen enough
        return EXIT_OK
    finally:
        restore()
    return EXIT_INTERRUPTED if stop.is_set() else EXIT_OK


def _install_signals(stop: threading.Event, urgent: threading.Event | None = None) -> Any:
    """SIGINT/SIGTERM set ``stop``; a second one sets ``urgent`` and exits at once (130),
    ignoring any further signal while what was started is stopped."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            if urgent is not None:
                urgent.set()
            for s in previous:
                signal.signal(s, signal.SIG_IGN)
            raise SystemExit(EXIT_INTERRUPTED)
        stop.set()

    for s in previous:
        signal.signal(s, handle)

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


def simulate(
    settings: Settings,
    options: SimOptions,
    *,
    stop: threading.Event,
    console: Console,
    incidents: Sequence[Incident] = (),
    urgent: threading.Event | None = None,
) -> SimResult:
    """One run, start to finish (see :class:`_Run`)."""
    run = _Run(settings, options, stop=stop, console=console, incidents=incidents)
    run.urgent = urgent or threading.Event()
    try:
        run.start()
        result = run.follow()
    except HeraldError as exc:
        run.failure = str(exc).splitlines()[0]
        raise
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        if not isinstance(exc, DBAPIError):
            raise
        # The database went away under one of sim's own queries: one line, no traceback.
        run.failure = f"Postgres went away: {str(exc.orig or exc).strip().splitlines()[0]}"
        raise StorageError(run.failure) from None
    finally:
        run.close()
    if run.ended is not None and not result.summary:
        result.summary = run.ended
    return result


class _Run:
    """One local run: its broker, database and services, and what it waits for.

    The order is chosen for the time to the first result: the broker first (milliseconds),
    then every service of the run at once — the database starts meanwhile, and the recorder
    waits for it by itself — then the run request, once every service has announced on the
    control topic that it is ready. Everything sim learns about the run comes from that topic.
    """

    def __init__(
        self,
        settings: Settings,
        options: SimOptions,
        *,
        stop: threading.Event,
        console: Console,
        incidents: Sequence[Incident],
    ) -> None:
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.settings = settings
        self.options = options
        self.stop = stop
        self.console = console
        home = settings.home.expanduser().resolve()
        self.request = runs.make_request(
            settings,
            scenario=options.scenario,
            config={"senders": [s.model_dump() for s in settings.senders]},
        )
        self.scenario = base.get(self.request.scenario)
        self.run_dir = home / "runs" / self.request.run_id
        self.logs = self.run_dir / "logs"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        expected = self.request.expected
        self.size = f"{expected:,} messages" if expected is not None else self.scenario.title
        self.outcomes = f"{expected:,} outcomes" if expected is not None else "its outcomes"
        workers = (
            f", {len(settings.senders)} {self.scenario.worker_label}s"
            if self.scenario.worker is not None
            else ""
        )
        console.print(
            f"herald run [bold]{self.request.run_id}[/]: {self.size}{workers} "
            f"(logs in {self.run_dir})"
        )
        self.broker: engines.LocalBroker | None = None
        self.database = RunDatabase(settings, home)  # the embedded one starts in the background
        self.group = ProcessGroup()
        self.forks = ForkServer()  # the services are forked from it (runtime.forks)
        self.timeline = Timeline(list(incidents))
        self.closers: list[Callable[[], object]] = []
        self.watch = Watch(self.request.run_id, want_figures=True)
        self.urgent = threading.Event()  # a second signal: stop everything at once
        self.submitted = False
        self.failure: str | None = None  # why it could not complete
        self.ended: dict[str, Any] | None = None  # its row once marked interrupted or failed

    def start(self) -> None:
        """The broker, the services (the database meanwhile), then the request once ready."""
        # The services' imports happen once, in the fork server, while the broker starts
        # (``herald sim`` started it before its own imports: this finds it running).
        self.forks.start()
        ks = self.settings.kafka
        if ks.bootstrap is None:
            self.broker = engines.start(self.settings, log_dir=self.logs)
            ks = self.broker.client_settings(ks)
        existing = kafka.wait_for_broker(ks, stop=self.stop.is_set)
        kafka.ensure_topics(ks, kafka.all_topics(self.settings), existing=existing)
        # The services first: their start (imports, group joins) is the slowest step.
        since = datetime.now(UTC)
        database = self.settings.database.model_copy(update={"url": self.database.url})
        live = self.settings.model_copy(update={"kafka": ks, "database": database})
        settings_file = self.run_dir / "settings.json"
        settings_file.write_text(resolved_json(live))
        launcher = Launcher(
            self.group,
            settings_file,
            self.logs,
            env=child_environment(secret_environment(live)),
            forks=self.forks,
        )
        if live.monitor.output_location == "stdout":
            launcher.stdout["monitor"] = sys.stdout
        self.supervisor = Supervisor(
            self.group, respawn=launcher.respawn, restart=not self.options.no_restart
        )
        for instance in registry.instances(live, scenario=self.scenario.name):
            launcher.spawn(instance)
        # Their announcements are read from before they started.
        self.listener = control.Listener(ks, since=since)
        self.closers.append(self.listener.close)
        # Made now, it has its producer id by the time the run is submitted. Closed with the
        # run (closers run first): the broker waits for open connections when it stops.
        submitter = runs.submitter(ks)
        self.closers.append(submitter.close)
        self.database.ready(self.stop)  # started, answering and migrated
        web_url = _serve_web(live, self.closers) if live.monitor.kind == "web" else None
        # The run starts (and its clock with it) once every service holds its partitions, so
        # that no message waits in a topic for a group join.
        _wait_until_ready(self.listener, self.watch, self.group, self.stop)
        if self.scenario.clocked:  # its clock starts when it is asked for: now, not at start-up
            self.request = msgspec.structs.replace(self.request, requested_at=datetime.now(UTC))
        self.live = live
        if not self.scenario.runs_api:
            # Not the producer's: the scenario's runner starts it (a telemetry run's streams
            # are schedules, stored now and started by the scheduler).
            self.scenario.runner().start(live, self.database.url, self.request)
            if web_url is not None:
                page = f"{web_url}/{self.scenario.name}?run_id={self.request.run_id}"
                self.console.print(f"live page: {page}")
            self.timeout = self.options.timeout or _default_timeout(live, self.request)
            self.timeline.actions = incident_actions(launcher, self.supervisor, self.database)
            self.run_started = time.monotonic()
            return
        runs.submit(ks, self.request, producer=submitter)
        self.submitted = True
        if web_url is not None:
            page = f"{web_url}/runs/{self.request.run_id}"
            _announce_page(self.database.url, self.request.run_id, page, self.console)
        actions = incident_actions(launcher, self.supervisor, self.database)
        if self.broker is not None:
            actions = engines.with_broker_incidents(actions, self.broker)
        self.timeline.actions = actions
        self.timeout = self.options.timeout or _default_timeout(live, self.request)
        self.run_started = time.monotonic()

    def _tick(self) -> None:
        self.timeline.apply_due(time.monotonic() - self.run_started)
        self.database.check()
        for event in self.supervisor.check():
            if not event.planned:
                self.console.print(f"[yellow]{event.what}[/]")
        _check_can_complete(self.supervisor, self.timeline, self.scenario, self.watch)

    def follow(self) -> SimResult:
        """Wait for the run's completion (incidents and supervision meanwhile); report."""
        request = self.request
        if not self.scenario.runs_api:
            return self._follow_runner(request)
        done = completion.wait(
            self.listener.poll,
            self.watch,
            timeout=self.timeout,
            tick=self._tick,
            stopped=self.stop.is_set,
        )
        if not done:
            if self.stop.is_set():  # what was kept is counted once the services have drained
                self.console.print("[yellow]interrupted: stopping services[/]")
                return SimResult(request.run_id, request.expected, exit_code=EXIT_INTERRUPTED)
            recorded = _recorded(self.database.url, request.run_id)
            raise HeraldError(
                f"run {request.run_id} not complete after {self.timeout:g}s: {recorded:,} of "
                f"{self.outcomes} recorded (--timeout)"
            )
        summary, problems = completion.summarise(
            self.database.url,
            self.watch,
            scenario=self.scenario.name,
            request=request,
            elapsed=time.monotonic() - self.started,
            started_wall=self.started_wall,
            extra={
                "incidents": self.timeline.applied
                + [
                    {"incident": i.spec, "action": "not applied: the run had completed"}
                    for i in self.timeline.pending()
                ],
                "unplanned": [
                    {"service": e.name, "pid": e.pid, "code": e.code, "what": e.what}
                    for e in self.supervisor.exits
                ],
            },
        )
        self.summary, self.problems = summary, problems
        return SimResult(
            request.run_id, request.expected, summary, EXIT_FAILURE if problems else EXIT_OK
        )

    def _follow_runner(self, request: RunRequest) -> SimResult:
        """A run the scenario's runner follows (a telemetry run: until its streams end)."""
        followed = self.scenario.runner().follow(
            self.live,
            self.database.url,
            request,
            timeout=self.timeout,
            stopped=self.stop.is_set,
            tick=self._tick,
            console=self.console,
            started=self.started,
        )
        if followed is None:
            return SimResult(request.run_id, None, exit_code=EXIT_INTERRUPTED)
        self.summary, self.problems = followed.summary, followed.problems
        self.print_summary = followed.print_summary
        code = EXIT_FAILURE if followed.problems else EXIT_OK
        return SimResult(request.run_id, None, followed.summary, code)

    def close(self) -> None:
        """Stop everything, in order (each step even if the one before failed or a second
        signal cut it short), mark the run's terminal state after the drain; then print the
        summary, if there is one."""
        try:
            try:
                self._stop_services()
            except BaseException:
                self.group.kill()  # a second signal, say: no drain
                raise
            finally:
                self._end()
        finally:
            # Independent of one another once the services are gone, and each waits for a
            # process to exit (0.2-0.35 s apiece, measured): all at once.
            steps: list[Callable[[], object]] = [self.database.stop]
            if all(m.poll() is not None for m in self.group.members):
                steps.append(self.forks.stop)  # its services are gone: it exits at once
            if self.broker is not None:
                steps.append(self.broker.stop)
            _all_at_once(steps)
        if getattr(self, "summary", None):
            getattr(self, "print_summary", lambda: print_summary(self.console, self.summary))()
            for problem in self.problems:
                self.console.print(f"[red]{problem}[/]")

    def _stop_services(self) -> None:
        for close in self.closers:
            close()
        if self.urgent.is_set():
            self.group.kill()
            return
        codes = self.group.stop()
        for line in stop_report(codes, self.timeline.killed, self.group.killed, self.logs):
            self.console.print(f"[yellow]{line}[/]")

    def _end(self) -> None:
        """Mark a submitted run that did not complete ``interrupted`` or ``failed``, with what
        Postgres holds of it now that its services are stopped, and say so."""
        if not self.submitted or self.watch.done:
            return
        if self.stop.is_set():
            state, reason = "interrupted", "stopped by a signal to herald sim"
        else:
            state, reason = "failed", self.failure or "herald sim ended before it completed"
        ended = _end_run(self.database.url, self.request, state, reason)
        if ended is None:
            return  # the database cannot say: the run is abandoned at its next start
        self.ended = {
            "run_id": self.request.run_id,
            "scenario": self.request.scenario,
            "state": ended.state,
            "state_reason": ended.reason,
            "expected": ended.expected,
            "outcomes_in_database": ended.recorded,
        }
        if state == "interrupted":
            of = f" of {ended.expected:,}" if ended.expected is not None else ""
            self.console.print(
                f"[yellow]interrupted: {ended.recorded:,}{of} outcomes kept in Postgres; "
                f"run {self.request.run_id} is {ended.state}[/]"
            )


def stop_report(
    codes: Mapping[str, int], planned: Collection[str], late: Sequence[str], logs: Path
) -> list[str]:
    """What the user is told of services that did not stop cleanly: exit codes other than 0
    (or SIGTERM's) of services no incident killed (``planned``), and first, which of them were
    killed for not stopping in time (``late``)."""
    bad = {n: c for n, c in codes.items() if c not in (0, -signal.SIGTERM) and n not in planned}
    lines = []
    if late := [n for n in late if n in bad]:
        lines.append(
            f"{', '.join(late)} did not stop within {STOP_GRACE_SECS:g}s: killed (where it was "
            "is in its log)"
        )
    if bad:
        lines.append(f"services exited with {bad}; logs in {logs}")
    return lines


def _all_at_once(steps: Sequence[Callable[[], object]]) -> None:
    """Run ``steps`` side by side and wait for every one; then raise the first one's error,
    if any failed (the others have run to the end all the same)."""
    errors: list[BaseException] = []

    def run(step: Callable[[], object]) -> None:
        try:
            step()
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,), name="sim-stop") for s in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _end_run(url: str, request: RunRequest, state: str, reason: str) -> Any:
    """The run's row (its request, so that it keeps its size and config) with its terminal
    state: :class:`herald.db.store.Ended`, or None if the database cannot be reached."""
    from sqlalchemy.exc import DBAPIError

    from herald.db import store
    from herald.db.engine import make_engine

    engine = make_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.begin() as conn:
            store.upsert_run(conn, request)
            return store.end_run(conn, request.run_id, state, reason)
    except DBAPIError as exc:
        logger.info("run %s not marked %s: %s", request.run_id, state, exc.orig or exc)
        return None
    finally:
        engine.dispose()


def _recorded(url: str, run_id: str) -> int:
    """Outcomes recorded so far, or 0 if the database cannot say (it may be away)."""
    from sqlalchemy.exc import OperationalError

    from herald.db.engine import make_engine
    from herald.report import recorded

    engine = make_engine(url, connect_args={"connect_timeout": 2})
    try:
        return recorded(engine, run_id)
    except OperationalError:
        return 0
    finally:
        engine.dispose()


def _check_can_complete(
    supervisor: Supervisor, timeline: Timeline, scenario: base.Scenario, watch: Watch
) -> None:
    """Raise when the run can no longer complete: no worker left, or a service the run needs
    gone and not restarted."""
    if scenario.worker is not None and not supervisor.alive(scenario.worker.service):
        raise HeraldError(f"no {scenario.worker_label} is left running: the run cannot complete")
    needed = ["recorder"] + ([] if watch.figures is not None else ["monitor"])
    for name in needed:
        if not supervisor.alive(name) and name not in timeline.killed:
            last = supervisor.group.get(name)
            raise HeraldError(
                f"{name} exited with code {last.poll()} and was not restarted; its log "
                f"({last.log_path}) ends with:\n{last.tail()}"
            )


def _serve_web(live: Settings, stops: list[Callable[[], object]]) -> str:
    """Serve the web monitor in a thread (its stop added to ``stops``); its base URL."""
    from herald.web.server import serve

    stop = threading.Event()
    ready = threading.Event()
    base_url: list[str] = []

    def announce(url: str) -> None:
        base_url.append(url)
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
    return base_url[0]


def _announce_page(url: str, run_id: str, page: str, console: Console) -> None:
    """Print the run's live page once the run is known to the database (the page needs it)."""
    from herald.db import store
    from herald.db.engine import make_engine

    engine = make_engine(url)

    def known() -> bool:
        with engine.connect() as conn:
            return store.get_run(conn, run_id) is not None

    try:
        wait_until(known, timeout=15, what=f"run {run_id} in the database")
    finally:
        engine.dispose()
    console.print(f"live page: {page}")


def _wait_until_ready(
    listener: control.Listener,
    watch: Watch,
    group: ProcessGroup,
    stop: threading.Event,
    timeout: float = 60.0,
) -> None:
    """Until every member of ``group`` has announced on the control topic that it is ready;
    a member that exits meanwhile is an error (it could not start)."""
    deadline = Deadline(timeout)
    while not stop.is_set():
        watch.feed(listener.poll(0.05))
        for member in group.exited():
            raise HeraldError(
                f"{member.name} exited with code {member.poll()} while starting; its log "
                f"({member.log_path}) ends with:\n{member.tail()}"
            )
        waiting = [m.name for m in group.members if not watch.is_ready(m.pid)]
        if not waiting:
            return
        if deadline.expired():
            logger.warning("%s not ready after %gs; starting anyway", ", ".join(waiting), timeout)
            return


UNSIZED_TIMEOUT_SECS = 900.0


def _default_timeout(settings: Settings, request: RunRequest) -> float:
    # Generous: a minute to start, plus the slowest possible sending at 1,000 msg/s, plus the
    # time a one-at-a-time worker needs at its mean wait, plus the run's own pacing (a rate,
    # a timeline's clock).
    if request.expected is None and request.duration_secs is None:
        # A timeline at maximum speed: its size is known only once it is produced.
        return UNSIZED_TIMEOUT_SECS
    messages = request.expected or 0
    slowest = max(s.mean_wait_time * s.max_attempts / s.max_in_flight for s in settings.senders)
    paced = request.duration_secs or 0.0
    return 60.0 + messages / 1000.0 + messages * slowest / len(settings.senders) * 3 + paced
