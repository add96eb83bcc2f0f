"""The configuration of one node of a KRaft Apache Kafka cluster: ``server.properties`` for the
local engine, or the same settings as the apache/kafka image's ``KAFKA_*`` environment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from herald.kafka import min_insync_replicas
from herald.runtime.kafka_security import NO_SECURITY, SCRAM_MECHANISM, Security

CLIENT, INTERNAL, CONTROLLER = "CLIENT", "INTERNAL", "CONTROLLER"
# Internal topics are created on first use, and 50 partitions each (Kafka's default) cost a
# local cluster seconds at a run's start; 10 spread the coordinators over three brokers too.
INTERNAL_TOPIC_PARTITIONS = 10
# How often the transaction coordinator looks for transactions past their timeout. Kafka's
# 10 s would let a dead producer's transaction stay open up to 10 s past its timeout.
ABORT_CHECK_INTERVAL_MS = 1000
MIN_SESSION_TIMEOUT_MS = 1000


@dataclass(frozen=True)
class NodeAddress:
    """Where a node is reached: clients, the other brokers, the controller quorum."""

    host: str
    client_port: int
    internal_port: int
    controller_port: int


def node_id(index: int) -> int:
    """Kafka's ``node.id`` of the ``index``-th node (0-based); ids start at 1, as in compose."""
    return index + 1


def quorum_voters(nodes: Sequence[NodeAddress]) -> str:
    """``controller.quorum.voters``: every node is a voter (a static quorum)."""
    return ",".join(f"{node_id(i)}@{n.host}:{n.controller_port}" for i, n in enumerate(nodes))


def server_properties(
    index: int,
    nodes: Sequence[NodeAddress],
    *,
    log_dirs: str,
    security: Security = NO_SECURITY,
    keystore: str | None = None,
    bind_host: str | None = None,
) -> dict[str, str]:
    """The broker-and-controller configuration of node ``index`` of ``nodes`` (1 or 3).

    ``keystore``: the PEM file holding the node's private key and certificate chain (the
    node's own path; required with ``security.tls``). ``bind_host``: the address listened on,
    ``""`` for every interface (a container); unset: the advertised host.
    """
    if len(nodes) not in (1, 3):
        raise ValueError(f"a cluster of {len(nodes)} nodes: 1 or 3 are supported")
    if not 0 <= index < len(nodes):
        raise ValueError(f"node {index} of a {len(nodes)}-node cluster")
    me = nodes[index]
    bind = me.host if bind_host is None else bind_host
    replicas = len(nodes)
    min_isr = min_insync_replicas(replicas)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id(index)),
        "controller.quorum.voters": quorum_voters(nodes),
        "listeners": (
            f"{CLIENT}://{bind}:{me.client_port},{INTERNAL}://{bind}:{me.internal_port},"
            f"{CONTROLLER}://{bind}:{me.controller_port}"
        ),
        "advertised.listeners": (
            f"{CLIENT}://{me.host}:{me.client_port},{INTERNAL}://{me.host}:{me.internal_port}"
        ),
        "listener.security.protocol.map": (
            f"{CLIENT}:{security.protocol},{INTERNAL}:PLAINTEXT,{CONTROLLER}:PLAINTEXT"
        ),
        "inter.broker.listener.name": INTERNAL,
        "controller.listener.names": CONTROLLER,
        "log.dirs": log_dirs,
        # Durability: three copies, two of them acknowledged, on the three-node cluster.
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replicas),
        "offsets.topic.num.partitions": str(INTERNAL_TOPIC_PARTITIONS),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "transaction.state.log.num.partitions": str(INTERNAL_TOPIC_PARTITIONS),
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",  # herald creates its topics, with their settings
        # A new group's first member is not kept waiting for others that may never come.
        "group.initial.rebalance.delay.ms": "0",
        # Clients may ask for a session timeout as short as on the embedded broker (4 s; the
        # tests use 2 s); Kafka's floor is 6 s. Its default, 45 s, is what herald asks for.
        "group.min.session.timeout.ms": str(MIN_SESSION_TIMEOUT_MS),
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": str(ABORT_CHECK_INTERVAL_MS),
        # A killed broker is fenced (its partitions get new leaders) after 6 s, not 9 s.
        "broker.session.timeout.ms": "6000",
        "broker.heartbeat.interval.ms": "1000",
    }
    props.update(_listener_security(security, keystore))
    return props


def _listener_security(security: Security, keystore: str | None) -> dict[str, str]:
    prefix = f"listener.name.{CLIENT.lower()}."
    props: dict[str, str] = {}
    if security.scram_users:
        mech = SCRAM_MECHANISM.lower()
        props[f"{prefix}sasl.enabled.mechanisms"] = SCRAM_MECHANISM
        props[f"{prefix}{mech}.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        )
    if security.tls is not None:
        if keystore is None:
            raise ValueError("TLS needs the node's keystore (PEM: private key + certificate)")
        props.update(
            {
                f"{prefix}ssl.keystore.type": "PEM",
                f"{prefix}ssl.keystore.location": keystore,
                f"{prefix}ssl.truststore.type": "PEM",
                f"{prefix}ssl.truststore.location": str(security.tls.ca),
                f"{prefix}ssl.client.auth": "required" if security.client_auth else "none",
            }
        )
    return props


def properties_text(props: Mapping[str, str]) -> str:
    """``props`` as a ``.properties`` file (values escaped as ``java.util.Properties`` reads)."""
    lines = ["# written by herald: one node of a local Apache Kafka cluster"]
    for key, value in props.items():
        escaped = value.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"{key}={escaped}")
    return "\n".join(lines) + "\n"


_ENV_ESCAPES = {".": "_", "_": "__", "-": "___"}


def docker_environment(props: Mapping[str, str], *, cluster_id: str) -> dict[str, str]:
    """The same node for the apache/kafka image: ``CLUSTER_ID`` and one ``KAFKA_*`` per property.

    The image maps ``KAFKA_A_B`` to ``a.b``, ``__`` to ``_`` and ``___`` to ``-``.
    """
    env = {"CLUSTER_ID": cluster_id}
    for key, value in props.items():
        name = "".join(_ENV_ESCAPES.get(c, c) for c in key).upper()
        env[f"KAFKA_{name}"] = value
    return env


# The compose `cluster` profile: three nodes named as their services, on the image's ports.
COMPOSE_CLUSTER_ID = "4L6g3nShT-eMCtK--X86sw"
COMPOSE_DATA_DIR = "/var/lib/kafka/data"
COMPOSE_CLIENT_PORT, COMPOSE_INTERNAL_PORT, COMPOSE_CONTROLLER_PORT = 9092, 19092, 9093


def compose_nodes(brokers: int = 3) -> list[NodeAddress]:
    """The compose cluster's nodes: ``kafka-1`` ... on the same ports each."""
    return [
        NodeAddress(
            f"kafka-{node_id(i)}",
            COMPOSE_CLIENT_PORT,
            COMPOSE_INTERNAL_PORT,
            COMPOSE_CONTROLLER_PORT,
        )
        for i in range(brokers)
    ]


def compose_environment(index: int, brokers: int = 3) -> dict[str, str]:
    """The ``environment`` of the compose cluster's node ``index``: the very settings the local
    engine runs with (:func:`server_properties`), listening on every interface."""
    props = server_properties(
        index, compose_nodes(brokers), log_dirs=COMPOSE_DATA_DIR, bind_host=""
    )
    return docker_environment(props, cluster_id=COMPOSE_CLUSTER_ID)


LOG4J2_PROPERTIES = """\
# written by herald: the broker's log lines, to the file its output goes to
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""


def log4j2_properties(level: str = "INFO") -> str:
    """A log4j2 configuration: ``level`` and above to standard output."""
    return LOG4J2_PROPERTIES.format(level=level)
