"""A telemetry run of ``sim.run``: its streams scheduled, their end awaited, and a summary
checked against the ground truth.

The run's streams are schedules like any other (``telemetry_schedules`` and their start's
due item), one per ship, starting ``telemetry.start_delay_secs`` after the services are up;
the scheduler starts them. Once every stream has ended and its frames are stored, the
summary compares three counts per ship: the packets the spaceship sent (its own account, on
``herald.telemetry.streams``), the frames the ingestor published (read back from
``herald.telemetry.frames``) and the frames Postgres holds. Loss is reported, not hidden:
packets dropped on purpose (``loss``) and packets lost on the way (sent, never received) are
both shown, and so are packets *missed* (a stream handed off or resumed after its spaceship
died: those no spaceship sent, as far as their reports tell); the run fails only when the
counts contradict each other (a frame stored twice or not at all, a stream that did not end,
sent + dropped + missed not the stream's size).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError
from rich.console import Console
from rich.table import Table

from herald import kafka
from herald.config import Settings
from herald.db import store
from herald.db.engine import make_engine
from herald.errors import HeraldError
from herald.scenarios import telemetry
from herald.scenarios.base import Followed
from herald.scenarios.telemetry import TelemetryFrame, TelemetryRun

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from herald.contracts import RunRequest

FINAL = frozenset({"done", "stopped", "failed", "expired", "cancelled"})
SETTLE_SECS = 3.0  # after every stream ended: frames still on their way get this long


def schedule(settings: Settings, url: str, request: TelemetryRun) -> list[str]:
    """Store the run's schedules, one per ship, starting a moment from now: their ids."""
    now = datetime.now(UTC)
    start = now + timedelta(seconds=settings.telemetry.start_delay_secs)
    rows, timers = [], []
    for i, ship in enumerate(request.ships):
        row, timer = telemetry.schedule_rows(
            settings,
            ship=ship,
            start_at=start,
            duration_s=request.duration_s,
            rate_hz=request.rate_hz,
            host=request.host,
            port=request.ports[i % len(request.ports)],
            loss=request.loss,
            seed=request.seed + i,
            run_id=request.run_id,
            now=now,
        )
        rows.append(row)
        timers.append(timer)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            store.insert_schedules(conn, rows, timers)
    finally:
        engine.dispose()
    return [r["id"] for r in rows]


@dataclass
class Outcome:
    """The run's figures and what contradicts them."""

    summary: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def wait(
    settings: Settings,
    url: str,
    request: TelemetryRun,
    *,
    timeout: float,
    stopped: Callable[[], bool],
    tick: Callable[[], None] = lambda: None,
    watch: Callable[[Connection], None] = lambda _conn: None,
) -> list[Any]:
    """Until every stream of the run has ended and its frames are stored (or have stopped
    coming for :data:`SETTLE_SECS`): the streams' figures. ``watch`` is given the connection
    every round (the monitor's view)."""
    engine = make_engine(url)
    deadline = time.monotonic() + timeout
    settled_since: float | None = None
    last: tuple[int, ...] = ()
    try:
        while not stopped():
            tick()
            with engine.connect() as conn:
                states = [r.effective_state for r in store.schedules_of_run(conn, request.run_id)]
                ids = [r.id for r in store.schedules_of_run(conn, request.run_id)]
                figures = store.stream_figures(conn, ids)
                watch(conn)
            if states and all(s in FINAL for s in states):
                if all(f.stored >= f.packets_sent for f in figures):
                    return figures
                counts = tuple(f.stored for f in figures)
                if counts != last:
                    last, settled_since = counts, time.monotonic()
                elif settled_since is not None and time.monotonic() - settled_since > SETTLE_SECS:
                    return figures
            if time.monotonic() > deadline:
                raise HeraldError(
                    f"telemetry run {request.run_id}: streams not ended after {timeout:g}s "
                    f"({Counter(states)})"
                )
            time.sleep(0.2)  # polling Postgres for the run's end: not a per-message sleep
    finally:
        engine.dispose()
    return []


def received(settings: Settings, schedule_ids: set[str]) -> Counter[str]:
    """Frames the ingestors published for these streams, per schedule, duplicates counted:
    ``herald.telemetry.frames`` read from its beginning to its end."""
    topic = telemetry.FRAMES.qualified(settings.kafka.namespace)
    consumer = Consumer(
        kafka.consumer_config(
            settings.kafka, f"herald-sim-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True}
        )
    )
    counts: Counter[str] = Counter()
    decode = msgspec.json.Decoder(TelemetryFrame).decode
    try:
        parts = kafka.partitions_of(consumer, topic)
        for tp in parts:
            tp.offset = OFFSET_BEGINNING
        consumer.assign(parts)
        at_end: set[int] = set()
        deadline = time.monotonic() + 60
        while len(at_end) < len(parts) and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.2):
                err = m.error()
                if err is None:
                    at_end.discard(m.partition() or 0)
                    frame = decode(m.value() or b"")
                    if frame.schedule_id in schedule_ids:
                        counts[frame.schedule_id] += 1
                elif err.code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition() or 0)
    finally:
        consumer.close()
    return counts


def summarise(
    request: TelemetryRun, figures: list[Any], published: Counter[str], elapsed: float
) -> Outcome:
    """The run's summary (JSON-ready) and every contradiction between its counts."""
    out = Outcome()
    ships = []
    for f in figures:
        got = published[f.id]
        lost = f.packets_sent - f.distinct_stored
        ships.append(
            {
                "ship": f.ship,
                "schedule_id": f.id,
                "expected": int(f.packets_expected),
                "sent": int(f.packets_sent),
                "dropped": int(f.dropped),
                "missed": int(f.missed),
                "received": got,
                "stored": int(f.stored),
                "reordered": int(f.reordered),
                "lost_in_transit": int(lost),
                "loss_pct": round(100.0 * (1 - f.stored / f.packets_expected), 3),
            }
        )
        if f.packets_sent + f.dropped + f.missed != f.packets_expected:
            out.problems.append(
                f"{f.ship}: sent {f.packets_sent} + dropped {f.dropped} + missed {f.missed} "
                f"is not the stream's {f.packets_expected} packets"
            )
        if f.stored != f.distinct_stored:
            out.problems.append(f"{f.ship}: {f.stored - f.distinct_stored} frames stored twice")
        if got < f.stored:
            out.problems.append(f"{f.ship}: {f.stored} frames stored, {got} published")
        if got > f.packets_sent:
            out.problems.append(f"{f.ship}: {got} frames published, {f.packets_sent} sent")
    total = {
        k: sum(s[k] for s in ships) for k in ("expected", "sent", "dropped", "missed", "stored")
    }
    received_total = sum(s["received"] for s in ships)
    out.summary = {
        "run_id": request.run_id,
        "scenario": "telemetry",
        "ships": len(ships),
        "rate_hz": request.rate_hz,
        "duration_s": request.duration_s,
        "loss": request.loss,
        "packets_expected": total["expected"],
        "packets_sent": total["sent"],
        "packets_dropped": total["dropped"],
        "packets_missed": total["missed"],
        "frames_received": received_total,
        "frames_stored": total["stored"],
        "lost_in_transit": total["sent"] - total["stored"],
        "loss_pct": round(100.0 * (1 - total["stored"] / max(1, total["expected"])), 3),
        "per_ship": ships,
        "wall_time_secs": round(elapsed, 3),
        "problems": out.problems,
    }
    return out


def print_summary(console: Console, s: dict[str, Any]) -> None:
    """The run's summary: totals, then a row per ship."""
    totals = Table(title=f"telemetry run {s['run_id']}", show_header=False, box=None)
    for label, value in (
        ("ships / rate / duration", f"{s['ships']} / {s['rate_hz']:g} Hz / {s['duration_s']:g} s"),
        ("packets expected", f"{s['packets_expected']:,}"),
        (
            "sent / dropped (loss) / missed",
            f"{s['packets_sent']:,} / {s['packets_dropped']:,} / {s['packets_missed']:,}",
        ),
        ("frames received (ingestor)", f"{s['frames_received']:,}"),
        ("frames stored (Postgres)", f"{s['frames_stored']:,}"),
        ("lost in transit", f"{s['lost_in_transit']:,}"),
        ("loss", f"{s['loss_pct']:.2f}%"),
        ("wall time", f"{s['wall_time_secs']:.2f} s"),
    ):
        totals.add_row(label, value)
    console.print(totals)
    table = Table()
    columns = ("ship", "expected", "sent", "dropped", "missed", "received", "stored", "loss %")
    for column in columns:
        table.add_column(column, justify="left" if column == "ship" else "right")
    for ship in s["per_ship"]:
        table.add_row(
            ship["ship"],
            f"{ship['expected']:,}",
            f"{ship['sent']:,}",
            f"{ship['dropped']:,}",
            f"{ship['missed']:,}",
            f"{ship['received']:,}",
            f"{ship['stored']:,}",
            f"{ship['loss_pct']:.2f}",
        )
    console.print(table)


# -- sim.run's hooks (:class:`herald.scenarios.base.SimRunner`) --------------------------------


def start(settings: Settings, url: str, request: RunRequest) -> None:
    """A telemetry run starts as its schedules, stored now; the scheduler starts them."""
    assert isinstance(request, TelemetryRun)
    schedule(settings, url, request)


def follow(
    settings: Settings,
    url: str,
    request: RunRequest,
    *,
    timeout: float,
    stopped: Callable[[], bool],
    tick: Callable[[], None],
    console: Console,
    started: float,
) -> Followed | None:
    """Until the run's streams end, with the telemetry monitor on the monitor's output every
    ``monitor.refresh_secs``; then the summary checked against the ground truth (None if
    ``stopped`` cut it short)."""
    from herald import telemetry_monitor
    from herald.services.monitor import open_view

    assert isinstance(request, TelemetryRun)
    view = open_view(
        settings.monitor,
        draw=lambda snap: telemetry_monitor.table(snap, title=f"telemetry run {request.run_id}"),
        lines=lambda snap: [telemetry_monitor.line(snap)],
    )
    shown = [0.0]

    def watch(conn: Connection) -> None:
        if time.monotonic() - shown[0] >= settings.monitor.refresh_secs:
            shown[0] = time.monotonic()
            view.show(telemetry_monitor.snapshot(conn, run_id=request.run_id))

    try:
        figures = wait(
            settings,
            url,
            request,
            timeout=timeout + settings.telemetry.start_delay_secs,
            stopped=stopped,
            tick=tick,
            watch=watch,
        )
    finally:
        view.close()
    if stopped():
        return None
    published = received(settings, {f.id for f in figures})
    outcome = summarise(request, figures, published, time.monotonic() - started)
    return Followed(
        outcome.summary, outcome.problems, lambda: print_summary(console, outcome.summary)
    )
