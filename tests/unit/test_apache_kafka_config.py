"""The local Apache Kafka engine without a broker: node configuration, client security, what a
connection failure means, and finding Java and the jars (fake ``mvn``/``java`` on a test PATH)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError

from herald.config import KafkaSettings
from herald.errors import EXIT_BROKER, BrokerError
from herald.runtime import kafka_jars
from herald.runtime.kafka_config import (
    NodeAddress,
    compose_nodes,
    docker_environment,
    properties_text,
    quorum_voters,
    server_properties,
)
from herald.runtime.kafka_security import (
    Security,
    TlsFiles,
    client_fields,
    explain_connection_error,
    scram_credential,
)

pytestmark = pytest.mark.kafka

ONE = [NodeAddress("127.0.0.1", 9092, 9093, 9094)]
THREE = [
    NodeAddress("127.0.0.1", 9092, 9093, 9094),
    NodeAddress("127.0.0.1", 9192, 9193, 9194),
    NodeAddress("127.0.0.1", 9292, 9293, 9294),
]
PLAIN_MAP = "CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
TLS = TlsFiles(Path("/certs/ca.pem"), Path("/certs/broker.pem"), Path("/certs/broker.key"))


def common(replicas: int, min_isr: int) -> dict[str, str]:
    return {
        "inter.broker.listener.name": "INTERNAL",
        "controller.listener.names": "CONTROLLER",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replicas),
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
        "broker.session.timeout.ms": "6000",
        "broker.heartbeat.interval.ms": "1000",
    }


def test_a_single_node_is_its_own_quorum_with_one_copy_of_everything() -> None:
    props = server_properties(0, ONE, log_dirs="/data/kafka/node-1")
    assert props == {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": "1@127.0.0.1:9094",
        "listeners": "CLIENT://127.0.0.1:9092,INTERNAL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094",
        "advertised.listeners": "CLIENT://127.0.0.1:9092,INTERNAL://127.0.0.1:9093",
        "listener.security.protocol.map": PLAIN_MAP,
        "log.dirs": "/data/kafka/node-1",
        **common(replicas=1, min_isr=1),
    }


def test_each_of_three_nodes_votes_and_keeps_three_copies_two_in_sync() -> None:
    voters = "1@127.0.0.1:9094,2@127.0.0.1:9194,3@127.0.0.1:9294"
    assert quorum_voters(THREE) == voters
    second = server_properties(1, THREE, log_dirs="/data/node-2")
    assert second == {
        "process.roles": "broker,controller",
        "node.id": "2",
        "controller.quorum.voters": voters,
        "listeners": "CLIENT://127.0.0.1:9192,INTERNAL://127.0.0.1:9193,CONTROLLER://127.0.0.1:9194",
        "advertised.listeners": "CLIENT://127.0.0.1:9192,INTERNAL://127.0.0.1:9193",
        "listener.security.protocol.map": PLAIN_MAP,
        "log.dirs": "/data/node-2",
        **common(replicas=3, min_isr=2),
    }
    ids = [server_properties(i, THREE, log_dirs="/d")["node.id"] for i in range(3)]
    assert ids == ["1", "2", "3"]


def test_scram_only_puts_sasl_on_the_client_listener() -> None:
    props = server_properties(0, ONE, log_dirs="/d", security=Security(scram_users={"alice": "pw"}))
    extra = {k: v for k, v in props.items() if k.startswith("listener.name.")}
    assert props["listener.security.protocol.map"] == (
        "CLIENT:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
    )
    assert extra == {
        "listener.name.client.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.client.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
    }
    assert "pw" not in "".join(props.values())  # users are created at format time, salted


def test_mutual_tls_reads_pem_files_and_requires_a_client_certificate() -> None:
    props = server_properties(
        0,
        ONE,
        log_dirs="/d",
        security=Security(tls=TLS, client_auth=True),
        keystore="/run/keystore.pem",
    )
    extra = {k: v for k, v in props.items() if k.startswith("listener.name.")}
    assert props["listener.security.protocol.map"] == (
        "CLIENT:SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
    )
    assert extra == {
        "listener.name.client.ssl.keystore.type": "PEM",
        "listener.name.client.ssl.keystore.location": "/run/keystore.pem",
        "listener.name.client.ssl.truststore.type": "PEM",
        "listener.name.client.ssl.truststore.location": "/certs/ca.pem",
        "listener.name.client.ssl.client.auth": "required",
    }


def test_scram_over_tls_without_client_certificates() -> None:
    sec = Security(scram_users={"alice": "pw"}, tls=TLS)
    props = server_properties(0, ONE, log_dirs="/d", security=sec, keystore="/k.pem")
    assert sec.protocol == "SASL_SSL"
    assert props["listener.security.protocol.map"].startswith("CLIENT:SASL_SSL,")
    assert props["listener.name.client.ssl.client.auth"] == "none"
    assert props["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"


def test_invalid_layouts_are_refused() -> None:
    with pytest.raises(ValueError, match="a cluster of 2 nodes: 1 or 3 are supported"):
        server_properties(0, THREE[:2], log_dirs="/d")
    with pytest.raises(ValueError, match="node 3 of a 3-node cluster"):
        server_properties(3, THREE, log_dirs="/d")
    with pytest.raises(ValueError, match="TLS needs the node's keystore"):
        server_properties(0, ONE, log_dirs="/d", security=Security(tls=TLS))
    with pytest.raises(ValueError, match="client_auth needs tls"):
        Security(client_auth=True)


def image_property(env_name: str) -> str:
    """How the apache/kafka image reads a ``KAFKA_*`` variable (its KafkaDockerWrapper)."""
    return (
        env_name.removeprefix("KAFKA_")
        .replace("_", ".")
        .replace("...", "-")
        .replace("..", "_")
        .lower()
    )


def test_the_same_node_as_the_apache_kafka_image_environment() -> None:
    compose = [NodeAddress(f"kafka-{i}", 9092, 19092, 9093) for i in (1, 2, 3)]
    props = server_properties(0, compose, log_dirs="/var/lib/kafka/data", bind_host="")
    env = docker_environment(props, cluster_id="4L6g3nShT-eMCtK--X86sw")
    assert env["CLUSTER_ID"] == "4L6g3nShT-eMCtK--X86sw"
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == ("1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093")
    assert env["KAFKA_LISTENERS"] == "CLIENT://:9092,INTERNAL://:19092,CONTROLLER://:9093"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "CLIENT://kafka-1:9092,INTERNAL://kafka-1:19092"
    assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
    # Every property survives the image's decoding, underscores and dashes included.
    decoded = {image_property(k): v for k, v in env.items() if k.startswith("KAFKA_")}
    assert decoded == props
    scram = docker_environment(
        {"listener.name.client.scram-sha-512.sasl.jaas.config": "x"}, cluster_id="c"
    )
    assert list(scram) == [
        "CLUSTER_ID",
        "KAFKA_LISTENER_NAME_CLIENT_SCRAM___SHA___512_SASL_JAAS_CONFIG",
    ]


def test_properties_text_escapes_what_java_properties_would_misread() -> None:
    text = properties_text({"a.b": "x", "pem": "line1\nline2", "path": "C:\\x"})
    assert text.splitlines()[1:] == ["a.b=x", "pem=line1\\nline2", "path=C:\\\\x"]


def test_a_scram_credential_is_salted_never_the_password() -> None:
    salt = bytes(range(16))
    cred = scram_credential("alice", "s3cret", salt=salt)
    salted = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 4096)
    assert cred == (
        "SCRAM-SHA-512=[name=alice,iterations=4096,"
        f'salt="{base64.b64encode(salt).decode()}",'
        f'saltedpassword="{base64.b64encode(salted).decode()}"]'
    )
    assert "s3cret" not in cred
    assert scram_credential("alice", "s3cret") != scram_credential("alice", "s3cret")  # salt


def test_client_fields_for_each_kind_of_listener(tmp_path: Path) -> None:
    client = TlsFiles(tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key")

    def plain(fields: dict[str, Any]) -> dict[str, Any]:
        return {k: v.get_secret_value() if hasattr(v, "get_secret_value") else v
                for k, v in fields.items()}  # fmt: skip

    assert client_fields(Security()) == {"security_protocol": "plaintext"}
    assert plain(client_fields(Security(scram_users={"bob": "b", "alice": "a"}))) == {
        "security_protocol": "sasl_plaintext",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "alice",
        "sasl_password": "a",
    }
    bob = client_fields(Security(scram_users={"bob": "b", "alice": "a"}), "bob")
    assert (bob["sasl_username"], bob["sasl_password"].get_secret_value()) == ("bob", "b")
    assert client_fields(Security(tls=TLS)) == {
        "security_protocol": "ssl",
        "ssl_ca_location": Path("/certs/ca.pem"),
    }
    assert client_fields(Security(tls=TLS, client_auth=True, client_tls=client)) == {
        "security_protocol": "ssl",
        "ssl_ca_location": client.ca,
        "ssl_certificate_location": client.cert,
        "ssl_key_location": client.key,
    }


def test_security_repr_names_users_not_passwords() -> None:
    sec = Security(scram_users={"alice": "hunter2"}, tls=TLS, client_auth=True)
    assert repr(sec) == "Security(protocol=SASL_SSL, scram_users=[alice], client_auth=True)"


# What librdkafka 2.16 reported against this engine's SASL_SSL listener with
# ssl.client.auth=required (recorded from a real broker; the integration tests run them live).
WRONG_PASSWORD = (
    "sasl_ssl://127.0.0.1:47053/bootstrap: SASL authentication error: Authentication failed "
    "during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 "
    "(after 346ms in state AUTH_REQ)"
)
UNTRUSTED_BROKER = (
    "sasl_ssl://127.0.0.1:47053/bootstrap: SSL handshake failed: error:0A000086:SSL routines::"
    "certificate verify failed: broker certificate could not be verified, verify that "
    "ssl.ca.location is correctly configured or root CA certificates are installed (install "
    "ca-certificates package) (after 11ms in state SSL_HANDSHAKE)"
)
NO_CLIENT_CERTIFICATE = (
    "sasl_ssl://127.0.0.1:47053/bootstrap: Receive failed: error:0A000412:SSL routines::"
    "ssl/tls alert bad certificate: SSL alert number 42 (after 0ms in state APIVERSION_QUERY)"
)
CLIENT = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "alice",
    "sasl.password": "not-the-password",
    "ssl.ca.location": "/certs/other-ca.pem",
}


def test_a_wrong_password_is_named_as_such() -> None:
    err = KafkaError(KafkaError._AUTHENTICATION, WRONG_PASSWORD)
    message = explain_connection_error(err, CLIENT)
    assert message == (
        "authentication failed for user alice (SASL SCRAM-SHA-512): wrong username or password "
        f"(kafka.sasl_username, kafka.sasl_password) ({WRONG_PASSWORD})"
    )
    assert "not-the-password" not in message


def test_a_broker_certificate_the_ca_does_not_sign_is_named_as_such() -> None:
    err = KafkaError(KafkaError._SSL, UNTRUSTED_BROKER)
    assert explain_connection_error(err, CLIENT) == (
        "TLS handshake failed: the broker's certificate is not trusted by "
        "kafka.ssl_ca_location=/certs/other-ca.pem, or does not name the host connected to "
        f"({UNTRUSTED_BROKER})"
    )


def test_a_refused_client_certificate_is_named_as_such() -> None:
    err = KafkaError(KafkaError._TRANSPORT, NO_CLIENT_CERTIFICATE)
    assert explain_connection_error(err, CLIENT) == (
        "TLS handshake failed: the broker refused this client's certificate (its listener "
        "requires one signed by a CA it trusts: set kafka.ssl_certificate_location and "
        f"kafka.ssl_key_location) ({NO_CLIENT_CERTIFICATE})"
    )


def test_other_failures_and_a_password_echoed_by_a_broker() -> None:
    err = KafkaError(KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:1 failed")
    assert explain_connection_error(err, CLIENT) == (
        "Kafka unreachable (Connect to ipv4#127.0.0.1:1 failed)"
    )
    echoed = KafkaError(KafkaError._SSL, "handshake: not-the-password rejected")
    assert (
        explain_connection_error(echoed, CLIENT) == "TLS handshake failed: handshake: *** rejected"
    )


# -- finding Java and the jars ---------------------------------------------------------------


def fake_tool(folder: Path, name: str, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def real_java() -> str:
    java = shutil.which("java")
    assert java is not None, "these tests need the machine's java (Debian: openjdk-17)"
    return java


def test_no_java_anywhere(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(BrokerError) as caught:
        kafka_jars.resolve(home=tmp_path, environ={"PATH": str(empty)})
    assert str(caught.value) == (
        "Apache Kafka needs Java 17+ and no `java` was found (PATH, JAVA_HOME): install a JDK "
        "17+ (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME to one"
    )
    assert caught.value.exit_code == EXIT_BROKER


def test_java_too_old(tmp_path: Path) -> None:
    java = fake_tool(tmp_path / "bin", "java", "echo 'openjdk version \"1.8.0_392\"' >&2\n")
    with pytest.raises(BrokerError) as caught:
        kafka_jars.resolve(home=tmp_path, environ={"PATH": str(java.parent)})
    assert str(caught.value) == (
        f"Apache Kafka needs Java 17+ but {java} is Java 8: install a JDK 17+ "
        "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME to one"
    )


def test_java_home_wins_over_path(tmp_path: Path) -> None:
    java_home = tmp_path / "jdk"
    fake_tool(java_home / "bin", "java", "echo 'openjdk version \"21.0.2\" 2024-01-16' >&2\n")
    found = kafka_jars.find_java({"PATH": "", "JAVA_HOME": str(java_home)})
    assert found == str(java_home / "bin" / "java")


def java_only_path(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "java").symlink_to(real_java())
    return folder


def test_no_maven_and_no_kafka_home(tmp_path: Path) -> None:
    path = java_only_path(tmp_path)
    with pytest.raises(BrokerError) as caught:
        kafka_jars.resolve(home=tmp_path / "home", environ={"PATH": str(path)})
    assert str(caught.value) == (
        "Apache Kafka's jars are fetched with Maven and no `mvn` was found on PATH: install "
        "Maven 3.8+ (Debian: apt-get install maven), or set KAFKA_HOME to an unpacked Apache "
        "Kafka distribution (its libs/ folder is used as it is)"
    )
    assert caught.value.exit_code == EXIT_BROKER


def test_kafka_home_needs_no_maven(tmp_path: Path) -> None:
    path = java_only_path(tmp_path)
    dist = tmp_path / "kafka_2.13-4.1.1"
    (dist / "libs").mkdir(parents=True)
    (dist / "libs" / "kafka_2.13-4.1.1.jar").write_bytes(b"")
    (dist / "libs" / "kafka_2.13-4.1.1-test.jar").write_bytes(b"")
    runtime = kafka_jars.resolve(home=tmp_path, kafka_home=dist, environ={"PATH": str(path)})
    assert runtime.lib == dist / "libs"
    assert runtime.version == "4.1.1"
    assert runtime.classpath == f"{dist}/libs/*"
    with pytest.raises(BrokerError, match=r"KAFKA_HOME=.* is not an unpacked Apache Kafka"):
        kafka_jars.resolve(home=tmp_path, kafka_home=tmp_path, environ={"PATH": str(path)})


def test_the_pom_names_no_repository() -> None:
    pom = kafka_jars.pom_xml("4.1.1")
    assert "://" not in pom
    assert "<repositor" not in pom
    assert "<artifactId>kafka_2.13</artifactId>\n      <version>4.1.1</version>" in pom
    assert pom.count(f"<version>{kafka_jars.LOG4J_VERSION}</version>") == 3


FAKE_MVN = """\
# A stand-in for Maven: counts its runs, then fails or "downloads" the core jar.
echo run >> "$FAKE_MVN_RUNS"
for arg in "$@"; do case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac; done
if [ -n "$FAKE_MVN_FAIL" ]; then
  i=1; while [ $i -le 30 ]; do echo "[INFO] line $i"; i=$((i+1)); done
  echo "[ERROR] Failed to execute goal: Could not resolve dependencies for project"
  exit 1
fi
/usr/bin/sleep 0.3  # a window for the other callers to arrive
/usr/bin/touch "$out/kafka_2.13-4.1.1.jar" "$out/kafka-clients-4.1.1.jar"
"""


def maven_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    path = java_only_path(tmp_path)
    fake_tool(path, "mvn", FAKE_MVN)
    return {"PATH": str(path), "FAKE_MVN_RUNS": str(tmp_path / "runs"), **extra}


def test_a_maven_failure_shows_the_end_of_its_output_and_leaves_no_cache(tmp_path: Path) -> None:
    env = maven_env(tmp_path, FAKE_MVN_FAIL="1")
    home = tmp_path / "home"
    with pytest.raises(BrokerError) as caught:
        kafka_jars.resolve(home=home, environ=env)
    message = str(caught.value)
    assert message.startswith(
        "Maven could not resolve org.apache.kafka:kafka_2.13:4.1.1 (exit 1); its output ends:\n"
    )
    tail = message.split("\n")[1:]
    assert len(tail) == 25
    assert tail[0] == "[INFO] line 7"
    assert tail[-1] == "[ERROR] Failed to execute goal: Could not resolve dependencies for project"
    base = home / "kafka" / "4.1.1"
    assert sorted(p.name for p in base.iterdir()) == [".lock", "maven.log", "pom.xml"]


def test_jars_are_resolved_once_even_by_concurrent_callers(tmp_path: Path) -> None:
    env = maven_env(tmp_path)
    home = tmp_path / "home"
    lib = home / "kafka" / "4.1.1" / "lib"
    lib.mkdir(parents=True)
    (lib / "stale.jar").write_bytes(b"")  # an attempt that died before its marker
    results: list[kafka_jars.KafkaRuntime] = []
    threads = [
        threading.Thread(target=lambda: results.append(kafka_jars.resolve(home=home, environ=env)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.lib for r in results] == [lib, lib, lib]
    assert (tmp_path / "runs").read_text().splitlines() == ["run"]
    assert sorted(p.name for p in lib.iterdir()) == [
        "kafka-clients-4.1.1.jar",
        "kafka_2.13-4.1.1.jar",
    ]
    assert not [p for p in lib.parent.iterdir() if p.name.startswith("lib.partial-")]
    kafka_jars.resolve(home=home, environ={**env, "FAKE_MVN_FAIL": "1"})  # cached: no Maven
    assert (tmp_path / "runs").read_text().splitlines() == ["run"]
    assert os.access(lib.parent / "lib.complete", os.R_OK)


def test_replicated_topics_are_made_with_all_but_one_copy_in_sync() -> None:
    from herald import kafka

    assert [kafka.min_insync_replicas(rf) for rf in (1, 2, 3, 5)] == [1, 1, 2, 4]
    # A single copy keeps the broker's default (Tansu is never sent a topic setting).
    assert kafka.topic_config(1) == {}
    assert kafka.topic_config(3) == {"min.insync.replicas": "2"}
    assert kafka.producer_config(KafkaSettings(bootstrap="h:1"))["acks"] == "all"
    three = server_properties(0, compose_nodes(), log_dirs="/d")
    assert three["min.insync.replicas"] == "2" and three["default.replication.factor"] == "3"
