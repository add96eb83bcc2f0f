"""The one registry of herald's services: what each is, how it starts, scales and shows it is
up, whether it needs the database, and what it does on which topics.

The CLI's commands, ``sim.run``'s and ``herald web``'s processes, the supervised local stack,
the compose file's check, incident targets, the AsyncAPI operations and the dead-letter
header's pattern are all derived from :func:`services`. A scenario with a worker step adds
its worker service (the SMS ``sender``) here through the scenario registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Literal

from herald import contracts, timers
from herald.contracts import Topic
from herald.errors import ConfigError
from herald.scenarios import base, telemetry

if TYPE_CHECKING:
    from herald.config import Settings

Scaling = Literal["one", "group", "profiles"]
"""``one``: a single instance; ``group``: any number of consumer-group members (one by
default); ``profiles``: one instance per ``senders[]`` entry, ``--id N`` (a worker)."""
Health = Literal["control", "http", "alive", "exit"]
"""How a supervisor knows it is up: ``control`` (it announces ``ready`` on the control
topic), ``http`` (``GET /api/health``), ``alive`` (its process runs), ``exit`` (one-shot:
exit code 0)."""


@dataclass(frozen=True)
class Operation:
    """What a service does with a topic (an AsyncAPI operation)."""

    id: str
    action: Literal["send", "receive"]
    topic: Topic
    summary: str
    description: str = ""
    group_role: str | None = None


@dataclass(frozen=True)
class Service:
    """One herald service: ``herald <name> [args]``, its own OS process."""

    name: str
    entry: str  # "module:function", called with the command line's arguments
    summary: str  # one line, for ``herald --help``
    scaling: Scaling
    health: Health
    needs_database: bool = False
    in_run: bool = False  # started by sim.run (and by herald web's embedded stack)
    in_web: bool = False  # started by herald web's embedded stack (timers need them)
    # An in_run service herald web's embedded stack leaves out: it holds fixed UDP ports that
    # another stack on the machine may hold (the telemetry ingestor), or goes with one that does.
    web_stack: bool = True
    dead_letters: bool = False  # may write to herald.dlq (its name is in the header pattern)
    # Listens on UDP (the ingestor): a stack gives it ``--host``, as it does an HTTP service
    # (all interfaces in a container, where the senders are other containers).
    udp_listener: bool = False
    usage: str = ""  # arguments shown in ``herald --help``
    scenario: str | None = None  # a worker service: the scenario whose step it runs
    operations: tuple[Operation, ...] = field(default=(), compare=False)

    def main(self) -> Callable[[Sequence[str]], int]:
        """The entry point, imported on use (a service starts without the others' imports)."""
        module, function = self.entry.split(":")
        target: Callable[..., int] = getattr(importlib.import_module(module), function)
        if self.scenario is None:
            return target
        scenario = self.scenario
        return lambda argv: target(argv, scenario=scenario)


@dataclass(frozen=True)
class Instance:
    """One process of a service, as a run or a stack starts it."""

    name: str  # "sender-2", "recorder"
    service: Service
    args: tuple[str, ...]  # after ``herald``: the service's name and its arguments


def _worker_service(scenario: base.Scenario) -> Service:
    spec = scenario.worker
    assert spec is not None
    label = scenario.worker_label
    work, results = spec.work, spec.results
    return Service(
        name=spec.service,
        entry="herald.services.worker:main",
        summary=f"one member of the {spec.role}' consumer group ({scenario.title})",
        scaling="profiles",
        health="control",
        in_run=True,
        dead_letters=True,
        usage="--id N",
        scenario=scenario.name,
        operations=(
            Operation(
                f"work{_camel(work.name)}",
                "receive",
                work,
                f"The {spec.role} process the messages, as one consumer group.",
                "`read_committed`, cooperative-sticky assignment. Each message is consumed, its "
                f"work simulated by the scenario's step, and its result produced in one Kafka "
                "transaction together with the consumed offset: exactly one result per message, "
                f"even when a {label} dies.",
                spec.role,
            ),
            Operation(
                f"publish{_camel(results.name)}",
                "send",
                results,
                f"Each {label} publishes one result per message, in Kafka transactions.",
                "One transactional producer per consumed partition, id "
                f"`{{group}}:{{topic}}:p{{partition}}` (group `herald-{spec.role}`, topic "
                f"`{work.name}`; both prefixed with `{{namespace}}.` under a namespace): whoever "
                "takes a partition over fences its previous owner. Results of a partition are "
                "released in offset order. Read them with `isolation.level=read_committed`, and "
                "count a message once by `run_id` and `seq`: a broker that shows aborted "
                "transactions' records (the embedded one does) may deliver a result twice.",
            ),
        ),
    )


def _platform_services(scenarios: Sequence[base.Scenario]) -> list[Service]:
    runs, dlq, ctl = contracts.RUNS, contracts.DLQ, contracts.CONTROL
    work = [s.worker.work for s in scenarios if s.worker is not None]
    results = [t for s in scenarios for t in s.facts]
    # A scenario without workers has its facts made by the producer (a timeline's events).
    timeline = [t for s in scenarios if s.worker is None for t in s.facts]
    inputs = [t for s in scenarios for t in s.inputs]
    own = [t for s in scenarios for t in s.records]
    return [
        Service(
            "producer",
            "herald.services.producer:main",
            "run requests -> each scenario's records",
            "group",
            "control",
            in_run=True,
            dead_letters=True,
            operations=(
                Operation(
                    "produceRun",
                    "receive",
                    runs,
                    "The producer turns each run request into its scenario's records.",
                    "Its offset is committed only after every record of the run is "
                    "acknowledged, so a producer stopped mid-run leaves the request to the next "
                    "one, which produces the same ids and content again (the seed is in the "
                    "request). An invalid request goes to the dead-letter topic.",
                    "producers",
                ),
                *(
                    Operation(
                        f"produce{_camel(t.name)}",
                        "send",
                        t,
                        f"The producer publishes a run's records on `{t.name}`.",
                        "Idempotent producer, `acks=all`, keyed by message id: records spread "
                        "over every partition.",
                    )
                    for t in work
                ),
                *(
                    Operation(
                        f"produce{_camel(t.name)}",
                        "send",
                        t,
                        f"The producer publishes a run's timeline on `{t.name}`, as its clock "
                        "makes the events due.",
                        "Every `consume_frequency` seconds the due events, at most "
                        "`consume_batch_size` of them; idempotent producer, `acks=all`, keyed "
                        f"by {t.key} so that one key's events stay in order. Once every event "
                        "is acknowledged, the producer announces the run's size on "
                        "`herald.control` (`run-produced`).",
                    )
                    for t in timeline
                ),
                *(
                    Operation(
                        f"merge{_camel(t.name)}",
                        "receive",
                        t,
                        f"The producer merges `{t.name}` into the run's timeline.",
                        "It `assign()`s every partition from the run's request time "
                        "(`offsets_for_times`), no consumer group, and reads the run's records "
                        "(keyed by run id) before each tick, and to the end before the run ends.",
                    )
                    for t in inputs
                ),
            ),
        ),
        Service(
            "monitor",
            "herald.services.monitor:main",
            "live progress from the results streams",
            "one",
            "control",
            in_run=True,
            operations=(
                Operation(
                    "monitorRuns",
                    "receive",
                    runs,
                    "The monitor learns each run's expected count.",
                    "It `assign()`s every partition and reads from the beginning: no consumer "
                    "group.",
                ),
                *(
                    Operation(
                        f"monitor{_camel(t.name)}",
                        "receive",
                        t,
                        "The monitor aggregates results into the live view.",
                        "It `assign()`s every partition and reads from the beginning: no "
                        "consumer group. It counts each `(run_id, seq)` once.",
                    )
                    for t in results
                ),
                Operation(
                    "monitorRunProduced",
                    "receive",
                    ctl,
                    "The monitor learns the size of a run known only once produced.",
                    "`run-produced` events; it `assign()`s the partition and reads from the "
                    "beginning. Other events are read past.",
                ),
                Operation(
                    "monitorDeadLetters",
                    "receive",
                    dlq,
                    "The monitor counts dead letters.",
                    "It `assign()`s every partition and reads from the beginning: no consumer "
                    "group.",
                ),
            ),
        ),
        Service(
            "recorder",
            "herald.services.recorder:main",
            "results -> Postgres outcomes; run requests -> runs",
            "group",
            "control",
            needs_database=True,
            in_run=True,
            dead_letters=True,
            operations=(
                Operation(
                    "recordRun",
                    "receive",
                    runs,
                    "The recorder keeps each run in Postgres (`runs`).",
                    "",
                    "recorders",
                ),
                *(
                    Operation(
                        f"record{_camel(t.name)}",
                        "receive",
                        t,
                        "The recorder writes each result to Postgres (`outcomes`), idempotently.",
                        "Upsert on the message id; offsets are committed after the database "
                        "commit.",
                        "recorders",
                    )
                    for t in results
                ),
                *(
                    Operation(
                        f"record{_camel(t.name)}",
                        "receive",
                        t,
                        f"The recorder keeps `{t.name}` in the scenario's own tables.",
                        "Idempotent (a frame once per stream and number; a stream's end is "
                        "final); offsets are committed after the database commit.",
                        "recorders",
                    )
                    for t in own
                ),
                Operation(
                    "recordRunProduced",
                    "receive",
                    ctl,
                    "The recorder keeps the size of a run known only once produced "
                    "(`runs.expected`) and judges its completion by it.",
                    "`run-produced` events, in the recorders' group (the topic's one partition: "
                    "one member); other events are read past, never dead-lettered.",
                    "recorders",
                ),
            ),
        ),
        Service(
            "web",
            "herald.web.server:main",
            "REST API, OpenAPI docs and the live dashboard (http://127.0.0.1:8000)",
            "group",
            "http",
            needs_database=True,
            operations=(
                Operation(
                    "submitRun",
                    "send",
                    runs,
                    "The web API, `herald submit` and `sim.run` ask for a run.",
                    "One record per run, keyed by its `run_id`, acknowledged by the broker "
                    "before the caller reports the run id.",
                ),
                Operation(
                    "stopTelemetryStreams",
                    "send",
                    telemetry.COMMANDS,
                    "`DELETE /api/telemetry/schedules/{id}` publishes a running stream's stop "
                    "command.",
                    "Keyed by schedule id, so it reaches the spaceship that runs the stream; "
                    "acknowledged by the broker before the 202.",
                ),
                *(
                    Operation(
                        f"inject{_camel(t.name)}",
                        "send",
                        t,
                        f"The web API journals each injected event on `{t.name}`.",
                        "Checked first against the run and who is inside (Postgres), keyed by "
                        "run id (one partition per run: in order), acknowledged before the "
                        "caller gets 202.",
                    )
                    for t in inputs
                ),
            ),
        ),
        Service(
            "scheduler",
            "herald.services.scheduler:main",
            "fires due timers and scheduled runs at their time (any number of replicas)",
            "group",
            "control",
            needs_database=True,
            in_web=True,
            operations=(
                Operation(
                    "fireTimers",
                    "send",
                    timers.FIRE,
                    "The scheduler publishes each webhook timer's fire command at its due time.",
                    "Claimed from Postgres with `FOR UPDATE SKIP LOCKED` under a lease with a "
                    "fencing token (`fence`): a notifier delivers only the command of a timer's "
                    "latest claim. Keyed by timer id. At least once: a scheduler that dies "
                    "between publishing and marking leaves the timer to be published again.",
                ),
                Operation(
                    "startScheduledRuns",
                    "send",
                    runs,
                    "The scheduler publishes a scheduled run's request at its `start_at`.",
                ),
                Operation(
                    "startTelemetryStreams",
                    "send",
                    telemetry.COMMANDS,
                    "The scheduler publishes a telemetry schedule's start command at its "
                    "`start_at` (never after its `not_after`: the schedule expires).",
                    "Keyed by schedule id. At least once, like every due item: a spaceship "
                    "starts a schedule's stream once however often its command comes.",
                ),
            ),
        ),
        Service(
            "notifier",
            "herald.services.notifier:main",
            "delivers webhook timers' callbacks, signed, with retries and a ledger",
            "group",
            "control",
            needs_database=True,
            in_web=True,
            dead_letters=True,
            operations=(
                Operation(
                    "deliverTimers",
                    "receive",
                    timers.FIRE,
                    "The notifiers POST each timer's callback, as one consumer group.",
                    "Each takes the timer for delivery in Postgres (a lease) before it POSTs, "
                    "records every attempt, and commits the command's offset only once the "
                    "timer's state is durable.",
                    "notifiers",
                ),
            ),
        ),
        Service(
            "spaceship",
            "herald.services.spaceship:main",
            "streams telemetry over UDP when told to (one member of the spaceships' group)",
            "group",
            "control",
            in_run=True,
            dead_letters=True,
            web_stack=False,
            scenario="telemetry",
            operations=(
                Operation(
                    "runTelemetryStreams",
                    "receive",
                    telemetry.COMMANDS,
                    "The spaceships start and stop streams, as one consumer group.",
                    "A start begins `rate_hz × duration_s` UDP datagrams (CCSDS space packets) "
                    "to the schedule's `host:port`, one loop for all of a process's streams; a "
                    "stop (same key, same member) ends one. The offset is committed once the "
                    "stream is taken on.",
                    "spaceships",
                ),
                Operation(
                    "reportTelemetryStreams",
                    "send",
                    telemetry.STREAMS,
                    "Each spaceship reports its streams' starts and ends, with the packets "
                    "sent and dropped.",
                    "Keyed by schedule id: a stream's events stay in order.",
                ),
            ),
        ),
        Service(
            "ingestor",
            "herald.services.ingestor:main",
            "UDP telemetry datagrams -> frames on Kafka (one per port range or --port N)",
            "one",
            "control",
            in_run=True,
            dead_letters=True,
            usage="[--port N] [--host ADDRESS]",
            web_stack=False,
            udp_listener=True,
            scenario="telemetry",
            operations=(
                Operation(
                    "ingestTelemetryFrames",
                    "send",
                    telemetry.FRAMES,
                    "The ingestor publishes each valid datagram as a frame, keyed by ship.",
                    "Numbered within its stream from the 14-bit sequence count; malformed "
                    "datagrams go to `herald.dlq` with the reason and the sender's address "
                    "(`herald.dlq.sender`).",
                ),
            ),
        ),
        Service(
            "migrate",
            "herald.tools:migrate_main",
            "apply the database migrations (once, before the services that need them)",
            "one",
            "exit",
            needs_database=True,
        ),
    ]


@cache
def services() -> tuple[Service, ...]:
    """Every service, in start order (workers first: their group join is the slowest step)."""
    scenarios = list(base.scenarios().values())
    workers = [_worker_service(s) for s in scenarios if s.worker is not None]
    return (*workers, *_platform_services(scenarios))


def operations() -> tuple[tuple[Service | None, Operation], ...]:
    """Every (service, operation): the AsyncAPI document's operations."""
    out: list[tuple[Service | None, Operation]] = [
        (svc, op) for svc in services() for op in svc.operations
    ]
    ctl = contracts.CONTROL
    out.append(
        (
            None,
            Operation(
                "announce",
                "send",
                ctl,
                "Every service announces its lifecycle (started, ready, stopped); the "
                "producer a run's size once produced (a timeline's); the recorder a run's "
                "completion; the monitor its figures.",
                "Fire and forget, keyed by instance or run id. Orchestrators (`sim.run`, "
                "`herald submit --wait`, `stack.up`) read it from a point in time.",
            ),
        )
    )
    out.append(
        (
            None,
            Operation(
                "orchestrate",
                "receive",
                ctl,
                "`sim.run`, `herald submit --wait` and `stack.up` wait on these events.",
                "They `assign()` its one partition from a time (`offsets_for_times`): no "
                "consumer group.",
            ),
        )
    )
    dead_letter = Operation(
        "deadLetter",
        "send",
        contracts.DLQ,
        "Records that cannot be processed go to the dead-letter topic, unchanged.",
        "The value and key are the original record's; the headers say why and where from. "
        f"A value over {contracts.DLQ_MAX_VALUE:,} bytes is cut to its first "
        f"{contracts.DLQ_MAX_VALUE:,} (the reason says so), so that the dead letter itself "
        "stays under the 1 MB record limit.",
    )
    out.append((None, dead_letter))
    return tuple(out)


def get(name: str) -> Service:
    """The service called ``name``."""
    for svc in services():
        if svc.name == name:
            return svc
    raise ConfigError(f"no service {name!r}; services: {', '.join(s.name for s in services())}")


def dead_letter_writers() -> tuple[Service, ...]:
    return tuple(s for s in services() if s.dead_letters)


def dead_letter_service_pattern() -> str:
    """The pattern of the dead-letter header naming the service (``sender-2``, ``producer``)."""
    names = sorted(
        f"{s.name}-[0-9]+" if s.scaling == "profiles" else s.name for s in dead_letter_writers()
    )
    return f"^({'|'.join(names)})$"


Role = Literal["run", "web", "stack"]


def instances(
    settings: Settings, *, role: Role = "run", scenario: str | None = None
) -> list[Instance]:
    """The processes of a run (``sim.run``), of ``herald web``'s embedded stack, or of a whole
    stack, in start order; with ``scenario``, without the workers of other scenarios."""
    out: list[Instance] = []
    extra = base.get(scenario).run_services if scenario is not None else ()
    for svc in services():
        if role == "run" and not (svc.in_run or svc.name in extra):
            continue
        if role == "web" and not (svc.in_web or (svc.in_run and svc.web_stack)):
            continue
        if scenario is not None and svc.scenario not in (None, scenario):
            continue
        if svc.scaling == "profiles":
            out += [
                Instance(f"{svc.name}-{i}", svc, (svc.name, "--id", str(i)))
                for i in range(len(settings.senders))
            ]
        else:
            out.append(Instance(svc.name, svc, (svc.name,)))
    return out


def _camel(topic: str) -> str:
    """``herald.sms.results`` -> ``SmsResults``."""
    parts = topic.split(".")[1:]
    return "".join(p[:1].upper() + p[1:] for p in parts)
