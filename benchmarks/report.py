"""The report: docs/benchmarks.md, rendered from the rounds' measurements."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import confluent_kafka
import psutil

import load_api
from _util import MIB, ProcessFigures, stats
from e2e import SENDERS, SimRun
from herald.load.capacity import Capacity
from producer_rss import ProducerRun
from timer_lateness import TimerRun

E2E_RATIO_TARGET = 0.35
LATENCY_WALL_TARGET = 10.0
PRODUCER_RSS_RATIO_TARGET = 1.20
STEADY_CPU_TARGET_US = 25.0  # total CPU per message, every process of the run included
STEADY_CEILING_TARGET = 0.8  # throughput / (cores / CPU per message)
STEADY_BASELINE_TARGET = 0.6  # throughput / the same-run relay baseline of as many records
RSS_TARGET = 100 * MIB  # each herald process, in the steady run
LAUNCH_TO_FIRST_TARGET = 2.5  # launch of herald sim to the first result (s)
LAUNCH_TO_EXIT_TARGET = 5.0  # launch of herald sim to its exit, summary printed (s)
HERALD_ROLES = ("sim", "producer", "sender", "recorder", "monitor")  # not broker, postgres


@dataclass
class Round:
    baseline: dict[str, float]
    baseline_processes: dict[str, ProcessFigures]
    e2e: SimRun
    latency: SimRun
    producer_small: ProducerRun
    producer_large: ProducerRun
    timers_api: Capacity | None = None  # POST /api/timers under Locust (load_api.py)
    timer_burst: TimerRun | None = None  # timers due in the same second (timers.py)
    timer_steady: TimerRun | None = None  # timers pending, coming due at a steady rate
    steady: SimRun | None = None  # the large run: CPU per message in the steady state
    steady_baseline: dict[str, float] | None = None  # the relay baseline of as many records


# -- the machine -----------------------------------------------------------------------------


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


def describe_machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo")
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text()) if cpuinfo.is_file() else None
    return {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": model.group(1).strip() if model else platform.processor() or "unknown",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "confluent-kafka": f"{metadata.version('confluent-kafka')} "
        f"(librdkafka {confluent_kafka.libversion()[0]})",
        "load average before": load_average(),
    }


# -- formatting ------------------------------------------------------------------------------


def rate(x: float) -> str:
    return f"{x:,.0f}"


def secs(x: float) -> str:
    return f"{x:.2f}"


def mib(x: float) -> str:
    return f"{x / MIB:.1f}"


def ratio(x: float) -> str:
    return f"{x:.2f}"


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    return "\n".join([row(header), row(align), *(row(r) for r in rows)])


def senders_grouped(role: str) -> str:
    return f"senders ({SENDERS})" if role.startswith("sender-") else role


# -- sections --------------------------------------------------------------------------------


def figures_table(rounds: Sequence[Round], messages: int, mean_wait: float) -> str:
    e2e = [r.e2e.summary for r in rounds]
    lat = [r.latency.summary for r in rounds]
    small, large = rounds[0].producer_small.messages, rounds[0].producer_large.messages
    n = f"{messages:,}"

    def fig(label: str, values: Sequence[float], fmt: Callable[[float], str],
            target: str = "", ok: Callable[[float], bool] | None = None) -> list[str]:  # fmt: skip
        if not values:
            return [label, "", "n/a", "", target, ""]
        s = stats(values)
        verdict = "" if ok is None else ("met" if ok(s.median) else "**not met**")
        return [label, fmt(s.min), f"**{fmt(s.median)}**", fmt(s.max), target, verdict]

    rows = [
        fig(f"1. End to end, {n} messages, {SENDERS} senders, mean wait 0 (msg/s)",
            [s["throughput"] for s in e2e], rate),
        fig(f"2. Baseline: raw two-hop relay, {n} records (msg/s)",
            [r.baseline["rate"] for r in rounds], rate),
        fig("2. End to end / baseline (paired by round)",
            [s["throughput"] / r.baseline["rate"] for s, r in zip(e2e, rounds, strict=True)],
            ratio, f"≥ {E2E_RATIO_TARGET}", lambda x: x >= E2E_RATIO_TARGET),
        fig(f"3. Latency-bound, {n} messages, mean wait {mean_wait:g} s: wall time (s)",
            [s["wall_secs"] for s in lat], secs, f"≤ {LATENCY_WALL_TARGET:g} s",
            lambda x: x <= LATENCY_WALL_TARGET),
        fig("3. Latency-bound: launch of `herald sim` to its exit (s)",
            [r.latency.elapsed for r in rounds], secs, f"≤ {LAUNCH_TO_EXIT_TARGET:g} s",
            lambda x: x <= LAUNCH_TO_EXIT_TARGET),
        fig("3. Latency-bound: throughput (msg/s)", [s["throughput"] for s in lat], rate),
        fig(f"5. Producer peak RSS, {small:,} messages (MiB)",
            [r.producer_small.peak_rss for r in rounds], mib),
        fig(f"5. Producer peak RSS, {large:,} messages (MiB)",
            [r.producer_large.peak_rss for r in rounds], mib),
        fig(f"5. Producer peak RSS, {large:,} / {small:,}",
            [r.producer_large.peak_rss / r.producer_small.peak_rss for r in rounds], ratio,
            f"≤ {PRODUCER_RSS_RATIO_TARGET:.2f}", lambda x: x <= PRODUCER_RSS_RATIO_TARGET),
        fig("6. Start of the run to first result (`first_result_secs`), end-to-end run (s)",
            [s["first_result_secs"] for s in e2e], secs),
        fig("6. Launch of `herald sim` (imports included) to first result (s)",
            [t for r in rounds if (t := launch_to_first_result(r.e2e)) is not None], secs,
            f"≤ {LAUNCH_TO_FIRST_TARGET:g} s", lambda x: x <= LAUNCH_TO_FIRST_TARGET),
        fig("End-to-end run: start of the run to its summary (`wall_secs`) (s)",
            [s["wall_secs"] for s in e2e], secs),
        fig("End-to-end run: launch of `herald sim` to its exit, summary printed (s)",
            [r.e2e.elapsed for r in rounds], secs, f"≤ {LAUNCH_TO_EXIT_TARGET:g} s",
            lambda x: x <= LAUNCH_TO_EXIT_TARGET),
        fig("Latency-bound run: start to first result (s)",
            [s["first_result_secs"] for s in lat], secs),
        *timers_api_rows(rounds),
        *timer_lateness_rows(rounds),
        *steady_rows(rounds, fig),
    ]  # fmt: skip
    return table(["figure", "min", "median", "max", "target", ""], rows)


def ceiling(run: SimRun, cores: int) -> float:
    """The throughput the run's CPU per message allows: every core busy with nothing else."""
    return cores / (run.steady_us_per_message() / 1e6)


def steady_rows(rounds: Sequence[Round], fig: Callable[..., list[str]]) -> list[list[str]]:
    runs = [(r.steady, r.steady_baseline) for r in rounds if r.steady and r.steady_baseline]
    if not runs:
        return []
    cores = os.cpu_count() or 1
    n = f"{runs[0][0].summary['outcomes_in_database']:,}"
    herald_rss = [max(p.peak_rss for role, p in run.processes.items() if is_herald(role))
                  for run, _ in runs]  # fmt: skip
    return [
        fig(f"10. Steady state, {n} messages: CPU per message, all processes (µs)",
            [run.steady_us_per_message() for run, _ in runs], lambda x: f"{x:.1f}",
            f"≤ {STEADY_CPU_TARGET_US:g}", lambda x: x <= STEADY_CPU_TARGET_US),
        fig(f"10. Ceiling that implies: {cores} cores / CPU per message (msg/s)",
            [ceiling(run, cores) for run, _ in runs], rate),
        fig("10. Steady throughput (msg/s)", [run.steady_rate for run, _ in runs], rate),
        fig("10. Steady throughput / ceiling (paired by round)",
            [run.steady_rate / ceiling(run, cores) for run, _ in runs], ratio,
            f"≥ {STEADY_CEILING_TARGET}", lambda x: x >= STEADY_CEILING_TARGET),
        fig(f"10. Baseline: raw two-hop relay, {n} records (msg/s)",
            [base["rate"] for _, base in runs], rate),
        fig("10. Steady throughput / baseline (paired by round)",
            [run.steady_rate / base["rate"] for run, base in runs], ratio,
            f"≥ {STEADY_BASELINE_TARGET}", lambda x: x >= STEADY_BASELINE_TARGET),
        fig("10. Largest peak RSS of a herald process (MiB)", herald_rss, mib,
            f"≤ {mib(RSS_TARGET)}", lambda x: x <= RSS_TARGET),
    ]  # fmt: skip


def is_herald(role: str) -> bool:
    return role.split("-", maxsplit=1)[0] in HERALD_ROLES


def steady_section(rounds: Sequence[Round]) -> str:
    runs = [r.steady for r in rounds if r.steady is not None]
    if not runs:
        return ""
    roles = sorted({role for run in runs for role, cpu in run.steady_cpu.items() if cpu > 0})
    rows = []
    for role in roles:
        us = stats(run.steady_us_per_message(role) for run in runs if role in run.steady_cpu)
        rss = stats(run.processes[role].peak_rss for run in runs if role in run.processes)
        verdict = ("met" if rss.median <= RSS_TARGET else "**not met**") if is_herald(role) else ""
        rows.append([f"`{role}`", f"{us.min:.2f}", f"**{us.median:.2f}**", f"{us.max:.2f}",
                     f"**{mib(rss.median)}**", verdict])  # fmt: skip
    total = stats(run.steady_us_per_message() for run in runs)
    rows.append(["all of the above", f"{total.min:.1f}", f"**{total.median:.1f}**",
                 f"{total.max:.1f}", "", ""])  # fmt: skip
    window = stats(run.steady_secs for run in runs).median
    n = runs[0].summary["outcomes_in_database"]
    header = ["process", "CPU µs/msg min", "median", "max", "peak RSS (MiB)", "≤ 100 MiB"]
    return (
        f"## 10. Steady state, {n:,} messages: CPU per message and memory per process\n\n"
        f"CPU spent from the first result to the last outcome recorded ({window:.1f} s, "
        f"median), divided by the {n:,} messages, which all fall within that window: "
        "start-up and shut-down excluded. Peak RSS over the whole run.\n\n"
        + table(header, rows)
        + "\n\n"
    )


def timers_api_rows(rounds: Sequence[Round]) -> list[list[str]]:
    """POST /api/timers under Locust: requests/s of the best step within the p99 limit (0 for
    a round where none was), and that step's p99."""
    measured = [r.timers_api for r in rounds if r.timers_api is not None]
    if not measured:
        return []
    limit = measured[0].p99_limit_ms
    best = [c.best for c in measured]
    rps = [b.stats.rps if b else 0.0 for b in best]
    p99 = [b.stats.p99_ms for b in best if b and b.stats.p99_ms is not None]
    rows = [
        [
            f"7. `POST /api/timers` under Locust: requests/s at p99 ≤ {limit:g} ms",
            *_spread(rps, lambda x: f"{x:,.1f}"),
            "",
            "",
        ]
    ]
    if p99:
        rows.append(
            [
                "7. `POST /api/timers` at that rate: p99 (ms)",
                *_spread(p99, lambda x: f"{x:g}"),
                "",
                "",
            ]
        )
    return rows


TIMER_STEADY_P99_TARGET_MS = 250.0


def timer_lateness_rows(rounds: Sequence[Round]) -> list[list[str]]:
    """Timers' lateness (first attempt - due): every timer delivered, exact percentiles."""
    rows = []
    ms = lambda x: f"{x:,.0f}"  # noqa: E731
    burst = [r.timer_burst for r in rounds if r.timer_burst is not None]
    if burst:
        n = f"{burst[0].timers:,}"
        for i, name in enumerate(("p50", "p99", "max")):
            values = [b.first_attempt_ms[i] for b in burst]
            rows.append([f"8. {n} timers due in the same second: lateness {name} (ms)",
                         *_spread(values, ms), "", ""])  # fmt: skip
        rows.append([f"8. {n} in the same second: delivered / duplicates",
                     *_spread([b.delivered for b in burst], lambda x: f"{x:,.0f}"), "",
                     f"{sum(b.duplicates for b in burst)} duplicates"])  # fmt: skip
    steady = [r.timer_steady for r in rounds if r.timer_steady is not None]
    if steady:
        n = f"{steady[0].timers:,}"
        rate_ = steady[0].timers / max(steady[0].span_secs, 1e-9)
        p99 = [t.first_attempt_ms[1] for t in steady]
        median = stats(p99).median
        verdict = "met" if median <= TIMER_STEADY_P99_TARGET_MS else "**not met**"
        rows.append(
            [
                f"9. {n} pending, coming due at a steady rate: lateness p99 (ms)",
                *_spread(p99, ms),
                f"≤ {TIMER_STEADY_P99_TARGET_MS:g} ms",
                verdict,
            ]
        )
        rows.append(
            [
                f"9. {n} pending: lateness p50 (ms)",
                *_spread([t.first_attempt_ms[0] for t in steady], ms),
                "",
                "",
            ]
        )
        rows.append(
            [
                f"9. {n} pending: lateness max (ms)",
                *_spread([t.first_attempt_ms[2] for t in steady], ms),
                "",
                "",
            ]
        )
        for name in steady[0].cpu_us:
            rows.append([f"9. {n} pending: CPU per timer, `{name}` (µs)",
                         *_spread([t.cpu_us[name] for t in steady], ms), "", ""])  # fmt: skip
        rows.append([f"9. {n} pending: scheduler's publication late, p99 (ms)",
                     *_spread([t.fired_ms[1] for t in steady], ms), "",
                     f"about {rate_:,.0f} timers/s over the run"])  # fmt: skip
    return rows


def _spread(values: Sequence[float], fmt: Callable[[float], str]) -> list[str]:
    s = stats(values)
    return [fmt(s.min), f"**{fmt(s.median)}**", fmt(s.max)]


def timers_api_steps(rounds: Sequence[Round]) -> str:
    """Each round's steps: offered rate, requests/s, p50/p95/p99, failures."""
    parts = []
    for n, r in enumerate(rounds, 1):
        if r.timers_api is None:
            continue
        rows = [
            ["max" if st.offered is None else f"{st.offered:g}", str(st.users),
             f"{st.stats.rps:,.1f}", *(f"{v:g}" if v is not None else "-"
                                      for v in (st.stats.p50_ms, st.stats.p95_ms, st.stats.p99_ms)),
             str(st.stats.failures)]
            for st in r.timers_api.steps
        ]  # fmt: skip
        header = ["offered req/s", "users", "req/s", "p50 ms", "p95 ms", "p99 ms", "failures"]
        parts.append(f"Round {n}:\n\n" + table(header, rows, right_from=0))
    return "\n\n".join(parts)


def timers_section(rounds: Sequence[Round]) -> str:
    steps = timers_api_steps(rounds)
    return f"## 7. `POST /api/timers` under Locust, step by step\n\n{steps}\n\n" if steps else ""


def process_table(rounds: Sequence[Round]) -> str:
    per_round = [r.e2e.processes for r in rounds]
    roles = sorted({role for procs in per_round for role in procs})
    cpu_total = stats(r.e2e.cpu_secs for r in rounds).median
    rows = []
    for role in roles:
        rss = stats(p[role].peak_rss for p in per_round if role in p)
        cpu = stats(p[role].cpu_secs for p in per_round if role in p).median
        rows.append([f"`{role}`", mib(rss.min), f"**{mib(rss.median)}**", mib(rss.max),
                     secs(cpu), pct(cpu, cpu_total)])  # fmt: skip
    rows.append(["all of the above", "", "", "", secs(cpu_total), "100%"])
    header = ["process", "peak RSS min", "median (MiB)", "max", "CPU s (median)", "CPU share"]
    return table(header, rows)


def cpu_breakdown(processes: Sequence[dict[str, ProcessFigures]], top: int = 5) -> str:
    """The largest CPU users, median over rounds, senders grouped: 'senders (4) 12.3 s (40%)'."""
    grouped: dict[str, list[float]] = {}
    for procs in processes:
        totals: dict[str, float] = {}
        for figures in procs.values():
            key = senders_grouped(figures.role)
            totals[key] = totals.get(key, 0.0) + figures.cpu_secs
        for key, value in totals.items():
            grouped.setdefault(key, []).append(value)
    medians = {k: stats(v).median for k, v in grouped.items()}
    whole = sum(medians.values())
    ranked = sorted(medians.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{k} {v:.1f} s ({pct(v, whole)})" for k, v in ranked)


def launch_to_first_result(run: SimRun) -> float | None:
    return run.milestones.get("first result")


def sim_limits(runs: Sequence[SimRun], cores: int) -> str:
    elapsed = stats(r.elapsed for r in runs).median
    cpu = stats(r.cpu_secs for r in runs).median
    machine = stats(r.machine_cpu_secs for r in runs).median
    imports = stats(r.milestones.get("sim starts the run (its imports done)", 0.0) for r in runs)
    first = stats(r.summary["first_result_secs"] for r in runs).median
    rest = stats(r.summary["wall_secs"] - r.summary["first_result_secs"] for r in runs).median
    return (
        f"`herald sim` lived {elapsed:.1f} s (median): {imports.median:.1f} s of imports, "
        f"{first:.1f} s more until the first result, {rest:.1f} s more until every outcome "
        f"was in Postgres, then shut-down. "
        f"Its processes used {cpu:.1f} CPU-seconds, {pct(cpu, elapsed * cores)} of the "
        f"{cores} cores over its lifetime; the whole machine was {pct(machine, elapsed * cores)} "
        f"busy (the difference is other work on the shared machine). "
        f"Largest CPU users (lifetime, start-up included): "
        f"{cpu_breakdown([r.processes for r in runs])}."
    )


def limits(rounds: Sequence[Round], messages: int, mean_wait: float, cores: int) -> str:
    e2e = [r.e2e for r in rounds]
    lat = [r.latency for r in rounds]
    base_secs = stats(r.baseline["secs"] for r in rounds).median
    base_produce = stats(r.baseline["produce_secs"] for r in rounds).median
    window = lat[0].window
    floor = messages * mean_wait / (SENDERS * window) if window else None
    small = [r.producer_small for r in rounds]
    large = [r.producer_large for r in rounds]
    ready = stats(p.ready_rss for p in small + large).median
    parts = [
        "### 1, 4. End-to-end throughput, memory and CPU per process",
        "",
        sim_limits(e2e, cores),
        "When the processes' CPU share is near 100% of the cores, the run is CPU-bound and the "
        "per-process CPU seconds above say where the time goes.",
        "",
        "### 2. Baseline relay",
        "",
        f"{messages:,} records in {base_secs:.2f} s (median), of which producing took "
        f"{base_produce:.2f} s. CPU seconds per process (median, start-up included): "
        f"{cpu_breakdown([r.baseline_processes for r in rounds])}. The relay process "
        "consumes, and produces every record again, in a Python loop; the three clients and "
        f"the broker share {cores} cores.",
        "",
        "### 3. Latency-bound run",
        "",
        sim_limits(lat, cores),
        (f"With {SENDERS} senders each holding {window:,} messages in flight (`max_in_flight`, "
         f"read from the senders' logs) the simulated waits alone need at least "
         f"{messages:,} × {mean_wait:g} s / ({SENDERS} × {window:,}) = {floor:.2f} s; "
         f"one message at a time they would need {messages * mean_wait / SENDERS:,.0f} s."
         if floor is not None else "The senders' window was not found in their logs."),
        "",
        "### 5. Producer memory",
        "",
        f"The producer process is {mib(ready)} MiB once started and subscribed (median), "
        f"before any run: the interpreter, its imports and librdkafka. During a run of "
        f"{small[0].messages:,} messages it peaks at "
        f"{mib(stats(p.peak_rss for p in small).median)} MiB, and at "
        f"{mib(stats(p.peak_rss for p in large).median)} MiB for {large[0].messages:,} "
        "(herald's producer bounds its librdkafka queue to 100,000 messages or 32 MiB). "
        f"Its own produce rate: {rate(stats(p.rate for p in small).median)} msg/s at "
        f"{small[0].messages:,}, {rate(stats(p.rate for p in large).median)} msg/s at "
        f"{large[0].messages:,} (median).",
        "",
        "### 6. Start to first result",
        "",
        first_result_steps(e2e),
    ]  # fmt: skip
    return "\n".join(parts)


def first_result_steps(runs: Sequence[SimRun]) -> str:
    steps: dict[str, list[float]] = {}
    for r in runs:
        for step, at in r.milestones.items():
            steps.setdefault(step, []).append(at)
    medians = sorted(((stats(v).median, k) for k, v in steps.items()), key=lambda t: t[0])
    rows = [[step, secs(at)] for at, step in medians]
    return (
        "When each step of the start happened, in seconds after `herald sim` was launched "
        "(median over rounds; from the services' logs, and the first result from the "
        "summary's `first_result_secs`, which counts from the moment sim starts its run, "
        "after its imports):\n\n"
        + table(["step", "s"], rows)
        + "\n\nFrom *ready* to *assigned partitions* is a service's consumer-group join (the "
        "section *Consumer-group joins on the embedded broker* measures it alone). sim "
        "submits the run once every service holds its partitions, so *producer starts "
        "producing* follows the last assignment by the control topic's hop to sim and the "
        "producer's read of the request. A step of several senders is the first or the last "
        "of them, as named."
    )


def method(messages: int, mean_wait: float) -> str:
    return f"""\
* **Rounds, interleaved.** Each round runs the baseline, the end-to-end run, the
  latency-bound run, then the producer at both sizes; the figures are medians over the
  rounds, and the ratio end to end / baseline is taken per round (side by side) before the
  median. One untimed warm-up `herald sim` run comes first (it creates the database).
* **1, 3, 6 — `herald sim`** as a user runs it:
  `herald sim --messages {messages} --senders {SENDERS} --mean-wait 0|{mean_wait:g} \
--failure-rate 0.1 --json … --refresh 5`, with `HERALD_HOME` a temporary directory shared by
  the runs (each run starts its own embedded broker and Postgres there). Figures are the
  JSON summary's `throughput` (outcomes / (last outcome recorded in Postgres − first message
  created)), `wall_secs` (from sim's start of the run, after its imports, to its summary)
  and `first_result_secs`; *launch to exit* is the benchmark's own clock, from starting the
  `herald sim` process to its exit (imports, shut-down and the printed summary included:
  what a user waits for); a run that does not record every outcome fails the benchmark.
* **2 — baseline** (`benchmarks/relay.py`): a fresh embedded broker, topics of 12
  partitions, three processes (produce → relay → consume), plain confluent-kafka, ~150-byte
  JSON records, `linger.ms=5`, `fetch.queue.backoff.ms=10`, `consume(num_messages=1000)`.
  The consumers `assign()` all partitions and are ready before the producer starts; the
  figure is records / (last consumed at B − first produced to A).
* **4 — per process**: the `herald sim` process tree, plus the Postgres server of its data
  directory (it daemonizes), sampled every 100 ms with psutil: peak RSS is the kernel's
  high-water mark (VmHWM), CPU is user + system seconds as last seen, so up to 100 ms of
  each process's end is missed. Postgres rows: the largest single process, CPU summed.
* **5 — producer**: a fresh embedded broker per size, `herald producer --config …` alone,
  the run asked for with `herald submit`; the peak RSS (VmHWM) is read once its log says the
  run's messages are acknowledged, then it is stopped with SIGTERM.
* **10 — steady state**: the same `herald sim` command at 1,000,000 messages (mean wait
  0), sampled the same way, with each process's CPU seconds kept at every 100 ms sample and
  interpolated at the first result and at the last outcome recorded (the summary's
  `first_result_secs` and `last_result_secs`); CPU per message is what every process of
  the run (Postgres and the broker included) spent in that window, divided by the messages,
  which all fall within it. The ceiling is the cores divided by that figure: the rate the
  machine would reach with every core busy with nothing else. The throughput is the
  messages divided by the window; its baseline is the relay (2) of as many records, run just
  before it.
* **7 — `POST /api/timers` under Locust** (`benchmarks/load_api.py`, `measure_capacity` in
  `herald.load.capacity`; docs/load.md): a fresh embedded stack (`herald web` with its
  services, scheduler and notifier included) and the timers load scenario's webhook receiver
  on loopback; one timer delivered first, then {
        load_api.TIMERS_WARMUP_SECS:g} s of Locust at the first
  rate, neither recorded nor judged (warm-up); then one headless Locust run of
  {load_api.TIMERS_STEP_SECS:g} s per offered rate ({
        ", ".join("max" if r is None else f"{r:g}" for r in load_api.TIMERS_RATES)
    } requests/s, shared by {load_api.TIMERS_USERS} paced users;
  `max`: each sends its next request when it has an answer), only the `write` task (each POST
  a timer due 2–5 s ahead, with an `Idempotency-Key`), stopping after the first step whose
  p99 is over {load_api.P99_LIMIT_MS:g} ms. The figure is the most requests/s of a step
  within the limit with no failure (0 when none was); Locust and the stack share the cores,
  and the timers fire and are delivered during the later steps. (`--quick`: offered 5 and
  `max`, 4 s a step.)
"""


def render(
    rounds: Sequence[Round],
    *,
    messages: int,
    latency_mean_wait: float,
    machine: dict[str, str],
    command: str,
    quick: bool,
    minutes: float,
) -> str:
    cores = os.cpu_count() or 1
    warning = (
        "\n> **Quick run: small sizes, one round. These figures only show the scripts work.**\n"
        if quick
        else ""
    )
    return f"""\
# Benchmarks

<!-- Generated by benchmarks/run.py; rerun it rather than editing this file. -->
{warning}
Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {len(rounds)} round(s), {minutes:.0f} minutes.
Every figure is measured; the median of the rounds is in bold, with their min and max.

Reproduce with

```
{command}
```

(it runs `python benchmarks/run.py` with the same flags).

**The machine is shared and noisy** ({machine["cores (nproc)"]} cores; other work ran at the
same time, see the load averages and the "whole machine busy" shares below). Expect ±30%
run to run; compare ratios measured side by side rather than absolute figures.

{table(["machine", ""], list(machine.items()))}

## Figures

{figures_table(rounds, messages, latency_mean_wait)}

## 4. Peak RSS and CPU per process, end-to-end run

{process_table(rounds)}

{timers_section(rounds)}{steady_section(rounds)}## What limits each figure

{limits(rounds, messages, latency_mean_wait, cores)}

## How each figure is measured

{method(messages, latency_mean_wait)}"""
