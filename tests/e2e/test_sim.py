"""``herald sim`` / ``invoke sim.run`` as a user runs them: whole processes, exit codes."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from herald.errors import EXIT_BROKER
from herald.runtime import kafka_jars
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.runtime.ports import free_port
from tests.support.processes import (
    HERALD,
    INVOKE,
    ROOT,
    clean_env,
    external,
    helper_of,
    is_service,
    outcome_count,
    processes_under,
    run_id_of,
    run_state,
    service_logs,
    service_of,
)
from tests.support.waiting import wait_for


def test_default_layout_embedded_run(tmp_path: Path) -> None:
    """The README's command: embedded broker and database, started and stopped by the run."""
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [HERALD, "sim", "--messages", "3000", "--json", str(out), "--refresh", "0.5"],
        env=clean_env(HERALD_HOME=str(tmp_path / "home")),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(out.read_text())
    assert summary["total"] == summary["outcomes_in_database"] == 3000
    assert summary["sent"] + summary["failed"] == 3000
    assert summary["sent"] == summary["sent_in_database"]
    assert set(summary["senders"]) == {"0", "1", "2", "3"}
    assert sum(s["sent"] + s["failed"] for s in summary["senders"].values()) == 3000
    assert summary["throughput"] > 0 and summary["first_result_secs"] > 0
    assert summary["first_result_secs"] <= summary["last_result_secs"] <= summary["wall_secs"]
    assert f"herald run {summary['run_id']}: 3,000 messages, 4 senders" in proc.stdout
    assert "outcomes in Postgres" in proc.stdout and "3,000 (" in proc.stdout
    # The database keeps its data after the run, and nothing of the run is left running.
    with EmbeddedDatabase(tmp_path / "home" / "pgdata") as db:
        assert outcome_count(db.url, summary["run_id"]) == 3000
    assert processes_under(tmp_path) == []


def test_three_runs_at_once_in_one_folder_share_the_database_and_each_counts_exactly(
    tmp_path: Path,
) -> None:
    """Each holds a lease on the embedded Postgres; none stops it under another, the last
    one out stops it."""
    env = clean_env(HERALD_HOME=str(tmp_path / "home"))
    procs = [
        subprocess.Popen(
            [HERALD, "sim", "--messages", "3000", "--json", str(tmp_path / f"out{i}.json"),
             "--refresh", "1", "--monitor-output", str(tmp_path / f"progress{i}.log")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        )
        for i in range(3)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    summaries = [json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(3)]
    assert len({s["run_id"] for s in summaries}) == 3
    for s in summaries:
        assert s["total"] == s["outcomes_in_database"] == 3000
    database = EmbeddedDatabase(tmp_path / "home" / "pgdata")
    assert not database.running()  # the last one out stopped it
    assert processes_under(tmp_path) == []
    with database:
        for s in summaries:
            assert outcome_count(database.url, s["run_id"]) == 3000


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:  # gone, or a zombie (a pg_ctl the run has not reaped yet)
        return ""


def test_a_database_left_by_a_killed_run_is_adopted_and_stopped_by_the_next(
    tmp_path: Path,
) -> None:
    env = clean_env(HERALD_HOME=str(tmp_path / "home"))
    database = EmbeddedDatabase(tmp_path / "home" / "pgdata")
    first = subprocess.Popen(
        [HERALD, "sim", "--messages", "200000", "--rate", "2000"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert first.stdout is not None
    for line in first.stdout:  # the run has started: its database is up
        if line.startswith("herald run "):
            break
    wait_for(database.running, 60, "the first run's database")
    # Its guard would stop the database once the run is gone: both are killed, as by a
    # `kill -9` of the process group.
    guard = wait_for(
        lambda: [
            c
            for c in psutil.Process(first.pid).children()
            if "herald.runtime.database" in _cmdline(c)
        ],
        60,
        "the first run's database guard",
    )
    assert len(guard) == 1
    guard[0].kill()
    # Dead, not yet reaped by its parent (the run, killed next, never reaps it).
    wait_for(lambda: guard[0].status() == psutil.STATUS_ZOMBIE, 30, "the guard killed")
    first.kill()
    first.communicate(timeout=30)  # reaped, its pipe closed
    assert database.running()  # a daemon: SIGKILL of both leaves it behind
    second = subprocess.run(
        [HERALD, "sim", "--messages", "1000", "--refresh", "1"],
        env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    left = [line for line in second.stderr.splitlines() if "left running by a process" in line]
    assert len(left) == 1, second.stderr
    assert left[0].endswith(
        f"embedded Postgres in {database.data_dir} was left running by a process that is "
        "gone: this one uses it and stops it"
    )
    assert not database.running()


def test_external_services_and_sender_statistics(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "producer": {"num_messages": 6000},
                "progress_monitor": {
                    "kind": "file",
                    "output_location": str(tmp_path / "progress.log"),
                    "refresh_secs": 0.2,
                },
                "sender": [
                    {"mean_wait_time": 0.002, "failure_rate": 0.1},
                    {"mean_wait_time": 0.008, "failure_rate": 0.4},
                ],
            }
        )
    )
    env = external(broker, database, namespace, tmp_path, HERALD_KAFKA_PARTITIONS="2")
    proc = subprocess.run(
        [HERALD, "sim", "--config", str(cfg), "--json", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads(out.read_text())
    assert s["total"] == s["outcomes_in_database"] == 6000
    assert outcome_count(database.url, s["run_id"]) == 6000
    assert not (tmp_path / "home" / "pgdata").exists()  # nothing embedded was started
    for sid, rate, mean_ms in (("0", 0.1, 2.0), ("1", 0.4, 8.0)):
        row = s["senders"][sid]
        n = row["sent"] + row["failed"]
        assert n > 1000  # each sender owns one of the two partitions
        sd = (rate * (1 - rate) / n) ** 0.5
        assert abs(row["failure_fraction"] - rate) < 5 * sd
        # Exponential latency: the mean's sd is mean/sqrt(n).
        assert abs(row["avg_latency_ms"] - mean_ms) < 5 * mean_ms / n**0.5
    progress = (tmp_path / "progress.log").read_text().splitlines()
    assert progress[-1].startswith(f"run {s['run_id']}: 6000/6000 (100.0%)")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--failure-rate", "1.5"],
            ["--failure-rate 1.5: Input should be less than or equal to 1"
             " [setting senders[*].failure_rate]"],
        ),
        (
            # One line for the flag, not one per sender it applies to.
            ["--mean-wait", "-1"],
            ["--mean-wait -1: Input should be greater than or equal to 0"
             " [setting senders[*].mean_wait_time]"],
        ),
        (
            # Every bad flag at once, each named as typed.
            ["--senders", "0", "--rate=-3"],
            ["--rate -3: Input should be greater than 0 [setting producer.rate]",
             "--senders 0: List should have at least 1 item after validation, not 0"
             " [setting senders]"],
        ),
        (
            ["--senders", "40"],
            ["--senders 40: 40 senders need at least as many partitions; kafka.partitions is 12"
             " [setting senders]"],
        ),
        (
            ["--brokers", "3"],
            ["--brokers 3: 3 brokers need kafka.engine = kafka (Tansu runs one), e.g. --engine"
             " kafka or HERALD_KAFKA_ENGINE=kafka [setting kafka.brokers]"],
        ),
        (
            ["--engine", "kafka", "--brokers", "2"],
            ["--brokers 2: a local Apache Kafka cluster has 1 or 3 brokers"
             " [setting kafka.brokers]"],
        ),
        (
            ["--messages", "0"],
            ["--messages 0: Input should be greater than or equal to 1"
             " [setting producer.num_messages]"],
        ),
    ],
)  # fmt: skip
def test_invalid_flags_stop_before_anything_starts(
    argv: list[str], expected: list[str], tmp_path: Path
) -> None:
    proc = subprocess.run(
        [HERALD, "sim", *argv],
        env=clean_env(HERALD_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"herald: invalid configuration ({len(expected)} error(s)):",
        *(f"  {line}" for line in expected),
    ]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "pgdata").exists()


@pytest.mark.parametrize("missing", ["java", "mvn"])
def test_the_kafka_engine_without_java_or_maven_says_what_to_install_and_starts_nothing(
    missing: str, tmp_path: Path
) -> None:
    # A PATH with herald, and with Java but no Maven, or with neither.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "herald").symlink_to(HERALD)
    if missing == "mvn":
        java = shutil.which("java")
        assert java is not None, "this test needs the machine's Java"
        (bin_dir / "java").symlink_to(java)
    env = clean_env(HERALD_HOME=str(tmp_path / "home"))
    env.pop("JAVA_HOME", None)
    env.pop("KAFKA_HOME", None)
    env["PATH"] = str(bin_dir)
    proc = subprocess.run(
        [HERALD, "sim", "--engine", "kafka", "--messages", "100"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_BROKER == 3, proc.stderr
    expected = (
        kafka_jars.JAVA_MISSING.format(min=17) if missing == "java" else kafka_jars.MAVEN_MISSING
    )
    assert proc.stderr.splitlines() == [f"herald: {expected}"]
    assert proc.stdout == ""
    home = tmp_path / "home"
    assert not (home / "runs").exists() and not (home / "pgdata").exists()


def test_invoke_sim_run_exits_2_on_a_bad_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"sender": [{"mean_wait_time": 0.1, "failure_rate": 2}]}))
    proc = subprocess.run(
        [INVOKE, "sim.run", "--config", str(cfg)],
        cwd=ROOT,
        env=clean_env(HERALD_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "senders[0].failure_rate = 2: Input should be less than or equal to 1" in proc.stderr
    assert f"in {cfg}" in proc.stderr


def test_sigterm_stops_a_running_sim_and_every_service(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, tmp_path: Path
) -> None:
    env = external(broker, database, namespace, tmp_path)
    proc = subprocess.Popen(
        [
            HERALD,
            "sim",
            "--messages",
            "1000000",
            "--rate",
            "2000",
            "--refresh",
            "0.2",
            "--seed",
            "7",
            "--monitor-output",
            str(tmp_path / "progress.log"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = run_id_of(proc.stdout.readline() if proc.stdout else "")
        wait_for(lambda: outcome_count(database.url, run_id) > 100, 60, "outcomes")
        children = psutil.Process(proc.pid).children(recursive=True)
        services = [c for c in children if is_service(c.cmdline())]
        # Every service is its own process, named on its command line: `herald <service>`.
        names = sorted(service_of(c.cmdline()) for c in services)
        assert names == [
            "monitor",
            "producer",
            "recorder",
            "sender --id 0",
            "sender --id 1",
            "sender --id 2",
            "sender --id 3",
        ]
        # Besides them, only the fork server they came from and multiprocessing's tracker.
        others = sorted(helper_of(c.cmdline()) for c in children if c not in services)
        assert others == ["forkserver", "resource_tracker"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    rest = proc.stdout.read() if proc.stdout else ""
    if proc.stdout:
        proc.stdout.close()
    assert "interrupted:" in rest
    # The services exited cleanly (0) on SIGTERM: their logs end with their summary line.
    logs = tmp_path / "home" / "runs" / run_id / "logs"
    assert "sender-0 stopped ◆" in (logs / "sender-0.log").read_text()
    assert "recorder stopped ◆" in (logs / "recorder.log").read_text()


def test_services_stop_when_sim_is_killed(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, tmp_path: Path
) -> None:
    env = external(broker, database, namespace, tmp_path)
    with subprocess.Popen(
        [
            HERALD,
            "sim",
            "--messages",
            "1000000",
            "--rate",
            "2000",
            "--monitor-output",
            str(tmp_path / "p.log"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        run_id = run_id_of(proc.stdout.readline() if proc.stdout else "")
        wait_for(lambda: outcome_count(database.url, run_id) > 0, 60, "outcomes")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len([c for c in children if is_service(c.cmdline())]) == 7
        proc.kill()  # no chance to stop its services itself
        proc.wait()
        # Each service was started to die with its parent: it gets SIGTERM and exits cleanly,
        # and the fork server and the resource tracker go with the last of them.
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == []
    logs = tmp_path / "home" / "runs" / run_id / "logs"
    assert "SIGTERM received" in (logs / "sender-1.log").read_text()


def test_unreachable_database_exits_4_and_stops_what_it_started(
    broker: EmbeddedBroker, namespace: str, tmp_path: Path
) -> None:
    port = free_port()
    env = clean_env(
        HERALD_HOME=str(tmp_path / "home"),
        HERALD_KAFKA_BOOTSTRAP=broker.bootstrap,
        HERALD_KAFKA_NAMESPACE=namespace,
        HERALD_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/herald",
        HERALD_DATABASE_CONNECT_TIMEOUT_SECS="1",
    )
    proc = subprocess.run(
        [HERALD, "sim", "--messages", "100"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 4
    assert f"Postgres at postgresql://postgres@127.0.0.1:{port}/herald unreachable after 1s" in (
        proc.stderr
    )
    assert processes_under(tmp_path) == []


def test_timeout_exits_1_with_the_count_so_far(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, tmp_path: Path
) -> None:
    env = external(broker, database, namespace, tmp_path)
    proc = subprocess.run(
        [
            HERALD,
            "sim",
            "--messages",
            "100000",
            "--rate",
            "100",
            "--timeout",
            "3",
            "--monitor-output",
            str(tmp_path / "p.log"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    found = re.search(
        r"run (\w+) not complete after 3s: [\d,]+ of 100,000 outcomes recorded "
        r"\(--timeout\)",
        proc.stderr,
    )
    assert found, proc.stderr
    # Every service stopped cleanly (0); if not, what it logged says why.
    assert "services exited with" not in proc.stdout, (
        proc.stderr,
        service_logs(tmp_path / "home"),
    )
    # Its row says so: failed, and why (the line above, with the count before the drain).
    assert run_state(database.url, found[1]) == ("failed", found[0], 100_000)


def test_web_monitor_serves_the_runs_live_page(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, tmp_path: Path
) -> None:
    import urllib.request

    env = external(broker, database, namespace, tmp_path, HERALD_MONITOR_WEB_PORT="0")
    with subprocess.Popen(
        [
            HERALD,
            "sim",
            "--messages",
            "20000",
            "--rate",
            "4000",
            "--monitor",
            "web",
            "--monitor-output",
            str(tmp_path / "p.log"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        run_id = run_id_of(proc.stdout.readline())
        page = proc.stdout.readline().strip()
        assert re.fullmatch(rf"live page: http://127\.0\.0\.1:\d+/runs/{run_id}", page), page
        url = page.removeprefix("live page: ")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert run_id in response.read().decode()
        rest = proc.stdout.read()
        assert proc.wait(120) == 0, rest
    assert "20,000 (" in rest  # outcomes in Postgres, in the summary
