"""``herald <command>``: one subcommand per service of the registry, each its own OS process,
and the tools."""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Callable, Sequence

# Tools: not services (nothing supervises them); imported on use, like the services.
TOOLS = {
    "sim": ("herald.sim:main", "one complete run end to end (what `invoke sim.run` calls)"),
    "submit": ("herald.tools:submit_main", "ask for a run on herald.runs (--wait: its summary)"),
}
# Tools that fork services (herald.runtime.forks): their fork server starts before their own
# imports, so that its imports (the services') run beside them.
FORKING = {"sim"}


def usage() -> str:
    """The command list, from the service registry."""
    from herald.services.registry import services

    def line(name: str, summary: str) -> str:
        return f"  {name:<20}{summary}"

    lines = ["usage: herald <command> [options]", "", "services (each runs until SIGTERM/SIGINT):"]
    for svc in services():
        if svc.health != "exit":
            lines.append(line(f"{svc.name} {svc.usage}".strip(), svc.summary))
    lines += ["", "tools:"]
    lines += [line(name, summary) for name, (_, summary) in TOOLS.items()]
    lines += [line(s.name, s.summary) for s in services() if s.health == "exit"]
    lines += ["", "`herald <command> --help` for a command's options."]
    return "\n".join(lines)


def command(name: str) -> Callable[[Sequence[str]], int] | None:
    """The entry point of command ``name``, or None."""
    from herald.services.registry import services

    if name in TOOLS:
        module, function = TOOLS[name][0].split(":")
        found: Callable[[Sequence[str]], int] = getattr(importlib.import_module(module), function)
        return found
    for svc in services():
        if svc.name == name:
            return svc.main()
    return None


def entry() -> None:
    """The ``herald`` command: :func:`main`, then exit with its code."""
    code = main()
    # The process ends now: nothing it made needs collecting. Without this the interpreter's
    # last full collections over everything sim imported and made took 0.4-0.7 s of its exit
    # (a 20,000-message sim: 0.56 and 0.83 s from its last exit handler to its exit, 0.14 and
    # 0.17 s frozen). An object is still freed when its last reference goes; only cycles are
    # left to the operating system.
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a command; exit codes are those of :mod:`herald.errors`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] in FORKING:
        from herald.runtime.forks import ForkServer

        ForkServer().start(detach_output=True)  # nothing else runs yet: one thread
    target = command(args[0])
    if target is None:
        print(f"herald: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return target(args[1:])
