"""Helpers shared by the benchmarks: process sampling, statistics, log timestamps."""

from __future__ import annotations

import bisect
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

PYTHON = sys.executable
HERALD = str(Path(sys.executable).with_name("herald"))
MIB = 1024 * 1024


def herald_env(**extra: str) -> dict[str, str]:
    """This environment without any ``HERALD_*`` variable (they would change what is measured)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Stats:
    values: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)


def stats(values: Iterable[float]) -> Stats:
    return Stats(tuple(values))


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it is true; raise TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout:g}s")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM ``proc`` (it drains and exits); SIGKILL it if it does not within ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def log_time(line: str) -> float | None:
    """The epoch time of a herald log line (``2026-01-01 12:00:00,123 INFO ...``), else None."""
    try:
        stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    except ValueError:
        return None
    return stamp.timestamp()


def first_log_time(path: Path, needle: str) -> float | None:
    """The time of the first line of ``path`` containing ``needle``."""
    if not path.is_file():
        return None
    for line in path.read_text(errors="replace").splitlines():
        if needle in line:
            return log_time(line)
    return None


# -- process sampling -----------------------------------------------------------------------


FORK_SERVER = "fork server"  # herald.runtime.forks: it imports the services' code once
HELPERS = {  # processes of multiprocessing's: a forked service not yet named is the server's
    "multiprocessing.forkserver": FORK_SERVER,
    "multiprocessing.resource_tracker": "resource tracker",
}


def role_of(proc: psutil.Process) -> str:
    """A short name for a process of a herald run: sender-2, producer, broker, postgres..."""
    name = proc.name()
    if name == "postgres" or name.startswith("postgres:"):
        return "postgres"
    if name.startswith("tansu"):
        return "broker"
    # A forked service's command line is one string, its title: words, as ps shows them.
    cmd = " ".join(proc.cmdline()).split()
    for helper, role in HELPERS.items():
        if any(helper in arg for arg in cmd):
            return role
    for i, arg in enumerate(cmd[:-1]):
        if Path(arg).name == "herald":
            role = cmd[i + 1]
            if role == "sender" and "--id" in cmd:
                role = f"sender-{cmd[cmd.index('--id') + 1]}"
            return role
    if len(cmd) > 1 and cmd[1].endswith(".py"):  # a benchmark script: relay.py produce
        script = Path(cmd[1]).stem
        return f"{script} {cmd[2]}" if len(cmd) > 2 and not cmd[2].startswith("-") else script
    return Path(cmd[0]).name if cmd else name


def machine_busy_secs() -> float:
    """CPU seconds the whole machine has spent busy (every core, every process) since boot."""
    t = psutil.cpu_times()
    return float(sum(t)) - t.idle - getattr(t, "iowait", 0.0)


def peak_rss(proc: psutil.Process) -> int:
    """The process's peak resident set size in bytes (the kernel's VmHWM), else its RSS now."""
    try:
        with open(f"/proc/{proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(proc.memory_info().rss)


def find_postmaster(data_dir: Path) -> psutil.Process | None:
    """The postgres server whose data directory is ``data_dir`` (it daemonizes: not a child)."""
    wanted = str(data_dir)
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and "-D" in cmd and wanted in cmd:
            return proc
    return None


@dataclass
class ProcessFigures:
    """What the sampler saw of one process."""

    role: str
    peak_rss: int = 0
    cpu_secs: float = 0.0


class ProcessSampler:
    """Samples a process tree every ``interval`` seconds in a thread.

    For each process: its peak RSS (VmHWM, so a peak between samples is not missed) and its
    CPU seconds (user + system) as last seen, so up to ``interval`` of a process's CPU time
    before it exits is missed. ``postgres_dir``: also sample the postgres server of that data
    directory and its backends (the server daemonizes, so it is not in the tree).
    ``include_root=False``: only the root's descendants (the root is this very process).
    """

    def __init__(
        self,
        root_pid: int,
        *,
        include_root: bool = True,
        postgres_dir: Path | None = None,
        interval: float = 0.1,
    ) -> None:
        self.root_pid = root_pid
        self.include_root = include_root
        self.postgres_dir = postgres_dir
        self.interval = interval
        self.seen: dict[int, ProcessFigures] = {}
        # (epoch time, CPU seconds of each pid then) per sample: CPU spent within a window
        self.history: list[tuple[float, dict[int, float]]] = []
        self._procs: dict[int, psutil.Process] = {}
        self._postmaster: psutil.Process | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ProcessSampler:
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def _tree(self) -> list[psutil.Process]:
        try:
            root = self._procs.setdefault(self.root_pid, psutil.Process(self.root_pid))
            procs = root.children(recursive=True)
            if self.include_root:
                procs.insert(0, root)
        except psutil.Error:
            procs = []
        if self.postgres_dir is not None:
            if self._postmaster is None or not self._postmaster.is_running():
                self._postmaster = find_postmaster(self.postgres_dir)
            if self._postmaster is not None:
                with contextlib.suppress(psutil.Error):
                    procs += [self._postmaster, *self._postmaster.children()]
        return procs

    def sample(self) -> None:
        cpu_now: dict[int, float] = {}
        for found in self._tree():
            # Keep one Process object per pid: psutil.Process caches what it needs.
            proc = self._procs.setdefault(found.pid, found)
            try:
                figures = self.seen.get(proc.pid)
                if figures is None:
                    figures = self.seen[proc.pid] = ProcessFigures(role_of(proc))
                elif figures.role == FORK_SERVER:  # a service forked but not yet named
                    figures.role = role_of(proc)
                cpu = proc.cpu_times()
                figures.cpu_secs = cpu_now[proc.pid] = cpu.user + cpu.system
                figures.peak_rss = max(figures.peak_rss, peak_rss(proc))
            except psutil.Error:
                continue  # it exited between listing and reading
        self.history.append((time.time(), cpu_now))

    def cpu_at(self, when: float) -> dict[int, float]:
        """Each process's CPU seconds at epoch time ``when``, interpolated between the samples
        either side (0 before a process was first seen, its last figure after it exited)."""
        times = [t for t, _ in self.history]
        i = bisect.bisect_right(times, when)
        before = self.history[i - 1] if i > 0 else (when, {})
        after = self.history[i] if i < len(self.history) else before
        (t0, cpu0), (t1, cpu1) = before, after
        share = (when - t0) / (t1 - t0) if t1 > t0 else 0.0
        latest: dict[int, float] = {}
        for _, cpu in self.history[:i]:
            latest.update(cpu)  # processes that had exited by then keep their last figure
        for pid, end in cpu1.items():
            start = cpu0.get(pid, latest.get(pid, 0.0))
            latest[pid] = start + (end - start) * share
        return latest

    def cpu_between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each role spent between two epoch times (see ``cpu_at``)."""
        first, last = self.cpu_at(start), self.cpu_at(end)
        roles: dict[str, float] = {}
        for pid, cpu in last.items():
            role = self.seen[pid].role
            roles[role] = roles.get(role, 0.0) + cpu - first.get(pid, 0.0)
        return roles

    def by_role(self, group: Callable[[str], str] = lambda role: role) -> dict[str, ProcessFigures]:
        """Figures per role: the largest peak RSS of one process, the sum of CPU seconds."""
        roles: dict[str, ProcessFigures] = {}
        for figures in self.seen.values():
            role = group(figures.role)
            total = roles.setdefault(role, ProcessFigures(role))
            total.peak_rss = max(total.peak_rss, figures.peak_rss)
            total.cpu_secs += figures.cpu_secs
        return roles


def run_checked(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float) -> str:
    """Run ``cmd``; return its stdout, or raise with its stderr."""
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done.stdout
