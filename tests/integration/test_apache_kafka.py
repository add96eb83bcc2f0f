"""The local Apache Kafka engine, for real: one broker, a three-node cluster, SCRAM over TLS and
mutual TLS, each started once for this module (jars cached in the checkout's .herald/)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    ConfigResource,
    NewTopic,
    OffsetSpec,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from herald import contracts, kafka
from herald.config import KafkaSettings
from herald.errors import EXIT_BROKER, BrokerError
from herald.runtime import kafka_jars
from herald.runtime.apache_kafka import ApacheKafkaCluster
from herald.runtime.kafka_security import Security, TlsFiles
from tests.support.processes import HERALD, clean_env, processes_under
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / ".herald"  # the jars are fetched once per checkout, like the AsyncAPI tools
PASSWORD = "correct-horse-battery-staple"
WRONG_PASSWORD = "Tr0ub4dor&3"


# -- certificates, made for this module ------------------------------------------------------


class CertificateAuthority:
    """A throwaway CA that signs PEM certificates with PKCS#8 keys (what Kafka's PEM reads)."""

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            self._builder(self.name, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def _builder(self, subject: x509.Name, public_key: Any) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
        )

    def write(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, common_name: str, folder: Path, *, host: str | None = None) -> TlsFiles:
        """A certificate for ``common_name`` (and ``host``'s IP address), with this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = self._builder(subject, key.public_key())
        if host is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = folder / f"{common_name}.crt", folder / f"{common_name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return TlsFiles(
            ca=self.write(folder / f"{common_name}-ca.pem"), cert=cert_path, key=key_path
        )


class Certificates:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        ca, rogue = CertificateAuthority("herald test CA"), CertificateAuthority("rogue CA")
        self.ca = ca.write(folder / "ca.pem")
        self.rogue_ca = rogue.write(folder / "rogue-ca.pem")
        self.broker = ca.issue("broker", folder, host="127.0.0.1")
        self.client = ca.issue("client", folder)
        self.rogue_client = rogue.issue("rogue-client", folder)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("tls"))


# -- clusters, one of each per module --------------------------------------------------------


@pytest.fixture(scope="module")
def kafka_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unpacked distribution's layout around Maven's jars: ``KAFKA_HOME/libs``."""
    runtime = kafka_jars.resolve(home=HOME, environ={"PATH": _path()})
    dist = tmp_path_factory.mktemp("kafka-home")
    (dist / "libs").symlink_to(runtime.lib)
    return dist


@pytest.fixture(scope="module")
def single(
    tmp_path_factory: pytest.TempPathFactory, kafka_dist: Path
) -> Iterator[ApacheKafkaCluster]:
    """One broker, started as from KAFKA_HOME (the other clusters run Maven's jars directly)."""
    cluster = ApacheKafkaCluster(
        home=HOME, kafka_home=kafka_dist, log_dir=tmp_path_factory.mktemp("single-logs")
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafkaCluster]:
    cluster = ApacheKafkaCluster(brokers=3, home=HOME, log_dir=tmp_path_factory.mktemp("trio-logs"))
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def scram_tls(
    tmp_path_factory: pytest.TempPathFactory, certs: Certificates
) -> Iterator[ApacheKafkaCluster]:
    """SASL_SSL: SCRAM-SHA-512 users over TLS (no client certificates)."""
    security = Security(
        scram_users={"alice": PASSWORD, "bob": "bobs-" + PASSWORD},
        tls=TlsFiles(certs.ca, certs.broker.cert, certs.broker.key),
    )
    cluster = ApacheKafkaCluster(
        home=HOME, security=security, log_dir=tmp_path_factory.mktemp("scram-logs")
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def mtls(
    tmp_path_factory: pytest.TempPathFactory, certs: Certificates
) -> Iterator[ApacheKafkaCluster]:
    """SSL with ``ssl.client.auth=required``: clients present a certificate of the test CA."""
    security = Security(
        tls=TlsFiles(certs.ca, certs.broker.cert, certs.broker.key),
        client_auth=True,
        client_tls=TlsFiles(certs.ca, certs.client.cert, certs.client.key),
    )
    cluster = ApacheKafkaCluster(
        home=HOME, security=security, log_dir=tmp_path_factory.mktemp("mtls-logs")
    )
    with cluster:
        yield cluster


def _path() -> str:
    return os.environ.get("PATH", "")


# -- helpers ---------------------------------------------------------------------------------


def settings_for(cluster: ApacheKafkaCluster, **fields: Any) -> KafkaSettings:
    return cluster.client_settings(KafkaSettings(namespace=f"t{uuid.uuid4().hex[:8]}", **fields))


def create_topic(ks: KafkaSettings, partitions: int = 1, replicas: int = 1) -> str:
    name = f"{ks.namespace}.t"
    admin = kafka.admin(ks)  # kept: its futures fail if it is collected first
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=replicas)],
        request_timeout=30,
    )
    futures[name].result(30)

    def led() -> bool:  # the metadata of a new topic reaches the brokers a moment later
        meta = admin.list_topics(name, timeout=10).topics.get(name)
        parts = meta.partitions if meta is not None else {}
        return len(parts) == partitions and all(p.leader >= 0 for p in parts.values())

    wait_for(led, 30, f"{name}'s {partitions} partitions to have leaders")
    return name


def leader_of(ks: KafkaSettings, topic: str, partition: int) -> int:
    """The partition's leader as a new client sees it: each broker learns of a topic on its own."""
    admin = kafka.admin(ks)
    seen: list[int] = []

    def known() -> bool:
        meta = admin.list_topics(topic, timeout=10).topics.get(topic)
        part = meta.partitions.get(partition) if meta is not None else None
        if part is None or part.leader < 0:
            return False
        seen.append(part.leader)
        return True

    wait_for(known, 30, f"a leader for {topic}[{partition}]")
    return seen[-1]


def end_offsets(ks: KafkaSettings, topic: str, *, committed: bool) -> dict[int, int]:
    """Each partition's end: the last stable offset (``committed``) or the high watermark."""
    admin = kafka.admin(ks)
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    level = IsolationLevel.READ_COMMITTED if committed else IsolationLevel.READ_UNCOMMITTED
    futures = admin.list_offsets(
        {TopicPartition(topic, p): OffsetSpec.latest() for p in meta.partitions},
        isolation_level=level,
        request_timeout=30,
    )
    return {tp.partition: f.result(30).offset for tp, f in futures.items()}


def read_all(ks: KafkaSettings, topic: str, *, committed: bool = True) -> list[Message]:
    """Every record of ``topic`` up to its end offsets now, read_committed or not."""
    ends = end_offsets(ks, topic, committed=committed)
    level = "read_committed" if committed else "read_uncommitted"
    consumer = Consumer(
        kafka.consumer_config(ks, f"reader-{uuid.uuid4().hex[:8]}", **{"isolation.level": level})
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    out: list[Message] = []
    try:

        def caught_up() -> bool:
            out.extend(m for m in consumer.consume(1000, 0.2) if m.error() is None)
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            return all(tp.offset >= ends[tp.partition] for tp in positions if ends[tp.partition])

        wait_for(caught_up, 60, f"reading {topic} to its end offsets {ends}")
    finally:
        consumer.close()
    return out


def process_state(pid: int) -> str:
    # /proc/<pid>/stat: "pid (comm) STATE ..."; comm may hold spaces, so split after ")".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def values(msgs: list[Message]) -> list[str]:
    return [bytes(m.value() or b"").decode() for m in msgs]


# -- one broker ------------------------------------------------------------------------------


def test_an_aborted_transaction_is_not_read_committed(single: ApacheKafkaCluster) -> None:
    ks = settings_for(single)
    topic = create_topic(ks, partitions=3)
    producer = Producer(kafka.transactional_producer_config(ks, f"{ks.namespace}-tx"))
    producer.init_transactions(30)
    batches = [("kept-a", 10, True), ("dropped", 7, False), ("kept-b", 10, True)]
    for prefix, count, commit in batches:
        producer.begin_transaction()
        for i in range(count):
            producer.produce(topic, f"{prefix}-{i}", f"{prefix}-{i}")
        if commit:
            producer.commit_transaction(30)
        else:
            assert producer.flush(30) == 0  # the records reach the log, then are aborted
            producer.abort_transaction(30)

    committed = read_all(ks, topic)
    assert len(committed) == 20
    assert sorted(values(committed)) == sorted(
        [f"kept-a-{i}" for i in range(10)] + [f"kept-b-{i}" for i in range(10)]
    )
    assert len({m.key() for m in committed}) == 20
    everything = read_all(ks, topic, committed=False)
    assert len(everything) == 27  # the aborted records are in the log, hidden by the client
    assert sorted(v for v in values(everything) if v.startswith("dropped")) == [
        f"dropped-{i}" for i in range(7)
    ]


KILLED_PRODUCER = """
import sys
from confluent_kafka import Producer
bootstrap, topic, txid = sys.argv[1:4]
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txid,
              "transaction.timeout.ms": 5000})
p.init_transactions(30)
p.begin_transaction()
for i in range(5):
    p.produce(topic, b"doomed-%d" % i, b"doomed-%d" % i)
assert p.flush(30) == 0
print("in a transaction", flush=True)
sys.stdin.read()  # holds the transaction open until it is killed
"""


def test_a_killed_producers_transaction_is_aborted_after_its_timeout(
    single: ApacheKafkaCluster,
) -> None:
    ks = settings_for(single)
    topic = create_topic(ks)
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_PRODUCER, single.bootstrap, topic, f"{ks.namespace}-dead"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as doomed:
        try:
            assert doomed.stdout is not None
            assert doomed.stdout.readline() == "in a transaction\n"
        finally:
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(10)
    producer = Producer(kafka.transactional_producer_config(ks, f"{ks.namespace}-live"))
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, f"after-{i}", f"after-{i}")
    producer.commit_transaction(30)

    # The dead transaction holds back everything after it, until the broker aborts it.
    assert end_offsets(ks, topic, committed=True) == {0: 0}
    assert end_offsets(ks, topic, committed=False)[0] >= 15
    wait_for(
        lambda: end_offsets(ks, topic, committed=True) == end_offsets(ks, topic, committed=False),
        30,
        "the broker to abort the killed producer's transaction (transaction.timeout.ms=5000)",
        every=0.2,
    )
    assert values(read_all(ks, topic)) == [f"after-{i}" for i in range(10)]
    assert len(read_all(ks, topic, committed=False)) == 15


def test_no_java_stops_the_cluster_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    cluster = ApacheKafkaCluster(home=tmp_path)
    with pytest.raises(BrokerError) as caught:
        cluster.start()
    assert str(caught.value) == kafka_jars.JAVA_MISSING.format(min=17)
    assert caught.value.exit_code == EXIT_BROKER
    assert cluster.pids == []
    assert not (tmp_path / "kafka").exists()


def test_no_maven_and_no_kafka_home_stops_the_cluster_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    java = kafka_jars.find_java({"PATH": _path()})
    (tmp_path / "java").symlink_to(java)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    with pytest.raises(BrokerError) as caught:
        ApacheKafkaCluster(home=tmp_path / "home").start()
    assert str(caught.value) == kafka_jars.MAVEN_MISSING


STARTER = """
import sys
from pathlib import Path
from herald.runtime.apache_kafka import ApacheKafkaCluster
cluster = ApacheKafkaCluster(home=Path(sys.argv[1]), kafka_home=Path(sys.argv[2])).start()
print(cluster.pids[0], flush=True)
sys.stdin.read()  # runs until it is killed
"""


def gone(pid: int) -> bool:
    try:
        return process_state(pid) in ("Z", "X")  # a zombie runs no more
    except FileNotFoundError:
        return True


def test_a_broker_dies_with_the_process_that_started_it(tmp_path: Path, kafka_dist: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path), str(kafka_dist)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as starter:
        try:
            assert starter.stdout is not None
            broker = int(starter.stdout.readline())
            assert not gone(broker)
        finally:
            starter.send_signal(signal.SIGKILL)
            starter.wait(10)
    wait_for(lambda: gone(broker), 30, f"broker {broker} to die with its starter")


def test_a_broker_key_kafka_cannot_read_is_refused_before_anything_starts(
    tmp_path: Path, certs: Certificates
) -> None:
    key = serialization.load_pem_private_key(certs.broker.key.read_bytes(), password=None)
    traditional = tmp_path / "broker-ec.key"
    traditional.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    assert traditional.read_text().startswith("-----BEGIN EC PRIVATE KEY-----")
    security = Security(tls=TlsFiles(certs.ca, certs.broker.cert, traditional))
    cluster = ApacheKafkaCluster(home=HOME, security=security, log_dir=tmp_path / "logs")
    with pytest.raises(BrokerError) as caught:
        cluster.start()
    assert str(caught.value) == (
        f"{traditional}: Kafka reads unencrypted PKCS#8 keys (BEGIN PRIVATE KEY); convert it "
        f"with: openssl pkcs8 -topk8 -nocrypt -in {traditional} -out KEY.pem"
    )
    assert cluster.pids == []
    assert not cluster.run_dir.exists()


# -- three nodes -----------------------------------------------------------------------------


def test_three_nodes_replicate_herald_topics_three_times_two_in_sync(
    trio: ApacheKafkaCluster,
) -> None:
    ks = settings_for(trio)
    assert ks.replication_factor == 3
    assert ks.bootstrap == trio.bootstrap
    assert len(ks.bootstrap.split(",")) == 3
    kafka.ensure_topics(ks, [contracts.RUNS])
    topic = contracts.RUNS.qualified(ks.namespace)
    admin = kafka.admin(ks)
    meta = wait_for(
        lambda: (m := admin.list_topics(topic, timeout=10)).topics[topic].partitions and m,
        30,
        f"{topic}'s partitions in the metadata",
    )
    assert sorted(meta.brokers) == [1, 2, 3]
    parts = meta.topics[topic].partitions
    assert len(parts) == ks.partitions
    assert all(sorted(p.replicas) == [1, 2, 3] for p in parts.values())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    config = admin.describe_configs([resource])[resource].result(30)
    assert config["min.insync.replicas"].value == "2"


def test_a_broker_killed_while_producing_loses_and_duplicates_nothing(
    trio: ApacheKafkaCluster,
) -> None:
    ks = settings_for(trio)
    topic = create_topic(ks, partitions=6, replicas=3)
    leader = leader_of(ks, topic, 0)
    victim = leader - 1  # node ids start at 1
    total = 20_000
    delivered: list[int] = []
    failed: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failed.append(err)
        else:
            delivered.append(int(bytes(msg.value() or b"")))

    producer = Producer(kafka.producer_config(ks))
    for i in range(total):
        producer.produce(topic, str(i).encode(), f"k{i}".encode(), on_delivery=on_delivery)
        producer.poll(0)
        if i == total // 2:
            trio.kill(victim)  # records are in flight to it right now
            assert trio.pids[victim] is None
    assert producer.flush(180) == 0
    assert failed == []
    assert len(delivered) == total
    got = values(read_all(ks, topic))
    assert len(got) == total  # every record once: no loss, no duplicate from the retries
    assert sorted(int(v) for v in got) == list(range(total))

    trio.start_node(victim)
    assert all(pid is not None for pid in trio.pids)
    assert sorted(kafka.admin(ks).list_topics(timeout=10).brokers) == [1, 2, 3]

    def isr_complete() -> bool:
        parts = kafka.admin(ks).list_topics(topic, timeout=10).topics[topic].partitions
        return all(sorted(p.isrs) == [1, 2, 3] for p in parts.values())

    wait_for(isr_complete, 90, f"node {leader} back in every partition's ISR", every=0.5)


def test_a_node_stopped_cleanly_leaves_and_rejoins(trio: ApacheKafkaCluster) -> None:
    ks = settings_for(trio)
    last = 2
    trio.stop_node(last)
    assert trio.pids[last] is None
    wait_for(
        lambda: sorted(kafka.admin(ks).list_topics(timeout=10).brokers) == [1, 2],
        30,
        "node 3 to leave the metadata",
    )
    trio.start_node(last)
    assert sorted(kafka.admin(ks).list_topics(timeout=10).brokers) == [1, 2, 3]


def test_pause_and_resume_stop_and_continue_a_node(trio: ApacheKafkaCluster) -> None:
    pid = trio.pids[1]
    assert pid is not None
    trio.pause(1)
    try:
        assert wait_for(lambda: process_state(pid) == "T", 10, "the node to be stopped")
    finally:
        trio.resume(1)
    wait_for(lambda: process_state(pid) != "T", 10, "the node to run again")
    assert trio.pids[1] == pid


# -- SCRAM over TLS --------------------------------------------------------------------------


def refused(ks: KafkaSettings, **fields: Any) -> BrokerError:
    """What :func:`herald.kafka.wait_for_broker` (every service's first step) raises for
    ``ks`` with ``fields`` changed: at once, not after ``connect_timeout_secs``."""
    changed = KafkaSettings.model_validate(
        {
            **ks.model_dump(),
            "sasl_password": ks.sasl_password,
            "connect_timeout_secs": 120,
            **fields,
        }
    )
    with pytest.raises(BrokerError) as caught:
        kafka.wait_for_broker(changed)
    # A refusal, not "unreachable after 120s" (the message a timeout gives).
    assert "unreachable after" not in str(caught.value)
    assert caught.value.exit_code == EXIT_BROKER
    return caught.value


def test_scram_users_produce_and_consume(
    scram_tls: ApacheKafkaCluster, certs: Certificates
) -> None:
    ks = settings_for(scram_tls)
    assert (ks.security_protocol, ks.sasl_mechanism, ks.sasl_username) == (
        "sasl_ssl",
        "SCRAM-SHA-512",
        "alice",
    )
    assert ks.ssl_ca_location == certs.ca
    assert ks.client_config == {}
    config = kafka.producer_config(ks)
    assert {k: config[k] for k in config if k.startswith(("sasl", "security", "ssl"))} == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(certs.ca),
    }
    assert kafka.wait_for_broker(ks) is not None
    topic = create_topic(ks, partitions=2)
    bob = scram_tls.client_settings(ks, user="bob")
    producer = Producer(kafka.producer_config(bob))
    for i in range(100):
        producer.produce(topic, f"m{i}", f"k{i}")
    assert producer.flush(30) == 0
    assert sorted(values(read_all(ks, topic))) == sorted(f"m{i}" for i in range(100))


def test_a_wrong_password_is_reported_as_such_and_never_shown(
    scram_tls: ApacheKafkaCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ks = settings_for(scram_tls)
    err = refused(ks, sasl_password=WRONG_PASSWORD)
    message = str(err)
    assert message.startswith(
        f"cannot connect to Kafka at {scram_tls.bootstrap}: authentication failed for user "
        "alice (SASL SCRAM-SHA-512): wrong username or password (kafka.sasl_username, "
        "kafka.sasl_password) ("
    )
    assert "authentication failed for user mallory" in str(refused(ks, sasl_username="mallory"))
    assert "Authentication failed" in caplog.text  # librdkafka's own lines were captured
    for secret in (WRONG_PASSWORD, PASSWORD):
        assert secret not in message
        assert secret not in caplog.text


def test_the_broker_never_sees_a_password_in_clear(scram_tls: ApacheKafkaCluster) -> None:
    written = [p for d in {scram_tls.run_dir, scram_tls.log_dir} for p in d.rglob("*")]
    texts = [p.read_bytes() for p in written if p.is_file()]
    assert len(texts) >= 6  # configuration, format and broker logs, the metadata log itself
    assert not [t for t in texts if PASSWORD.encode() in t]


def test_a_client_not_trusting_the_broker_is_told_so(
    scram_tls: ApacheKafkaCluster, certs: Certificates
) -> None:
    err = refused(settings_for(scram_tls), ssl_ca_location=certs.rogue_ca)
    assert str(err).startswith(
        f"cannot connect to Kafka at {scram_tls.bootstrap}: TLS handshake failed: the broker's "
        f"certificate is not trusted by kafka.ssl_ca_location={certs.rogue_ca}, or does not "
        "name the host connected to ("
    )
    assert PASSWORD not in str(err)


# -- mutual TLS ------------------------------------------------------------------------------


def test_a_client_certificate_of_the_ca_produces_and_consumes(
    mtls: ApacheKafkaCluster, certs: Certificates
) -> None:
    ks = settings_for(mtls)
    assert (ks.security_protocol, ks.ssl_ca_location) == ("ssl", certs.ca)
    assert (ks.ssl_certificate_location, ks.ssl_key_location) == (
        certs.client.cert,
        certs.client.key,
    )
    topic = create_topic(ks)
    producer = Producer(kafka.producer_config(ks))
    for i in range(50):
        producer.produce(topic, f"m{i}", f"k{i}")
    assert producer.flush(30) == 0
    assert values(read_all(ks, topic)) == [f"m{i}" for i in range(50)]


def test_a_client_without_a_certificate_is_refused(mtls: ApacheKafkaCluster) -> None:
    err = refused(settings_for(mtls), ssl_certificate_location=None, ssl_key_location=None)
    assert str(err).startswith(
        f"cannot connect to Kafka at {mtls.bootstrap}: TLS handshake failed: the broker refused "
        "this client's certificate"
    )


def test_a_client_certificate_of_another_ca_is_refused(
    mtls: ApacheKafkaCluster, certs: Certificates
) -> None:
    err = refused(
        settings_for(mtls),
        ssl_certificate_location=certs.rogue_client.cert,
        ssl_key_location=certs.rogue_client.key,
    )
    assert "the broker refused this client's certificate" in str(err)


def test_a_client_not_trusting_the_mtls_broker_is_told_so(
    mtls: ApacheKafkaCluster, certs: Certificates
) -> None:
    err = refused(settings_for(mtls), ssl_ca_location=certs.rogue_ca)
    assert "TLS handshake failed: the broker's certificate is not" in str(err)


# -- a whole run, authenticated --------------------------------------------------------------


def _sim(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HERALD, "sim", "--messages", "2000", "--mean-wait", "0", "--timeout", "300", *args],
        env=clean_env(HERALD_HOME=str(tmp_path / "home"), **env),
        capture_output=True,
        text=True,
        timeout=420,
    )


def test_a_run_over_scram_and_tls_is_exact_and_never_shows_the_password(
    scram_tls: ApacheKafkaCluster, certs: Certificates, tmp_path: Path
) -> None:
    env = {
        "HERALD_KAFKA_BOOTSTRAP": scram_tls.bootstrap,
        "HERALD_KAFKA_NAMESPACE": f"t{uuid.uuid4().hex[:8]}",
        "HERALD_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "HERALD_KAFKA_SASL_USERNAME": "bob",
        "HERALD_KAFKA_SASL_PASSWORD": "bobs-" + PASSWORD,
        "HERALD_KAFKA_SSL_CA_LOCATION": str(certs.ca),
    }
    out = tmp_path / "out.json"
    proc = _sim(tmp_path, env, "--json", str(out), "--monitor-output", str(tmp_path / "m.log"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["total"] == summary["outcomes_in_database"] == 2000
    assert summary["duplicate_results_ignored"] == 0
    # Nowhere: not in the output, the summary, the settings files or any service's log.
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "pgdata" not in p.parts]
    assert len([p for p in written if p.suffix == ".log"]) >= 5, written
    for secret in (PASSWORD.encode(), b"bobs-"):
        assert secret not in proc.stdout.encode() + proc.stderr.encode()
        assert [p for p in written if secret in p.read_bytes()] == []

    # The same run with a wrong password: refused at once, nothing started.
    wrong = _sim(tmp_path / "wrong", {**env, "HERALD_KAFKA_SASL_PASSWORD": WRONG_PASSWORD})
    assert wrong.returncode == EXIT_BROKER, wrong.stdout + wrong.stderr
    assert "authentication failed for user bob (SASL SCRAM-SHA-512)" in wrong.stderr
    assert WRONG_PASSWORD not in wrong.stdout + wrong.stderr
    assert processes_under(tmp_path / "wrong") == []
