"""Whole processes, as a user runs them: ``herald`` and ``invoke`` commands, their children."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
from sqlalchemy import text

from herald.db.engine import make_engine
from herald.kafka import EMBEDDED_SESSION_TIMEOUT_MS
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase

ROOT = Path(__file__).parents[2]
HERALD = str(Path(sys.executable).with_name("herald"))
INVOKE = str(Path(sys.executable).with_name("invoke"))


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any HERALD_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(extra)
    return env


def external(
    broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str, tmp_path: Path, **extra: str
) -> dict[str, str]:
    """The environment of a command pointed at the session's broker and database."""
    return clean_env(
        HERALD_HOME=str(tmp_path / "home"),
        HERALD_KAFKA_BOOTSTRAP=broker.bootstrap,
        HERALD_KAFKA_NAMESPACE=namespace,
        HERALD_KAFKA_SESSION_TIMEOUT_MS=str(EMBEDDED_SESSION_TIMEOUT_MS),
        HERALD_DATABASE_URL=database.url,
        **extra,
    )


def outcome_rows(url: str, run_id: str) -> tuple[int, int]:
    """(rows, distinct message ids) of a run's outcomes: equal unless a row is duplicated."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows, distinct = conn.execute(
                text("SELECT count(*), count(DISTINCT message_id) FROM outcomes WHERE run_id=:r"),
                {"r": run_id},
            ).one()
            return int(rows), int(distinct)
    finally:
        engine.dispose()


def outcome_count(url: str, run_id: str) -> int:
    """A run's outcome rows."""
    return outcome_rows(url, run_id)[0]


def run_state(url: str, run_id: str) -> tuple[str, str | None, int | None]:
    """(state, state_reason, expected) of a run's row."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT state, state_reason, expected FROM runs WHERE run_id = :r"),
                {"r": run_id},
            ).one()
            return str(row[0]), row[1], row[2]
    finally:
        engine.dispose()


def processes_under(folder: Path) -> list[psutil.Process]:
    """Processes whose command line names ``folder`` (a run's services, broker, database)."""
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(folder) in " ".join(p.info["cmdline"] or [])
    ]


def words_of(cmdline: list[str]) -> list[str]:
    """A command line's words: a forked service's is one string (its title, as ``ps`` shows
    it), an exec'd one's a word per argument."""
    return " ".join(cmdline).split()


def is_service(cmdline: list[str]) -> bool:
    """A herald command line (``.../herald <service> ...``)."""
    return any(word.endswith("/herald") for word in words_of(cmdline))


def helper_of(cmdline: list[str]) -> str:
    """What a run's process that is not a service is: ``forkserver`` (the services were
    forked from it) or ``resource_tracker`` (multiprocessing's), else its first word."""
    text = " ".join(cmdline)
    for helper in ("forkserver", "resource_tracker"):
        if f"from multiprocessing.{helper} import main" in text:
            return helper
    return cmdline[0] if cmdline else ""


def service_of(cmdline: list[str]) -> str:
    """``sender --id 2``, ``recorder``, ...: the service a herald command line runs."""
    words = words_of(cmdline)
    at = next(i for i, word in enumerate(words) if word.endswith("/herald"))
    words = words[at + 1 :]
    return " ".join(words[:3]) if words[0] == "sender" else words[0]


def run_id_of(first_line: str) -> str:
    """The run id in ``herald sim``'s first line (``herald run ID: ...``)."""
    return first_line.split()[2].rstrip(":")


def service_logs(home: Path, lines: int = 40) -> str:
    """The last ``lines`` of every service log of every run under ``home`` (a test's herald
    home): for an assertion's message, so that a failure in CI says what the services did."""
    parts = []
    for log in sorted(home.glob("runs/*/logs/*.log")):
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        parts.append(f"--- {log.relative_to(home)}\n" + "\n".join(tail))
    return "\n".join(parts)
