from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from herald.config import MonitorSettings
from herald.scenarios.sms import SCENARIO
from herald.services import monitor
from herald.stats import RunStats


def snapshot(total: int = 6, expected: int | None = 10) -> dict:
    stats = RunStats(
        "abc",
        statuses=dict(SCENARIO.statuses),
        worker_label="sender",
        expected=expected,
        requested_at=100.0,
    )
    for i in range(total):
        stats.add(i % 2, "sent" if i % 3 else "failed", 20.0)
    stats.last_result_at = 102.0
    return {"invalid": 2, "runs": [stats.summary(now=102.0, current_rate=3.0)]}


def test_line_format_has_every_figure() -> None:
    line = monitor.format_line(snapshot()["runs"][0])
    assert line == (
        "run abc: 6/10 (60.0%) sent=4 failed=2 remaining=4 avg=20.0ms p50=19.9ms p95=19.9ms "
        "p99=19.9ms rate=3/s overall=3/s elapsed=2.0s eta=1.3s "
        "senders(sent/failed): s0=2/1 s1=2/1"
    )


def test_line_view_skips_repeats_and_reports_invalid() -> None:
    out = io.StringIO()
    view = monitor.LineView(out)
    view.show(snapshot())
    view.show(snapshot())  # nothing new: no second copy
    view.show({"invalid": 0, "runs": []})  # nothing at all: no line
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[1] == "invalid records (dead-lettered): 2"


def test_rich_render_shows_progress_and_the_sender_table() -> None:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(monitor.render(snapshot()))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "run abc" in text and " 60.0%" in text and "6/10" in text
    assert "sent 4  failed 2" in text and "remaining 4" in text
    assert "p50 19.9ms  p95 19.9ms  p99 19.9ms" in text
    assert "3 msg/s now, 3 overall" in text
    assert "invalid records (dead-lettered): 2" in text
    rows = [line.split() for line in text.splitlines() if line.strip().startswith(("0 ", "1 "))]
    assert rows == [["0", "2", "1", "33.3", "20.0ms"], ["1", "2", "1", "33.3", "20.0ms"]]
    empty = Console(file=io.StringIO(), color_system=None)
    empty.print(monitor.render({"invalid": 0, "runs": []}))
    assert "waiting for runs" in empty.file.getvalue()  # type: ignore[attr-defined]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_live_view_anything_else_lines(tmp_path: Path) -> None:
    assert isinstance(monitor.open_view(MonitorSettings(), Tty()), monitor.LiveView)
    live = monitor.open_view(MonitorSettings(), Tty())
    live.show(snapshot())
    live.close()
    assert isinstance(monitor.open_view(MonitorSettings(), io.StringIO()), monitor.LineView)
    path = tmp_path / "p.log"
    view = monitor.open_view(MonitorSettings(output_location=str(path)))
    view.show(snapshot())
    view.close()
    assert path.read_text().startswith("run abc: 6/10 (60.0%)")
