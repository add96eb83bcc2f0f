"""The stack: which services each profile runs, their commands and their environment.

One definition, derived from the service registry, for both ways of bringing herald up:
``docker-compose.yml`` (checked against it by ``tests/unit/test_compose.py``) and the
supervised local processes of :mod:`herald.runtime.local_stack` (no Docker engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from herald.services import registry

if TYPE_CHECKING:
    from herald.config import Settings

PROFILES: Final = ("testing", "dev", "all", "cluster")

WEB_PORT: Final = 8000


@dataclass(frozen=True)
class StackService:
    """One herald process of a stack: ``herald ARGS...`` in the image, or a local process."""

    name: str  # "sender-2", "recorder", "migrate"
    service: registry.Service

    @property
    def args(self) -> tuple[str, ...]:
        """The command line after ``herald``."""
        svc = self.service
        if svc.scaling == "profiles":
            return (svc.name, "--id", self.name.rsplit("-", 1)[1])
        if svc.name == "web":
            return ("web", "--no-services")
        return (svc.name,)

    @property
    def one_shot(self) -> bool:
        return self.service.health == "exit"

    def argv(self, *, host: str = "", port: int = 0) -> list[str]:
        """The command line after ``herald``, with the listener flags it needs."""
        out = list(self.args)
        if self.service.health == "http":
            out += ["--host", host, "--port", str(port)]
        elif self.service.udp_listener:
            out += ["--host", host]
        return out


def stack_services(settings: Settings | None = None) -> tuple[StackService, ...]:
    """Every herald process of a full stack, in start order: ``migrate`` once first, then one
    per instance of each service of the registry (a worker per ``senders[]`` profile, each its
    own ``--id``), then the web app."""
    from herald.config import Settings

    chosen = settings or Settings.model_construct()
    out = [StackService("migrate", registry.get("migrate"))]
    out += [
        StackService(i.name, i.service)
        for i in registry.instances(chosen, role="stack")
        if i.service.name not in ("migrate", "web")
    ]
    out.append(StackService("web", registry.get("web")))
    return tuple(out)


# The infrastructure each profile runs (compose names). `cluster` has three KRaft brokers in
# place of the single one; `dev` adds Kafka UI; `all` and `cluster` add every herald service.
_SINGLE_BROKER: Final = ("kafka",)
CLUSTER_BROKERS: Final = ("kafka-1", "kafka-2", "kafka-3")
CLUSTER_REPLICATION_FACTOR: Final = 3
CLUSTER_MIN_INSYNC_REPLICAS: Final = 2


def infrastructure(profile: str) -> tuple[str, ...]:
    """Kafka, Postgres and Kafka UI services of ``profile``."""
    check_profile(profile)
    brokers = CLUSTER_BROKERS if profile == "cluster" else _SINGLE_BROKER
    ui = () if profile == "testing" else ("kafka-ui",)
    return (*brokers, "postgres", *ui)


def herald_services(profile: str, settings: Settings | None = None) -> tuple[StackService, ...]:
    """The herald processes of ``profile`` (none for ``testing`` and ``dev``)."""
    check_profile(profile)
    return stack_services(settings) if profile in ("all", "cluster") else ()


# In compose, the web replicas are behind a load balancer (nginx) wherever herald runs.
LOAD_BALANCER: Final = "web-lb"


def services(profile: str) -> tuple[str, ...]:
    """Every service name of ``profile``, as the compose file names them."""
    herald = tuple(s.name for s in herald_services(profile))
    return (*infrastructure(profile), *herald, *((LOAD_BALANCER,) if herald else ()))


def check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")


@dataclass(frozen=True)
class Location:
    """Where the services of a stack find Kafka and Postgres."""

    kafka_bootstrap: str
    database_url: str
    replication_factor: str
    web_api_token: str | None = None  # the web app's bearer token (where it binds beyond loopback)


def environment(location: Location) -> dict[str, str]:
    """The ``HERALD_*`` variables every herald service of a stack gets."""
    env = {
        "HERALD_KAFKA_BOOTSTRAP": location.kafka_bootstrap,
        "HERALD_DATABASE_URL": location.database_url,
        "HERALD_KAFKA_REPLICATION_FACTOR": location.replication_factor,
    }
    if location.web_api_token is not None:
        env["HERALD_WEB_API_TOKEN"] = location.web_api_token
    return env


# In compose: the brokers answer to the network alias `kafka` in every profile (the cluster's
# three brokers share it), and the replication factor is a compose variable that
# `stack.up --profile=cluster` sets to 3.
COMPOSE_LOCATION: Final = Location(
    kafka_bootstrap="kafka:9092",
    database_url="postgresql+psycopg://herald:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    "@postgres:5432/herald",
    replication_factor="${KAFKA_REPLICATION_FACTOR:-1}",
    # The web app listens on 0.0.0.0 in its container: it must have a token (docs/security.md).
    web_api_token="${HERALD_WEB_API_TOKEN:?set HERALD_WEB_API_TOKEN}",  # noqa: S106 - a variable
)
COMPOSE_PROJECT: Final = "herald"


def compose_variables(profile: str) -> dict[str, str]:
    """Variables ``docker compose`` needs for ``profile`` (beyond POSTGRES_PASSWORD)."""
    check_profile(profile)
    factor = CLUSTER_REPLICATION_FACTOR if profile == "cluster" else 1
    return {"KAFKA_REPLICATION_FACTOR": str(factor)}
