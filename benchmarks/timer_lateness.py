"""Timers: how late callbacks go out when 10,000 come due in the same second, and at a steady
1,000 due per second with 100,000 pending.

    python benchmarks/timer_lateness.py [--burst N] [--pending N --rate R]

Each measurement starts a fresh embedded broker and Postgres, one ``herald scheduler`` and one
``herald notifier`` process, and the load test's receiver on loopback (it verifies each
signature, answers 200 and counts deliveries by ``webhook-id``). The timers are written
straight into Postgres in bulk (the API's cost is measured under Locust, not here), with due
times chosen ahead of the write. Lateness is exact (``percentile_cont`` over every timer):
the first attempt's start minus the due time, as ``herald_timer_fire_lateness_seconds``
defines it, and the scheduler's publication minus the due time. Every timer must be
delivered; duplicates at the receiver are counted and reported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from _util import HERALD, herald_env, stop_process, wait_for
from herald import kafka, timers
from herald.config import Settings
from herald.db import store
from herald.db.engine import make_engine, migrate
from herald.kafka import EMBEDDED_SESSION_TIMEOUT_MS
from herald.load.receiver import Receiver
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.webhooks import generate_secret

WRITE_BATCH = 5_000


def _cpu(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) the process has used so far."""
    times = psutil.Process(proc.pid).cpu_times()
    return float(times.user + times.system)


def _own_cpu() -> float:
    """CPU seconds this process (the receiver's threads, the polling) has used so far."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


@dataclass
class TimerRun:
    timers: int
    delivered: int  # timers in state delivered
    received: int  # requests at the receiver (duplicates included)
    duplicates: int  # requests beyond the first per webhook-id
    first_attempt_ms: tuple[float, float, float]  # p50, p99, max: first attempt - due
    fired_ms: tuple[float, float, float]  # p50, p99, max: scheduler publication - due
    span_secs: float  # first due time to last delivery
    # CPU microseconds per timer, by process: scheduler, notifier, and this one (the receiver,
    # mostly: it shares the cores with them)
    cpu_us: dict[str, float]


def _rows(settings: Settings, url: str, dues: list[datetime], tag: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    rows = []
    for i, due in enumerate(dues):
        row = timers.webhook_row(
            settings, url=url, mode="at_least_once", due_at=due, not_after=None, now=now
        )
        row["id"] = row["key"] = f"{tag}-{i:07d}"
        rows.append(row)
    return rows


def _write(engine: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), WRITE_BATCH):
        with engine.begin() as conn:
            store.insert_timers(conn, rows[start : start + WRITE_BATCH])


def _delivered(engine: Any, prefix: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM timers WHERE state = 'delivered' AND id LIKE :p"),
                {"p": prefix},
            ).scalar_one()
        )


def _stuck(engine: Any, tag: str, workdir: Path) -> str:
    """What the timers not delivered are doing, and where the services' logs are."""
    with engine.connect() as conn:
        states = conn.execute(
            text("SELECT state, count(*) FROM timers WHERE id LIKE :p GROUP BY state ORDER BY 1"),
            {"p": f"{tag}-%"},
        ).all()
        sample = (
            conn.execute(
                text(
                    "SELECT * FROM timers WHERE id LIKE :p AND state <> 'delivered' "
                    "ORDER BY due_at LIMIT 5"
                ),
                {"p": f"{tag}-%"},
            )
            .mappings()
            .all()
        )
    lines = [f"timers by state: {dict((str(s), int(n)) for s, n in states)}"]
    lines += [f"  {dict(row)}" for row in sample]
    lines += [f"logs: {workdir}/{{scheduler,notifier}}-{tag}.log"]
    return "\n".join(lines)


def services(notifiers: int) -> list[str]:
    """The processes' names: the scheduler, and the notifier (notifier-1.. when several)."""
    if notifiers == 1:
        return ["scheduler", "notifier"]
    return ["scheduler", *(f"notifier-{i + 1}" for i in range(notifiers))]


def measure(
    workdir: Path,
    *,
    count: int,
    spread_secs: float,
    lead_secs: float,
    notifiers: int = 1,
    timeout: float = 600.0,
) -> TimerRun:
    """``count`` timers due over ``spread_secs`` (0: all in the same second), the first
    ``lead_secs`` after they are written, ``notifiers`` notifier processes in one group; wait
    until every one is delivered."""
    names = services(notifiers)
    workdir.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    secret = generate_secret()
    with (
        EmbeddedBroker() as broker,
        EmbeddedDatabase(workdir / f"pg-{tag}") as database,
        Receiver(secrets=(secret,)) as rx,
    ):
        migrate(database.url)
        settings = Settings.model_validate(
            {
                "home": str(workdir / f"home-{tag}"),
                "kafka": {"bootstrap": broker.bootstrap, "namespace": f"b{tag}"},
                "database": {"url": database.url},
                "timers": {"signing_secrets": [secret]},
            }
        )
        kafka.ensure_topics(settings.kafka)
        env = herald_env(
            HERALD_HOME=str(workdir / f"home-{tag}"),
            HERALD_KAFKA_BOOTSTRAP=broker.bootstrap,
            HERALD_KAFKA_NAMESPACE=f"b{tag}",
            HERALD_KAFKA_SESSION_TIMEOUT_MS=str(EMBEDDED_SESSION_TIMEOUT_MS),
            HERALD_DATABASE_URL=database.url,
            HERALD_TIMERS_SIGNING_SECRETS=json.dumps([secret]),
            HERALD_NOTIFIER_MAX_IN_FLIGHT_PER_HOST="64",
        )
        engine = make_engine(database.url)
        procs = []
        try:
            for name in names:
                with (workdir / f"{name}-{tag}.log").open("wb") as log:
                    command = [HERALD, name.split("-")[0]]
                    procs.append(
                        subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                    )
            # Every notifier has its partitions (several: the group has settled), and one timer
            # went through: the services are up.
            logs = [workdir / f"{name}-{tag}.log" for name in names[1:]]
            wait_for(
                lambda: all(" assigned " in log.read_text() for log in logs),
                120,
                "every notifier's partitions",
            )
            _write(engine, _rows(settings, rx.url, [datetime.now(UTC)], f"warm{tag}"))
            wait_for(lambda: _delivered(engine, f"warm{tag}-%") == 1, 120, "the warm-up timer")

            before = {name: _cpu(proc) for name, proc in zip(names, procs, strict=True)}
            first = datetime.now(UTC) + timedelta(seconds=lead_secs)
            step = spread_secs / count if spread_secs else 0.0
            dues = [first + timedelta(seconds=step * i) for i in range(count)]
            if not spread_secs:  # the same second: spread over it, not one instant
                dues = [first + timedelta(seconds=i / count) for i in range(count)]
            writing = time.monotonic()
            _write(engine, _rows(settings, rx.url, dues, tag))
            print(f"wrote {count:,} timers in {time.monotonic() - writing:.1f}s", flush=True)
            before["receiver"] = _own_cpu()  # after the writing, done by this process too
            if datetime.now(UTC) > first:
                raise RuntimeError(f"writing {count:,} timers took longer than {lead_secs}s")
            try:
                wait_for(
                    lambda: _delivered(engine, f"{tag}-%") == count,
                    timeout,
                    f"{count:,} timers delivered",
                    interval=0.5,
                )
            except TimeoutError as exc:
                raise RuntimeError(f"{exc}\n{_stuck(engine, tag, workdir)}") from None
            cpu_us = {
                name: (_cpu(proc) - before[name]) * 1e6 / count
                for name, proc in zip(names, procs, strict=True)
            }
            cpu_us["receiver"] = (_own_cpu() - before["receiver"]) * 1e6 / count
            with engine.connect() as conn:
                n, *attempt = store.lateness_percentiles(conn, prefix=f"{tag}-%")
                _, *fired = store.lateness_percentiles(conn, column="fired_at", prefix=f"{tag}-%")
                last = conn.execute(
                    text("SELECT max(finished_at) FROM timers WHERE id LIKE :p"),
                    {"p": f"{tag}-%"},
                ).scalar_one()
        finally:
            for proc in procs:
                stop_process(proc, timeout=30)
            engine.dispose()
        counts = {k: v for k, v in rx.counts().items() if k and k.startswith(f"{tag}-")}
    assert n == count, (n, count)
    return TimerRun(
        timers=count,
        delivered=count,
        received=sum(counts.values()),
        duplicates=sum(v - 1 for v in counts.values() if v > 1),
        first_attempt_ms=tuple(float(x or 0.0) for x in attempt),  # type: ignore[arg-type]
        fired_ms=tuple(float(x or 0.0) for x in fired),  # type: ignore[arg-type]
        span_secs=(last - first).total_seconds(),
        cpu_us=cpu_us,
    )


def burst(workdir: Path, count: int, notifiers: int = 1) -> TimerRun:
    """``count`` timers due within the same second."""
    return measure(
        workdir, count=count, spread_secs=0.0, lead_secs=3.0 + count / 1_000, notifiers=notifiers
    )


def steady(workdir: Path, pending: int, rate: float, notifiers: int = 1) -> TimerRun:
    """``pending`` timers coming due at ``rate`` per second."""
    return measure(
        workdir,
        count=pending,
        spread_secs=pending / rate,
        lead_secs=5.0 + pending / 1_000,
        notifiers=notifiers,
    )


def describe(what: str, run: TimerRun) -> str:
    p50, p99, worst = run.first_attempt_ms
    f50, f99, fmax = run.fired_ms
    return (
        f"{what}: {run.delivered:,}/{run.timers:,} delivered, {run.duplicates} duplicates;"
        f" first attempt late p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {worst:.0f} ms;"
        f" fired late p50 {f50:.0f} ms, p99 {f99:.0f} ms, max {fmax:.0f} ms;"
        f" CPU per timer: " + ", ".join(f"{name} {us:,.0f} µs" for name, us in run.cpu_us.items())
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--burst", type=int, default=10_000)
    p.add_argument("--pending", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=1_000.0)
    p.add_argument("--notifiers", type=int, default=1, help="notifier processes, one group")
    p.add_argument("--workdir", type=Path, default=Path(".herald") / "bench-timers")
    args = p.parse_args(argv)
    if args.burst:
        run = burst(args.workdir, args.burst, args.notifiers)
        print(describe(f"{args.burst:,} due in the same second", run))
    run = steady(args.workdir, args.pending, args.rate, args.notifiers)
    print(describe(f"{args.pending:,} pending, {args.rate:,.0f} due per second", run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
