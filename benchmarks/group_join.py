"""Consumer-group joins on the embedded broker: how long from subscribe() to partitions held.

Every service of a run that reads in a consumer group (the senders, the producer, the
recorder) waits for its join before its first record, and ``herald sim`` submits its run once
all of them hold partitions: the join is most of the time from launch to the first result.
This measures it alone, on a fresh embedded broker and a topic of 12 partitions, for herald's
consumer settings and for the variants one might try instead: shorter sessions (the broker
holds a join for about half of one), static membership (``group.instance.id``), the eager
protocol; one member alone, and four members subscribing at once (like a run's senders).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from _util import stats
from herald import kafka
from herald.config import Settings
from herald.runtime.broker import EmbeddedBroker

PARTITIONS = 12
MEMBERS = (1, 4)
VARIANTS: dict[str, dict[str, object]] = {
    "herald's (4 s sessions, 400 ms heartbeats)": {},
    "3 s sessions": {"session.timeout.ms": 3000, "heartbeat.interval.ms": 300},
    "2 s sessions": {"session.timeout.ms": 2000, "heartbeat.interval.ms": 200},
    "static membership (`group.instance.id`)": {"group.instance.id": "member"},
    "eager protocol (`range`)": {"partition.assignment.strategy": "range"},
}
GIVE_UP_SECS = 20.0


@dataclass
class JoinRun:
    secs: dict[tuple[str, int], list[float | None]]  # (variant, members) -> each member's


def _members_join(
    bootstrap: str, topic: str, overrides: dict[str, object], n: int
) -> list[float | None]:
    """Seconds from each member's subscribe() to its first partitions (None: not within
    GIVE_UP_SECS); ``n`` members of one new group subscribe at once."""
    group = f"join-{uuid.uuid4().hex[:8]}"
    ks = kafka.for_embedded(Settings().kafka, bootstrap)
    times: list[float | None] = [None] * n
    go = threading.Barrier(n)
    all_held = threading.Barrier(n)

    def member(i: int) -> None:
        conf = kafka.consumer_config(ks, group, **overrides)
        if "group.instance.id" in overrides:
            conf["group.instance.id"] = f"{overrides['group.instance.id']}-{i}"
        consumer = Consumer(conf)
        held = threading.Event()
        go.wait()
        started = time.monotonic()

        def on_assign(_c: Consumer, parts: list[object]) -> None:
            if parts and not held.is_set():
                times[i] = time.monotonic() - started
                held.set()

        consumer.subscribe([topic], on_assign=on_assign)
        give_up = started + GIVE_UP_SECS
        while not held.is_set() and time.monotonic() < give_up:
            consumer.poll(0.01)
        # A member that left now would start a rebalance for the others: stay until all hold
        # partitions (each still serving its heartbeats), then leave together.
        waiting = threading.Thread(target=all_held.wait, daemon=True)
        waiting.start()
        while waiting.is_alive():
            consumer.poll(0.01)
        kafka.close_consumer(consumer, f"member-{i}")

    threads = [threading.Thread(target=member, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def run_joins() -> JoinRun:
    """Each variant once at each group size, on one fresh embedded broker."""
    out: dict[tuple[str, int], list[float | None]] = {}
    with EmbeddedBroker() as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        topic = "join-bench"
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
        for name, overrides in VARIANTS.items():
            for n in MEMBERS:
                out[(name, n)] = _members_join(broker.bootstrap, topic, overrides, n)
    return JoinRun(out)


def _last(times: list[float | None]) -> float | None:
    """The slowest member's join, or None if one did not join."""
    joined = [t for t in times if t is not None]
    return max(joined) if len(joined) == len(times) else None


def describe(run: JoinRun) -> str:
    """One line of what a run measured: the slowest member of each case."""
    return "; ".join(
        f"{name}, {n}: " + (f"{last:.2f} s" if (last := _last(t)) is not None else "not joined")
        for (name, n), t in run.secs.items()
    )


def section(runs: Sequence[JoinRun]) -> str:
    """The report's section: the last member's join, median over runs, per variant and size."""
    if not runs:
        return ""
    rows = []
    for name in VARIANTS:
        cells = [name]
        for n in MEMBERS:
            last = [x for r in runs if (x := _last(r.secs[(name, n)])) is not None]
            missed = len(runs) - len(last)
            if not last:
                cells.append(f"not joined in {GIVE_UP_SECS:g} s")
                continue
            s = stats(last)
            cell = f"**{s.median:.2f}** ({s.min:.2f}-{s.max:.2f})"
            cells.append(cell + (f", {missed} not joined" if missed else ""))
        rows.append(cells)
    header = "| consumer settings | " + " | ".join(
        f"{n} member{'s at once' if n > 1 else ' alone'} (s)" for n in MEMBERS
    )
    lines = [header + " |", "|---|" + "---:|" * len(MEMBERS)]
    lines += ["| " + " | ".join(c) + " |" for c in rows]
    table = "\n".join(lines)
    return f"""

## Consumer-group joins on the embedded broker

From `subscribe()` to the first partitions held, the last member of a new group (median of
{len(runs)} run(s), min-max), on a fresh embedded broker and a topic of {PARTITIONS} partitions
(benchmarks/group_join.py). herald's consumer settings, then the variants one might try:

{table}

The embedded broker (Tansu) answers the first JoinGroup at once (it names the member) and
holds the second for about half the session timeout, in whole seconds; it holds a static
member's join and its sync for 3 s each. A run's first result waits for its services' joins,
which is why launch to first result cannot come near 2.5 s on this broker with 4 s sessions;
2 s sessions join in 1 s but are not stable (see `EMBEDDED_SESSION_TIMEOUT_MS` in
`herald/kafka.py`), and static membership is slower, not faster.
"""


def main() -> int:
    """``python benchmarks/group_join.py [--repeat 3]``: this benchmark alone."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="runs (the median is reported)")
    args = p.parse_args()
    runs = []
    for _ in range(args.repeat):
        runs.append(run_joins())
        print(describe(runs[-1]), flush=True)
    print(section(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
