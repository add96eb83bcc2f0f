"""Serving the web app: ``serve()`` (waitress, or Flask's dev server), and ``herald web``,
which also starts the embedded stack when no broker or database is configured."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from herald import kafka
from herald.config import ENGINES, Settings, resolved_json, secret_environment
from herald.services import common

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Every open page holds one event stream, and with it one server thread.
DEFAULT_THREADS = 32


def serve(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    stop: threading.Event,
    dev: bool = False,
    threads: int = DEFAULT_THREADS,
    on_ready: Callable[[str], None] | None = None,
) -> int:
    """Serve the app on ``host:port`` until ``stop``; ``on_ready`` gets the base URL.

    ``database.url`` and ``kafka.bootstrap`` must be set (see :func:`run_stack` otherwise).
    Waitress serves it unless ``dev`` (Flask's development server, debugger off). Raises
    ConfigError, before anything starts, for a non-loopback ``host`` nothing guards
    (:func:`herald.web.security.check_binding`).
    """
    from herald.web.app import create_app, state
    from herald.web.security import check_binding

    check_binding(host, settings.web)
    workers = settings.web.workers
    if workers > 1 and not dev:
        return _serve_prefork(settings, host, port, workers, threads, stop, on_ready)
    app = create_app(settings)
    server = (
        _DevServer(app, host, port)
        if dev
        else _Waitress(app, host, port, threads, max_body_bytes=settings.web.max_body_bytes)
    )
    url = f"http://{host}:{server.port}"
    worker = threading.Thread(target=server.run, name="web-server", daemon=True)
    worker.start()
    _ready(url, "Flask development server" if dev else f"waitress, {threads} threads", on_ready)
    try:
        stop.wait()
    finally:
        state(app).shutdown.set()  # event streams end at their next tick
        server.close()
        worker.join(10)
        state(app).close()
    logger.info("herald web stopped")
    return 0


def _ready(url: str, how: str, on_ready: Callable[[str], None] | None) -> None:
    logger.info("herald web on %s (%s): dashboard %s/, API docs %s/docs", url, how, url, url)
    if on_ready is not None:
        on_ready(url)


def _serve_prefork(  # noqa: PLR0917 - serve()'s own arguments, passed on
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    threads: int,
    stop: threading.Event,
    on_ready: Callable[[str], None] | None,
) -> int:
    """Serve with gunicorn (``workers`` processes, ``threads`` threads each) until ``stop``."""
    import subprocess
    import sys

    from herald.runtime.ports import free_port
    from herald.runtime.processes import child_environment, die_with_parent
    from herald.web.wsgi import target

    port = port or free_port(host)
    folder = settings.home.expanduser().resolve() / "web"
    folder.mkdir(parents=True, exist_ok=True)
    settings_file = folder / f"web-{port}.json"
    settings_file.write_text(resolved_json(settings))
    # The file holds the settings, exactly; the secrets (never in a file) the environment.
    env = child_environment(secret_environment(settings))
    argv = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
        "--bind", f"{host}:{port}",
        "--graceful-timeout", "5",  # an event stream ends at most this long after SIGTERM
        "--limit-request-line", "8190", "--log-level", "warning",
        target(settings_file),
    ]  # fmt: skip
    # If herald web dies, even by SIGKILL, gunicorn gets SIGTERM: no orphaned server.
    proc = subprocess.Popen(argv, env=env, preexec_fn=die_with_parent)  # noqa: PLW1509
    url = f"http://{host}:{port}"
    try:
        while not _answers(url):
            if proc.poll() is not None:
                logger.error("gunicorn exited with %s before serving %s", proc.returncode, url)
                return 1
            if stop.wait(0.1):
                return 0
        _ready(url, f"gunicorn, {workers} processes x {threads} threads", on_ready)
        while not stop.wait(0.5):
            if proc.poll() is not None:
                logger.error("gunicorn exited with %s", proc.returncode)
                return 1
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        settings_file.unlink(missing_ok=True)
        logger.info("herald web stopped")


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=2):  # noqa: S310 - our own URL
            return True
    except urllib.error.HTTPError:
        return True  # an answer (503: the stack is not healthy yet) is a server serving
    except (urllib.error.URLError, OSError):
        return False


class _Waitress:
    def __init__(
        self, app: Any, host: str, port: int, threads: int, *, max_body_bytes: int
    ) -> None:
        import importlib

        # waitress ships no type stubs.
        create_server = importlib.import_module("waitress.server").create_server
        self._server = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="herald",
            clear_untrusted_proxy_headers=True,
            # Waitress reads a whole body before it calls the app (spooling it to a temporary
            # file past 512 KiB): only its own limit keeps a large one from being read at all.
            # It refuses a body of this size or more, so: one byte more than the app's limit.
            max_request_body_size=max_body_bytes + 1,
        )
        # Waitress's own errors (413 above, 400, 431, ...) in the app's shape: JSON, with the
        # security headers.
        self._server.channel_class = _json_error_channel(max_body_bytes)
        self.port = int(self._server.effective_port)

    def run(self) -> None:
        try:
            self._server.run()
        finally:
            self._server.task_dispatcher.shutdown(timeout=5)

    def close(self) -> None:
        import importlib

        wasyncore = importlib.import_module("waitress.wasyncore")
        server = self._server
        # First let the handler threads finish (the event streams end on the app's shutdown
        # event): a handler still running after the trigger below is closed would write to a
        # closed descriptor. Then, inside the server's own loop (closing its sockets from
        # another thread races with its poll), close the listener and every connection;
        # run() then returns.
        server.task_dispatcher.shutdown(timeout=5)
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))


def _json_error_channel(max_body_bytes: int) -> type:
    import importlib

    from herald.web.guards import too_large_message
    from herald.web.schemas import ErrorBody
    from herald.web.security import SECURITY_HEADERS

    channel: Any = importlib.import_module("waitress.channel").HTTPChannel
    task: Any = importlib.import_module("waitress.task").ErrorTask

    class JsonErrorTask(task):  # type: ignore[misc]
        def execute(self) -> None:
            error = self.request.error
            message = (
                too_large_message(max_body_bytes)
                if error.code == 413
                else f"{error.reason}: {error.body}"
            )
            body = ErrorBody(error=message, status=error.code)
            data = body.model_dump_json().encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.response_headers.extend(SECURITY_HEADERS)
            self.set_close_on_finish()
            self.content_length = len(data)
            self.write(data)

    class JsonErrorChannel(channel):  # type: ignore[misc]
        error_task_class = JsonErrorTask

    return JsonErrorChannel


class _DevServer:
    def __init__(self, app: Any, host: str, port: int) -> None:
        from werkzeug.serving import make_server

        self._server = make_server(host, port, app, threaded=True)
        self.port = int(self._server.server_port)

    def run(self) -> None:
        self._server.serve_forever()

    def close(self) -> None:
        self._server.shutdown()


def run_stack(
    settings: Settings,
    *,
    host: str,
    port: int,
    stop: threading.Event,
    dev: bool = False,
    threads: int = DEFAULT_THREADS,
    services: bool | None = None,
) -> int:
    """Serve the app against the configured stack, starting the embedded broker and database
    for whatever is not configured.

    ``services``: also run the services of a run (the registry's: workers, producer, monitor,
    recorder) as supervised processes, so that runs started from the dashboard progress; a
    service that exits is restarted. Default: when the broker is embedded (nothing else can
    reach it).
    """
    from herald.runtime import engines
    from herald.runtime.database import EmbeddedDatabase
    from herald.runtime.processes import ProcessGroup
    from herald.web.security import check_binding

    check_binding(host, settings.web)  # before anything is started
    home = settings.home.expanduser().resolve()
    broker: engines.LocalBroker | None = None
    database: EmbeddedDatabase | None = None
    group = ProcessGroup()
    watching = threading.Event()
    try:
        ks = settings.kafka
        if ks.bootstrap is None:
            broker = engines.start(settings, log_dir=home / "web")
            ks = broker.client_settings(ks)
            logger.info("%s broker on %s", settings.kafka.engine, broker.bootstrap)
        kafka.wait_for_broker(ks, stop=stop.is_set)
        kafka.ensure_topics(ks)
        url = settings.database.url
        if url is None:
            # A server already running there (a sim.run, say) is shared: stop() leaves it.
            database = EmbeddedDatabase(home / "pgdata").start()
            url = database.url
        from herald.db.engine import migrate
        from herald.db.pg import wait_for_database

        wait_for_database(url, settings.database.connect_timeout_secs, stop=stop.is_set)
        migrate(url)
        if database is not None:
            database.abandon_left_runs()
        live = settings.model_copy(
            update={"kafka": ks, "database": settings.database.model_copy(update={"url": url})}
        )
        if services if services is not None else broker is not None:
            _start_services(group, live, home / "web", watching)
        return serve(live, host=host, port=port, stop=stop, dev=dev, threads=threads)
    finally:
        watching.set()
        group.stop()
        if database is not None:
            database.stop()
        if broker is not None:
            broker.stop()


def _start_services(group: Any, settings: Settings, folder: Path, done: threading.Event) -> None:
    """The registry's services of a run, as processes; a thread restarts any that exits."""
    from herald.runtime.launcher import Launcher
    from herald.runtime.processes import Supervisor, child_environment
    from herald.services import registry

    folder.mkdir(parents=True, exist_ok=True)
    settings_file = folder / "settings.json"
    settings_file.write_text(resolved_json(settings))
    launcher = Launcher(
        group, settings_file, folder / "logs", env=child_environment(secret_environment(settings))
    )
    names = []
    for instance in registry.instances(settings, role="web"):
        launcher.spawn(instance)
        names.append(instance.name)
    supervisor = Supervisor(group, respawn=launcher.respawn)

    def watch() -> None:
        while not done.wait(0.5):
            supervisor.check()

    threading.Thread(target=watch, name="supervisor", daemon=True).start()
    logger.info("services started: %s (logs in %s)", ", ".join(names), folder)


def main(argv: Sequence[str] | None = None) -> int:
    """``herald web``: serve the dashboard and the API until stopped."""
    p = common.parser("web", "the web app: REST API, OpenAPI docs and the live dashboard")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind ({DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    p.add_argument("--dev", action="store_true", help="Flask's development server, not waitress")
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="threads per web process (waitress, or each gunicorn worker)",
    )
    p.add_argument(
        "--services",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the services of a run (workers, producer, monitor, recorder), supervised "
        "(default: when the broker is embedded)",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        help="the broker to start when kafka.bootstrap is unset: tansu (default) or kafka",
    )
    p.add_argument("--brokers", type=int, help="nodes of the kafka engine: 1 (default) or 3")
    args = p.parse_args(common.argv_or_default(argv))
    chosen = {
        k: v for k, v in (("engine", args.engine), ("brokers", args.brokers)) if v is not None
    }
    from herald.runtime import engines

    return common.service_main(
        args,
        lambda s, stop, _announcer: run_stack(
            s,
            host=args.host,
            port=args.port,
            stop=stop,
            dev=args.dev,
            threads=args.threads,
            services=args.services,
        ),
        service="web",
        overrides={"kafka": chosen} if chosen else None,
        broker=False,  # it may start the embedded one; its health is GET /api/health
        check=engines.check,  # Java and Kafka's jars for the kafka engine, before anything
    )
