"""Locust, headless, in a subprocess, and the figures of its CSV report."""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from herald.errors import ConfigError, HeraldError
from herald.load import (
    CREATED_ENV,
    CREATED_FILE,
    HTML_FILE,
    LOCUST_LOG,
    PACE_ENV,
    STATS_PREFIX,
    TOKEN_ENV,
    WAIT_SCALE_ENV,
)

# When the run time is up, Locust lets a user finish the task it is in for this long, so that
# every request sent is answered, counted and (if it created something) recorded.
STOP_TIMEOUT_SECS = 10
START_SECS = 120  # Locust's own start-up, on a busy machine


@dataclass(frozen=True)
class EndpointStats:
    """One row of Locust's ``*_stats.csv``; times in milliseconds (None: no request)."""

    method: str
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @property
    def key(self) -> str:
        """``POST /api/runs``; the aggregated row's is ``all``."""
        return f"{self.method} {self.name}" if self.method else "all"


@dataclass(frozen=True)
class LocustResult:
    exit_code: int
    endpoints: tuple[EndpointStats, ...]
    total: EndpointStats | None
    failures: tuple[tuple[str, str, int], ...]  # (endpoint, error, occurrences)

    @property
    def failure_ratio(self) -> float:
        total = self.total
        return total.failures / total.requests if total is not None and total.requests else 0.0


def require_locust() -> None:
    """ConfigError unless Locust is installed (found without importing it)."""
    if importlib.util.find_spec("locust") is None:
        raise ConfigError("Locust is not installed: it is a dev dependency (poetry install)")


def locust_env(
    environ: Mapping[str, str],
    report_dir: Path,
    *,
    token: str | None = None,
    wait_scale: float | None = None,
    pace: float | None = None,
) -> dict[str, str]:
    """Locust's environment: ``environ`` and what load/common.py reads (``pace``: each
    user's tasks per second, instead of the locustfile's wait times)."""
    env = {**environ, CREATED_ENV: str(report_dir / CREATED_FILE), "PYTHONUNBUFFERED": "1"}
    if token:
        env[TOKEN_ENV] = token
    if wait_scale is not None:
        env[WAIT_SCALE_ENV] = f"{wait_scale:g}"
    if pace is not None:
        env[PACE_ENV] = repr(pace)
    return env


def run_locust(
    *,
    locustfile: Path,
    url: str,
    users: int,
    spawn_rate: float,
    run_secs: float,
    report_dir: Path,
    env: Mapping[str, str],
    tags: Sequence[str] = (),
    exclude_tags: Sequence[str] = (),
) -> LocustResult:
    """Run ``locustfile`` against ``url``: CSV and HTML reports and Locust's log in
    ``report_dir``; HeraldError unless Locust ran and wrote its figures."""
    report_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "locust", "--locustfile", str(locustfile), "--headless",
        "--host", url, "--users", str(users), "--spawn-rate", f"{spawn_rate:g}",
        "--run-time", f"{max(1, round(run_secs))}s", "--stop-timeout", str(STOP_TIMEOUT_SECS),
        "--csv", str(report_dir / STATS_PREFIX), "--html", str(report_dir / HTML_FILE),
        "--only-summary",
        # Failures are judged by herald (--max-failures): a non-zero exit is Locust's trouble.
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    argv += ["--tags", *tags] if tags else []
    argv += ["--exclude-tags", *exclude_tags] if exclude_tags else []
    log_path = report_dir / LOCUST_LOG
    limit = run_secs + STOP_TIMEOUT_SECS + START_SECS
    with log_path.open("wb") as log:
        # In the repository's root, where the locustfiles find ``load.common``; in a session of
        # its own, so that Ctrl-C reaches it once, from here.
        proc = subprocess.Popen(
            argv, cwd=locustfile.parent.parent, env=dict(env), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            code = proc.wait(limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise HeraldError(f"Locust did not finish in {limit:g}s (log {log_path})") from None
        except BaseException:  # Ctrl-C: on SIGTERM, Locust stops and writes its reports
            proc.terminate()
            proc.wait(STOP_TIMEOUT_SECS + 10)
            raise
    rows = read_stats(report_dir / f"{STATS_PREFIX}_stats.csv")
    total = next((r for r in rows if not r.method), None)
    if code != 0 or total is None:
        raise HeraldError(f"Locust exited with code {code}; the end of its log:\n{tail(log_path)}")
    return LocustResult(
        exit_code=code,
        endpoints=tuple(r for r in rows if r.method),
        total=total,
        failures=read_failures(report_dir / f"{STATS_PREFIX}_failures.csv"),
    )


def read_stats(path: Path) -> list[EndpointStats]:
    """The rows of Locust's ``*_stats.csv`` (none if it is missing)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [
            EndpointStats(
                method=row["Type"],
                name=row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                rps=float(row["Requests/s"]),
                p50_ms=_ms(row["50%"]),
                p95_ms=_ms(row["95%"]),
                p99_ms=_ms(row["99%"]),
                max_ms=_ms(row["Max Response Time"]),
            )
            for row in csv.DictReader(f)
        ]


def read_failures(path: Path) -> tuple[tuple[str, str, int], ...]:
    """Locust's ``*_failures.csv``: (endpoint, error, occurrences), most frequent first."""
    if not path.exists():
        return ()
    with path.open(newline="") as f:
        rows = [
            (f"{r['Method']} {r['Name']}", _unwrapped(r["Error"]), int(r["Occurrences"]))
            for r in csv.DictReader(f)
        ]
    return tuple(sorted(rows, key=lambda r: -r[2]))


_CAUGHT = re.compile(r"""CatchResponseError\((['"])(.*)\1\)""", re.S)


def _unwrapped(error: str) -> str:
    # A failure a locustfile reported (response.failure) is stored as the repr of Locust's
    # exception around its message: the message is what a reader wants.
    found = _CAUGHT.fullmatch(error)
    return found.group(2) if found else error


def _ms(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:  # "N/A": no request
        return None


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` of a log."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
