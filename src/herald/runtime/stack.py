"""The stack: which services each profile runs, their commands and their environment.

One definition for both ways of bringing herald up: ``docker-compose.yml`` (checked against it
by ``tests/unit/test_compose.py``) and the supervised local processes of
:mod:`herald.runtime.local_stack` (no Docker engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

PROFILES: Final = ("testing", "dev", "all", "cluster")

Health = Literal["ready-file", "http", "running"]


@dataclass(frozen=True)
class HeraldService:
    """One herald service: ``herald ARGS...`` in the image, or as a local process."""

    name: str
    args: tuple[str, ...]
    health: Health | None
    """How a supervisor tells it is up: ``ready-file`` (``--ready-file``: it holds its first
    partitions), ``http`` (``GET /api/health``), ``running`` (the process is alive), or
    ``None`` for a one-shot command."""
    replicas: int = 1
    needs_database: bool = False

    @property
    def one_shot(self) -> bool:
        return self.health is None

    def argv(self, *, ready_file: str | None = None, host: str = "", port: int = 0) -> list[str]:
        """The command line after ``herald``, with the probe and listener flags it needs."""
        out = list(self.args)
        if self.health == "ready-file" and ready_file is not None:
            out += ["--ready-file", ready_file]
        if self.health == "http":
            out += ["--host", host, "--port", str(port)]
        return out


# Sender replicas are members of one consumer group, all with the same sender profile
# (`--id 0`: senders[0]); Kafka gives each of them a share of the partitions. More replicas
# than `kafka.partitions` leaves the extra ones idle (and never ready).
SENDER_REPLICAS: Final = 2
WEB_PORT: Final = 8000

HERALD_SERVICES: Final = (
    HeraldService("migrate", ("migrate",), None, needs_database=True),
    HeraldService("producer", ("producer",), "ready-file"),
    HeraldService("sender", ("sender", "--id", "0"), "ready-file", replicas=SENDER_REPLICAS),
    HeraldService("monitor", ("monitor",), "running"),
    HeraldService("recorder", ("recorder",), "ready-file", needs_database=True),
    HeraldService("web", ("web", "--no-services"), "http", needs_database=True),
)

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


def herald_services(profile: str) -> tuple[HeraldService, ...]:
    """The herald services of ``profile`` (none for ``testing`` and ``dev``)."""
    check_profile(profile)
    return HERALD_SERVICES if profile in ("all", "cluster") else ()


def services(profile: str) -> tuple[str, ...]:
    """Every service name of ``profile``, as the compose file names them."""
    return (*infrastructure(profile), *(s.name for s in herald_services(profile)))


def check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")


@dataclass(frozen=True)
class Location:
    """Where the services of a stack find Kafka and Postgres."""

    kafka_bootstrap: str
    database_url: str
    replication_factor: str


def environment(location: Location) -> dict[str, str]:
    """The ``HERALD_*`` variables every herald service of a stack gets."""
    return {
        "HERALD_KAFKA_BOOTSTRAP": location.kafka_bootstrap,
        "HERALD_DATABASE_URL": location.database_url,
        "HERALD_KAFKA_REPLICATION_FACTOR": location.replication_factor,
    }


# In compose: the brokers answer to the network alias `kafka` in every profile (the cluster's
# three brokers share it), and the replication factor is a compose variable that
# `stack.up --profile=cluster` sets to 3.
COMPOSE_LOCATION: Final = Location(
    kafka_bootstrap="kafka:9092",
    database_url="postgresql+psycopg://herald:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    "@postgres:5432/herald",
    replication_factor="${KAFKA_REPLICATION_FACTOR:-1}",
)
COMPOSE_READY_FILE: Final = "/tmp/herald-ready"  # noqa: S108 - inside the container
COMPOSE_PROJECT: Final = "herald"


def compose_variables(profile: str) -> dict[str, str]:
    """Variables ``docker compose`` needs for ``profile`` (beyond POSTGRES_PASSWORD)."""
    check_profile(profile)
    factor = CLUSTER_REPLICATION_FACTOR if profile == "cluster" else 1
    return {"KAFKA_REPLICATION_FACTOR": str(factor)}
