"""End-to-end: ``herald sim`` as a user runs it, with its service processes sampled.

``herald sim`` starts its own embedded broker and Postgres under HERALD_HOME, then the
services (senders, producer, recorder, monitor) as child processes, and writes a JSON
summary. While it runs, the sampler records each process's peak RSS and CPU seconds.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _util import (
    HERALD,
    ProcessFigures,
    ProcessSampler,
    first_log_time,
    herald_env,
    machine_busy_secs,
)

SENDERS = 4
FAILURE_RATE = 0.1


@dataclass
class SimRun:
    summary: dict[str, Any]  # herald sim's --json summary
    processes: dict[str, ProcessFigures]  # by role (sender-0..3, producer, broker, ...)
    milestones: dict[str, float]  # seconds after the sim was launched
    window: int | None  # messages each sender has in flight at once (from its log)
    run_dir: Path
    elapsed: float  # seconds from launch to exit of herald sim (what the CPU figures cover)
    machine_cpu_secs: float  # CPU seconds the whole machine was busy meanwhile (any process)
    # From the first result to the last outcome recorded (start-up and shutdown excluded):
    steady_cpu: dict[str, float]  # CPU seconds each role spent in that window
    steady_secs: float  # how long that window lasted

    @property
    def cpu_secs(self) -> float:
        return sum(p.cpu_secs for p in self.processes.values())

    @property
    def steady_rate(self) -> float:
        """Outcomes per second over the steady window (every outcome falls within it)."""
        return self.summary["outcomes_in_database"] / self.steady_secs

    def steady_us_per_message(self, role: str | None = None) -> float:
        """CPU µs per message in the steady window: of one role, or of every process."""
        cpu = self.steady_cpu.get(role, 0.0) if role else sum(self.steady_cpu.values())
        return cpu / self.summary["outcomes_in_database"] * 1e6


def command(messages: int, mean_wait: float, json_path: Path) -> list[str]:
    return [
        HERALD, "sim", "--messages", str(messages), "--senders", str(SENDERS),
        "--mean-wait", f"{mean_wait:g}", "--failure-rate", f"{FAILURE_RATE:g}",
        "--json", str(json_path), "--refresh", "5",
    ]  # fmt: skip


def run_sim(
    home: Path,
    messages: int,
    mean_wait: float,
    timeout: float = 900.0,
    env: dict[str, str] | None = None,
) -> SimRun:
    """One ``herald sim`` run with HERALD_HOME=home (and ``env``: e.g. a broker's bootstrap);
    raises if it fails or loses outcomes."""
    tag = uuid.uuid4().hex[:8]
    json_path, log_path = home / f"summary-{tag}.json", home / f"sim-{tag}.log"
    busy_before, launched = machine_busy_secs(), time.time()
    proc = subprocess.Popen(
        command(messages, mean_wait, json_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=herald_env(HERALD_HOME=str(home), PYTHONUNBUFFERED="1", **(env or {})),
    )
    sampler = ProcessSampler(proc.pid, postgres_dir=home / "pgdata").start()
    started: list[float] = []  # when sim printed its first line: its imports are done
    tee = threading.Thread(target=_tee, args=(proc, log_path, started), daemon=True)
    tee.start()
    try:
        code = proc.wait(timeout)
    finally:
        sampler.stop()
        if proc.poll() is None:
            proc.kill()
        tee.join()
    elapsed, busy = time.time() - launched, machine_busy_secs() - busy_before
    if code != 0 or not json_path.is_file():
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"herald sim exited {code}; its output ends with:\n{tail}")
    summary = json.loads(json_path.read_text())
    if summary["outcomes_in_database"] != messages:
        raise RuntimeError(f"{summary['outcomes_in_database']} of {messages} outcomes recorded")
    run_dir = home / "runs" / summary["run_id"]
    # The summary's times count from when sim started its run: about when it printed its first
    # line (a few ms after; sim's own imports come before).
    begun = started[0] if started else launched
    first, last = (begun + summary[k] for k in ("first_result_secs", "last_result_secs"))
    return SimRun(
        summary=summary,
        processes=sampler.by_role(),
        milestones=milestones(run_dir / "logs", launched, started, summary),
        window=sender_window(run_dir / "logs"),
        run_dir=run_dir,
        elapsed=elapsed,
        machine_cpu_secs=busy,
        steady_cpu=sampler.cpu_between(first, last),
        steady_secs=last - first,
    )


def _tee(proc: subprocess.Popen[bytes], log_path: Path, started: list[float]) -> None:
    """Copy the sim's output to ``log_path``; note when its first line arrives."""
    assert proc.stdout is not None
    with open(log_path, "wb") as log:
        for line in proc.stdout:
            if not started and line.startswith(b"herald run "):
                started.append(time.time())
            log.write(line)


def milestones(
    logs: Path, launched: float, started: list[float], summary: dict[str, Any]
) -> dict[str, float]:
    """When each start-up step happened, in seconds after launch (the services' logs)."""
    senders = [logs / f"sender-{i}.log" for i in range(SENDERS)]
    steps = {  # step: (logs, what the line says, first or last of the logs)
        "last sender ready": (senders, "ready:", max),
        "first sender assigned partitions": (senders, " assigned ", min),
        "last sender assigned partitions": (senders, " assigned ", max),
        "producer ready": ([logs / "producer.log"], "producer ready", max),
        "producer starts producing": ([logs / "producer.log"], ": producing ", max),
        "recorder ready": ([logs / "recorder.log"], "recorder ready", max),
    }
    found = {}
    for step, (paths, needle, pick) in steps.items():
        times = [first_log_time(path, needle) for path in paths]
        if all(t is not None for t in times):
            found[step] = pick(t for t in times if t is not None) - launched
    if started:  # first_result_secs counts from here
        found["sim starts the run (its imports done)"] = started[0] - launched
        found["first result"] = started[0] - launched + summary["first_result_secs"]
    return found


def sender_window(logs: Path) -> int | None:
    text = (logs / "sender-0.log").read_text(errors="replace")
    match = re.search(r"window (\d+)", text)
    return int(match.group(1)) if match else None
