"""The telemetry monitor: streams under way, frames/s and, per ship, packets sent, due,
stored and lost, with the latest state of charge and voltage.

Its figures come from Postgres, where the recorder keeps the spaceships' account of each
stream (packets sent, dropped) and every frame the ingestors received: one query a refresh
(:func:`herald.db.store.telemetry_figures`), whatever the number of frames. The same
snapshot feeds the terminal (a table during ``sim.run --scenario telemetry``, one plain line
a refresh when the output is not a TTY or is a file) and the dashboard's ``/telemetry`` page
(with per-ship charts). A stream's packets *due* are those whose time has come by the latest
frame received (the highest packet index + 1), or, once it ended, every packet it sent or
dropped; *lost* is due less stored, the deliberate drops (``loss``) included.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

from herald.db import store

if TYPE_CHECKING:
    from sqlalchemy import Connection

RECENT_SECS = 5.0  # frames/s is the frames recorded in this many seconds, divided by it


@dataclass(frozen=True)
class ShipFigures:
    """One ship's figures over the streams in view."""

    ship: str
    streams: int
    active: int
    expected: int
    sent: int
    dropped: int
    due: int
    stored: int
    frames_per_sec: float
    soc: float | None
    voltage: float | None
    last_t: datetime | None

    @property
    def lost(self) -> int:
        return max(0, self.due - self.stored)

    @property
    def loss_pct(self) -> float | None:
        return round(100.0 * self.lost / self.due, 3) if self.due else None

    def as_json(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "lost": self.lost,
            "loss_pct": self.loss_pct,
            "last_t": self.last_t.isoformat() if self.last_t else None,
        }


def ships(
    conn: Connection, *, run_id: str | None = None, window: float = 900.0
) -> list[ShipFigures]:
    """Per ship: the streams of ``run_id``, or those under way or started in ``window`` s."""
    return [
        ShipFigures(
            ship=r.ship,
            streams=int(r.streams),
            active=int(r.active),
            expected=int(r.expected),
            sent=int(r.sent),
            dropped=int(r.dropped),
            due=int(r.due),
            stored=int(r.stored),
            frames_per_sec=round(int(r.recent) / RECENT_SECS, 1),
            soc=None if r.soc is None else float(r.soc),
            voltage=None if r.voltage is None else float(r.voltage),
            last_t=r.last_t,
        )
        for r in store.telemetry_figures(conn, run_id=run_id, window=window, recent=RECENT_SECS)
    ]


def snapshot(
    conn: Connection,
    *,
    run_id: str | None = None,
    window: float = 900.0,
    series_secs: float | None = None,
) -> dict[str, Any]:
    """The monitor's figures, JSON-ready: totals, per ship, and (with ``series_secs``) each
    ship's SoC, voltage and temperature per second over its last ``series_secs`` seconds of
    samples (a ship that stopped streaming keeps its charts)."""
    rows = ships(conn, run_id=run_id, window=window)
    totals = {
        key: sum(getattr(s, key) for s in rows)
        for key in ("streams", "active", "expected", "sent", "dropped", "due", "stored", "lost")
    }
    due = totals["due"]
    out: dict[str, Any] = {
        "run_id": run_id,
        "streams_active": totals["active"],
        "frames_per_sec": round(sum(s.frames_per_sec for s in rows), 1),
        **{k: v for k, v in totals.items() if k != "active"},
        "loss_pct": round(100.0 * totals["lost"] / due, 3) if due else None,
        "ships": [s.as_json() for s in rows],
    }
    if series_secs is not None:
        series = store.telemetry_series(conn, [s.ship for s in rows], series_secs)
        out["series"] = {
            ship: [
                {"t": t, "soc": round(soc, 4), "voltage": round(v, 3), "temperature": round(c, 2)}
                for t, soc, v, c in points
            ]
            for ship, points in series.items()
        }
    return out


def _num(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(snap: dict[str, Any], *, title: str = "telemetry") -> Table:
    """The snapshot as a rich table: a row per ship, totals in the caption."""
    caption = (
        f"{snap['streams_active']} streams active ◆ {snap['frames_per_sec']:,.1f} frames/s ◆ "
        f"{snap['stored']:,} of {snap['due']:,} due stored ◆ loss {_num(snap['loss_pct'], '.2f')}%"
    )
    t = Table(title=title, caption=caption)
    columns = ("ship", "active", "sent", "dropped", "due", "stored", "lost", "loss %", "frames/s")
    for column in (*columns, "SoC", "voltage"):
        t.add_column(column, justify="left" if column == "ship" else "right")
    for s in snap["ships"]:
        t.add_row(
            s["ship"],
            str(s["active"]),
            f"{s['sent']:,}",
            f"{s['dropped']:,}",
            f"{s['due']:,}",
            f"{s['stored']:,}",
            f"{s['lost']:,}",
            _num(s["loss_pct"], ".2f"),
            f"{s['frames_per_sec']:,.1f}",
            "–" if s["soc"] is None else f"{100 * s['soc']:.1f}%",
            "–" if s["voltage"] is None else f"{s['voltage']:.2f} V",
        )
    return t


def line(snap: dict[str, Any]) -> str:
    """The snapshot as one plain line (a file, a pipe): totals, then each ship briefly."""
    head = (
        f"telemetry: {snap['streams_active']} active, {snap['frames_per_sec']:.1f} frames/s, "
        f"sent {snap['sent']}, stored {snap['stored']} of {snap['due']} due, "
        f"loss {_num(snap['loss_pct'], '.2f')}%"
    )
    per_ship = [
        f"{s['ship']} {s['stored']}/{s['due']} soc {_num(s['soc'], '.3f')} "
        f"v {_num(s['voltage'], '.2f')}"
        for s in snap["ships"]
    ]
    return " | ".join([head, *per_ship])
