"""Faults rehearsed with ``sim.run --incident``: real processes killed, paused, restarted, a
real database stopped; every run must still end with exactly one outcome per message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from herald.kafka import EMBEDDED_SESSION_TIMEOUT_MS
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from tests.support.processes import (
    HERALD,
    clean_env,
    external,
    is_service,
    outcome_count,
    outcome_rows,
    run_id_of,
    service_of,
)
from tests.support.waiting import wait_for


def sim(env: dict[str, str], tmp_path: Path, *args: str) -> tuple[dict, str]:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [
            HERALD,
            "sim",
            "--json",
            str(out),
            "--monitor-output",
            str(tmp_path / "progress.log"),
            "--mean-wait",
            "0.005",
            "--max-in-flight",
            "500",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


def assert_exact(summary: dict, n: int) -> None:
    assert summary["total"] == summary["outcomes_in_database"] == n
    assert summary["sent"] + summary["failed"] == n
    assert summary["sent"] == summary["sent_in_database"]
    assert summary["failed"] == summary["failed_in_database"]


def rehearse(
    env: dict[str, str],
    tmp_path: Path,
    messages: int,
    incident: str,
    database: EmbeddedDatabase | None = None,
) -> tuple[dict, str]:
    """A run of ``messages`` at 6,000/s with ``incident``; its totals must be exact (and,
    given the run's ``database``, so must its rows there)."""
    s, stdout = sim(
        env, tmp_path, "--messages", str(messages), "--rate", "6000", "--incident", incident
    )
    assert_exact(s, messages)
    if database is not None:
        assert outcome_rows(database.url, s["run_id"]) == (messages, messages)
    return s, stdout


def logs(env: dict[str, str], summary: dict) -> Path:
    return Path(env["HERALD_HOME"]) / "runs" / summary["run_id"] / "logs"


@pytest.fixture
def env(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, tmp_path: Path
) -> dict[str, str]:
    return external(broker, database, namespace, tmp_path)


def test_killed_sender_others_take_over(
    env: dict[str, str], database: EmbeddedDatabase, tmp_path: Path
) -> None:
    s, stdout = rehearse(env, tmp_path, 30000, "kill:sender-2@1.5s", database)
    [applied] = s["incidents"]
    assert applied["incident"] == "kill:sender-2@1.5s" and applied["action"] == "kill"
    assert applied["what"].startswith("SIGKILL sender-2 (pid ")
    assert "incident kill:sender-2@1.5s" in stdout
    assert "services exited with" not in stdout  # the kill was expected
    assert "sender-2 stopped" not in (logs(env, s) / "sender-2.log").read_text()
    assert s["unplanned"] == []  # a planned kill is not an unplanned exit
    # Its partitions went to the others: each of them was given more.
    taken = sum(
        (logs(env, s) / f"sender-{i}.log").read_text().count("assigned") > 1 for i in (0, 1, 3)
    )
    assert taken >= 1


def test_recorder_crash_and_restart(
    env: dict[str, str], database: EmbeddedDatabase, tmp_path: Path
) -> None:
    s, _ = rehearse(env, tmp_path, 30000, "crash:recorder@2s", database)
    assert "started again (pid" in s["incidents"][0]["what"]
    log = (logs(env, s) / "recorder.log").read_text()
    assert log.count("recorder ready") == 2


def test_crashed_producer_produces_the_run_again_and_counts_stay_exact(
    env: dict[str, str], database: EmbeddedDatabase, tmp_path: Path
) -> None:
    # 30,000 messages at 6,000/s: the producer is killed a third of the way through.
    s, stdout = rehearse(env, tmp_path, 30000, "crash:producer@1.5s", database)
    [applied] = s["incidents"]
    assert applied["what"].startswith("SIGKILL producer (pid ")
    assert "; started again (pid " in applied["what"]
    # The run's request was never committed: the restarted producer produced all of it again,
    # so the messages produced before the kill reached the senders twice; counted once.
    assert s["duplicate_results_ignored"] > 0
    assert "duplicate results ignored" in stdout
    log = (logs(env, s) / "producer.log").read_text()
    assert log.count(f"run {s['run_id']} (sms): producing 30000 records") == 2
    assert log.count(f"run {s['run_id']}: 30000 records acknowledged") == 1


def test_monitor_restart_resumes_with_the_right_totals(env: dict[str, str], tmp_path: Path) -> None:
    s, _ = rehearse(env, tmp_path, 24000, "restart:monitor@2s")
    assert s["incidents"][0]["what"].startswith("SIGTERM monitor (pid ")
    log = (logs(env, s) / "monitor.log").read_text()
    assert log.count("monitor stopped ◆") == 2  # the first, on SIGTERM; the second, at the end
    progress = (tmp_path / "progress.log").read_text().splitlines()
    assert progress[-1].startswith(f"run {s['run_id']}: 24000/24000 (100.0%)")


def test_paused_sender_is_replaced(env: dict[str, str], tmp_path: Path) -> None:
    # A pause of 2.5 times the session timeout: the group gives the sender's partitions away.
    env = {
        **env,
        "HERALD_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "HERALD_KAFKA_HEARTBEAT_INTERVAL_MS": "200",
    }
    s, _ = rehearse(env, tmp_path, 42000, "pause:sender-1@1s-6s")
    assert [a["action"] for a in s["incidents"]] == ["pause", "resume"]
    # It gave its partitions up: lost (session expired), revoked, or refused as fenced.
    log = (logs(env, s) / "sender-1.log").read_text()
    assert any(word in log for word in ("sender-1 lost", "was taken over", "sender-1 revoked"))


def test_database_outage_is_ridden_out(
    broker: EmbeddedBroker, namespace: str, tmp_path: Path
) -> None:
    env = clean_env(
        HERALD_HOME=str(tmp_path / "home"),
        HERALD_KAFKA_BOOTSTRAP=broker.bootstrap,
        HERALD_KAFKA_NAMESPACE=namespace,
        HERALD_KAFKA_SESSION_TIMEOUT_MS=str(EMBEDDED_SESSION_TIMEOUT_MS),
    )
    # Ten seconds without Postgres in the middle of a twelve-second stream.
    s, _ = rehearse(env, tmp_path, 72000, "db-outage@1s-11s")
    assert [a["what"] for a in s["incidents"]] == [
        "embedded database stopped",
        "embedded database started",
    ]
    log = (logs(env, s) / "recorder.log").read_text()
    outage = [line for line in log.splitlines() if "database unavailable" in line]
    # One line when it began, one when it was over: the recorder waited it out.
    assert len(outage) == 2, outage
    assert "retrying with backoff: " in outage[0] and ": over after " in outage[1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kill:monitor@1s", "only a sender can be killed for good"),
        ("kill:sender-9@1s", "no service 'sender-9'"),
        ("pause:sender-0@3s-2s", "pause needs START-END with END after START"),
        ("explode:sender-0@1s", "unknown kind 'explode'"),
        ("db-outage@1s-2s", "can be rehearsed only on the embedded database"),
        ("kill:sender-0", "expected KIND:SERVICE@START[-END]"),
    ],
)
def test_bad_incidents_stop_before_anything_starts(
    env: dict[str, str], tmp_path: Path, spec: str, message: str
) -> None:
    proc = subprocess.run(
        [HERALD, "sim", "--incident", spec], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not (Path(env["HERALD_HOME"]) / "runs").exists()


def _sim_until(env: dict[str, str], tmp_path: Path, fraction: float, *args: str) -> tuple:
    """Start ``herald sim`` (30,000 messages at 6,000/s) and return it once ``fraction`` of
    its outcomes are in the database, with its run id and its services by name."""
    out = tmp_path / "out.json"
    proc = subprocess.Popen(
        [HERALD, "sim", "--messages", "30000", "--rate", "6000", "--json", str(out),
         "--monitor-output", str(tmp_path / "progress.log"), "--mean-wait", "0.005", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    run_id = run_id_of(proc.stdout.readline())
    url = env["HERALD_DATABASE_URL"]
    wait_for(lambda: outcome_count(url, run_id) > 30000 * fraction, 120, "outcomes")
    children = {
        service_of(c.cmdline()): c
        for c in psutil.Process(proc.pid).children(recursive=True)
        if is_service(c.cmdline())
    }
    return proc, run_id, out, children


def test_a_sender_killed_from_outside_is_restarted_and_the_run_completes_exactly(
    env: dict[str, str], database: EmbeddedDatabase, tmp_path: Path
) -> None:
    """Not an incident: SIGKILL from another process, as the OOM killer would."""
    proc, run_id, out, children = _sim_until(env, tmp_path, 0.1)
    victim = children["sender --id 1"]
    os.kill(victim.pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stdout + stderr
    s = json.loads(out.read_text())
    assert_exact(s, 30000)
    assert outcome_rows(database.url, run_id) == (30000, 30000)
    [exit_] = s["unplanned"]
    assert (exit_["service"], exit_["pid"], exit_["code"]) == ("sender-1", victim.pid, -9)
    assert "; restarted (pid " in exit_["what"]
    assert f"sender-1 (pid {victim.pid}) exited with code -9; restarted (pid " in stdout
    assert "unplanned exit of sender-1" in stdout  # in the summary too
    log = (logs(env, s) / "sender-1.log").read_text()
    assert log.count("sender-1 ready:") == 2  # the first process, and the one that replaced it


def test_without_restart_the_group_carries_on_without_a_killed_sender(
    env: dict[str, str], database: EmbeddedDatabase, tmp_path: Path
) -> None:
    proc, _run_id, out, children = _sim_until(env, tmp_path, 0.1, "--no-restart")
    os.kill(children["sender --id 2"].pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stdout + stderr
    s = json.loads(out.read_text())
    assert_exact(s, 30000)
    [exit_] = s["unplanned"]
    assert exit_["service"] == "sender-2"
    assert exit_["what"].endswith("; not restarted (--no-restart)")


def test_without_restart_a_killed_recorder_ends_the_run_with_exit_1(
    env: dict[str, str], tmp_path: Path
) -> None:
    proc, _run_id, out, children = _sim_until(env, tmp_path, 0.05, "--no-restart")
    pid = children["recorder"].pid
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 1, stdout + stderr
    assert f"recorder (pid {pid}) exited with code -9; not restarted (--no-restart)" in stdout
    assert "herald: recorder exited with code -9 and was not restarted; its log" in stderr
    assert not out.exists()  # no summary of a run that did not complete
