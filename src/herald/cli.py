"""``herald <service>``: one subcommand per service, each its own OS process."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

USAGE = """usage: herald <command> [options]

services (each runs until SIGTERM/SIGINT):
  producer            run requests -> SMS messages
  sender --id N       one member of the senders' consumer group
  monitor             live progress from the results stream
  recorder            results -> Postgres outcomes

tools:
  sim                 one complete run end to end (what `invoke sim.run` calls)
  submit              ask for a run on herald.runs
  migrate             apply the database migrations

`herald <command> --help` for a command's options."""


def _commands() -> dict[str, Callable[[Sequence[str]], int]]:
    from herald import sim, tools
    from herald.services import monitor, producer, recorder, sender

    return {
        "producer": producer.main,
        "sender": sender.main,
        "monitor": monitor.main,
        "recorder": recorder.main,
        "sim": sim.main,
        "submit": tools.submit_main,
        "migrate": tools.migrate_main,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a command; exit codes are those of :mod:`herald.errors`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    commands = _commands()
    command = commands.get(args[0])
    if command is None:
        print(f"herald: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return command(args[1:])
