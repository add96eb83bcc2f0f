"""What a local run is made of: its database and its service processes (from the service
registry), how they are supervised, and what an incident does to them."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from herald.config import Settings
from herald.errors import HeraldError, StorageError
from herald.runtime.database import EmbeddedDatabase
from herald.runtime.forks import ForkServer
from herald.runtime.processes import (
    ProcessGroup,
    ServiceProcess,
    Supervisor,
    child_environment,
    herald_command,
)
from herald.services.registry import Instance


class RunDatabase:
    """The run's database: the configured one, or the embedded one, started in the background
    while the broker and the services start. Its URL is known at once (:attr:`url`)."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self._settings = settings.database
        self._embedded: EmbeddedDatabase | None = None
        self._starting: Future[EmbeddedDatabase] | None = None
        if self._settings.url is None:
            self._embedded = EmbeddedDatabase(home / "pgdata")
            self.url = self._embedded.url
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="database")
            self._starting = self._pool.submit(self._embedded.start)
        else:
            self.url = self._settings.url
        self.planned_outage = False  # a db-outage incident has it down on purpose
        self._probe: Any = None  # a connection kept for check()
        self._next_check = 0.0
        self._away_since: float | None = None

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    def ready(self, stop: threading.Event) -> str:
        """The database URL, once the database answers and is migrated."""
        # psycopg, SQLAlchemy and Alembic are imported only now, while the services start.
        from herald.db.pg import migrate_if_needed, wait_for_database

        if self._starting is not None:
            self._starting.result()
        wait_for_database(self.url, self._settings.connect_timeout_secs, stop=stop.is_set)
        migrate_if_needed(self.url)
        if self._embedded is not None:
            self._embedded.abandon_left_runs()
        return self.url

    def check(self, every: float = 1.0) -> None:
        """Raise StorageError once the database has not answered for
        ``database.connect_timeout_secs`` (asked at most every ``every`` seconds), unless an
        outage is planned."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + every
        if self.planned_outage or self._answers():
            self._away_since = None
            return
        if self._away_since is None:
            self._away_since = now
        patience = self._settings.connect_timeout_secs
        if now - self._away_since >= patience:
            from herald.db.pg import safe_url

            raise StorageError(
                f"Postgres at {safe_url(self.url)} went away mid-run: no answer for {patience:g}s "
                "(database.connect_timeout_secs)"
            )

    def _answers(self) -> bool:
        import psycopg

        from herald.db.pg import conninfo

        try:
            if self._probe is None:
                self._probe = psycopg.connect(
                    conninfo(self.url), connect_timeout=2, autocommit=True
                )
            self._probe.execute("SELECT 1")
        except psycopg.Error:
            self._close_probe()
            return False
        return True

    def _close_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.close()

    def outage(self, *, down: bool) -> str:
        """Stop (``down``) or start the embedded database: a rehearsed outage."""
        assert self._embedded is not None
        if down:
            self.planned_outage = True
            self._embedded.stop(force=True)
            return "embedded database stopped"
        self._embedded.start()
        self.planned_outage = False
        return "embedded database started"

    def stop(self) -> None:
        self._close_probe()
        if self._starting is None or self._embedded is None:
            return
        try:
            self._starting.result()  # a start still in progress finishes first
        except HeraldError:
            return  # it never started: nothing to stop
        finally:
            self._pool.shutdown()
        self._embedded.stop()


@dataclass
class Launcher:
    """Starts herald service instances as processes of ``group``, each with the run's
    settings file, and restarts them for the supervisor."""

    group: ProcessGroup
    settings_file: Path
    logs: Path
    env: dict[str, str] = field(default_factory=child_environment)
    stdout: dict[str, IO[str]] = field(default_factory=dict)  # instance -> its output
    instances: dict[str, Instance] = field(default_factory=dict)
    forks: ForkServer | None = None  # fork the services from it instead of exec'ing each

    def spawn(self, instance: Instance) -> ServiceProcess:
        """Start ``herald ARGS --settings FILE`` as ``instance``."""
        self.instances[instance.name] = instance
        return self.group.add(
            ServiceProcess(
                instance.name,
                herald_command(*instance.args, "--settings", str(self.settings_file)),
                log_path=self.logs / f"{instance.name}.log",
                env=self.env,
                stdout=self.stdout.get(instance.name),
                forks=self.forks,
            )
        )

    def respawn(self, name: str) -> ServiceProcess:
        """Start instance ``name`` again."""
        return self.spawn(self.instances[name])


def incident_actions(
    launcher: Launcher, supervisor: Supervisor, database: RunDatabase
) -> dict[str, Callable[[str | None], str]]:
    """What each incident event does to the run's processes and database."""
    group = launcher.group

    def stop_it(name: str | None, signum: int) -> str:
        assert name is not None
        proc = group.get(name)
        supervisor.expect(name)
        proc.signal(signum)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.signal(signal.SIGKILL)
            proc.wait()
        return f"{signal.Signals(signum).name} {name} (pid {proc.pid})"

    def again(name: str | None, what: str) -> str:
        assert name is not None
        new = launcher.respawn(name)
        return f"{what}; started again (pid {new.pid})"

    def signal_only(signum: int) -> Callable[[str | None], str]:
        def act(name: str | None) -> str:
            assert name is not None
            proc = group.get(name)
            proc.signal(signum)
            return f"{signal.Signals(signum).name} {name} (pid {proc.pid})"

        return act

    return {
        "kill": lambda n: stop_it(n, signal.SIGKILL),
        "crash": lambda n: again(n, stop_it(n, signal.SIGKILL)),
        "restart": lambda n: again(n, stop_it(n, signal.SIGTERM)),
        "stop": lambda n: stop_it(n, signal.SIGTERM),
        "start": lambda n: f"{n} started again (pid {launcher.respawn(str(n)).pid})",
        "pause": signal_only(signal.SIGSTOP),
        "resume": signal_only(signal.SIGCONT),
        "db-down": lambda _n: database.outage(down=True),
        "db-up": lambda _n: database.outage(down=False),
    }
