"""Pieces of the stack tasks that need neither a broker, a database nor Docker."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from herald.config import load_settings
from herald.runtime import stack
from herald.runtime.compose import compose_argv, compose_environment
from herald.runtime.local_stack import (
    LocalStack,
    ServiceStatus,
    StackState,
    format_status,
    show_logs,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.unit


def test_compose_argv_names_the_file_project_and_profiles(tmp_path: Path) -> None:
    assert compose_argv(tmp_path, ("all", "dev"), "up", "--wait") == [
        "docker", "compose", "-f", str(tmp_path / "docker-compose.yml"),
        "--project-name", "herald", "--profile", "all", "--profile", "dev", "up", "--wait",
    ]  # fmt: skip


def test_compose_environment_keeps_one_generated_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTGRES_PASSWORD", raising=False)
    first = compose_environment(tmp_path, "cluster")
    assert first["KAFKA_REPLICATION_FACTOR"] == "3"
    assert len(first["POSTGRES_PASSWORD"]) >= 24
    assert (tmp_path / "stack" / "postgres-password").stat().st_mode & 0o777 == 0o600
    assert compose_environment(tmp_path, "all")["POSTGRES_PASSWORD"] == first["POSTGRES_PASSWORD"]
    monkeypatch.setenv("POSTGRES_PASSWORD", "from-the-environment")
    assert compose_environment(tmp_path, "all")["POSTGRES_PASSWORD"] == "from-the-environment"


def test_compose_environment_gives_the_web_app_a_token_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HERALD_WEB_API_TOKEN", raising=False)
    first = compose_environment(tmp_path, "all")["HERALD_WEB_API_TOKEN"]
    assert len(first) >= 24 and first != compose_environment(tmp_path, "all")["POSTGRES_PASSWORD"]
    assert (tmp_path / "stack" / "web-api-token").read_text() == first
    assert (tmp_path / "stack" / "web-api-token").stat().st_mode & 0o777 == 0o600
    assert compose_environment(tmp_path, "dev")["HERALD_WEB_API_TOKEN"] == first


def test_unknown_profiles_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile 'prod': choose one of testing, dev"):
        stack.services("prod")


def test_a_long_home_gets_a_short_control_socket(tmp_path: Path) -> None:
    short = LocalStack(load_settings(overrides={"home": str(tmp_path)}))
    assert short.socket == tmp_path.resolve() / "stack" / "supervisor.sock"
    deep = tmp_path / ("x" * 120)
    long = LocalStack(load_settings(overrides={"home": str(deep)}))
    assert long.socket.name.startswith("herald-stack-")
    assert len(str(long.socket)) < 100


def test_format_status_shows_every_process_and_the_endpoints() -> None:
    text = format_status(
        [
            ServiceStatus("broker", "RUNNING", 11, True, "pid 11, uptime 0:00:05"),
            ServiceStatus("migrate", "EXITED", None, True, "exited"),
            ServiceStatus("web", "STARTING", 13, None, ""),
        ],
        StackState("all", "127.0.0.1:9092", "postgresql://x@/herald", "http://127.0.0.1:8000"),
    )
    assert text.splitlines() == [
        "SERVICE  STATE     PID  HEALTH   DETAIL",
        "broker   RUNNING   11   healthy  pid 11, uptime 0:00:05",
        "migrate  EXITED    -    healthy  exited",
        "web      STARTING  13   -",
        "",
        "profile all (local processes, supervisord; broker: Tansu, embedded)",
        "HERALD_KAFKA_BOOTSTRAP=127.0.0.1:9092",
        "HERALD_DATABASE_URL=postgresql://x@/herald",
        "web: http://127.0.0.1:8000/",
    ]
    cluster = StackState("cluster", "h:1,h:2,h:3", "postgresql://x@/herald", None, "", "kafka", 3)
    assert format_status([], cluster).splitlines()[2:4] == [
        "profile cluster (local processes, supervisord; broker: Apache Kafka, 3 nodes)",
        "HERALD_KAFKA_BOOTSTRAP=h:1,h:2,h:3",
    ]


def test_the_cluster_profile_is_three_apache_kafka_nodes_and_others_follow_the_settings(
    tmp_path: Path,
) -> None:
    default = LocalStack(load_settings(overrides={"home": str(tmp_path)}))
    assert default.engine("all") == ("tansu", 1)
    assert default.engine("cluster") == ("kafka", 3)
    one = LocalStack(load_settings(overrides={"home": str(tmp_path), "kafka": {"engine": "kafka"}}))
    assert one.engine("testing") == ("kafka", 1)


def test_show_logs_prints_the_tails_then_follows_new_lines(tmp_path: Path) -> None:
    local = LocalStack(load_settings(overrides={"home": str(tmp_path)}))
    local.logs.mkdir(parents=True)
    local.log_path("a").write_text("a1\na2\na3\n")
    local.log_path("bb").write_text("b1\n")
    assert local.log_names() == ["a", "bb"]
    lines: list[str] = []
    show_logs(local, ["a", "bb"], lines.append, lines=2)
    assert lines == ["a  | a2", "a  | a3", "bb | b1"]

    followed: list[str] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=show_logs, args=(local, ["bb"], followed.append), kwargs={"lines": 1, "stop": stop}
    )
    worker.start()
    try:
        wait_for(lambda: followed == ["b1"], 10, "the tail")
        with local.log_path("bb").open("a") as f:
            f.write("b2\n")
        wait_for(lambda: followed == ["b1", "b2"], 10, "the appended line")
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()
