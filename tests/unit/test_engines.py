"""runtime/engines.py without a JVM: which engine a run starts, the brokers incidents may name,
and how an incident's action reaches a broker node or a service."""

from __future__ import annotations

import pytest

from herald.config import load_settings
from herald.runtime import engines
from herald.runtime.apache_kafka import ApacheKafkaCluster
from herald.runtime.broker import EmbeddedBroker


class RecordingCluster(ApacheKafkaCluster):
    """A cluster that records what is done to its nodes instead of signalling JVMs."""

    def __init__(self) -> None:
        super().__init__(brokers=3)
        self.calls: list[str] = []

    @property
    def pids(self) -> list[int | None]:
        return [101, 102, 103]

    def kill(self, node: int) -> None:
        self.calls.append(f"kill {node}")

    def stop_node(self, node: int, timeout: float = 30.0) -> None:
        self.calls.append(f"stop {node}")

    def start_node(self, node: int, timeout: float = 60.0) -> None:
        self.calls.append(f"start {node}")

    def pause(self, node: int) -> None:
        self.calls.append(f"pause {node}")

    def resume(self, node: int) -> None:
        self.calls.append(f"resume {node}")


def test_the_engine_and_its_brokers_follow_the_settings() -> None:
    tansu = load_settings(overrides={})
    assert not engines.starts_kafka(tansu) and engines.broker_names(tansu) == []
    three = load_settings(overrides={"kafka": {"engine": "kafka", "brokers": 3}})
    assert engines.starts_kafka(three)
    assert engines.broker_names(three) == ["broker-1", "broker-2", "broker-3"]
    external = load_settings(overrides={"kafka": {"engine": "kafka", "bootstrap": "h:9092"}})
    assert not engines.starts_kafka(external) and engines.broker_names(external) == []
    engines.check(tansu)  # nothing to look for: no Java needed


def test_incidents_naming_a_broker_reach_its_node_and_the_others_the_services() -> None:
    services: list[str] = []

    def service(kind: str):  # type: ignore[no-untyped-def]
        return lambda name: services.append(f"{kind} {name}") or f"{kind} {name}"

    kinds = ("kill", "crash", "restart", "stop", "start", "pause", "resume", "db-down")
    actions = {k: service(k) for k in kinds}
    cluster = RecordingCluster()
    wired = engines.with_broker_incidents(actions, cluster)
    assert wired["kill"]("broker-2") == "SIGKILL broker-2 (pid 102)"
    assert wired["crash"]("broker-1") == (
        "SIGKILL broker-1 (pid 101); started again (pid 101), back in the cluster"
    )
    assert wired["restart"]("broker-3").startswith("SIGTERM broker-3 (pid 103); started again")
    assert wired["stop"]("broker-2") == "SIGTERM broker-2 (pid 102)"
    assert wired["start"]("broker-2") == "broker-2 started again (pid 102), back in the cluster"
    assert wired["pause"]("broker-1") == "SIGSTOP broker-1 (pid 101)"
    assert wired["resume"]("broker-1") == "SIGCONT broker-1 (pid 101)"
    assert cluster.calls == [
        "kill 1",
        "kill 0",
        "start 0",
        "stop 2",
        "start 2",
        "stop 1",
        "start 1",
        "pause 0",
        "resume 0",
    ]
    assert wired["kill"]("sender-2") == "kill sender-2"
    assert wired["db-down"](None) == "db-down None"
    assert services == ["kill sender-2", "db-down None"]


def test_on_tansu_the_actions_stay_the_services() -> None:
    actions = {"kill": lambda name: f"kill {name}"}
    assert engines.with_broker_incidents(actions, EmbeddedBroker()) is actions


@pytest.mark.parametrize("brokers", [1, 3])
def test_a_runs_cluster_gives_short_group_sessions_unless_set(brokers: int) -> None:
    settings = load_settings(overrides={"kafka": {"engine": "kafka", "brokers": brokers}})
    cluster = engines.RunCluster(brokers=brokers)
    ks = cluster.client_settings(settings.kafka)
    assert (ks.session_timeout_ms, ks.heartbeat_interval_ms) == (6000, 1000)
    assert ks.replication_factor == brokers
    mine = settings.kafka.model_copy(update={"session_timeout_ms": 20000})
    assert cluster.client_settings(mine).session_timeout_ms == 20000
