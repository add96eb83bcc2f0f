"""``invoke sim.run --scenario retail`` as a user runs it: the issue's command exits 0 with a
summary that matches Postgres and a replay of the run; ``--sink stdout`` prints the events."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import msgspec

from herald.db import store
from herald.db.engine import make_engine
from herald.runtime.database import EmbeddedDatabase
from herald.scenarios.retail import RetailEnter, RetailExit, RetailMove, RetailRun, RunTimeline
from herald.scenarios.retail import Store as Shop
from tests.support.processes import HERALD, INVOKE, ROOT, clean_env, processes_under
from tests.support.retail import assert_invariants, seen

DECODERS = {
    kind: msgspec.json.Decoder(t)
    for kind, t in (("enter", RetailEnter), ("move", RetailMove), ("exit", RetailExit))
}


def decode(line: str) -> RetailEnter | RetailMove | RetailExit:
    """One printed event, by its ``type``."""
    return DECODERS[json.loads(line)["type"]].decode(line)


def test_the_retail_sim_matches_postgres_and_the_generator(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [INVOKE, "sim.run", "--scenario", "retail", "--duration", "2h", "--speed", "600",
         "--seed", "5", "--json", str(out), "--refresh", "1"],
        env=clean_env(HERALD_HOME=str(tmp_path / "home")),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    figures = summary["scenario_figures"]
    truth = figures["ground_truth"]
    assert summary["outcomes_in_database"] == summary["total"] == truth["events"]
    assert {k: summary[f"{k}_in_database"] for k in ("enter", "move", "exit")} == truth["by_type"]
    assert figures["entered"] == figures["left"] == truth["entered"] > 0
    assert "Postgres agrees with the generator" in proc.stdout
    assert "customers entered / left" in proc.stdout and "dwell p50 / p95" in proc.stdout
    assert processes_under(tmp_path) == []
    # An independent look: the run's request from Postgres, replayed, is what Postgres holds.
    with EmbeddedDatabase(tmp_path / "home" / "pgdata") as db:
        engine = make_engine(db.url)
        try:
            with engine.connect() as conn:
                row = store.run_request(conn, summary["run_id"])
                assert row is not None and row.finished_at is not None
                stored = store.retail_events(conn, summary["run_id"])
                visits = store.retail_visits(conn, summary["run_id"])
        finally:
            engine.dispose()
    request = msgspec.convert(row.request, RetailRun, strict=False)
    replay = list(RunTimeline(request).replay())
    assert [(r.seq, r.type, r.customer, r.x, r.y) for r in stored] == [
        (i, e.kind, e.customer, e.x, e.y) for i, e in enumerate(replay)
    ]
    assert len(visits) == figures["entered"]


def test_sink_stdout_prints_the_events_without_a_broker(tmp_path: Path) -> None:
    proc = subprocess.run(
        [HERALD, "sim", "--scenario", "retail", "--sink", "stdout", "--duration", "30m",
         "--speed", "max", "--seed", "3", "--consume-from", "earliest"],
        env=clean_env(HERALD_HOME=str(tmp_path / "home")),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [decode(line) for line in proc.stdout.splitlines()]
    assert [e.seq for e in events] == list(range(len(events))) and len(events) > 100
    kinds = assert_invariants(seen(events), Shop(6, 10, (3, 0)))
    assert kinds["enter"] == kinds["exit"] > 0
    assert not (tmp_path / "home" / "pgdata").exists()  # no database was started
    assert processes_under(tmp_path) == []
