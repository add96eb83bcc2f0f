"""The `herald` command and the invoke front door."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import IO, Any

from sqlalchemy import make_url, text

from herald import contracts
from herald.config import Settings
from herald.db.engine import make_engine
from herald.runtime.database import EmbeddedDatabase
from herald.runtime.ports import free_port
from herald.scenarios import base
from tests.support.processes import HERALD, INVOKE, ROOT, clean_env, processes_under, service_of
from tests.support.timers import SECRET
from tests.support.topics import read_topic
from tests.support.waiting import wait_for
from tests.support.webhook_receiver import WebhookReceiver


def run(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), env=clean_env(**env), capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_usage_and_unknown_command() -> None:
    assert run(HERALD, "--help").returncode == 0
    bare = run(HERALD)
    assert bare.returncode == 2 and "usage: herald <command>" in bare.stdout
    bad = run(HERALD, "frobnicate")
    assert bad.returncode == 2 and "unknown command 'frobnicate'" in bad.stderr


def test_service_with_a_bad_setting_exits_2(tmp_path: Path) -> None:
    proc = run(HERALD, "sender", "--id", "0", HERALD_SENDERS='[{"failure_rate": -0.5}]')
    assert proc.returncode == 2
    assert (
        "senders[0].failure_rate = -0.5: Input should be greater than or equal to 0" in proc.stderr
    )


def test_unknown_sender_id_exits_2() -> None:
    proc = run(
        HERALD,
        "sender",
        "--id",
        "7",
        HERALD_KAFKA_BOOTSTRAP="127.0.0.1:1",
        HERALD_KAFKA_CONNECT_TIMEOUT_SECS="0.5",
    )
    # Checked before anything else, even before waiting for the (unreachable) broker.
    assert proc.returncode == 2
    assert "--id 7: no such worker; the settings define 4 (ids 0-3)" in proc.stderr


def test_broker_unreachable_gives_up_with_exit_3() -> None:
    port = free_port()
    for service in ("producer", "monitor"):
        proc = run(
            HERALD,
            service,
            HERALD_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
            HERALD_KAFKA_CONNECT_TIMEOUT_SECS="1",
        )
        assert proc.returncode == 3, proc.stderr
        assert (
            f"Kafka at 127.0.0.1:{port} unreachable after 1s (kafka.connect_timeout_secs)"
            in proc.stderr
        )
        assert f"waiting for Kafka at 127.0.0.1:{port}" in proc.stderr


def test_recorder_without_database_exits_4(broker) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = run(
        HERALD,
        "recorder",
        HERALD_KAFKA_BOOTSTRAP=broker.bootstrap,
        HERALD_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/x",
        HERALD_DATABASE_CONNECT_TIMEOUT_SECS="1",
    )
    assert proc.returncode == 4, proc.stderr
    assert "unreachable after 1s (database.connect_timeout_secs)" in proc.stderr


def test_submit_prints_a_run_id(broker, namespace: str) -> None:  # type: ignore[no-untyped-def]
    proc = run(
        HERALD,
        "submit",
        "--messages",
        "5",
        HERALD_KAFKA_BOOTSTRAP=broker.bootstrap,
        HERALD_KAFKA_NAMESPACE=namespace,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip()) == 12
    bad = run(HERALD, "submit", "--messages", "-3", HERALD_KAFKA_BOOTSTRAP=broker.bootstrap)
    assert bad.returncode == 2 and "Expected `int` >= 1 - at `$.messages`" in bad.stderr


def test_submit_wait_needs_a_database_and_gives_up_at_its_timeout(
    broker,
    database,
    namespace: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    env = {"HERALD_KAFKA_BOOTSTRAP": broker.bootstrap, "HERALD_KAFKA_NAMESPACE": namespace}
    no_db = run(HERALD, "submit", "--messages", "5", "--wait", **env)
    assert no_db.returncode == 2
    assert "--wait re-counts the run in Postgres: set database.url (HERALD_DATABASE_URL)" in (
        no_db.stderr
    )
    # No services are running: the run is asked for, and never completes.
    out = tmp_path / "summary.json"
    waited = run(
        HERALD, "submit", "--messages", "5", "--wait", "--timeout", "1", "--json", str(out),
        HERALD_DATABASE_URL=database.url, **env,
    )  # fmt: skip
    assert waited.returncode == 1
    assert re.search(r"run (\w+) submitted; waiting for it to complete", waited.stdout)
    assert re.search(r"run \w+ not complete after 1s", waited.stdout), waited.stdout
    assert not out.exists()


def test_db_tasks_create_migrate_drop(database: EmbeddedDatabase) -> None:
    name = f"herald_{uuid.uuid4().hex[:8]}"
    url = make_url(database.url or "").set(database=name).render_as_string(hide_password=False)
    created = run(INVOKE, "db.create", HERALD_DATABASE_URL=url)
    assert created.returncode == 0 and "created: " in created.stdout
    again = run(INVOKE, "db.create", HERALD_DATABASE_URL=url)
    assert "already exists" in again.stdout
    migrated = run(INVOKE, "db.migrate", HERALD_DATABASE_URL=url)
    assert migrated.returncode == 0 and "migrated: " in migrated.stdout
    via_cli = run(HERALD, "migrate", HERALD_DATABASE_URL=url)
    assert via_cli.returncode == 0
    dropped = run(INVOKE, "db.drop", HERALD_DATABASE_URL=url)
    assert dropped.returncode == 0 and "dropped: " in dropped.stdout
    assert "no such database" in run(INVOKE, "db.drop", HERALD_DATABASE_URL=url).stdout


def test_invoke_lists_every_task_with_a_description() -> None:
    proc = run(INVOKE, "--list")
    assert proc.returncode == 0
    for name in (
        "sim.run",
        "testing.tests",
        "testing.coverage",
        "linting.lint",
        "linting.type-check",
        "db.create",
        "db.drop",
        "db.migrate",
        "bench.run",
    ):
        line = next(x for x in proc.stdout.splitlines() if x.strip().startswith(name + " "))
        assert len(line.split()) > 2, line


def test_seed_config_is_valid() -> None:
    from herald.config import load_settings

    s = load_settings(ROOT / "seed" / "config.json")
    raw = json.loads((ROOT / "seed" / "config.json").read_text())
    assert s.producer.num_messages == raw["producer"]["num_messages"]
    assert [(x.mean_wait_time, x.failure_rate) for x in s.senders] == [
        (x["mean_wait_time"], x["failure_rate"]) for x in raw["sender"]
    ]


def test_python_dash_m_herald() -> None:
    proc = run(sys.executable, "-m", "herald", "--help")
    assert proc.returncode == 0 and "usage: herald <command>" in proc.stdout


def test_migrate_needs_a_url_and_submit_needs_a_broker() -> None:
    proc = run(HERALD, "migrate")
    assert proc.returncode == 2 and "database.url is unset (HERALD_DATABASE_URL)" in proc.stderr
    port = free_port()
    proc = run(
        HERALD,
        "submit",
        HERALD_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
        HERALD_KAFKA_CONNECT_TIMEOUT_SECS="1",
    )
    assert proc.returncode == 3 and "unreachable after 1s" in proc.stderr
    bad = run(HERALD, "migrate", HERALD_KAFKA_PARTITIONS="0")
    assert bad.returncode == 2 and 'kafka.partitions = "0"' in bad.stderr


def start_web(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``herald web`` on a free port, its log (stderr) piped."""
    return subprocess.Popen(
        [HERALD, "web", "--port", "0", *args], env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )


def web_url_from(stderr: IO[str], server: str) -> str:
    """The base URL ``herald web`` announces on its log (stderr)."""
    for line in stderr:
        found = re.search(rf"herald web on (http://127\.0\.0\.1:\d+) \({server}", line)
        if found:
            return found.group(1)
    raise AssertionError("herald web exited without announcing its URL")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_herald_web_serves_the_configured_stack_until_sigterm(
    broker,
    database,
    namespace: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    env = clean_env(
        HERALD_HOME=str(tmp_path),
        HERALD_KAFKA_BOOTSTRAP=broker.bootstrap,
        HERALD_KAFKA_NAMESPACE=namespace,
        HERALD_DATABASE_URL=database.url or "",
    )
    with start_web(env, "--no-services") as proc:
        assert proc.stderr is not None
        url = web_url_from(proc.stderr, "waitress")
        health = get_json(f"{url}/api/health")
        assert health["database"]["ok"] is True and health["broker"]["ok"] is True
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(30) == 0
    assert "herald web stopped" in rest


def test_web_workers_serve_from_several_processes_on_one_port_and_die_with_herald_web(
    broker,
    database,
    namespace: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    env = clean_env(
        HERALD_HOME=str(tmp_path),
        HERALD_KAFKA_BOOTSTRAP=broker.bootstrap,
        HERALD_KAFKA_NAMESPACE=namespace,
        HERALD_DATABASE_URL=database.url or "",
        HERALD_WEB_WORKERS="2",
    )
    with start_web(env, "--no-services", "--threads", "4") as proc:
        assert proc.stderr is not None
        url = web_url_from(proc.stderr, "gunicorn, 2 processes x 4 threads")
        # gunicorn's master and its two workers (forks: the same command line).
        servers = processes_under(tmp_path / "web")
        assert len(servers) == 3, [p.info["cmdline"] for p in servers]
        assert len({p.ppid() for p in servers}) == 2  # herald web's child, and its children
        post = urllib.request.Request(
            f"{url}/timer",
            data=json.dumps({"hours": 1, "minutes": 0, "seconds": 0, "url": "http://127.0.0.1:9/h"})
            .encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(post, timeout=10) as response:
            assert response.status == 201
            created = json.loads(response.read())
        # Whichever process answers, the timer is there (Postgres holds it, not a process).
        seen = [get_json(f"{url}/timer/{created['id']}") for _ in range(10)]
        assert {(t["id"], t["state"]) for t in seen} == {(created["id"], "scheduled")}
        proc.kill()  # SIGKILL: no chance to stop gunicorn itself
        proc.wait(30)
    wait_for(lambda: processes_under(tmp_path / "web") == [], 30, "gunicorn to stop with it")


def test_herald_web_on_an_embedded_broker_runs_its_services_and_completes_a_posted_run(
    database,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """`invoke app.run` on a fresh machine: the broker is embedded, so herald web starts the
    producer, senders and recorder itself; a run posted to the API completes, exactly."""
    env = clean_env(
        HERALD_HOME=str(tmp_path),
        HERALD_DATABASE_URL=database.url or "",
        # The session's database is shared: other tests' unfinished runs would count.
        HERALD_LIMITS_MAX_CONCURRENT_RUNS="100000",
        # Its services sign with this (the settings file they get leaves secrets out).
        HERALD_TIMERS_SIGNING_SECRETS=json.dumps([SECRET]),
    )
    with start_web(env, "--dev") as proc, WebhookReceiver(secrets=[SECRET]) as rx:
        assert proc.stderr is not None
        try:
            url = web_url_from(proc.stderr, "Flask development server")
            body = {
                "messages": 3000,
                "seed": 7,
                "callback_url": rx.url("/done"),
                "status_callback_url": rx.url("/status"),
            }
            post = urllib.request.Request(
                f"{url}/api/runs",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(post, timeout=30) as response:
                assert response.status == 202
                accepted = json.loads(response.read())
            run = wait_for(
                lambda: (r := get_json(f"{url}{accepted['url']}"))["status"] == "completed" and r,
                90,
                "the run finished",
            )
            rx.wait_until(
                lambda: len(rx.requests("/status")) >= 3000 and len(rx.requests("/done")) >= 1,
                timeout=120,
                what="3,000 status callbacks and the completion callback",
            )
            services = {service_of(p.cmdline()) for p in processes_under(tmp_path / "web")}
        finally:
            proc.send_signal(signal.SIGTERM)
            rest = proc.stderr.read()
            code = proc.wait(30)
        received = rx.requests()
    assert code == 0
    run_id = accepted["run_id"]
    # Every callback signed with the configured secret, each sent once (no fault here).
    assert [r.verify_error for r in received if not r.verified] == []
    [done] = [r for r in received if r.path == "/done"]
    completion = json.loads(done.body)
    assert done.webhook_id == completion["id"] == f"run-{run_id}-completed"
    assert completion["type"] == "run.completed" and completion["run_id"] == run_id
    assert completion["expected"] == 3000
    assert completion["counts"] == {k: run[k] for k in ("sent", "failed") if run[k]}
    statuses = [json.loads(r.body) for r in received if r.path == "/status"]
    assert len(statuses) == 3000
    by_message = {s["message_id"]: s for s in statuses}
    assert len(by_message) == 3000  # none twice
    assert {s["id"] for s in statuses} == {f"{m}-status" for m in by_message}
    assert {s["run_id"] for s in statuses} == {run_id}
    engine = make_engine(database.url)
    try:
        with engine.connect() as conn:
            stored = dict(
                conn.execute(
                    text("SELECT message_id, status FROM outcomes WHERE run_id = :r"),
                    {"r": run_id},
                ).all()
            )
    finally:
        engine.dispose()
    assert {m: s["status"] for m, s in by_message.items()} == stored
    assert (run["expected"], run["done"], run["remaining"]) == (3000, 3000, 0)
    assert run["sent"] + run["failed"] == 3000
    assert sum(s["sent"] + s["failed"] for s in run["senders"]) == 3000
    assert services == {
        "sender --id 0",
        "sender --id 1",
        "sender --id 2",
        "sender --id 3",
        "producer",
        "monitor",
        "recorder",
        "scheduler",
        "notifier",
    }
    assert "herald web stopped" in rest
    assert processes_under(tmp_path / "web") == []  # every service stopped with it


def test_submit_passes_the_callback_urls_and_refuses_one_it_may_not_call(  # type: ignore[no-untyped-def]
    broker, namespace: str
) -> None:
    env = {"HERALD_KAFKA_BOOTSTRAP": broker.bootstrap, "HERALD_KAFKA_NAMESPACE": namespace}
    proc = run(
        HERALD, "submit", "--messages", "5",
        "--callback-url", "http://127.0.0.1:9/done",
        "--status-callback-url", "http://127.0.0.1:9/each",
        **env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    settings = Settings.model_validate(
        {"kafka": {"bootstrap": broker.bootstrap, "namespace": namespace}}
    )
    [record] = read_topic(settings, contracts.RUNS.qualified(namespace), 1)
    request = base.decode_request(record.value())
    assert (request.run_id, request.callback_url, request.status_callback_url) == (
        proc.stdout.strip(),
        "http://127.0.0.1:9/done",
        "http://127.0.0.1:9/each",
    )
    refused = run(
        HERALD, "submit", "--messages", "5", "--callback-url", "http://169.254.169.254/x", **env
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("herald: --callback-url http://169.254.169.254/x: "), (
        refused.stderr
    )
