"""monitor: live progress of every run, aggregated from the facts streams.

It reads ``herald.runs`` (expected counts), every scenario's facts topics (results, a
timeline's events), ``herald.dlq`` and the control topic's ``run-produced`` events (the size
of a run known only once produced) from the beginning, read_committed, with ``assign()`` (no
group join: it wants every partition anyway), so a restarted monitor shows the same totals as
one that never stopped. A scenario with figures of its own (the store's customers inside,
dwell times) has them fed every fact once. When it has seen every result of a run it publishes
its figures on the control topic.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import msgspec
from confluent_kafka import Consumer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from herald import contracts, control, kafka, offsets
from herald.config import MonitorSettings, Settings
from herald.contracts import RunFigures, RunProduced, RunRequest
from herald.scenarios import base
from herald.services import common
from herald.stats import RunStats, WorkerStats, bucket_of

logger = logging.getLogger(__name__)

RATE_WINDOW_SECS = 5.0  # "current" throughput is measured over this many seconds


def main(argv: Sequence[str] | None = None) -> int:
    """``herald monitor``: show progress until stopped."""
    p = common.parser("monitor", __doc__.splitlines()[0])
    p.add_argument("--run-id", help="show only this run")
    p.add_argument(
        "--from",
        dest="start_from",
        type=offsets.parse_start,
        default=offsets.EARLIEST,
        help="where the facts are read from: earliest (default), latest, or an ISO 8601 time "
        "(the first record at or after it); run requests and run sizes are read from the "
        "beginning",
    )
    args = p.parse_args(common.argv_or_default(argv))
    return common.service_main(
        args,
        lambda s, stop, announcer: run(
            s, stop=stop, run_id=args.run_id, announcer=announcer, start_from=args.start_from
        ),
        service="monitor",
    )


class Progress:
    """Runs by id, fed record by record."""

    def __init__(self, by_topic: dict[str, base.Fact] | None = None) -> None:
        self.runs: dict[str, RunStats] = {}
        self.invalid = 0  # records on the dead-letter topic
        self._samples: deque[tuple[float, int]] = deque()  # (time, results so far)
        self.results_seen = 0
        self._scenario_of_topic = {topic: fact.scenario for topic, fact in (by_topic or {}).items()}

    def run(self, run_id: str, scenario: base.Scenario | None = None) -> RunStats:
        stats = self.runs.get(run_id)
        if stats is None:
            stats = self.runs[run_id] = RunStats(run_id)
        if scenario is not None and not stats.statuses:
            stats.statuses = dict(scenario.statuses)
            stats.worker_label = scenario.worker_label
            stats.figures = scenario.figures()
        return stats

    def feed_runs(self, requests: Sequence[RunRequest]) -> None:
        for request in requests:
            stats = self.run(request.run_id, base.get(request.scenario))
            if request.expected is not None:  # else announced once produced (feed_produced)
                stats.expected = request.expected
            stats.requested_at = request.requested_at.timestamp()

    def feed_produced(self, events: Sequence[RunProduced]) -> None:
        for event in events:
            self.run(event.run_id, base.scenarios().get(event.scenario)).expected = event.produced

    def feed_facts(self, facts: Sequence[Any], now: float, scenario: base.Scenario) -> None:
        """Facts of a scenario with figures of its own: counted, and fed to them, once each."""
        for fact in facts:
            current = self.runs.get(fact.run_id) or self.run(fact.run_id, scenario)
            if current.first_result_at is None:
                current.first_result_at = now
            if not current.first_sight(fact.seq):
                continue
            current.add(getattr(fact, "worker", 0), fact.status, fact.latency_ms)
            current.last_result_at = now
            if current.figures is not None:
                current.figures.add(fact)
        self.results_seen += len(facts)

    def feed_results(self, results: Sequence[Any], now: float, scenario: base.Scenario) -> None:
        runs = self.runs
        current: RunStats | None = None
        ok: dict[str, bool] = dict(scenario.statuses)
        for r in results:
            if current is None or current.run_id != r.run_id:
                current = runs.get(r.run_id) or self.run(r.run_id, scenario)
                if current.first_result_at is None:
                    current.first_result_at = now
            if not current.first_sight(r.seq):
                continue
            # RunStats.add, inlined: this loop runs once per result.
            workers = current.workers
            w = workers.get(r.worker)
            if w is None:
                w = workers[r.worker] = WorkerStats()
            status = r.status
            by = current.by_status
            by[status] = by.get(status, 0) + 1
            by = w.by_status
            by[status] = by.get(status, 0) + 1
            current.total += 1
            w.total += 1
            if ok.get(status, False):
                current.succeeded += 1
                w.succeeded += 1
            lat = r.latency_ms
            current.latency_sum_ms += lat
            w.latency_sum_ms += lat
            b = bucket_of(lat)
            current.hist[b] = current.hist.get(b, 0) + 1
            current.last_result_at = now
        self.results_seen += len(results)

    def feed(
        self,
        batch: kafka.Batch,
        now: float,
        *,
        runs_topic: str,
        dlq_topic: str,
        control_topic: str = "",
    ) -> None:
        """Dispatch a consumed batch by topic."""
        requests: list[RunRequest] = []
        produced: list[RunProduced] = []
        results: dict[str, list[Any]] = {}
        for msg, value in batch.records:
            topic = msg.topic() or ""
            if topic == runs_topic:
                requests.append(value)
            elif topic == dlq_topic:
                self.invalid += 1
            elif topic == control_topic:
                if value is not None:
                    produced.append(value)
            else:
                results.setdefault(topic, []).append(value)
        if requests:
            self.feed_runs(requests)
        if produced:
            self.feed_produced(produced)
        for topic, values in results.items():
            scenario = self._scenario_of_topic[topic]
            if scenario.figures() is None:
                self.feed_results(values, now, scenario)
            else:
                self.feed_facts(values, now, scenario)

    def current_rate(self, now: float) -> float | None:
        """Results per second over the last few seconds."""
        samples = self._samples
        samples.append((now, self.results_seen))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW_SECS:
            samples.popleft()
        t0, n0 = samples[0]
        return (self.results_seen - n0) / (now - t0) if now > t0 else None


def run(
    settings: Settings,
    *,
    stop: threading.Event,
    run_id: str | None = None,
    out: IO[str] | None = None,
    announcer: control.Announcer | None = None,
    start_from: str = "earliest",
) -> int:
    """Show progress every ``monitor.refresh_secs`` until ``stop``; the facts (and dead
    letters) from ``start_from`` (:mod:`herald.offsets`)."""
    ks = settings.kafka
    runs_topic = contracts.RUNS.qualified(ks.namespace)
    dlq_topic = contracts.DLQ.qualified(ks.namespace)
    control_topic = contracts.CONTROL.qualified(ks.namespace)
    by_topic = base.by_facts_topic(settings)
    consumer = Consumer(
        kafka.consumer_config(
            ks,
            f"herald-monitor-{uuid.uuid4().hex[:8]}",
            fan_in=True,
            **{"enable.partition.eof": False},
        )
    )
    decoders: dict[str, kafka.Decoder] = {
        runs_topic: base.decode_request,
        dlq_topic: lambda raw: None,  # counted, never read
        control_topic: control.run_produced,
    }
    for topic, fact in by_topic.items():
        payload = fact.topic.payload
        assert payload is not None
        # A scenario with figures of its own reads whole facts; the others only the envelope.
        kind = payload if fact.scenario.figures() is not None else base.result_view(payload)
        decoders[topic] = msgspec.json.Decoder(kind).decode
    assignment = []
    for topic in decoders:
        parts = kafka.partitions_of(consumer, topic)
        # What the runs are (their requests, their sizes) is always read from the start.
        known = topic in (runs_topic, control_topic)
        start = offsets.EARLIEST if known else start_from
        assignment += offsets.start_offsets(consumer, parts, start)
    consumer.assign(assignment)
    if announcer is not None:
        announcer.ready(assignment)
    progress = Progress(by_topic)
    view = open_view(settings.monitor, out)
    refresh = settings.monitor.refresh_secs
    next_refresh = [time.monotonic() + refresh]
    announced: set[str] = set()

    def handle(batch: kafka.Batch) -> None:
        progress.feed(
            batch,
            time.time(),
            runs_topic=runs_topic,
            dlq_topic=dlq_topic,
            control_topic=control_topic,
        )

    def idle() -> None:
        now = time.time()
        for stats in progress.runs.values():
            if stats.complete and stats.run_id not in announced and announcer is not None:
                announced.add(stats.run_id)
                announcer.run_figures(_figures(progress, stats, now))
        mono = time.monotonic()
        if mono >= next_refresh[0]:
            view.show(_snapshot(progress, run_id, now))
            next_refresh[0] = mono + refresh

    stats = kafka.LoopStats()
    try:
        stats = kafka.run_consumer(
            consumer,
            decoders=decoders,
            handle=handle,
            stop=stop,
            service="monitor",
            commit=False,
            batch_size=2_000,
            timeout=min(0.1, refresh),
            idle=idle,
        )
        view.show(_snapshot(progress, run_id, time.time()))
    finally:
        view.close()
    logger.info(
        "monitor stopped ◆ %d results read ◆ %d dead letters ◆ %d unreadable records skipped",
        progress.results_seen,
        progress.invalid,
        stats.skipped,
    )
    return 0


def _figures(progress: Progress, stats: RunStats, now: float) -> RunFigures:
    return RunFigures(
        run_id=stats.run_id,
        complete=stats.complete,
        figures={**stats.summary(now), "invalid": progress.invalid},
        at=datetime.now(UTC),
    )


def _snapshot(progress: Progress, run_id: str | None, now: float) -> dict[str, Any]:
    rate = progress.current_rate(time.monotonic())
    if run_id is not None:
        chosen = [progress.run(run_id)]
    else:
        # The five most recent runs, newest first.
        chosen = sorted(
            progress.runs.values(),
            key=lambda r: r.requested_at or r.first_result_at or 0.0,
            reverse=True,
        )[:5]
    runs = []
    for stats in chosen:
        active = not stats.complete and stats.last_result_at and now - stats.last_result_at < 5
        runs.append(stats.summary(now, rate if active else None))
    return {"invalid": progress.invalid, "runs": runs}


# -- views ----------------------------------------------------------------------------------


class View:
    """Where progress is shown."""

    def show(self, snapshot: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the output."""


def open_view(
    cfg: MonitorSettings,
    out: IO[str] | None = None,
    *,
    draw: Callable[[dict[str, Any]], RenderableType] | None = None,
    lines: Callable[[dict[str, Any]], list[str]] | None = None,
) -> View:
    """A live table on a terminal, one plain line per refresh anywhere else: of the runs'
    snapshots by default (:func:`render`, :func:`run_lines`), or of any snapshot ``draw``
    draws and ``lines`` writes."""
    owned = False
    if out is None:
        if cfg.kind == "terminal" or cfg.output_location == "stdout":
            out = sys.stdout
        elif cfg.output_location == "stderr":
            out = sys.stderr
        else:
            out = open(cfg.output_location, "a", encoding="utf-8")  # noqa: SIM115 - closed by view
            owned = True
    if out.isatty():
        return LiveView(out, draw)
    return LineView(out, owned=owned, lines=lines or run_lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}ms"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _workers(run: dict[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
    label = str(run.get("worker_label", "worker"))
    return label, run.get(f"{label}s", {})


def format_line(run: dict[str, Any]) -> str:
    """One run on one line, in its scenario's words (statuses, worker label)."""
    expected = run["expected"]
    done = f"{run['total']}/{expected}" if expected is not None else f"{run['total']}/?"
    pct = f" ({run['percent_done']:.1f}%)" if run["percent_done"] is not None else ""
    statuses = run.get("statuses", [])
    counts = " ".join(f"{status}={run[status]}" for status in statuses)
    label, workers = _workers(run)
    per_worker = " ".join(
        f"{label[0]}{wid}={'/'.join(str(w[st]) for st in statuses)}" for wid, w in workers.items()
    )
    return (
        f"run {run['run_id']}: {done}{pct} {counts} "
        f"remaining={run['remaining'] if run['remaining'] is not None else '?'} "
        f"avg={_ms(run['avg_latency_ms'])} p50={_ms(run['p50_ms'])} "
        f"p95={_ms(run['p95_ms'])} p99={_ms(run['p99_ms'])} "
        f"rate={run['throughput_current']:.0f}/s overall={run['throughput']:.0f}/s "
        f"elapsed={_secs(run['elapsed_secs'])} eta={_secs(run['eta_secs'])}"
        + (f" {label}s({'/'.join(statuses)}): {per_worker}" if per_worker else "")
    )


def run_lines(snapshot: dict[str, Any]) -> list[str]:
    """The runs' snapshot as plain lines: one per run, its scenario's figures indented."""
    lines = []
    for run in snapshot["runs"]:
        lines.append(format_line(run))
        lines.extend(f"  {line}" for line in run.get("figure_lines", ()))
    if snapshot["invalid"]:
        lines.append(f"invalid records (dead-lettered): {snapshot['invalid']}")
    return lines


class LineView(View):
    """One line per run per refresh: for files, pipes and logs."""

    def __init__(
        self,
        out: IO[str],
        *,
        owned: bool = False,
        lines: Callable[[dict[str, Any]], list[str]] | None = None,
    ) -> None:
        self._out = out
        self._owned = owned
        self._lines = lines or run_lines
        self._last: list[str] = []

    def show(self, snapshot: dict[str, Any]) -> None:
        lines = self._lines(snapshot)
        if not lines or lines == self._last:
            return  # nothing new: do not fill a file with identical lines
        self._last = lines
        self._out.write("\n".join(lines) + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._owned:
            self._out.close()


class LiveView(View):
    """A rich live table, redrawn in place."""

    def __init__(
        self, out: IO[str], draw: Callable[[dict[str, Any]], RenderableType] | None = None
    ) -> None:
        self._draw = draw or render
        self._live = Live(console=Console(file=out), auto_refresh=False, transient=False)
        self._live.start()

    def show(self, snapshot: dict[str, Any]) -> None:
        self._live.update(self._draw(snapshot), refresh=True)

    def close(self) -> None:
        self._live.stop()


def render(snapshot: dict[str, Any]) -> Group:
    """The rich renderable for a snapshot."""
    parts: list[Any] = []
    for run in snapshot["runs"]:
        head = Table.grid(padding=(0, 2))
        pct = run["percent_done"] or 0.0
        bar = "█" * int(pct / 4) + "░" * (25 - int(pct / 4))
        head.add_row(
            Text(f"run {run['run_id']}", style="bold"),
            f"{bar} {pct:5.1f}%",
            f"{run['total']:,}/{run['expected']:,}" if run["expected"] else f"{run['total']:,}",
        )
        statuses = run.get("statuses", [])
        colours = ["green", "red", "yellow", "cyan", "magenta"]
        head.add_row(
            "  ".join(
                f"{st} [{colours[i % len(colours)]}]{run[st]:,}[/]" for i, st in enumerate(statuses)
            ),
            f"remaining {run['remaining'] if run['remaining'] is not None else '?'}",
            f"elapsed {_secs(run['elapsed_secs'])}  ETA {_secs(run['eta_secs'])}",
        )
        head.add_row(
            f"avg {_ms(run['avg_latency_ms'])}",
            f"p50 {_ms(run['p50_ms'])}  p95 {_ms(run['p95_ms'])}  p99 {_ms(run['p99_ms'])}",
            f"{run['throughput_current']:,.0f} msg/s now, {run['throughput']:,.0f} overall",
        )
        for line in run.get("figure_lines", ()):
            head.add_row(Text(line, style="cyan"), "", "")
        parts.append(head)
        label, workers = _workers(run)
        table = Table(label, *statuses, "failure %", "avg latency", box=None)
        for wid, w in workers.items():
            frac = w["failure_fraction"]
            table.add_row(
                wid,
                *(f"{w[st]:,}" for st in statuses),
                "-" if frac is None else f"{100 * frac:.1f}",
                _ms(w["avg_latency_ms"]),
            )
        parts.append(table)
    if snapshot["invalid"]:
        parts.append(
            Text(f"invalid records (dead-lettered): {snapshot['invalid']}", style="yellow")
        )
    if not parts:
        parts.append(Text("waiting for runs…"))
    return Group(*parts)
