"""The local Apache Kafka engine: 1 or 3 KRaft nodes (broker and controller each), started from
Kafka's jars on loopback ports, their data under ``<home>/kafka/run/<cluster id>/``."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from herald.config import KafkaSettings
from herald.errors import BrokerError
from herald.runtime import kafka_config, kafka_jars
from herald.runtime.kafka_config import NodeAddress
from herald.runtime.kafka_security import (
    NO_SECURITY,
    Security,
    client_fields,
    scram_credential,
)
from herald.runtime.ports import free_port

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_HEAP_MB = 320


def _killed_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    # Linux: a broker whose starter died (even by SIGKILL) is killed too, not orphaned. SIGKILL,
    # not SIGTERM: a node shutting down cleanly waits for a controller quorum that is going
    # away with it, and nobody would be left to end that wait.
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def new_cluster_id() -> str:
    """A random KRaft cluster id (16 bytes, URL-safe base64, as ``kafka-storage random-uuid``)."""
    while True:
        ident = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not ident.startswith("-"):  # Kafka avoids these too: a command line reads an option
            return ident


class _Node:
    """One broker-and-controller process and its files."""

    def __init__(self, index: int, address: NodeAddress, folder: Path, log_path: Path) -> None:
        self.index = index
        self.address = address
        self.folder = folder
        self.log_path = log_path
        self.config_path = folder / "server.properties"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def launch(self, argv: list[str]) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in reap()
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # signals come from us, not from the terminal's Ctrl-C
            preexec_fn=_killed_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):  # exited in between
                self.proc.send_signal(signum)

    def reap(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the process to exit, then kill it."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "Kafka node %d (pid %d) did not stop in %gs: killing it",
                    kafka_config.node_id(self.index),
                    self.proc.pid,
                    timeout,
                )
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])


class ApacheKafkaCluster:
    """Apache Kafka in KRaft mode: ``brokers`` combined broker-and-controller nodes.

    ``home``: herald's working folder (jars in ``<home>/kafka/<version>/lib``, data in
    ``<home>/kafka/run/<cluster id>/``, removed by ``stop()``). ``kafka_home``: an unpacked
    Apache Kafka distribution to run instead of Maven's jars (default ``$KAFKA_HOME``).
    ``heap_mb``: each JVM's maximum heap (320 MB: a node's RSS is then about 300-380 MB).
    ``security``: how clients authenticate (default: PLAINTEXT). ``log_dir``: where each
    node's output goes (``node-<id>.log``; default the cluster's run folder, kept after
    ``stop()``). ``host``: the loopback address every listener binds and advertises.
    ``client_ports``: each node's client port, when it must be known before the start (the
    local stack's); free ports by default.

    Nodes are killed when the *thread* that started them ends (Linux's parent-death signal
    follows the thread): start the cluster from one that outlives it, e.g. the main thread.
    """

    def __init__(
        self,
        *,
        brokers: int = 1,
        home: Path = Path(".herald"),
        version: str = kafka_jars.KAFKA_VERSION,
        kafka_home: Path | None = None,
        heap_mb: int = DEFAULT_HEAP_MB,
        security: Security = NO_SECURITY,
        log_dir: Path | None = None,
        host: str = HOST,
        client_ports: Sequence[int] | None = None,
    ) -> None:
        if brokers not in (1, 3):
            raise ValueError(f"brokers={brokers}: a local cluster has 1 or 3 nodes")
        if client_ports is not None and len(client_ports) != brokers:
            raise ValueError(f"{len(client_ports)} client ports for {brokers} node(s)")
        self.client_ports = tuple(client_ports) if client_ports is not None else None
        self.brokers = brokers
        self.home = home
        self.version = version
        self.kafka_home = kafka_home
        self.heap_mb = heap_mb
        self.security = security
        self.host = host
        self.cluster_id = new_cluster_id()
        self.run_dir = home / "kafka" / "run" / self.cluster_id
        self.log_dir = log_dir if log_dir is not None else self.run_dir
        self.runtime: kafka_jars.KafkaRuntime | None = None
        self._nodes: list[_Node] = []

    # -- what clients need -------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """The client listeners, ``host:port,...``."""
        return ",".join(f"{n.address.host}:{n.address.client_port}" for n in self._nodes)

    @property
    def internal_bootstrap(self) -> str:
        """The brokers' own PLAINTEXT listeners (no authentication: for the engine's checks)."""
        return ",".join(f"{n.address.host}:{n.address.internal_port}" for n in self._nodes)

    @property
    def pids(self) -> list[int | None]:
        """Each node's pid, ``None`` where it is not running."""
        return [n.proc.pid if n.proc is not None and n.alive() else None for n in self._nodes]

    def client_settings(self, settings: KafkaSettings, *, user: str | None = None) -> KafkaSettings:
        """``settings`` pointed at this cluster, with its security, and topics replicated on
        every node unless ``replication_factor`` was set. Kafka's group timeouts stay."""
        update: dict[str, object] = {
            "bootstrap": self.bootstrap,
            **client_fields(self.security, user),
        }
        if "replication_factor" not in settings.model_fields_set:
            update["replication_factor"] = self.brokers
        return settings.model_copy(update=update)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> ApacheKafkaCluster:
        """Fetch the jars if needed, format each node's storage, start them, and return once
        every broker is in the cluster's metadata (so the controller quorum has a leader)."""
        started = time.monotonic()
        environ = dict(os.environ)
        kafka_home = self.kafka_home
        if kafka_home is None and environ.get("KAFKA_HOME"):
            kafka_home = Path(environ["KAFKA_HOME"])
        self.runtime = kafka_jars.resolve(
            home=self.home, version=self.version, kafka_home=kafka_home, environ=environ
        )
        try:
            self._prepare()
            self._format()
            for node in self._nodes:
                node.launch(self._server_command(node))
            self._wait_for_brokers(self.brokers, timeout - (time.monotonic() - started))
        except BaseException:
            self.stop()
            raise
        logger.info(
            "Apache Kafka %s: %d node(s) on %s (pids %s) ready in %.1fs",
            self.runtime.version,
            self.brokers,
            self.bootstrap,
            ",".join(str(p) for p in self.pids),
            time.monotonic() - started,
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every node (SIGTERM, SIGKILL after ``timeout``) and remove the cluster's data."""
        for node in self._nodes:
            node.signal(signal.SIGCONT)  # a paused node could not act on SIGTERM
            node.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node in self._nodes:
            node.reap(max(0.1, deadline - time.monotonic()))
        if self.log_dir == self.run_dir:
            for node in self._nodes:
                shutil.rmtree(node.folder / "data", ignore_errors=True)
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> ApacheKafkaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- incidents ---------------------------------------------------------------------------

    def kill(self, node: int) -> None:
        """SIGKILL node ``node`` (0-based) and wait for it to be gone."""
        target = self._nodes[node]
        target.signal(signal.SIGCONT)
        target.signal(signal.SIGKILL)
        target.reap(30.0)

    def stop_node(self, node: int, timeout: float = 30.0) -> None:
        """Shut node ``node`` down cleanly (SIGTERM; SIGKILL after ``timeout``)."""
        target = self._nodes[node]
        target.signal(signal.SIGCONT)
        target.signal(signal.SIGTERM)
        target.reap(timeout)

    def start_node(self, node: int, timeout: float = 60.0) -> None:
        """Start a stopped or killed node again on its ports and data; return once it is back
        in the cluster's metadata."""
        target = self._nodes[node]
        if target.alive():
            raise BrokerError(f"Kafka node {kafka_config.node_id(node)} is already running")
        target.launch(self._server_command(target))
        self._wait_for_brokers(self.brokers, timeout, via=target)

    def pause(self, node: int) -> None:
        """SIGSTOP node ``node``: it holds its connections but answers nothing."""
        self._nodes[node].signal(signal.SIGSTOP)

    def resume(self, node: int) -> None:
        """SIGCONT a paused node."""
        self._nodes[node].signal(signal.SIGCONT)

    # -- internals ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        clients = self.client_ports or [free_port(self.host) for _ in range(self.brokers)]
        addresses = [
            NodeAddress(self.host, client, free_port(self.host), free_port(self.host))
            for client in clients
        ]
        (self.run_dir / "log4j2.properties").parent.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "log4j2.properties").write_text(kafka_config.log4j2_properties("INFO"))
        (self.run_dir / "tools-log4j2.properties").write_text(
            kafka_config.log4j2_properties("WARN")
        )
        keystore = self._write_keystore()
        self._nodes = []
        for index, address in enumerate(addresses):
            ident = kafka_config.node_id(index)
            folder = self.run_dir / f"node-{ident}"
            folder.mkdir(parents=True, exist_ok=True)
            node = _Node(index, address, folder, self.log_dir / f"node-{ident}.log")
            props = kafka_config.server_properties(
                index,
                addresses,
                log_dirs=str(folder / "data"),
                security=self.security,
                keystore=keystore,
            )
            node.config_path.write_text(kafka_config.properties_text(props), encoding="utf-8")
            node.config_path.chmod(0o600)
            self._nodes.append(node)

    def _write_keystore(self) -> str | None:
        tls = self.security.tls
        if tls is None:
            return None
        key = tls.key.read_text(encoding="utf-8")
        if "BEGIN PRIVATE KEY" not in key:
            raise BrokerError(
                f"{tls.key}: Kafka reads unencrypted PKCS#8 keys (BEGIN PRIVATE KEY); convert it "
                f"with: openssl pkcs8 -topk8 -nocrypt -in {tls.key} -out KEY.pem"
            )
        keystore = self.run_dir / "keystore.pem"
        keystore.write_text(key + tls.cert.read_text(encoding="utf-8"), encoding="utf-8")
        keystore.chmod(0o600)
        return str(keystore)

    def _java(
        self, main: str, *args: str, jvm: tuple[str, ...] = (), tools: bool = False
    ) -> list[str]:
        assert self.runtime is not None
        log4j = self.run_dir / ("tools-log4j2.properties" if tools else "log4j2.properties")
        return [
            self.runtime.java,
            *jvm,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            self.runtime.classpath,
            main,
            *args,
        ]

    def _server_command(self, node: _Node) -> list[str]:
        jvm = (
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
        )
        return self._java("kafka.Kafka", str(node.config_path), jvm=jvm)

    def _format(self) -> None:
        """Format every node's storage at once (each is a JVM start: seconds)."""
        assert self.runtime is not None
        scram: list[str] = []
        for user, password in sorted(self.security.scram_users.items()):
            scram += ["--add-scram", scram_credential(user, password)]
        procs = []
        for node in self._nodes:
            argv = self._java(
                self.runtime.storage_tool,
                "format",
                "--cluster-id",
                self.cluster_id,
                "--config",
                str(node.config_path),
                *scram,
                # A run of a second or two: the JIT's top tier would only cost CPU (~1 s less).
                jvm=("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx128m"),
                tools=True,
            )
            out = open(node.folder / "format.log", "wb")  # noqa: SIM115 - closed below
            procs.append((node, out, subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)))
        failed = []
        for node, out, proc in procs:
            code = proc.wait(120)
            out.close()
            if code != 0:
                failed.append((node, code))
        if failed:
            node, code = failed[0]
            text = (node.folder / "format.log").read_text(encoding="utf-8", errors="replace")
            raise BrokerError(
                f"formatting Kafka node {kafka_config.node_id(node.index)} failed (exit {code}):\n"
                + "\n".join(text.splitlines()[-20:])
            )

    def _wait_for_brokers(self, count: int, timeout: float, via: _Node | None = None) -> None:
        """Return once ``count`` brokers are in the metadata (as ``via`` itself answers, when
        given: a restarted node); raise with a log tail if a node exits or time runs out."""
        ask = [via] if via is not None else self._nodes
        conf: dict[str, Any] = {
            "bootstrap.servers": ",".join(
                f"{n.address.host}:{n.address.internal_port}" for n in ask
            ),
            "logger": logging.getLogger("librdkafka"),
            "log.connection.close": False,
        }
        admin = AdminClient(conf)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for node in self._nodes:
                if node.proc is not None and node.proc.poll() is not None:
                    raise BrokerError(
                        f"Kafka node {kafka_config.node_id(node.index)} exited "
                        f"(code {node.proc.returncode}) while starting; its log ends:\n"
                        f"{node.tail()}"
                    )
            try:
                brokers = admin.list_topics(timeout=1.0).brokers
            except KafkaException:
                brokers = {}
            seen = len(brokers)
            if seen >= count and all(kafka_config.node_id(n.index) in brokers for n in ask):
                return
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"Apache Kafka: {seen} of {count} brokers up after {timeout:.0f}s; "
                    f"node {kafka_config.node_id(ask[0].index)}'s log ends:\n{ask[0].tail()}"
                )
            time.sleep(0.2)
