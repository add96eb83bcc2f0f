from __future__ import annotations

import socket
from pathlib import Path

import pytest

from herald.errors import BrokerError
from herald.runtime import compose
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.ports import free_port, wait_for_port


def test_wait_for_port_gives_up_on_a_closed_port() -> None:
    assert wait_for_port("127.0.0.1", free_port(), timeout=0.2) is False


def test_broker_that_cannot_listen_is_reported_and_cleaned_up(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: nobody can connect, nor bind
        port = taken.getsockname()[1]
        broker = EmbeddedBroker(port=port, log_path=tmp_path / "broker.log")
        with pytest.raises(BrokerError, match=f"did not start on 127.0.0.1:{port} in 1s"):
            broker.start(timeout=1)
    assert broker.pid is None  # stopped: nothing left running


def fake_docker(folder: Path, body: str, *, executable: bool = True) -> None:
    script = folder / "docker"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755 if executable else 0o644)


@pytest.mark.parametrize(
    ("body", "executable", "expected"),
    [("exit 0", True, True), ("exit 1", True, False), ("exit 0", False, False)],
)
def test_docker_engine_detection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, executable: bool, expected: bool
) -> None:
    fake_docker(tmp_path, body, executable=executable)
    monkeypatch.setenv("PATH", str(tmp_path))
    if not executable:
        # which() skips a file it cannot run; make it find this one anyway.
        monkeypatch.setattr(compose.shutil, "which", lambda _name: str(tmp_path / "docker"))
    assert compose.docker_available() is expected


def test_no_docker_client_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compose.docker_available() is False


def test_a_transactional_call_is_retried_until_told_to_give_up() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from herald.services.worker import retrying

    calls: list[int] = []

    def commit() -> None:
        calls.append(len(calls) + 1)
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "timed out", retriable=True))

    with pytest.raises(KafkaException, match="timed out"):
        retrying(commit, what="committing", attempts=10, give_up=lambda: len(calls) >= 3)
    assert calls == [1, 2, 3]  # not 10: told to give up after the third
    calls.clear()
    with pytest.raises(KafkaException):
        retrying(commit, what="committing", attempts=4)
    assert calls == [1, 2, 3, 4]
