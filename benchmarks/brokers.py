"""The engines side by side: Tansu, one Apache Kafka broker and the 3-broker cluster.

For each engine, a broker (the embedded Tansu, started afresh for each round, or the local
Apache Kafka engine from its jars, as ``--engine kafka [--brokers 3]`` starts it, once for all
rounds); then, as many times as there are rounds, the raw relay baseline on that broker
(topics of its own, replicated on every node) and ``herald sim`` pointed at it
(``HERALD_KAFKA_BOOTSTRAP``: the broker's start is not in the figure; topics with a copy on
every node and ``min.insync.replicas`` nodes − 1, as herald's engines set them). Every run
must end with every outcome in Postgres.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import relay
from _util import stats
from e2e import SimRun, run_sim
from herald import kafka
from herald.runtime import engines
from herald.runtime.apache_kafka import ApacheKafkaCluster
from herald.runtime.broker import EmbeddedBroker

ROOT = Path(__file__).resolve().parent.parent
ENGINES = (("Tansu", "tansu", 1), ("Apache Kafka, 1 broker", "kafka", 1),
           ("Apache Kafka, 3 brokers", "kafka", 3))  # fmt: skip
MESSAGES = {False: 20_000, True: 2_000}  # a run (full, quick)


@dataclass
class EngineRuns:
    label: str
    start_secs: float  # the broker's (slowest) start (not in any figure below)
    baselines: list[dict[str, float]]
    sims: list[SimRun]


@contextmanager
def _broker(engine: str, brokers: int, logs: Path, number: int) -> Iterator[str]:
    if engine == "tansu":
        with EmbeddedBroker(log_path=logs / f"tansu-{number + 1}.log") as broker:
            yield broker.bootstrap
        return
    cluster = ApacheKafkaCluster(brokers=brokers, home=ROOT / ".herald", log_dir=logs)
    cluster.start(timeout=300)
    try:
        yield cluster.bootstrap
    finally:
        cluster.stop(timeout=20)


def run_engines(home: Path, rounds: int, *, quick: bool = False) -> list[EngineRuns]:
    """Every engine: a broker, then ``rounds`` × (relay baseline, ``herald sim``) on it."""
    messages = MESSAGES[quick]
    (home / "engines" / "sim").mkdir(parents=True, exist_ok=True)
    out = []
    for label, engine, brokers in ENGINES:
        logs = home / "engines" / f"{engine}-{brokers}"
        logs.mkdir(parents=True, exist_ok=True)
        # The group timeouts sim sets on its own broker of that engine.
        session, heartbeat = (
            (kafka.EMBEDDED_SESSION_TIMEOUT_MS, kafka.EMBEDDED_HEARTBEAT_MS)
            if engine == "tansu"
            else (engines.RUN_SESSION_TIMEOUT_MS, engines.RUN_HEARTBEAT_MS)
        )
        env = {
            "HERALD_KAFKA_REPLICATION_FACTOR": str(brokers),
            "HERALD_KAFKA_SESSION_TIMEOUT_MS": str(session),
            "HERALD_KAFKA_HEARTBEAT_INTERVAL_MS": str(heartbeat),
        }
        runs = EngineRuns(label, 0.0, [], [])
        # Tansu: a fresh broker per round, as `herald sim` has. On a Tansu that had served one
        # run, the next run's senders never got an assignment (the two engine steps run
        # before this failed so, at round 2: a sender group left stuck by the previous run's
        # members leaving at once; docs/engines.md, "What Tansu lacks"). Apache Kafka: one
        # cluster for all rounds.
        fresh = engine == "tansu"
        with ExitStack() as stack:
            for number in range(rounds):
                if fresh or number == 0:
                    stack.close()  # the previous round's Tansu (none: nothing to close)
                    started = time.monotonic()
                    bootstrap = stack.enter_context(_broker(engine, brokers, logs, number))
                    runs.start_secs = max(runs.start_secs, time.monotonic() - started)
                base = relay.run_baseline(messages, bootstrap=bootstrap, replication_factor=brokers)
                sim = run_sim(home / "engines" / "sim", messages, mean_wait=0.0,
                              env=env | {"HERALD_KAFKA_BOOTSTRAP": bootstrap})  # fmt: skip
                runs.baselines.append(base)
                runs.sims.append(sim)
                print(f"[{label} {number + 1}/{rounds}] relay {base['rate']:,.0f} msg/s, "
                      f"end to end {sim.summary['throughput']:,.0f} msg/s", flush=True)  # fmt: skip
        out.append(runs)
    return out


def section(runs: Sequence[EngineRuns], quick: bool = False) -> str:
    """The report's engines section."""
    if not runs:
        return ""
    rows = []
    for r in runs:
        base = stats(b["rate"] for b in r.baselines)
        e2e = stats(s.summary["throughput"] for s in r.sims)
        ratio = stats(
            s.summary["throughput"] / b["rate"] for s, b in zip(r.sims, r.baselines, strict=True)
        )
        first = stats(s.summary["first_result_secs"] for s in r.sims)
        dups = sum(s.summary.get("duplicate_results_ignored", 0) for s in r.sims)
        rows.append(
            f"| {r.label} | **{e2e.median:,.0f}** ({e2e.min:,.0f}–{e2e.max:,.0f}) "
            f"| {base.median:,.0f} ({base.min:,.0f}–{base.max:,.0f}) | {ratio.median:.2f} "
            f"| {first.median:.1f} | {dups} | {r.start_secs:.1f} |"
        )
    n = len(runs[0].sims)
    header = (
        "| engine | end to end (msg/s) | relay (msg/s) | end to end / relay | first result (s) "
        "| duplicates ignored | broker start (s) |"
    )
    return f"""

## Engines side by side

`herald sim --messages {MESSAGES[quick]:,} --senders 4 --mean-wait 0 --failure-rate 0.1` and
the raw relay baseline, {n} time(s) for each engine in turn (benchmarks/brokers.py): the
embedded Tansu; one Apache Kafka node; three nodes, topics with three replicas and
`min.insync.replicas` 2 (`acks=all` everywhere). Apache Kafka is started once per engine,
Tansu once per round (a Tansu that has served one run can leave the next run's senders without
partitions: docs/engines.md); the slowest start is the last column, in no other figure. sim is
pointed at the broker (`HERALD_KAFKA_BOOTSTRAP`); group session timeouts are the ones sim sets
on that engine.
Median (min–max) of the runs; the ratio is paired run by run.

{header}
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Every run ended with all {MESSAGES[quick]:,} outcomes in Postgres (the script fails otherwise).
The three Apache Kafka nodes are three JVMs (320 MB heap each) on the same 2 cores as
everything else: the 3-broker figure is the cost of replication on one machine, not a
cluster's capacity.
"""
