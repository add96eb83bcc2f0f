from __future__ import annotations

import logging
import signal
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
    assert f"stubborn (pid {stubborn.pid}) did not stop in 0.5s: killing it" in caplog.text
    assert stubborn.tail() == "started"


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
