from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from herald import kafka
from herald.config import KafkaSettings
from herald.errors import BrokerError
from herald.runtime.processes import ProcessGroup, ServiceProcess, child_environment, herald_command
from herald.waiting import Episode


def test_stubborn_process_is_killed_after_the_grace_period(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    group = ProcessGroup()
    ready = tmp_path / "ready"
    stubborn = group.add(
        ServiceProcess(
            "stubborn",
            ["sh", "-c", f"trap '' TERM; echo started; touch {ready}; sleep 30"],
            log_path=tmp_path / "stubborn.log",
        )
    )
    group.add(ServiceProcess("polite", ["sleep", "30"], log_path=tmp_path / "p.log"))
    while not ready.exists():  # the trap must be in place before the signal
        assert stubborn.poll() is None
    assert group.exited() == []
    codes = group.stop(timeout=0.5)
    assert codes == {"stubborn": -signal.SIGKILL, "polite": -signal.SIGTERM}
    assert {m.name for m in group.exited()} == {"stubborn", "polite"}
    assert group.killed == ["stubborn"]  # sim names it: "stubborn did not stop within ..."
    assert group.stop(timeout=0.5) == codes and group.killed == []  # the last stop's only
    assert f"stubborn (pid {stubborn.pid}) did not stop in 0.5s: killing it" in caplog.text
    assert stubborn.tail() == "started"


STUCK_SERVICE = """
import os, signal, threading
from herald.services import common

common.STUCK_AFTER_SECS = 0.1
stop = threading.Event()
common.install_signal_handlers(stop)
os.kill(os.getpid(), signal.SIGTERM)
print("stop set" if stop.is_set() else "stop not set", flush=True)

def flushing_for_ever():
    threading.Event().wait(60)

flushing_for_ever()
"""


def test_a_service_still_stopping_after_the_signal_says_where_it_is() -> None:
    """So that a service the run's group kills for not stopping in time leaves in its log
    what it was waiting for."""
    with subprocess.Popen(
        [sys.executable, "-c", STUCK_SERVICE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            assert proc.stdout.readline() == "stop set\n"
            lines = []
            for line in proc.stderr:  # until the stack of the main thread has been written
                lines.append(line)
                if "in flushing_for_ever" in line:
                    break
        finally:
            proc.kill()
    text = "".join(lines)
    assert "Timeout (0:00:00.100000)!" in text
    assert 'File "<string>", line 12 in flushing_for_ever' in text
    assert text.index("in wait") < text.index("in flushing_for_ever")  # most recent call first


def test_children_do_not_inherit_herald_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_KAFKA_BOOTSTRAP", "x:1")
    monkeypatch.setenv("UNRELATED", "kept")
    env = child_environment({"HERALD_DATABASE_URL": "postgresql://h/db"})
    assert "HERALD_KAFKA_BOOTSTRAP" not in env
    assert env["UNRELATED"] == "kept" and env["HERALD_DATABASE_URL"] == "postgresql://h/db"
    assert herald_command("sender", "--id", "1") == [
        str(Path(sys.executable).with_name("herald")),
        "sender",
        "--id",
        "1",
    ]


def test_fatal_kafka_errors_raise_and_retriable_ones_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    episode = Episode(logging.getLogger("test"), "Kafka error in there")
    with pytest.raises(BrokerError, match="fatal Kafka error: boom"):
        kafka.raise_if_fatal(KafkaError(KafkaError._FATAL, "boom", fatal=True), episode)
    caplog.set_level(logging.WARNING)
    for _ in range(3):  # an episode: logged once, however often it is seen
        kafka.raise_if_fatal(KafkaError(KafkaError._TRANSPORT, "blip", retriable=True), episode)
    kafka.raise_if_fatal(KafkaError(KafkaError._PARTITION_EOF), episode)  # not an error
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["Kafka error in there: blip (retriable=True)"]
    assert episode.count == 1 and episode.active


def test_clients_need_a_bootstrap() -> None:
    with pytest.raises(BrokerError, match=r"kafka\.bootstrap is unset"):
        kafka.producer_config(KafkaSettings())
