"""monitor: live progress of every run, aggregated from the results stream.

It reads ``herald.runs`` (expected counts), ``herald.sms.results`` and ``herald.dlq`` from
the beginning, read_committed, with ``assign()`` (no group join: it wants every partition
anyway), so a restarted monitor shows the same totals as one that never stopped.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from herald import contracts, kafka
from herald.config import MonitorSettings, Settings
from herald.contracts import ResultView, RunRequest
from herald.services import _common
from herald.stats import RunStats, SenderStats, bucket_of

logger = logging.getLogger(__name__)

RATE_WINDOW_SECS = 5.0  # "current" throughput is measured over this many seconds


def main(argv: Sequence[str] | None = None) -> int:
    """``herald monitor``: show progress until stopped (or until a run completes)."""
    p = _common.parser("monitor", __doc__.splitlines()[0])
    p.add_argument("--run-id", help="show only this run")
    p.add_argument(
        "--exit-when-complete", action="store_true", help="exit once --run-id has every result"
    )
    p.add_argument("--summary-json", type=Path, help="write the final figures here as JSON")
    args = p.parse_args(_common.argv_or_default(argv))
    return _common.service_main(
        args,
        lambda s, stop: run(
            s,
            stop=stop,
            run_id=args.run_id,
            exit_when_complete=args.exit_when_complete,
            summary_json=args.summary_json,
        ),
    )


class Progress:
    """Runs by id, fed record by record."""

    def __init__(self) -> None:
        self.runs: dict[str, RunStats] = {}
        self.invalid = 0  # records on the dead-letter topic
        self.skipped = 0  # records this monitor could not read
        self._decode_result = msgspec.json.Decoder(ResultView).decode
        self._decode_run = msgspec.json.Decoder(RunRequest).decode
        self._samples: deque[tuple[float, int]] = deque()  # (time, results so far)
        self.results_seen = 0

    def run(self, run_id: str) -> RunStats:
        stats = self.runs.get(run_id)
        if stats is None:
            stats = self.runs[run_id] = RunStats(run_id)
        return stats

    def feed_runs(self, msgs: Sequence[Message]) -> None:
        for msg in msgs:
            try:
                request = self._decode_run(msg.value() or b"")
            except msgspec.DecodeError:
                self.skipped += 1  # the producer dead-letters it
                continue
            stats = self.run(request.run_id)
            stats.expected = request.messages
            stats.requested_at = request.requested_at.timestamp()

    def feed_results(self, msgs: Sequence[Message], now: float) -> None:
        decode, runs = self._decode_result, self.runs
        current: RunStats | None = None
        for msg in msgs:
            try:
                r = decode(msg.value() or b"")
            except msgspec.DecodeError:
                # The recorder dead-letters it; it is counted once, from the DLQ topic.
                self.skipped += 1
                continue
            if current is None or current.run_id != r.run_id:
                current = runs.get(r.run_id) or self.run(r.run_id)
                if current.first_result_at is None:
                    current.first_result_at = now
            if not current.first_sight(r.seq):
                continue
            # RunStats.add, inlined: this loop runs once per result.
            sender = current.senders.get(r.sender_id)
            if sender is None:
                sender = current.senders[r.sender_id] = SenderStats()
            if r.status == "sent":
                current.sent += 1
                sender.sent += 1
            else:
                current.failed += 1
                sender.failed += 1
            lat = r.latency_ms
            current.latency_sum_ms += lat
            sender.latency_sum_ms += lat
            b = bucket_of(lat)
            current.hist[b] = current.hist.get(b, 0) + 1
            current.last_result_at = now
        self.results_seen += len(msgs)

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
    exit_when_complete: bool = False,
    summary_json: Path | None = None,
    out: IO[str] | None = None,
) -> int:
    """Show progress every ``monitor.refresh_secs`` until ``stop`` (or the run completes)."""
    ks = settings.kafka
    kafka.wait_for_broker(ks, stop=stop.is_set)
    runs_topic = contracts.RUNS.qualified(ks.namespace)
    results_topic = contracts.RESULTS.qualified(ks.namespace)
    dlq_topic = contracts.DLQ.qualified(ks.namespace)
    consumer = Consumer(
        kafka.consumer_config(
            ks,
            f"herald-monitor-{uuid.uuid4().hex[:8]}",
            **{
                "enable.partition.eof": False,
            },
        )
    )
    assignment = []
    for topic in (runs_topic, results_topic, dlq_topic):
        for tp in kafka.partitions_of(consumer, topic):
            tp.offset = OFFSET_BEGINNING
            assignment.append(tp)
    consumer.assign(assignment)
    progress = Progress()
    view = open_view(settings.monitor, out)
    refresh = settings.monitor.refresh_secs
    next_refresh = time.monotonic() + refresh
    finished = False
    try:
        while not stop.is_set():
            msgs = consumer.consume(10_000, min(0.1, refresh))
            now = time.time()
            if msgs:
                _dispatch(
                    progress,
                    msgs,
                    now,
                    runs_topic=runs_topic,
                    results_topic=results_topic,
                    dlq_topic=dlq_topic,
                )
            if exit_when_complete and run_id and progress.run(run_id).complete:
                finished = True
                break
            mono = time.monotonic()
            if mono >= next_refresh:
                view.show(_snapshot(progress, run_id, now))
                next_refresh = mono + refresh
        final = _snapshot(progress, run_id, time.time())
        view.show(final)
    finally:
        view.close()
        consumer.close()
    if summary_json is not None and run_id is not None:
        summary = final["runs"][0] if final["runs"] else {}
        summary_json.write_text(json.dumps({**summary, "invalid": progress.invalid}, indent=2))
    logger.info(
        "monitor stopped ◆ %d results read ◆ %d dead letters ◆ %d unreadable records skipped",
        progress.results_seen,
        progress.invalid,
        progress.skipped,
    )
    if exit_when_complete and not finished:
        logger.info("monitor stopped before run %s completed", run_id)
    return 0


def _dispatch(
    progress: Progress,
    msgs: list[Message],
    now: float,
    *,
    runs_topic: str,
    results_topic: str,
    dlq_topic: str,
) -> None:
    results: list[Message] = []
    for msg in msgs:
        if (err := msg.error()) is not None:
            kafka.raise_if_fatal(err, "monitor consume")
            continue
        topic = msg.topic()
        if topic == results_topic:
            results.append(msg)
        elif topic == runs_topic:
            progress.feed_runs([msg])
        elif topic == dlq_topic:
            progress.invalid += 1
    if results:
        progress.feed_results(results, now)


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


def open_view(cfg: MonitorSettings, out: IO[str] | None = None) -> View:
    """A live table on a terminal, one plain line per refresh anywhere else."""
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
        return LiveView(out)
    return LineView(out, owned=owned)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}ms"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def format_line(run: dict[str, Any]) -> str:
    """One run on one line."""
    expected = run["expected"]
    done = f"{run['total']}/{expected}" if expected is not None else f"{run['total']}/?"
    pct = f" ({run['percent_done']:.1f}%)" if run["percent_done"] is not None else ""
    senders = " ".join(f"s{sid}={s['sent']}/{s['failed']}" for sid, s in run["senders"].items())
    return (
        f"run {run['run_id']}: {done}{pct} sent={run['sent']} failed={run['failed']} "
        f"remaining={run['remaining'] if run['remaining'] is not None else '?'} "
        f"avg={_ms(run['avg_latency_ms'])} p50={_ms(run['p50_ms'])} "
        f"p95={_ms(run['p95_ms'])} p99={_ms(run['p99_ms'])} "
        f"rate={run['throughput_current']:.0f}/s overall={run['throughput']:.0f}/s "
        f"elapsed={_secs(run['elapsed_secs'])} eta={_secs(run['eta_secs'])}"
        + (f" senders(sent/failed): {senders}" if senders else "")
    )


class LineView(View):
    """One line per run per refresh: for files, pipes and logs."""

    def __init__(self, out: IO[str], *, owned: bool = False) -> None:
        self._out = out
        self._owned = owned
        self._last: list[str] = []

    def show(self, snapshot: dict[str, Any]) -> None:
        lines = [format_line(run) for run in snapshot["runs"]]
        if snapshot["invalid"]:
            lines.append(f"invalid records (dead-lettered): {snapshot['invalid']}")
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

    def __init__(self, out: IO[str]) -> None:
        self._live = Live(console=Console(file=out), auto_refresh=False, transient=False)
        self._live.start()

    def show(self, snapshot: dict[str, Any]) -> None:
        self._live.update(render(snapshot), refresh=True)

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
        head.add_row(
            f"sent [green]{run['sent']:,}[/]  failed [red]{run['failed']:,}[/]",
            f"remaining {run['remaining'] if run['remaining'] is not None else '?'}",
            f"elapsed {_secs(run['elapsed_secs'])}  ETA {_secs(run['eta_secs'])}",
        )
        head.add_row(
            f"avg {_ms(run['avg_latency_ms'])}",
            f"p50 {_ms(run['p50_ms'])}  p95 {_ms(run['p95_ms'])}  p99 {_ms(run['p99_ms'])}",
            f"{run['throughput_current']:,.0f} msg/s now, {run['throughput']:,.0f} overall",
        )
        parts.append(head)
        table = Table("sender", "sent", "failed", "failure %", "avg latency", box=None)
        for sid, s in run["senders"].items():
            frac = s["failure_fraction"]
            table.add_row(
                sid,
                f"{s['sent']:,}",
                f"{s['failed']:,}",
                "-" if frac is None else f"{100 * frac:.1f}",
                _ms(s["avg_latency_ms"]),
            )
        parts.append(table)
    if snapshot["invalid"]:
        parts.append(
            Text(f"invalid records (dead-lettered): {snapshot['invalid']}", style="yellow")
        )
    if not parts:
        parts.append(Text("waiting for runs…"))
    return Group(*parts)
