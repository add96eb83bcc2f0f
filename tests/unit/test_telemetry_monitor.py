"""The telemetry monitor's views: a snapshot drawn as a table and written as one line."""

from __future__ import annotations

import io

from rich.console import Console

from herald import telemetry_monitor
from herald.config import MonitorSettings
from herald.services import monitor
from herald.telemetry_monitor import ShipFigures


def ship(name: str, **changes: object) -> ShipFigures:
    values: dict[str, object] = {
        "ship": name,
        "streams": 1,
        "active": 1,
        "expected": 100,
        "sent": 40,
        "dropped": 2,
        "due": 42,
        "stored": 39,
        "frames_per_sec": 20.0,
        "soc": 0.8125,
        "voltage": 29.456,
        "last_t": None,
    }
    values.update(changes)
    return ShipFigures(**values)  # type: ignore[arg-type]


SNAPSHOT = {
    "run_id": "9d2b4f6a8c0e",
    "streams_active": 1,
    "frames_per_sec": 20.0,
    "streams": 2,
    "sent": 70,
    "dropped": 2,
    "due": 72,
    "stored": 69,
    "lost": 3,
    "loss_pct": 4.167,
    "ships": [
        ship("pioneer-10", active=0, sent=30, dropped=0, due=30, stored=30, soc=None).as_json(),
        ship("voyager-1").as_json(),
    ],
}


def test_a_ships_loss_is_its_due_packets_not_stored_and_none_before_any_is_due() -> None:
    assert (ship("a").lost, ship("a").loss_pct) == (3, 7.143)
    assert (ship("b", due=0, stored=0).lost, ship("b", due=0, stored=0).loss_pct) == (0, None)
    # More stored than due (a frame beyond the latest counted end) is never negative loss.
    assert ship("c", due=5, stored=6).lost == 0


def test_the_line_gives_the_totals_then_each_ship() -> None:
    assert telemetry_monitor.line(SNAPSHOT) == (
        "telemetry: 1 active, 20.0 frames/s, sent 70, stored 69 of 72 due, loss 4.17% | "
        "pioneer-10 30/30 soc – v 29.46 | voyager-1 39/42 soc 0.812 v 29.46"
    )


def test_the_table_has_a_row_per_ship_and_the_totals_in_its_caption() -> None:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(telemetry_monitor.table(SNAPSHOT, title="telemetry run 9d2b4f6a8c0e"))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    rows = [
        line.split() for line in out.splitlines() if "pioneer-10" in line or "voyager-1" in line
    ]
    assert rows == [
        ["│", "pioneer-10", "│", "0", "│", "30", "│", "0", "│", "30", "│", "30", "│", "0", "│",
         "0.00", "│", "20.0", "│", "–", "│", "29.46", "V", "│"],
        ["│", "voyager-1", "│", "1", "│", "40", "│", "2", "│", "42", "│", "39", "│", "3", "│",
         "7.14", "│", "20.0", "│", "81.2%", "│", "29.46", "V", "│"],
    ]  # fmt: skip
    assert "telemetry run 9d2b4f6a8c0e" in out
    assert "1 streams active ◆ 20.0 frames/s ◆ 69 of 72 due stored ◆ loss 4.17%" in out


def test_the_monitors_views_write_any_snapshot_they_are_given() -> None:
    out = io.StringIO()
    view = monitor.open_view(
        MonitorSettings(), out, lines=lambda snap: [telemetry_monitor.line(snap)]
    )
    view.show(SNAPSHOT)
    view.show(SNAPSHOT)  # unchanged: not written again
    view.close()
    assert out.getvalue() == telemetry_monitor.line(SNAPSHOT) + "\n"
