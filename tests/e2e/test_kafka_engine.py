"""``sim.run --engine kafka``: the run's own Apache Kafka (1 or 3 nodes, started and stopped by
the run), exact totals, and a broker of three killed mid-run without a message lost or doubled."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.support.processes import HERALD, clean_env, processes_under

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


def sim(
    tmp_path: Path, kafka_dist: Path, *args: str
) -> tuple[dict, subprocess.CompletedProcess[str]]:
    """``herald sim --engine kafka ARGS`` in a home of its own."""
    home = tmp_path / "home"
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [
            HERALD,
            "sim",
            "--engine",
            "kafka",
            "--json",
            str(out),
            "--monitor-output",
            str(tmp_path / "progress.log"),
            "--mean-wait",
            "0.005",
            "--max-in-flight",
            "500",
            # A generous bound: the first transactions wait for the coordinator's partitions,
            # seconds on three JVMs sharing two busy cores.
            "--timeout",
            "400",
            *args,
        ],
        env=clean_env(HERALD_HOME=str(home), KAFKA_HOME=str(kafka_dist)),
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr + herald_warnings(home)
    return json.loads(out.read_text()), proc


def herald_warnings(home: Path, last: int = 60) -> str:
    """The services' own warnings and errors in a run's logs (not the brokers', nor
    librdkafka's, mostly refused connections to a killed broker): what a failed run's
    assertion shows, so that a failure in CI can be read without running it again."""
    lines = [
        f"{log.stem}: {line}"
        for log in sorted(home.glob("runs/*/logs/*.log"))
        if not log.stem.startswith("node-")
        for line in log.read_text(errors="replace").splitlines()
        if (" WARNING [" in line or " ERROR [" in line) and " librdkafka] " not in line
    ]
    return "\n".join(["", "services' warnings:", *lines[-last:]])


def assert_exact(summary: dict, n: int) -> None:
    assert summary["total"] == summary["outcomes_in_database"] == n
    assert summary["sent"] + summary["failed"] == n
    assert (summary["sent"], summary["failed"]) == (
        summary["sent_in_database"],
        summary["failed_in_database"],
    )
    # Apache Kafka hides aborted transactions from read_committed readers: no result twice.
    assert summary["duplicate_results_ignored"] == 0


def no_broker_left(home: Path) -> None:
    left = [p for p in processes_under(home) if "kafka.Kafka" in " ".join(p.cmdline())]
    assert left == [], f"brokers still running: {[p.pid for p in left]}"


def test_a_run_on_one_apache_kafka_broker_is_exact(tmp_path: Path, kafka_dist: Path) -> None:
    summary, _ = sim(tmp_path, kafka_dist, "--messages", "20000")
    assert_exact(summary, 20000)
    logs = tmp_path / "home" / "runs" / summary["run_id"] / "logs"
    assert (logs / "node-1.log").is_file() and not (logs / "broker.log").exists()
    no_broker_left(tmp_path / "home")
    # The cluster's data is removed with it; the jars stay.
    assert list((tmp_path / "home" / "kafka" / "run").iterdir()) == []


def test_a_broker_of_three_killed_mid_run_loses_and_doubles_nothing(
    tmp_path: Path, kafka_dist: Path
) -> None:
    summary, proc = sim(
        tmp_path, kafka_dist, "--brokers", "3", "--messages", "20000", "--rate", "4000",
        "--incident", "kill:broker-2@2s",
    )  # fmt: skip
    assert_exact(summary, 20000)
    [applied] = summary["incidents"]
    assert applied["incident"] == "kill:broker-2@2s"
    assert applied["action"] == "kill"
    assert applied["what"].startswith("SIGKILL broker-2 (pid ")
    pid = int(applied["what"].split("pid ")[1].rstrip(")"))
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "kill:broker-2@2s" in proc.stdout  # the printed summary lists it too
    logs = tmp_path / "home" / "runs" / summary["run_id"] / "logs"
    assert sorted(p.name for p in logs.glob("node-*.log")) == [
        "node-1.log",
        "node-2.log",
        "node-3.log",
    ]
    no_broker_left(tmp_path / "home")
