"""``herald <service>``: one subcommand per service, each its own OS process."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

USAGE = """usage: herald <command> [options]

services (each runs until SIGTERM/SIGINT):
  producer            run requests -> SMS messages
  sender --id N       one member of the senders' consumer group
  monitor             live progress from the results stream
  recorder            results -> Postgres outcomes
  web                 REST API, OpenAPI docs and the live dashboard (http://127.0.0.1:8000)

tools:
  sim                 one complete run end to end (what `invoke sim.run` calls)
  submit              ask for a run on herald.runs
  migrate             apply the database migrations

`herald <command> --help` for a command's options."""


# command -> (module, function): imported on use, so a service starts without the others'
# dependencies (start-up time is what a run's first result waits for).
COMMANDS = {
    "producer": ("herald.services.producer", "main"),
    "sender": ("herald.services.sender", "main"),
    "monitor": ("herald.services.monitor", "main"),
    "recorder": ("herald.services.recorder", "main"),
    "web": ("herald.web.server", "main"),
    "sim": ("herald.sim", "main"),
    "submit": ("herald.tools", "submit_main"),
    "migrate": ("herald.tools", "migrate_main"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a command; exit codes are those of :mod:`herald.errors`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    target = COMMANDS.get(args[0])
    if target is None:
        print(f"herald: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    command: Callable[[Sequence[str]], int] = getattr(importlib.import_module(target[0]), target[1])
    return command(args[1:])
