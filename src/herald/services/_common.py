"""What every service's ``main()`` does: settings, logging, signals, exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from herald.config import Settings, load_resolved, load_settings
from herald.errors import EXIT_INTERRUPTED, EXIT_OK, HeraldError

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d %(name)s] %(message)s"


def configure_logging(level: str) -> None:
    """Send log records to stderr (services' stdout belongs to their user output)."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop``; a second signal exits at once."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(EXIT_INTERRUPTED)
        logger.info("%s received: finishing in-flight work", signal.Signals(signum).name)
        stop.set()

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
        help="complete settings (JSON) that override every other source; what sim.run passes "
        "its services, so that each runs with exactly the settings the run resolved",
    )
    p.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="created once the service holds its first partitions (a readiness probe)",
    )
    return p


def mark_ready(path: Path | None, partitions: Sequence[object]) -> None:
    """Create the readiness file, once, when a consumer is first given partitions."""
    if path is not None and partitions and not path.exists():
        path.touch()


def service_main(
    args: argparse.Namespace,
    body: Callable[[Settings, threading.Event], int | None],
    overrides: dict[str, object] | None = None,
) -> int:
    """Build settings, configure logging and signals, run ``body``, map errors to exit codes."""
    try:
        if args.settings is not None:
            settings = load_resolved(args.settings)
        else:
            settings = load_settings(args.config, overrides)
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return exc.exit_code
    configure_logging(settings.log_level)
    stop = threading.Event()
    install_signal_handlers(stop)
    try:
        code = body(settings, stop)
    except HeraldError as exc:
        logger.error("%s", exc)
        return exc.exit_code
    return EXIT_OK if code is None else code


def argv_or_default(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)
