"""Run every herald benchmark, print the figures and write docs/benchmarks.md.

    python benchmarks/run.py [--repeat N] [--quick] [--output PATH] [--keep]

Each round runs, in this order: the raw relay baseline, the end-to-end run, the
latency-bound run, the steady-state run of 1,000,000 messages and its relay baseline, the
producer at two sizes, POST /api/timers under Locust and the timers' lateness, so that
drift of a shared machine affects every figure alike; each figure is the median of the
rounds. After the rounds, as many runs each of the retail scenario at maximum speed and of
the telemetry figures (concurrent 10 Hz streams one spaceship sustains; the ingestor's
frames/s into Postgres) and of the consumer-group joins on the embedded broker; then the
engines side by side (Tansu, one Apache Kafka broker, three:
a relay baseline and ``herald sim`` on each, as many runs as rounds). ``--quick`` runs one
round at small sizes to check the scripts work and prints the report without writing it
(unless ``--output`` is given).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import brokers
import group_join
import load_api
import producer_rss
import relay
import report
import retail
import telemetry
import timer_lateness
from _util import ProcessSampler
from e2e import run_sim

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
LATENCY_MEAN_WAIT = 0.1


@dataclass(frozen=True)
class Sizes:
    messages: int  # end-to-end, baseline and latency-bound runs
    producer_small: int
    producer_large: int
    warmup: int  # one untimed run first: creates the database, fills the page cache
    timer_burst: int  # timers due in the same second
    timer_pending: int  # timers pending, coming due at timer_rate per second
    timer_rate: float
    steady: int  # the steady-state run (CPU per message) and its relay baseline


RETAIL_DURATION = {False: "8h", True: "1h"}  # the retail run's simulated day (full, quick)
TELEMETRY_STREAMS = {  # counts of 10 Hz streams tried, seconds each (full, quick)
    False: (telemetry.STREAMS_FULL, telemetry.SECS_FULL),
    True: (telemetry.STREAMS_QUICK, telemetry.SECS_QUICK),
}
TELEMETRY_FRAMES = {False: telemetry.FRAMES_FULL, True: telemetry.FRAMES_QUICK}
FULL = Sizes(
    messages=100_000,
    producer_small=100_000,
    producer_large=1_000_000,
    warmup=2_000,
    timer_burst=10_000,
    timer_pending=100_000,
    timer_rate=1_000.0,
    steady=1_000_000,
)
QUICK = Sizes(messages=5_000, producer_small=5_000, producer_large=50_000, warmup=1_000,
              timer_burst=500, timer_pending=2_000, timer_rate=500.0, steady=20_000)  # fmt: skip


def one_round(
    home: Path, sizes: Sizes, number: int, total: int, *, quick: bool = False
) -> report.Round:
    step = f"[round {number}/{total}]"
    sampler = ProcessSampler(os.getpid(), include_root=False).start()
    try:
        baseline = relay.run_baseline(sizes.messages)
    finally:
        sampler.stop()
    print(f"{step} baseline relay: {baseline['rate']:,.0f} msg/s", flush=True)
    e2e = run_sim(home, sizes.messages, mean_wait=0.0)
    s = e2e.summary
    print(f"{step} end to end: {s['throughput']:,.0f} msg/s, wall {s['wall_secs']:.2f}s, "
          f"first result {s['first_result_secs']:.2f}s", flush=True)  # fmt: skip
    latency = run_sim(home, sizes.messages, mean_wait=LATENCY_MEAN_WAIT)
    s = latency.summary
    print(f"{step} latency-bound: wall {s['wall_secs']:.2f}s, {s['throughput']:,.0f} msg/s",
          flush=True)  # fmt: skip
    steady_baseline = relay.run_baseline(sizes.steady)
    print(f"{step} baseline relay, {sizes.steady:,} records: {steady_baseline['rate']:,.0f} msg/s",
          flush=True)  # fmt: skip
    steady = run_sim(home, sizes.steady, mean_wait=0.0)
    print(f"{step} steady state, {sizes.steady:,} messages: {steady.steady_rate:,.0f} msg/s, "
          f"{steady.steady_us_per_message():.1f} µs CPU per message", flush=True)  # fmt: skip
    producers = [
        producer_rss.measure(n, home / "producer")
        for n in (sizes.producer_small, sizes.producer_large)
    ]
    for p in producers:
        print(f"{step} producer, {p.messages:,} messages: peak RSS {p.peak_rss / 2**20:.1f} MiB, "
              f"{p.rate:,.0f} msg/s", flush=True)  # fmt: skip
    timers_api = load_api.timers_capacity(home / "load", quick=quick)
    best = timers_api.best
    print(f"{step} POST /api/timers under Locust: "
          + (f"{best.stats.rps:,.1f} req/s at p99 {best.stats.p99_ms:g} ms" if best
             else f"no step within p99 <= {timers_api.p99_limit_ms:g} ms"), flush=True)  # fmt: skip
    burst = timer_lateness.burst(home / "timers", sizes.timer_burst)
    print(f"{step} {timer_lateness.describe('timers, one second', burst)}", flush=True)
    timers_steady = timer_lateness.steady(home / "timers", sizes.timer_pending, sizes.timer_rate)
    print(f"{step} {timer_lateness.describe('timers, steady', timers_steady)}", flush=True)
    return report.Round(
        baseline=baseline,
        baseline_processes=sampler.by_role(),
        e2e=e2e,
        latency=latency,
        producer_small=producers[0],
        producer_large=producers[1],
        timers_api=timers_api,
        timer_burst=burst,
        timer_steady=timers_steady,
        steady=steady,
        steady_baseline=steady_baseline,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="rounds (the median is reported)")
    p.add_argument("--quick", action="store_true", help="one round at small sizes")
    p.add_argument("--output", type=Path, help=f"write the report here (default: {DOC})")
    p.add_argument("--keep", action="store_true", help="keep the working directory and logs")
    args = p.parse_args(argv)
    sizes, repeat = (QUICK, 1) if args.quick else (FULL, max(1, args.repeat))
    output = args.output or (None if args.quick else DOC)
    command = "poetry run invoke bench.run" + (" --quick" if args.quick else f" --repeat {repeat}")

    home = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    print(f"working directory {home}", flush=True)
    machine = report.describe_machine()
    started = time.monotonic()
    try:
        run_sim(home, sizes.warmup, mean_wait=0.0)
        rounds = [one_round(home, sizes, i + 1, repeat, quick=args.quick) for i in range(repeat)]
        retail_runs = [retail.run_retail(home, RETAIL_DURATION[args.quick]) for _ in rounds]
        for r in retail_runs:
            print(f"retail at maximum speed: {r.rate:,.0f} events/s ({r.events:,})", flush=True)
        streams_runs, ingest_runs = [], []
        for _ in rounds:
            streams_runs.append(telemetry.run_streams(*TELEMETRY_STREAMS[args.quick]))
            print(f"telemetry: one spaceship sustains {streams_runs[-1].best:,} streams at "
                  "10 Hz with no loss", flush=True)  # fmt: skip
            ingest_runs.append(
                telemetry.run_ingest(home / "telemetry", TELEMETRY_FRAMES[args.quick])
            )
            print(f"telemetry: ingestor {ingest_runs[-1].rate:,.0f} frames/s into Postgres",
                  flush=True)  # fmt: skip
        join_runs = []
        for _ in rounds:
            join_runs.append(group_join.run_joins())
            print(f"group joins: {group_join.describe(join_runs[-1])}", flush=True)
        engine_runs = brokers.run_engines(home, repeat, quick=args.quick)
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    machine["load average after"] = report.load_average()
    text = report.render(
        rounds,
        messages=sizes.messages,
        latency_mean_wait=LATENCY_MEAN_WAIT,
        machine=machine,
        command=command,
        quick=args.quick,
        minutes=(time.monotonic() - started) / 60,
    )
    text += retail.section(retail_runs, RETAIL_DURATION[args.quick])
    text += telemetry.section(streams_runs, ingest_runs)
    text += group_join.section(join_runs)
    text += brokers.section(engine_runs, quick=args.quick)
    print()
    print(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
