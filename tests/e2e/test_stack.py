"""The stack tasks, run as a user runs them: `invoke stack.*` in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
)
from sqlalchemy import text

from herald.db.engine import make_engine
from herald.runtime import stack
from herald.runtime.compose import compose_argv, docker_available
from herald.webhooks import verify
from tests.support.waiting import wait_for
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).parents[2]
TASKS = {
    "app.run",
    "app.gen-api-spec",
    "app.gen-asyncapi-spec",
    "db.create",
    "db.drop",
    "db.migrate",
    "seed.database",
    "seed.kafka",
    "sim.run",
    "stack.up",
    "stack.down",
    "stack.destroy",
    "stack.ps",
    "stack.logs",
    "stack.build-service",
    "linting.lint",
    "linting.type-check",
    "testing.tests",
    "testing.coverage",
    "bench.run",
}


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    return {**env, "HERALD_HOME": str(home), **extra}


def invoke(
    home: Path, *args: str, timeout: float = 240, answer: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=answer,
    )


def test_invoke_list_shows_every_task_with_a_description(tmp_path: Path) -> None:
    done = invoke(tmp_path, "--list")
    assert done.returncode == 0, done.stderr
    listed = {}
    for line in done.stdout.splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and "." in parts[0]:
            listed[parts[0]] = parts[1]
    assert set(listed) >= TASKS, TASKS - set(listed)
    for name in TASKS:
        assert len(listed[name]) > 10, name


@pytest.mark.skipif(docker_available(), reason="checks the path taken without a Docker engine")
def test_without_docker_bad_profiles_and_engines_are_refused_and_nothing_runs(
    tmp_path: Path,
) -> None:
    done = invoke(tmp_path, "stack.up", "--profile=cluster", "--engine", "tansu")
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "--profile=cluster runs three Apache Kafka brokers: not --engine tansu",
    )
    two = invoke(tmp_path, "stack.up", "--engine", "kafka", "--brokers", "2")
    assert two.returncode == 2
    assert "--brokers 2: a local Apache Kafka cluster has 1 or 3 brokers" in two.stderr
    assert invoke(tmp_path, "stack.up", "--profile=nope").returncode == 2
    ps = invoke(tmp_path, "stack.ps")
    assert ps.stdout.strip() == "no local stack is running (stack.up)"
    down = invoke(tmp_path, "stack.down")
    assert down.stdout.strip() == "no local stack is running"
    build = invoke(tmp_path, "stack.build-service", "web")
    assert build.returncode == 1
    assert "needs a Docker engine" in build.stderr
    assert invoke(tmp_path, "stack.build-service", "nope").returncode == 2


def _stack_processes(home: Path) -> list[psutil.Process]:
    """supervisord and everything under it, and whatever names the stack's home (Postgres)."""
    found = {}
    with contextlib.suppress(FileNotFoundError, ValueError, psutil.NoSuchProcess):
        supervisord = psutil.Process(int((home / "stack" / "supervisord.pid").read_text()))
        found = {p.pid: p for p in [supervisord, *supervisord.children(recursive=True)]}
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(home) in part for part in proc.info["cmdline"] or ()):
            found.setdefault(proc.pid, proc)
    found.pop(os.getpid(), None)
    return list(found.values())


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[Path]:
    if docker_available():
        pytest.skip("a Docker engine is present: stack.up drives docker compose there")
    home = tmp_path / "home"
    try:
        yield home
    finally:
        invoke(home, "stack.down")


def _http_json(url: str, body: dict[str, Any] | None = None) -> Any:
    """GET ``url``, or POST ``body`` to it; the JSON answer (any status but 2xx fails)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _ps(home: Path) -> dict[str, Any]:
    done = invoke(home, "stack.ps", "--json")
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _submit_exact(home: Path, state: dict[str, Any], messages: int, **env: str) -> str:
    """A run asked for over herald.runs, as any client would, followed on herald.control to
    its summary (the stack's state names where Kafka and Postgres are): exactly ``messages``
    outcomes, in the summary and in Postgres. The run's id."""
    env |= {
        "HERALD_KAFKA_BOOTSTRAP": state["kafka_bootstrap"],
        "HERALD_DATABASE_URL": state["database_url"],
    }
    out = home / "submitted.json"
    submit = subprocess.run(
        [str(Path(sys.executable).with_name("herald")), "submit", "--messages", str(messages),
         "--wait", "--json", str(out), "--timeout", "120"],
        env=_env(home, **env),
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert submit.returncode == 0, submit.stdout + submit.stderr
    summary = json.loads(out.read_text())
    run_id: str = summary["run_id"]
    assert summary["total"] == summary["outcomes_in_database"] == messages
    assert summary["sent"] + summary["failed"] == messages
    assert summary["recorder_counts"] == {
        k: summary[f"{k}_in_database"] for k in ("sent", "failed") if summary[f"{k}_in_database"]
    }
    assert set(summary["senders"]) <= {"0", "1", "2", "3"}
    assert "outcomes in Postgres" in submit.stdout and f"{messages:,} (" in submit.stdout
    engine = make_engine(state["database_url"])
    try:

        def recorded() -> tuple[int, int, int] | None:
            with engine.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT r.succeeded + r.failed, (SELECT count(*) FROM outcomes o "
                        "WHERE o.run_id = r.run_id), r.expected FROM runs r WHERE run_id = :r"
                    ),
                    {"r": run_id},
                ).first()
            return (row[0], row[1], row[2]) if row and row[1] >= messages else None

        totals = wait_for(recorded, 120, f"run {run_id}: {messages} outcomes in Postgres")
    finally:
        engine.dispose()
    assert totals == (messages, messages, messages)
    return run_id


def test_local_stack_all_profile_runs_a_submitted_run_and_stops_cleanly(local_stack: Path) -> None:
    home = local_stack
    up = invoke(home, "stack.up", "--profile=all", "--timeout=180")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "no Docker engine: starting profile all as local processes" in up.stdout

    ps = _ps(home)
    services = {s["name"]: s for s in ps["services"]}
    expected = {"broker", "postgres", "migrate", "producer", "monitor", "recorder", "web"}
    expected |= {"scheduler", "notifier", "spaceship", "ingestor"}
    # A sender per profile of the registry's expansion, each its own --id.
    expected |= {s.name for s in stack.stack_services() if s.service.scaling == "profiles"}
    assert {f"sender-{i}" for i in range(4)} <= expected
    assert set(services) == expected
    assert all(s["healthy"] is True for s in services.values()), services
    assert services["migrate"]["state"] == "EXITED"
    running = {n: s["pid"] for n, s in services.items() if n != "migrate"}
    assert all(services[n]["state"] == "RUNNING" for n in running)
    assert all(psutil.pid_exists(pid) for pid in running.values())
    state = ps["state"]
    assert state["profile"] == "all"
    table = invoke(home, "stack.ps").stdout
    for name in expected:
        assert name in table

    run_id = _submit_exact(home, state, 400)
    logs = invoke(home, "stack.logs", "producer", "--lines", "200")
    assert f"run {run_id} (sms): producing 400 records" in logs.stdout

    # The timer service's own demo, on the stack's web tier (gunicorn, two processes): a timer
    # 2 s ahead, counting down, then one signed POST {"id": ...} to the receiver.
    web_servers = [p for p in _stack_processes(home) if "gunicorn" in " ".join(p.cmdline())]
    assert len(web_servers) == 3  # the master and two workers
    with WebhookReceiver() as rx:
        created = _http_json(
            f"{state['web_url']}/timer",
            {"hours": 0, "minutes": 0, "seconds": 2, "url": rx.url("/hook")},
        )
        timer = _http_json(f"{state['web_url']}/timer/{created['id']}")
        assert timer["state"] == "scheduled" and 0 < timer["time_left"] <= 2
        rx.wait_for_requests(1, timeout=60)
        fired = wait_for(
            lambda: (
                (t := _http_json(f"{state['web_url']}/timer/{created['id']}"))["state"]
                == "delivered"
                and t
            ),
            30,
            "the timer delivered",
        )
        [request] = rx.requests()
    assert request.path == "/hook" and json.loads(request.body) == {"id": created["id"]}
    assert request.webhook_id == created["id"]
    secret = (home / "webhook-secret").read_text().strip()
    verify([secret], headers=request.headers, body=request.body)  # raises if not signed by it
    assert request.arrived_at >= datetime.fromisoformat(created["due_at"]).timestamp()
    assert fired["time_left"] == 0 and fired["attempts"] == 1 and fired["last_status"] == 200

    # Up again: the same profile is a no-op, another one is refused with the way out.
    again = invoke(home, "stack.up", "--profile=all")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith(f"profile all is already up in {home / 'stack'}\n")
    other = invoke(home, "stack.up", "--profile=testing")
    assert other.returncode == 1
    assert other.stderr.strip() == (
        f"profile all is up in {home / 'stack'}: `poetry run invoke stack.down`, "
        "then stack.up --profile=testing"
    )
    usage = invoke(home, "stack.logs", "--help")
    assert usage.returncode == 0 and "Usage: inv[oke] [--core-opts] stack.logs" in usage.stdout
    kept = invoke(home, "stack.destroy", answer="n\n")
    assert (kept.returncode, kept.stderr.strip()) == (1, "nothing deleted")
    assert _ps(home)["state"]["profile"] == "all"  # still up

    before = _stack_processes(home)
    assert set(running.values()) <= {p.pid for p in before}
    assert any("postgres" in p.name() for p in before)  # the server itself, not only its wrapper
    down = invoke(home, "stack.down")
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "stack stopped"
    assert [p.pid for p in before if p.is_running()] == []
    assert _stack_processes(home) == []
    assert invoke(home, "stack.ps").stdout.strip() == "no local stack is running (stack.up)"
    gone = invoke(home, "stack.destroy", "--yes")
    assert gone.stdout.strip() == f"stack stopped; deleted {home / 'stack'} and {home / 'pgdata'}"
    assert not (home / "pgdata").exists()
    nothing = invoke(home, "stack.destroy", "--yes")
    assert nothing.stdout.strip() == f"nothing to delete: no stack data in {home}"


@pytest.mark.skipif(not docker_available(), reason="no Docker engine here (docker info failed)")
def test_compose_testing_profile_comes_up_healthy(tmp_path: Path) -> None:  # pragma: no cover
    home = tmp_path / "home"
    try:
        up = invoke(home, "stack.up", "--profile=testing", timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        ps = subprocess.run(
            compose_argv(ROOT, ("testing",), "ps", "--format", "json"),
            capture_output=True,
            text=True,
            env={**os.environ, "POSTGRES_PASSWORD": "unused-for-ps"},
            check=True,
        )
        rows = [json.loads(line) for line in ps.stdout.splitlines() if line.strip()]
        assert {r["Service"] for r in rows} == set(stack.services("testing"))
        assert all(r["Health"] == "healthy" for r in rows), rows
    finally:
        invoke(home, "stack.destroy", "--yes", timeout=300)


@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_without_docker_the_cluster_profile_is_three_apache_kafka_nodes_with_replicated_topics(
    local_stack: Path, kafka_dist: Path
) -> None:
    home = local_stack
    up = invoke(home, "stack.up", "--profile=cluster", "--timeout=400", timeout=500,
                KAFKA_HOME=str(kafka_dist))  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.startswith(
        f"no Docker engine: starting profile cluster as local processes in {home / 'stack'}, "
        "broker Apache Kafka (3 nodes)\n"
    )
    assert "profile cluster (local processes, supervisord; broker: Apache Kafka, 3 nodes)" in (
        up.stdout
    )
    ps = _ps(home)
    state = ps["state"]
    assert (state["profile"], state["engine"], state["brokers"]) == ("cluster", "kafka", 3)
    bootstrap = state["kafka_bootstrap"].split(",")
    assert len(bootstrap) == len(set(bootstrap)) == 3
    services = {s["name"]: s for s in ps["services"]}
    assert services["broker"]["healthy"] is True
    assert all(s["healthy"] is True for s in services.values()), services
    # The three nodes run under the stack's wrapper, each with its own data in the home.
    nodes = [p for p in _stack_processes(home) if "kafka.Kafka" in p.cmdline()]
    assert len(nodes) == 3

    admin = AdminClient({"bootstrap.servers": state["kafka_bootstrap"]})
    metadata = admin.list_topics(timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    outbound = next(name for name in metadata.topics if name.endswith("herald.sms.outbound"))
    partitions = metadata.topics[outbound].partitions
    assert partitions and all(len(p.replicas) == 3 for p in partitions.values())
    resource = ConfigResource(ConfigResource.Type.TOPIC, outbound)
    [configs] = admin.describe_configs([resource]).values()
    assert configs.result(timeout=10)["min.insync.replicas"].value == "2"

    _submit_exact(home, state, 400)

    before = _stack_processes(home)
    down = invoke(home, "stack.down", timeout=120)
    assert (down.returncode, down.stdout.strip()) == (0, "stack stopped"), down.stderr
    assert [p.pid for p in before if p.is_running()] == []
    assert _stack_processes(home) == []
