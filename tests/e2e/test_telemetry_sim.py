"""``invoke sim.run --scenario telemetry`` as a user runs it: the streams are scheduled, run
and stored, and the summary matches Postgres and the spaceship's own counts."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

from sqlalchemy import text

from herald.db.engine import make_engine
from herald.runtime.database import EmbeddedDatabase
from tests.support.processes import INVOKE, ROOT, clean_env, processes_under


def test_the_telemetry_sim_matches_postgres_and_the_spaceships_counts(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [INVOKE, "sim.run", "--scenario", "telemetry", "--ships", "3", "--duration", "4s",
         "--rate", "25", "--param", "loss=0.1", "--seed", "3", "--json", str(out)],
        env=clean_env(HERALD_HOME=str(tmp_path / "home")),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert (summary["ships"], summary["packets_expected"]) == (3, 300)
    assert summary["problems"] == []
    assert summary["packets_sent"] + summary["packets_dropped"] == 300
    # 10% dropped on purpose: 30 expected, binomial sd √(300·0.1·0.9) ≈ 5.2; four sd either way.
    assert abs(summary["packets_dropped"] - 30) <= 4 * math.sqrt(300 * 0.1 * 0.9)
    # Loopback loses nothing beyond that: every packet sent was received and stored once.
    assert summary["frames_received"] == summary["frames_stored"] == summary["packets_sent"]
    assert summary["lost_in_transit"] == 0
    per_ship = {s["ship"]: s for s in summary["per_ship"]}
    assert sorted(per_ship) == ["ship-1", "ship-2", "ship-3"]
    assert "frames stored (Postgres)" in proc.stdout and "lost in transit" in proc.stdout
    # The monitor's line a refresh (stdout is not a TTY): the frames stored only ever grow,
    # never beyond the packets sent.
    views = [
        re.search(r"stored (\d+) of (\d+) due", line)
        for line in proc.stdout.splitlines()
        if line.startswith("telemetry: ")
    ]
    stored = [int(m.group(1)) for m in views if m is not None]
    assert len(stored) == len(views) >= 1, proc.stdout[-3000:]
    assert stored == sorted(stored) and stored[-1] <= summary["packets_sent"]
    assert processes_under(tmp_path) == []
    # An independent look at Postgres: the run's schedules and their frames.
    with EmbeddedDatabase(tmp_path / "home" / "pgdata") as db:
        engine = make_engine(db.url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT s.ship, s.state, s.packets_sent, s.dropped, count(f.n) AS frames,"
                        " count(DISTINCT f.n) AS distinct_frames"
                        " FROM telemetry_schedules s"
                        " LEFT JOIN telemetry_frames f ON f.schedule_id = s.id"
                        " WHERE s.run_id = :r GROUP BY s.ship, s.state, s.packets_sent, s.dropped"
                        " ORDER BY s.ship"
                    ),
                    {"r": summary["run_id"]},
                ).all()
        finally:
            engine.dispose()
    assert [r.ship for r in rows] == ["ship-1", "ship-2", "ship-3"]
    for r in rows:
        ship = per_ship[r.ship]
        assert (r.state, r.packets_sent, r.dropped) == ("done", ship["sent"], ship["dropped"])
        assert r.frames == r.distinct_frames == ship["stored"] == ship["sent"]
