"""Incidents on a timeline: rehearse failures during ``sim.run`` and check the totals stay exact.

A spec is ``KIND:SERVICE@START`` or ``KIND:SERVICE@START-END`` (seconds after the run starts,
that is after every service is ready and the run is asked for), or ``db-outage@START-END``:

``kill``      SIGKILL, not restarted (senders only: the others take over its partitions; or
              one broker of a 3-node Apache Kafka cluster: ``kill:broker-2@3s``)
``crash``     SIGKILL, then started again at once (as a supervisor would)
``restart``   SIGTERM (graceful), then started again once it has exited; with END, started
              again at END (down in between: ``restart:broker-2@3s-8s``)
``pause``     SIGSTOP at START, SIGCONT at END
``db-outage`` the embedded database is stopped at START and started again at END

A SERVICE is a service instance (``sender-2``, ``recorder``) or, on ``--engine kafka``, a broker
(``broker-1`` ... ``broker-3``: Kafka's node ids).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from herald.errors import ConfigError

Kind = Literal["kill", "crash", "restart", "pause", "db-outage"]
KINDS: tuple[Kind, ...] = ("kill", "crash", "restart", "pause", "db-outage")
_SPEC = re.compile(
    r"^(?P<kind>[a-z-]+)(?::(?P<target>[a-z0-9-]+))?"
    r"@(?P<start>\d+(?:\.\d+)?)s?(?:-(?P<end>\d+(?:\.\d+)?)s?)?$"
)


@dataclass(frozen=True)
class Incident:
    """One incident, as asked for."""

    spec: str
    kind: Kind
    target: str | None
    start: float
    end: float | None = None

    @classmethod
    def parse(cls, spec: str) -> Incident:
        """Parse a spec; :class:`ConfigError` names what is wrong with it."""
        spec = spec.strip()
        m = _SPEC.match(spec)
        if m is None:
            raise ConfigError(
                f"--incident {spec!r}: expected KIND:SERVICE@START[-END] or "
                "db-outage@START-END (seconds), e.g. kill:sender-2@3s"
            )
        kind, target = m["kind"], m["target"]
        start, end = float(m["start"]), float(m["end"]) if m["end"] else None
        if kind not in KINDS:
            raise ConfigError(
                f"--incident {spec!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})"
            )
        if kind == "db-outage":
            if target is not None:
                raise ConfigError(f"--incident {spec!r}: db-outage takes no service")
        elif target is None:
            raise ConfigError(
                f"--incident {spec!r}: {kind} needs a service, e.g. {kind}:sender-0@2s"
            )
        if kind in ("pause", "db-outage") and (end is None or end <= start):
            raise ConfigError(f"--incident {spec!r}: {kind} needs START-END with END after START")
        if kind == "restart" and end is not None and end <= start:
            raise ConfigError(f"--incident {spec!r}: restart's END must come after its START")
        if kind in ("kill", "crash") and end is not None:
            raise ConfigError(f"--incident {spec!r}: {kind} happens at one time; no END")
        return cls(spec, kind, target, start, end)


def check(
    incidents: Iterable[Incident],
    services: Iterable[str],
    embedded_db: bool,
    brokers: Iterable[str] = (),
) -> None:
    """Refuse incidents the run could not survive or apply, before anything starts.

    ``brokers``: the nodes of the Apache Kafka cluster the run starts (``broker-1`` ...); one
    of three may be killed for good (two hold every partition, ``min.insync.replicas`` 2).
    """
    nodes = list(brokers)
    names = set(services) | set(nodes)
    senders = {n for n in names if n.startswith("sender-")}
    killed: set[str] = set()
    for incident in incidents:
        if incident.kind == "kill" and incident.target in nodes:
            if len(nodes) < 3 or killed & set(nodes):
                raise ConfigError(
                    f"--incident {incident.spec!r}: only one broker of three can be killed for "
                    "good (the others hold every partition); use crash or restart, or "
                    "--brokers 3"
                )
            killed.add(incident.target)
            continue
        if incident.target is not None and incident.target not in names:
            raise ConfigError(
                f"--incident {incident.spec!r}: no service {incident.target!r} "
                f"(services: {', '.join(sorted(names))})"
            )
        if incident.kind == "kill":
            if incident.target not in senders:
                raise ConfigError(
                    f"--incident {incident.spec!r}: only a sender can be killed for good "
                    "(the run needs its producer, recorder and monitor); use crash or restart"
                )
            killed.add(incident.target)
        if incident.kind == "db-outage" and not embedded_db:
            raise ConfigError(
                f"--incident {incident.spec!r}: a database outage can be rehearsed only on "
                "the embedded database (database.url is set)"
            )
    if senders and killed >= senders:
        raise ConfigError("--incident: killing every sender leaves nobody to send")


@dataclass
class Timeline:
    """The incidents' events in time order; :meth:`apply_due` runs those whose time has come."""

    incidents: list[Incident]
    actions: dict[str, Callable[[str | None], str]] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        events: list[tuple[float, str, Incident]] = []
        for i in self.incidents:
            if i.kind == "pause":
                assert i.end is not None
                events += [(i.start, "pause", i), (i.end, "resume", i)]
            elif i.kind == "restart" and i.end is not None:
                events += [(i.start, "stop", i), (i.end, "start", i)]
            elif i.kind == "db-outage":
                assert i.end is not None
                events += [(i.start, "db-down", i), (i.end, "db-up", i)]
            else:
                events.append((i.start, i.kind, i))
        self._events = sorted(events, key=lambda e: e[0])

    @property
    def killed(self) -> set[str]:
        """Services killed for good so far, or stopped and not started again yet (their exit
        is expected)."""
        down: set[str] = set()
        for a in self.applied:
            if a["action"] in ("kill", "stop"):
                down.add(a["what"].split()[1])
            elif a["action"] == "start":
                down.discard(a["what"].split()[0])
        return down

    def pending(self) -> list[Incident]:
        """Incidents with an event still to come."""
        seen: list[Incident] = []
        for _, _, incident in self._events:
            if incident not in seen:
                seen.append(incident)
        return seen

    def apply_due(self, elapsed: float) -> None:
        """Apply every event due by ``elapsed`` seconds into the run."""
        while self._events and self._events[0][0] <= elapsed:
            _, action, incident = self._events.pop(0)
            what = self.actions[action](incident.target)
            self.applied.append(
                {
                    "incident": incident.spec,
                    "action": action,
                    "at_secs": round(elapsed, 3),
                    "what": what,
                }
            )
