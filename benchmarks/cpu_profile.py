"""Where each herald process spends its CPU: ``herald sim`` with py-spy attached to every
service process, and docs/profile.md written from the samples.

    python benchmarks/cpu_profile.py [--messages N] [--rate HZ] [--top N] [--output PATH]

py-spy samples a process from outside (no change to herald, ``--nonblocking``: the process is
not paused to read its stack) and sees only Python threads: the time librdkafka's own threads
spend (batching, compression, the network) is in the process's CPU seconds, not in its
samples. py-spy leaves out a thread that waits in a system call it knows, but not one waiting
inside librdkafka (``consume()``'s timeout, ``flush()``): those waits are samples of the line
that called them, so a consumer's ``run_consumer`` share is partly idle time, and a process
may have more seconds of samples than of CPU.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from _util import FORK_SERVER, ProcessSampler, herald_env, role_of
from e2e import command

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "profile.md"
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
NOT_PROFILED = {"broker", "postgres", "pg_ctl", "resource tracker", "python", FORK_SERVER}


@dataclass
class Profile:
    """One process's samples: by function, where it was running (self) and on the stack."""

    role: str
    samples: int = 0
    own: collections.Counter[str] = field(default_factory=collections.Counter)
    within: collections.Counter[str] = field(default_factory=collections.Counter)


def frame_name(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``module.py: func``, herald's modules by package."""
    func, _, where = frame.rpartition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    module = "herald/" + path.split("herald/", 1)[1] if "herald/" in path else Path(path).name
    return f"{module}: {func}"


def read_profile(role: str, path: Path) -> Profile:
    """py-spy's raw output (one collapsed stack and its count a line)."""
    profile = Profile(role)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        n = int(count)
        profile.samples += n
        if frames:
            profile.own[frame_name(frames[-1])] += n
        for name in {frame_name(f) for f in frames}:
            profile.within[name] += n
    return profile


def run(messages: int, rate: int, work: Path) -> tuple[dict[str, Profile], dict[str, float], str]:
    """One profiled ``herald sim``: each process's profile, CPU seconds, and the command."""
    home, out = work / "home", work / "samples"
    out.mkdir(parents=True)
    cmd = command(messages, 0, work / "summary.json")
    sim = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        env=herald_env(HERALD_HOME=str(home)),
    )
    sampler = ProcessSampler(sim.pid, postgres_dir=home / "pgdata").start()
    spies: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}

    def attach(pid: int, role: str) -> None:
        argv = [PY_SPY, "record", "--nonblocking", "--function", "-r", str(rate), "-f", "raw"]
        argv += ["-o", str(out / f"{role}.txt"), "--pid", str(pid)]
        spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        spies[pid] = (role, spy)

    attach(sim.pid, "sim")
    root = psutil.Process(sim.pid)
    while sim.poll() is None:
        try:
            found = root.children(recursive=True)
        except psutil.Error:
            break
        for proc in found:
            try:
                role = role_of(proc) if proc.pid not in spies else ""
            except psutil.Error:
                continue
            if role and role not in NOT_PROFILED:  # a forked service, once it has its name
                attach(proc.pid, role)
        time.sleep(0.05)
    sampler.stop()
    for _role, spy in spies.values():
        spy.wait(60)
    if sim.returncode != 0:
        raise RuntimeError(f"herald sim exited {sim.returncode}")
    cpu = {role: figures.cpu_secs for role, figures in sampler.by_role().items()}
    profiles = {
        role: read_profile(role, out / f"{role}.txt")
        for role, _ in spies.values()
        if (out / f"{role}.txt").is_file()
    }
    shown = ["herald", *cmd[1 : cmd.index("--json")]]  # what a user would type
    return profiles, cpu, " ".join(shown)


def report(
    profiles: dict[str, Profile], cpu: dict[str, float], cmd: str, rate: int, top: int
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Where the CPU goes",
        "",
        "<!-- Generated by benchmarks/cpu_profile.py; rerun it rather than editing this file. -->",
        "",
        f"Measured {when}: `{cmd}`, each service process sampled by py-spy at {rate} Hz "
        "(`poetry run invoke bench.profile`). py-spy sees Python threads only: what librdkafka's "
        "own threads spend (batching, compression, the network) is in a process's CPU seconds "
        "but not in its samples; waits inside librdkafka (`consume()`'s timeout) are samples of "
        "the line that called it, so a process may have more seconds of samples than of CPU, "
        "and `run_consumer`'s share is partly idle. The broker and Postgres are not sampled. "
        "One run, start-up and shut-down included, on a shared machine: read the shares, not "
        "the seconds.",
        "",
        "| process | CPU s | samples (s) |",
        "| --- | ---: | ---: |",
    ]
    for role in sorted(profiles):
        lines.append(
            f"| `{role}` | {cpu.get(role, 0.0):.1f} | {profiles[role].samples / rate:.1f} |"
        )
    for role in sorted(profiles):
        p = profiles[role]
        if not p.samples:
            continue
        lines += [
            "",
            f"## `{role}`",
            "",
            "| running in (self) | share | | on the stack (herald) | share |",
        ]
        lines.append("| --- | ---: | --- | --- | ---: |")
        own = p.own.most_common(top)
        herald = [(n, c) for n, c in p.within.most_common() if n.startswith("herald/")]
        herald = [(n, c) for n, c in herald if c < 0.95 * p.samples][:top]  # not entry points
        for i in range(max(len(own), len(herald))):
            left = f"`{own[i][0]}` | {100 * own[i][1] / p.samples:.0f}%" if i < len(own) else " | "
            right = (
                f"`{herald[i][0]}` | {100 * herald[i][1] / p.samples:.0f}%"
                if i < len(herald)
                else " | "
            )
            lines.append(f"| {left} | | {right} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=1_000_000, help="messages in the run")
    p.add_argument("--rate", type=int, default=100, help="samples a second per process")
    p.add_argument("--top", type=int, default=10, help="functions listed per process")
    p.add_argument("--output", type=Path, default=DOC, help=f"the report (default: {DOC})")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="herald-profile-") as work:
        profiles, cpu, cmd = run(args.messages, args.rate, Path(work))
    text = report(profiles, cpu, cmd, args.rate, args.top)
    args.output.write_text(text)
    print(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
