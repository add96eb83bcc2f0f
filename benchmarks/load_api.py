"""An API endpoint under Locust: requests/s at p99 <= a limit (default: POST /api/runs, 50 ms).

    python benchmarks/load_api.py [--scenario runs] [--endpoint "POST /api/runs"]
                                  [--rates 5,10,20,40,max] [--users 8] [--step-secs 10]
                                  [--p99-ms 50] [--repeat 3]

Each round starts the embedded stack (``herald web`` with its services), then runs Locust
once per offered rate, shared by the users, each paced (``max``: each user sends its next
request as soon as it has an answer); only the locustfile's tasks tagged ``write`` run. A
round stops after the first step over the limit. The figure is the most requests/s of a step
within it; the median of the rounds is printed. ``bench.run`` (run.py) reports
``POST /api/timers`` this way, with :func:`timers_capacity`; see docs/load.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from _util import herald_env
from herald.load.capacity import Capacity, measure_capacity

ROOT = Path(__file__).resolve().parent.parent
TIMERS_ENDPOINT = "POST /api/timers"
P99_LIMIT_MS = 50.0
TIMERS_USERS = 8
TIMERS_RATES: tuple[float | None, ...] = (5, 10, 20, 40, 80, None)
TIMERS_STEP_SECS = 20.0  # at 5 requests/s, 100 requests: the p99 is the second slowest
TIMERS_WARMUP_SECS = 10.0  # at the first rate, neither recorded nor judged


def timers_capacity(home: Path, *, quick: bool = False) -> Capacity:
    """``POST /api/timers``: requests/s at p99 <= 50 ms, on a fresh embedded stack (bench.run)."""
    return measure_capacity(
        load_dir=ROOT / "load",
        home=home,
        environ=herald_env(),
        scenario_name="timers",
        endpoint=TIMERS_ENDPOINT,
        rates=(5, None) if quick else TIMERS_RATES,
        users=TIMERS_USERS,
        step_secs=4.0 if quick else TIMERS_STEP_SECS,
        p99_limit_ms=P99_LIMIT_MS,
        warmup_secs=0.0 if quick else TIMERS_WARMUP_SECS,
        out=lambda line: print(f"  {line}", flush=True),
    )


def one_round(home: Path, args: argparse.Namespace) -> Capacity:
    return measure_capacity(
        load_dir=ROOT / "load",
        home=home,
        environ=herald_env(),
        scenario_name=args.scenario,
        endpoint=args.endpoint,
        rates=[None if r == "max" else float(r) for r in args.rates.split(",")],
        users=args.users,
        step_secs=args.step_secs,
        p99_limit_ms=args.p99_ms,
        out=lambda line: print(f"  {line}", flush=True),
    )


def table(capacity: Capacity) -> list[str]:
    lines = [
        "| offered req/s | users | req/s | p50 ms | p95 ms | p99 ms | failures |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for step in capacity.steps:
        s = step.stats
        offered = "max" if step.offered is None else f"{step.offered:g}"
        lines.append(f"| {offered} | {step.users} | {s.rps:,.1f} | {s.p50_ms} | {s.p95_ms} "
                     f"| {s.p99_ms} | {s.failures} |")  # fmt: skip
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="runs", help="load scenario (default runs)")
    p.add_argument("--endpoint", default="POST /api/runs", help="the endpoint measured")
    p.add_argument("--rates", default="5,10,20,40,max", help="offered requests/s, in order")
    p.add_argument("--users", type=int, default=8, help="users sharing each rate")
    p.add_argument("--step-secs", type=float, default=10.0, help="seconds of each step")
    p.add_argument("--p99-ms", type=float, default=50.0, help="the p99 limit, milliseconds")
    p.add_argument("--repeat", type=int, default=3, help="rounds (the median is printed)")
    p.add_argument("--keep", action="store_true", help="keep the reports (in a temp folder)")
    args = p.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="herald-load-bench-"))
    rates: list[float] = []
    try:
        for i in range(max(1, args.repeat)):
            print(f"[round {i + 1}/{args.repeat}] {args.endpoint}, rates {args.rates}", flush=True)
            capacity = one_round(home, args)
            print("\n".join(table(capacity)))
            best = capacity.best
            rates.append(best.stats.rps if best else 0.0)
            print(f"best within p99 <= {args.p99_ms:g} ms: "
                  + (f"{best.stats.rps:,.1f} req/s" if best else "none"), flush=True)  # fmt: skip
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    print(f"{args.endpoint}: requests/s at p99 <= {args.p99_ms:g} ms: median "
          f"{statistics.median(rates):,.1f} (rounds: {', '.join(f'{r:,.1f}' for r in rates)}; "
          f"{os.cpu_count()} cores)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
