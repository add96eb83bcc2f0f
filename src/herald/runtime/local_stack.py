"""The stack without Docker: the broker (the embedded Tansu, or Apache Kafka from its jars: one
node, or three in the ``cluster`` profile), the embedded database and every herald service of a
profile, as local processes supervised by supervisord.

supervisord (daemonised) owns every process: it restarts a crashed service, keeps each one's
output in ``<home>/stack/logs/<name>.log`` and stops them all, in reverse start order, on
``down()``. Its configuration is generated from :mod:`herald.runtime.stack`, the same
definition the compose file follows. The broker and the database start first, then (in
``all``) ``migrate`` runs once, then the services; each is waited for until it is healthy.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import xmlrpc.client
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald import kafka
from herald.completion import Watch
from herald.config import KafkaSettings, Settings
from herald.control import Listener
from herald.db.pg import wait_for_database
from herald.errors import HeraldError, StorageError
from herald.runtime import engines, stack
from herald.runtime.broker import HOST, broker_command
from herald.runtime.database import EmbeddedDatabase
from herald.runtime.ports import free_port, wait_for_port
from herald.runtime.processes import herald_command

logger = logging.getLogger(__name__)

BROKER = "broker"
DATABASE = "postgres"
# Start order; supervisord stops in the reverse order.
_RPC_FACTORY = "supervisor.rpcinterface:make_main_rpcinterface"
_PRIORITY = {BROKER: 10, DATABASE: 20, "migrate": 30, "web": 50}


class StackError(HeraldError):
    """The local stack could not be brought up, or is not in the state asked for."""


@dataclass(frozen=True)
class ServiceStatus:
    """One supervised process, as ``stack.ps`` shows it."""

    name: str
    state: str
    pid: int | None
    healthy: bool | None
    detail: str


@dataclass(frozen=True)
class StackState:
    """What ``up()`` recorded: the profile and where its broker, database and web app are."""

    profile: str
    kafka_bootstrap: str
    database_url: str
    web_url: str | None
    started_at: str = ""  # ISO time: health is read from the control topic since then
    engine: str = "tansu"  # the broker: tansu, or kafka (Apache Kafka)
    brokers: int = 1


class LocalStack:
    """A stack of supervised local processes whose state lives in ``<home>/stack``."""

    def __init__(self, settings: Settings, *, cwd: Path | None = None) -> None:
        self.settings = settings
        self.home = settings.home.expanduser().resolve()
        self.dir = self.home / "stack"
        self.cwd = (cwd or Path.cwd()).resolve()
        self.logs = self.dir / "logs"
        self.conf = self.dir / "supervisord.conf"
        self.services_conf = self.dir / "services.conf"
        self.pidfile = self.dir / "supervisord.pid"
        self.state_file = self.dir / "state.json"
        self.env_file = self.dir / "stack.env"
        self.db_owned = self.dir / "database.owned"  # the stack's wrapper started Postgres
        self._control: tuple[Listener, Watch] | None = None
        self.pgdata = self.home / "pgdata"

    # -- queries ----------------------------------------------------------------------------

    @property
    def socket(self) -> Path:
        """supervisord's control socket (in the temp dir when the stack's path is too long)."""
        path = self.dir / "supervisor.sock"
        if len(str(path)) < 100:
            return path
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"herald-stack-{digest}.sock"

    def supervisord_pid(self) -> int | None:
        """The pid of this stack's supervisord, if it is running."""
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def is_up(self) -> bool:
        return self.supervisord_pid() is not None

    def state(self) -> StackState | None:
        try:
            return StackState(**json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            return None

    def status(self) -> list[ServiceStatus]:
        """Every supervised process: state, pid and health."""
        if not self.is_up():
            return []
        state = self.state()
        out = []
        for info in self._rpc().supervisor.getAllProcessInfo():
            name = str(info["name"])
            running = info["statename"] == "RUNNING"
            healthy = self._healthy(name, int(info["pid"]), state) if running else None
            if name == "migrate" and info["statename"] == "EXITED":
                healthy = info["exitstatus"] == 0
            out.append(
                ServiceStatus(
                    name=name,
                    state=str(info["statename"]),
                    pid=int(info["pid"]) or None,
                    healthy=healthy,
                    detail=str(info["description"]),
                )
            )
        return out

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def log_names(self) -> list[str]:
        """Every process with a log, in start order."""
        if self.is_up():
            return [s.name for s in self.status()]
        return sorted(p.stem for p in self.logs.glob("*.log"))

    # -- up ---------------------------------------------------------------------------------

    def up(self, profile: str, *, timeout: float = 120.0) -> StackState:
        """Bring ``profile`` up and wait until every process of it is healthy."""
        stack.check_profile(profile)
        if self.is_up():
            raise StackError(f"a stack is already up ({self.dir}); stack.down first")
        engine, brokers = self.engine(profile)
        if engine == "kafka":  # Java and Kafka's jars (Maven fetches them once), or a clear error
            engines.check(self.settings.model_copy(update={"kafka": self._engine_kafka(profile)}))
        deadline = time.monotonic() + timeout
        started_at = datetime.now(UTC)
        shutil.rmtree(self.logs, ignore_errors=True)
        for folder in (self.dir, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        ports = [free_port(HOST) for _ in range(brokers)]
        bootstrap = ",".join(f"{HOST}:{port}" for port in ports)
        self._write_conf(ports, engine)
        self.services_conf.write_text("")
        try:
            self._start_supervisord(deadline)
            rpc = self._rpc()
            rpc.supervisor.startProcess(BROKER, False)
            while not wait_for_port(HOST, ports[0], 0.5):  # Kafka: formatting, JVMs starting
                self._check_alive(BROKER)
                if time.monotonic() > deadline:
                    raise self._failed(BROKER, "does not accept connections")
            ks = self._kafka_settings(bootstrap, engine, brokers)
            kafka.wait_for_broker(ks, brokers=brokers)
            kafka.ensure_topics(ks)
            rpc.supervisor.startProcess(DATABASE, True)
            url = EmbeddedDatabase(self.pgdata).url
            wait_for_database(url, _left(deadline))
            web_url = None
            services = stack.herald_services(profile, self.settings)
            if services:
                web_port = _port_or_free(stack.WEB_PORT)
                web_url = f"http://{HOST}:{web_port}"
                self._add_services(services, ks, url, web_port)
                self._run_once("migrate", deadline)
                for service in services:
                    if not service.one_shot:
                        rpc.supervisor.startProcess(service.name, False)
            state = StackState(
                profile, bootstrap, url, web_url, started_at.isoformat(), engine, brokers
            )
            self.state_file.write_text(json.dumps(asdict(state), indent=2) + "\n")
            self.env_file.write_text(
                f"HERALD_KAFKA_BOOTSTRAP={bootstrap}\nHERALD_DATABASE_URL={url}\n"
            )
            self._wait_healthy(deadline)
        except BaseException:
            self.down()
            raise
        return state

    def engine(self, profile: str) -> tuple[str, int]:
        """The broker ``profile`` runs here: (``tansu`` or ``kafka``, nodes). The ``cluster``
        profile is three Apache Kafka nodes; the others run ``kafka.engine``/``kafka.brokers``."""
        if profile == "cluster":
            return "kafka", 3
        return self.settings.kafka.engine, self.settings.kafka.brokers

    def _engine_kafka(self, profile: str) -> KafkaSettings:
        engine, brokers = self.engine(profile)
        return self.settings.kafka.model_copy(update={"engine": engine, "brokers": brokers})

    def _kafka_settings(
        self, bootstrap: str, engine: str = "tansu", brokers: int = 1
    ) -> KafkaSettings:
        """Clients' settings for the stack's broker: Tansu's short group timeouts, or Apache
        Kafka's run timeouts and topics on every node (unless set)."""
        if engine == "tansu":
            return kafka.for_embedded(self.settings.kafka, bootstrap)
        ks = self.settings.kafka
        update: dict[str, object] = {"bootstrap": bootstrap}
        if "replication_factor" not in ks.model_fields_set:
            update["replication_factor"] = brokers
        return engines.with_run_timeouts(ks.model_copy(update=update))

    def _write_conf(self, ports: Sequence[int], engine: str) -> None:
        if engine == "tansu":
            broker = broker_command(ports[0], HOST)
        else:  # the wrapper runs the nodes and stops them on SIGTERM (they die with it)
            broker = [
                sys.executable, "-m", "herald.runtime.local_stack", "kafka",
                "--home", str(self.home), "--log-dir", str(self.logs),
                "--ports", ",".join(str(p) for p in ports),
            ]  # fmt: skip
        database = [
            sys.executable,
            "-m",
            "herald.runtime.local_stack",
            "database",
            str(self.pgdata),
            str(self.db_owned),
        ]
        sections = [
            _section(
                "supervisord",
                logfile=self.dir / "supervisord.log",
                pidfile=self.pidfile,
                childlogdir=self.logs,
                directory=self.cwd,
                identifier=f"herald-stack-{self.dir}",
            ),
            _section("unix_http_server", file=self.socket, chmod="0700"),
            _section(
                "rpcinterface:supervisor",
                **{"supervisor.rpcinterface_factory": _RPC_FACTORY},
            ),
            _section("supervisorctl", serverurl=f"unix://{self.socket}"),
            # Tansu keeps its topics in memory, the Kafka wrapper removes its nodes' data on
            # stop: restarted, either would be empty. Let it fail.
            self._program(BROKER, broker, autorestart="false", stopwaitsecs=30),
            # The wrapper stops Postgres itself on SIGTERM (fast shutdown): not its group.
            self._program(DATABASE, database, stopasgroup="false", killasgroup="false"),
            _section("include", files=self.services_conf),
        ]
        self.conf.write_text("\n".join(sections))

    def _program(self, name: str, argv: Sequence[str], **extra: object) -> str:
        options: dict[str, object] = {
            "command": " ".join(_quote(a) for a in argv),
            "directory": self.cwd,
            "autostart": "false",
            "autorestart": "unexpected",
            "startsecs": 1,
            "startretries": 3,
            "priority": _PRIORITY.get(name.split("-", maxsplit=1)[0], 40),
            "stopsignal": "TERM",
            "stopwaitsecs": 20,
            "stopasgroup": "true",
            "killasgroup": "true",
            "redirect_stderr": "true",
            "stdout_logfile": self.log_path(name),
            "stdout_logfile_maxbytes": "50MB",
            "stdout_logfile_backups": 2,
        }
        options.update(extra)
        return _section(f"program:{name}", **options)

    def _add_services(
        self, services: Sequence[stack.StackService], ks: KafkaSettings, url: str, web_port: int
    ) -> None:
        assert ks.bootstrap is not None
        env = stack.environment(
            stack.Location(
                kafka_bootstrap=ks.bootstrap,
                database_url=url,
                replication_factor=str(ks.replication_factor),
            )
        )
        # Group timeouts: short on the embedded broker (its joins take about half the session
        # timeout), a run's on the local Apache Kafka (a killed member is noticed in seconds).
        env["HERALD_KAFKA_SESSION_TIMEOUT_MS"] = str(ks.session_timeout_ms)
        env["HERALD_KAFKA_HEARTBEAT_INTERVAL_MS"] = str(ks.heartbeat_interval_ms)
        # The web tier as it scales: several processes on one port (gunicorn), not one.
        env["HERALD_WEB_WORKERS"] = str(max(2, self.settings.web.workers))
        environment = ",".join(f'{k}="{_escape(v)}"' for k, v in env.items())
        sections = []
        for service in services:
            argv = herald_command(*service.argv(host=HOST, port=web_port))
            extra: dict[str, object] = {"environment": environment}
            if service.one_shot:
                extra |= {"autorestart": "false", "startsecs": 0, "exitcodes": 0}
            sections.append(self._program(service.name, argv, **extra))
        self.services_conf.write_text("\n".join(sections))
        rpc = self._rpc()
        rpc.supervisor.reloadConfig()
        for service in services:
            rpc.supervisor.addProcessGroup(service.name)

    def _start_supervisord(self, deadline: float) -> None:
        self.socket.unlink(missing_ok=True)
        subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)],
            check=True,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            timeout=_left(deadline),
        )  # it daemonises: this returns once the daemon has forked
        while True:
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                if self._rpc().supervisor.getState()["statename"] == "RUNNING":
                    return
            if time.monotonic() > deadline:
                raise StackError(f"supervisord did not start; see {self.dir}/supervisord.log")
            time.sleep(0.05)

    def _run_once(self, name: str, deadline: float) -> None:
        rpc = self._rpc()
        rpc.supervisor.startProcess(name, False)
        while True:
            info = rpc.supervisor.getProcessInfo(name)
            if info["statename"] in ("EXITED", "FATAL", "BACKOFF") and info["exitstatus"] != 0:
                raise self._failed(name, f"exited with code {info['exitstatus']}")
            if info["statename"] == "EXITED":
                return
            if time.monotonic() > deadline:
                raise self._failed(name, "did not finish in time")
            time.sleep(0.1)

    def _wait_healthy(self, deadline: float) -> None:
        while True:
            statuses = self.status()
            for s in statuses:
                if s.state in ("FATAL", "BACKOFF") or (s.state == "EXITED" and not s.healthy):
                    raise self._failed(s.name, s.detail)
            waiting = [s.name for s in statuses if not s.healthy]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise StackError(f"not healthy in time: {', '.join(waiting)} (logs in {self.logs})")
            time.sleep(0.1)

    def _healthy(self, name: str, pid: int, state: StackState | None) -> bool:
        if state is None:
            return False
        if name == BROKER:
            return all(_port_open(address) for address in state.kafka_bootstrap.split(","))
        if name == DATABASE:
            return _database_answers(state.database_url)
        service = next(s.service for s in stack.stack_services(self.settings) if s.name == name)
        if service.health == "control":
            return self._watch(state).is_ready(pid)
        if service.health == "http":
            return _http_ok(f"{state.web_url}/api/health")
        return True  # `alive`: supervisord says RUNNING after startsecs

    def _watch(self, state: StackState) -> Watch:
        """What the control topic has said since the stack started (read up to now)."""
        if self._control is None:
            ks = self._kafka_settings(state.kafka_bootstrap, state.engine, state.brokers)
            since = datetime.fromisoformat(state.started_at)
            self._control = (Listener(ks, since=since), Watch("", want_figures=False))
        listener, watch = self._control
        while events := listener.poll(0.05):
            watch.feed(events)
        return watch

    def close(self) -> None:
        """Release the control topic's reader, if one was made."""
        if self._control is not None:
            self._control[0].close()
            self._control = None

    def _check_alive(self, name: str) -> None:
        info = self._rpc().supervisor.getProcessInfo(name)
        if info["statename"] in ("EXITED", "FATAL", "BACKOFF"):
            raise self._failed(name, str(info["description"]))

    def _failed(self, name: str, what: str) -> StackError:
        tail = "\n".join(_tail(self.log_path(name), 20))
        return StackError(f"{name} {what}; its log ({self.log_path(name)}) ends with:\n{tail}")

    def _rpc(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport  # type: ignore[import-untyped]

        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport)

    # -- down -------------------------------------------------------------------------------

    def down(self, *, timeout: float = 60.0) -> bool:
        """Stop every process of the stack (services first); False if none was running."""
        self.close()
        pid = self.supervisord_pid()
        if pid is None:
            self._stop_orphan_database()
            return False
        with contextlib.suppress(OSError, xmlrpc.client.Fault):
            self._rpc().supervisor.shutdown()
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                logger.warning("supervisord (pid %d) did not stop in %gs: killing it", pid, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        self._stop_orphan_database()
        self.state_file.unlink(missing_ok=True)
        self.env_file.unlink(missing_ok=True)
        return True

    def destroy(self) -> list[Path]:
        """``down()``, then delete the stack's files and the embedded database's data: the
        folders that existed and were deleted."""
        self.down()
        deleted = [folder for folder in (self.dir, self.pgdata) if folder.exists()]
        for folder in deleted:
            shutil.rmtree(folder, ignore_errors=True)
        return deleted

    def _stop_orphan_database(self) -> None:
        # The wrapper stops Postgres; if the wrapper was killed, its server may remain. Only a
        # server the stack's wrapper started (its marker) is stopped: not a sim.run's.
        database = EmbeddedDatabase(self.pgdata)
        if self.db_owned.exists() and database.running():
            database.start()  # a handle on the running server, to stop it
            database.stop(force=True)
        self.db_owned.unlink(missing_ok=True)


def format_status(statuses: Sequence[ServiceStatus], state: StackState | None) -> str:
    """``stack.ps``'s table: one line per process, then where the stack's endpoints are."""
    rows = [("SERVICE", "STATE", "PID", "HEALTH", "DETAIL")]
    for s in statuses:
        health = {True: "healthy", False: "unhealthy", None: "-"}[s.healthy]
        rows.append((s.name, s.state, str(s.pid or "-"), health, s.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in rows
    ]
    if state is not None:
        lines.append("")
        broker = (
            "Tansu, embedded"
            if state.engine == "tansu"
            else f"Apache Kafka, {state.brokers} node{'s' if state.brokers > 1 else ''}"
        )
        lines.append(f"profile {state.profile} (local processes, supervisord; broker: {broker})")
        lines.append(f"HERALD_KAFKA_BOOTSTRAP={state.kafka_bootstrap}")
        lines.append(f"HERALD_DATABASE_URL={state.database_url}")
        if state.web_url:
            lines.append(f"web: {state.web_url}/")
    return "\n".join(line.rstrip() for line in lines)


def show_logs(
    stack_: LocalStack,
    names: Sequence[str],
    out: Callable[[str], None],
    *,
    lines: int = 50,
    stop: threading.Event | None = None,
) -> None:
    """The last ``lines`` of each named log (prefixed when several); then, given ``stop``,
    every new line until it is set."""
    prefix = len(names) > 1
    width = max((len(n) for n in names), default=0)

    def emit(name: str) -> Callable[[str], None]:
        return lambda line: out((f"{name.ljust(width)} | " if prefix else "") + line.rstrip("\n"))

    offsets = {}
    for name in names:
        path = stack_.log_path(name)
        offsets[name] = path.stat().st_size if path.exists() else 0
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
            text = f.read(offsets[name]).decode("utf-8", errors="replace")
            for line in text.splitlines()[-lines:]:
                emit(name)(line)
    if stop is None:
        return
    threads = [
        threading.Thread(
            target=follow,
            args=(stack_.log_path(n), emit(n)),
            kwargs={"stop": stop, "start": offsets[n]},
            daemon=True,
        )
        for n in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)


def follow(
    path: Path, out: Callable[[str], None], *, stop: threading.Event, start: int | None = None
) -> None:
    """Write the lines appended to ``path`` after byte ``start`` (default: its end) to
    ``out``, until ``stop``."""
    with open(path, "rb") as f:
        f.seek(start if start is not None else 0, os.SEEK_SET if start is not None else os.SEEK_END)
        while not stop.is_set():
            line = f.readline()
            if line.endswith(b"\n"):
                out(line.decode("utf-8", errors="replace"))
            else:
                f.seek(-len(line), os.SEEK_CUR)  # a partial line: read it again, whole
                stop.wait(0.2)


def _section(title: str, **options: object) -> str:
    lines = [f"[{title}]"] + [f"{k}={_escape(str(v))}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("%", "%%")  # supervisord expands %(name)s in its values


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _port_or_free(port: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return free_port(HOST)
    return port


def _port_open(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    return wait_for_port(host, int(port), 0.2)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
            return int(response.status) == 200
    except OSError:
        return False


def _database_answers(url: str) -> bool:
    try:
        wait_for_database(url, 0.5)
    except StorageError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(path: Path, lines: int) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return []


def database_main(argv: Sequence[str] | None = None) -> int:
    """The supervised database: start the embedded Postgres (its URL is known in advance: see
    :attr:`EmbeddedDatabase.url`), mark it the stack's own, stop it on SIGTERM."""
    p = argparse.ArgumentParser(prog="herald.runtime.local_stack database")
    p.add_argument("data_dir", type=Path)
    p.add_argument("owned_marker", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    db = EmbeddedDatabase(args.data_dir).start()
    args.owned_marker.touch()
    try:
        logger.info("embedded Postgres up in %s at %s", args.data_dir, db.url)
        stop.wait()
    finally:
        db.stop(force=True)  # ours, even if an earlier stack left it running
        args.owned_marker.unlink(missing_ok=True)
        logger.info("embedded Postgres stopped")
    return 0


def kafka_main(argv: Sequence[str] | None = None) -> int:
    """The supervised Apache Kafka: its nodes on the given client ports (known to the stack in
    advance), in the foreground until SIGTERM, then stopped and their data removed."""
    from herald.runtime.apache_kafka import ApacheKafkaCluster

    p = argparse.ArgumentParser(prog="herald.runtime.local_stack kafka")
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--log-dir", type=Path, required=True)
    p.add_argument("--ports", required=True, help="client ports, one per node: 1 or 3")
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    ports = [int(port) for port in args.ports.split(",")]
    cluster = ApacheKafkaCluster(
        brokers=len(ports), home=args.home, log_dir=args.log_dir, client_ports=ports
    )
    try:
        cluster.start()
    except HeraldError as exc:
        logger.error("%s", exc)
        return exc.exit_code
    try:
        stop.wait()
    finally:
        cluster.stop(timeout=20)
        logger.info("Apache Kafka stopped")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["database"]:
        sys.exit(database_main(sys.argv[2:]))
    if sys.argv[1:2] == ["kafka"]:
        sys.exit(kafka_main(sys.argv[2:]))
    sys.exit(f"usage: {sys.argv[0]} database DATA_DIR OWNED_MARKER | kafka --home ... ")
