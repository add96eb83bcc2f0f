"""The retail scenario at maximum speed: events a second from the generator to Postgres.

``herald sim --scenario retail --speed max`` publishes a whole simulated day as fast as the
producer can (a tick follows a tick, ``consume_batch_size`` events each), the recorder writes
every event, and sim checks Postgres against the generator's ground truth. The figure is sim's
own throughput: events in Postgres / (last one recorded - first one published). A busy store
(``customers_average_in_store`` 200) over a customers file of 5,000, so that no arrival is
turned away for want of a customer who is not inside.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _util import HERALD, ProcessFigures, ProcessSampler, herald_env, stats

CUSTOMERS = 5_000
AVERAGE_IN_STORE = 200
BATCH_SIZE = 5_000


@dataclass
class RetailRun:
    summary: dict[str, Any]  # herald sim's --json summary
    processes: dict[str, ProcessFigures]
    elapsed: float  # seconds from launch to exit of herald sim

    @property
    def events(self) -> int:
        return int(self.summary["outcomes_in_database"])

    @property
    def rate(self) -> float:
        return float(self.summary["throughput"])


def command(duration: str, json_path: Path, customers: Path) -> list[str]:
    return [
        HERALD, "sim", "--scenario", "retail", "--speed", "max", "--duration", duration,
        "--consume-from", "earliest", "--seed", "1", "--json", str(json_path), "--refresh", "5",
        "--timeout", "900",
        "--param", f"customers_average_in_store={AVERAGE_IN_STORE}",
        "--param", f"consume_batch_size={BATCH_SIZE}",
        "--param", f"customers_list_file={customers}",
    ]  # fmt: skip


def run_retail(home: Path, duration: str, timeout: float = 900.0) -> RetailRun:
    """One retail sim at maximum speed; raises if it fails or Postgres disagrees."""
    customers = home / "retail-customers.csv"
    if not customers.exists():
        rows = "".join(f"c{i},customer {i}\n" for i in range(CUSTOMERS))
        customers.write_text("id,name\n" + rows)
    tag = uuid.uuid4().hex[:8]
    json_path, log_path = home / f"retail-{tag}.json", home / f"retail-{tag}.log"
    launched = time.time()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command(duration, json_path, customers),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=herald_env(HERALD_HOME=str(home), PYTHONUNBUFFERED="1"),
        )
        sampler = ProcessSampler(proc.pid, postgres_dir=home / "pgdata").start()
        try:
            code = proc.wait(timeout)
        finally:
            sampler.stop()
            if proc.poll() is None:
                proc.kill()
    if code != 0 or not json_path.is_file():
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"herald sim --scenario retail exited {code}; output ends:\n{tail}")
    summary = json.loads(json_path.read_text())
    figures = summary["scenario_figures"]
    if figures["turned_away"]:
        raise RuntimeError(f"{figures['turned_away']} arrivals turned away: more customers")
    return RetailRun(summary, sampler.by_role(), time.time() - launched)


def section(runs: Sequence[RetailRun], duration: str) -> str:
    """The report's retail section."""
    if not runs:
        return ""
    rate, events = stats(r.rate for r in runs), stats(r.events for r in runs)
    wall = stats(r.summary["wall_secs"] for r in runs)
    by_type = runs[0].summary["scenario_figures"]["events_by_type"]
    cpu = stats(sum(p.cpu_secs for p in r.processes.values()) for r in runs)
    return f"""

## Retail store at maximum speed

`herald sim --scenario retail --speed max --duration {duration}` with
`customers_average_in_store={AVERAGE_IN_STORE}`, `consume_batch_size={BATCH_SIZE}` and
{CUSTOMERS:,} customers (benchmarks/retail.py): a simulated store day published as fast as
the producer can, every event recorded, Postgres checked against the generator (every run
agreed: sim exits 1 otherwise).

| figure | median | min | max |
|---|---:|---:|---:|
| events, generator to Postgres | **{rate.median:,.0f}/s** | {rate.min:,.0f}/s | {rate.max:,.0f}/s |
| events a run | {events.median:,.0f} | {events.min:,.0f} | {events.max:,.0f} |
| sim's wall time | {wall.median:.1f} s | {wall.min:.1f} s | {wall.max:.1f} s |
| CPU seconds, all of sim's processes | {cpu.median:.1f} | {cpu.min:.1f} | {cpu.max:.1f} |

Events of the first run: {by_type["enter"]:,} enter, {by_type["move"]:,} move,
{by_type["exit"]:,} exit. The rate is events in Postgres / (last recorded - first published);
the producer, the recorder, the monitor, the broker and Postgres share the machine's cores.
"""


def main() -> int:
    """``python benchmarks/retail.py [--duration 8h] [--repeat 3]``: this benchmark alone."""
    import argparse
    import shutil
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", default="8h", help="the simulated day (default 8h)")
    p.add_argument("--repeat", type=int, default=3, help="runs (the median is reported)")
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="herald-bench-retail-"))
    try:
        done = []
        for i in range(max(1, args.repeat)):
            done.append(run_retail(home, args.duration))
            print(f"[{i + 1}] {done[-1].rate:,.0f} events/s ({done[-1].events:,})", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(section(done, args.duration))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
