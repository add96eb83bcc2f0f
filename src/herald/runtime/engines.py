"""The broker a local run starts when ``kafka.bootstrap`` is unset (``kafka.engine``): Tansu, the
embedded default, or Apache Kafka from its jars (1 or 3 nodes); and what incidents do to it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from herald.config import KafkaSettings, Settings
from herald.runtime import kafka_config, kafka_jars
from herald.runtime.apache_kafka import ApacheKafkaCluster

Action = Callable[[str | None], str]
BROKER_PREFIX = "broker-"


class LocalBroker(Protocol):
    """What a run needs of the broker it started."""

    @property
    def bootstrap(self) -> str: ...

    def client_settings(self, settings: KafkaSettings) -> KafkaSettings: ...

    def stop(self) -> None: ...


def starts_kafka(settings: Settings) -> bool:
    """Whether a local run of ``settings`` starts Apache Kafka (no bootstrap, engine kafka)."""
    return settings.kafka.bootstrap is None and settings.kafka.engine == "kafka"


def check(settings: Settings) -> None:
    """Before anything starts: Java, and Kafka's jars (fetched once with Maven, or
    ``KAFKA_HOME``), when the run starts Apache Kafka; a BrokerError naming what is missing
    and how to get it otherwise."""
    if starts_kafka(settings):
        environ = dict(os.environ)
        kafka_home = Path(environ["KAFKA_HOME"]) if environ.get("KAFKA_HOME") else None
        kafka_jars.resolve(home=_home(settings), kafka_home=kafka_home, environ=environ)


def start(settings: Settings, *, log_dir: Path) -> LocalBroker:
    """Start the engine of ``settings`` (its logs in ``log_dir``); return it once it serves."""
    if starts_kafka(settings):
        cluster = RunCluster(brokers=settings.kafka.brokers, home=_home(settings), log_dir=log_dir)
        return cluster.start()
    from herald.runtime.broker import EmbeddedBroker

    return EmbeddedBroker(log_path=log_dir / "broker.log").start()


# A run's own cluster: a member that is gone (a killed broker took its LeaveGroup with it, a
# killed sender) holds up its group's rebalance until its session expires; Kafka's 45 s
# default stalled a run past its timeout when a broker of three was killed.
RUN_SESSION_TIMEOUT_MS = 6000
RUN_HEARTBEAT_MS = 1000


def with_run_timeouts(settings: KafkaSettings) -> KafkaSettings:
    """``settings`` with a local Apache Kafka's short group sessions, unless set (a run's
    own cluster, and the local stack's)."""
    return settings.model_copy(
        update={
            "session_timeout_ms": settings.session_timeout_ms or RUN_SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": settings.heartbeat_interval_ms or RUN_HEARTBEAT_MS,
        }
    )


class RunCluster(ApacheKafkaCluster):
    """A run's own Apache Kafka: its clients' group sessions are short, unless set."""

    def client_settings(self, settings: KafkaSettings, *, user: str | None = None) -> KafkaSettings:
        return with_run_timeouts(super().client_settings(settings, user=user))


def broker_names(settings: Settings) -> list[str]:
    """The brokers incidents may name (``broker-1`` ...: Kafka's node ids), when the run
    starts Apache Kafka; none otherwise."""
    if not starts_kafka(settings):
        return []
    return [f"{BROKER_PREFIX}{kafka_config.node_id(i)}" for i in range(settings.kafka.brokers)]


def with_broker_incidents(actions: dict[str, Action], broker: LocalBroker) -> dict[str, Action]:
    """``actions`` (the services'), with those naming a broker applied to ``broker``'s nodes:
    kill (SIGKILL), crash (SIGKILL, started again), restart (a clean stop, started again),
    pause and resume (SIGSTOP, SIGCONT)."""
    if not isinstance(broker, ApacheKafkaCluster):
        return actions
    cluster = broker

    def pid(index: int) -> str:
        return str(cluster.pids[index])

    def kill(index: int, name: str) -> str:
        was = pid(index)
        cluster.kill(index)
        return f"SIGKILL {name} (pid {was})"

    def again(index: int, what: str) -> str:
        cluster.start_node(index)
        return f"{what}; started again (pid {pid(index)}), back in the cluster"

    def restart(index: int, name: str) -> str:
        was = pid(index)
        cluster.stop_node(index)
        return again(index, f"SIGTERM {name} (pid {was})")

    def stop(index: int, name: str) -> str:
        was = pid(index)
        cluster.stop_node(index)
        return f"SIGTERM {name} (pid {was})"

    def start(index: int, name: str) -> str:
        cluster.start_node(index)
        return f"{name} started again (pid {pid(index)}), back in the cluster"

    def pause(index: int, name: str) -> str:
        cluster.pause(index)
        return f"SIGSTOP {name} (pid {pid(index)})"

    def resume(index: int, name: str) -> str:
        cluster.resume(index)
        return f"SIGCONT {name} (pid {pid(index)})"

    on_broker: dict[str, Callable[[int, str], str]] = {
        "kill": kill,
        "crash": lambda i, n: again(i, kill(i, n)),
        "restart": restart,
        "stop": stop,
        "start": start,
        "pause": pause,
        "resume": resume,
    }

    def dispatch(kind: str, otherwise: Action) -> Action:
        def act(name: str | None) -> str:
            if name is not None and name.startswith(BROKER_PREFIX):
                index = int(name.removeprefix(BROKER_PREFIX)) - 1
                return on_broker[kind](index, name)
            return otherwise(name)

        return act

    return {k: dispatch(k, a) if k in on_broker else a for k, a in actions.items()}


def _home(settings: Settings) -> Path:
    return settings.home.expanduser().resolve()
