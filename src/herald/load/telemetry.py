"""The telemetry-schedules load scenario's receiver, spaceship and check: did every schedule
the load created run, and did each of its packets arrive?

The fixture (:func:`udp_receiver`) binds a UDP receiver on loopback (a thread of this process
that decodes every datagram as a space packet and counts it by schedule id, duplicates kept)
and tells the locustfile its port, then streams one short warm-up schedule to it (ignored
by the check). ``herald web``'s embedded stack leaves the spaceship out
(it streams to fixed UDP ports another stack may hold), so for an embedded stack the fixture
starts one, with the stack's own settings (``stack/web/settings.json``); a stack at ``--host``
runs its own. The check (:func:`check_schedules`) waits, after the load, until each created
schedule's stream has ended (``GET /api/telemetry/schedules/{id}``) or the check timeout has
passed since the last one was due to end, then compares: state ``done``, ``packets_sent`` =
``packets_expected`` = what the load asked (rate × duration), and packets at the receiver.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from herald.load import STACK_DIR, UDP_PORT_ENV
from herald.load.context import CheckResult, LoadContext
from herald.load.stack import WARM_UP_SECS, StackError
from herald.waiting import Deadline, wait_until

SHOWN = 5
ENDPOINT = "POST /api/telemetry/schedules"
ENDED = ("done", "stopped", "cancelled", "expired", "failed")
STOP_SECS = 30.0


@dataclass
class UdpReceiver:
    """Counts the datagrams on its port by schedule id; malformed ones by reason."""

    sock: socket.socket
    counts: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def serve(self) -> None:
        from herald.scenarios.telemetry import PacketError, unpack

        while not self.stop.is_set():
            try:
                data, _sender = self.sock.recvfrom(65_535)
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            try:
                sid = unpack(data).schedule_id
            except PacketError as exc:
                with self.lock:
                    self.malformed[str(exc)] += 1
                continue
            with self.lock:
                self.counts[sid] += 1

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        with self.lock:
            return Counter(self.counts), Counter(self.malformed)


@dataclass(frozen=True)
class TelemetryFixture:
    """What the check is given: the receiver, and the warm-up schedule it ignores."""

    receiver: UdpReceiver
    spaceship: subprocess.Popen[bytes] | None
    warm_up_id: str = ""


def _warm_up(ctx: LoadContext, port: int) -> str:
    """One short schedule streamed to the receiver first: the load then meets a spaceship
    that has joined its group (seconds, here) and a warm API and scheduler."""
    start = datetime.now(UTC) + timedelta(seconds=0.5)
    body = {"ship": "warm-up", "start_at": start.isoformat(), "duration_s": 0.5,
            "rate_hz": 10.0, "host": "127.0.0.1", "port": port}  # fmt: skip
    status, row = ctx.api.post("/api/telemetry/schedules", body)
    if status != HTTPStatus.CREATED or not isinstance(row, dict) or "id" not in row:
        raise StackError(f"warm-up schedule: POST answered {status}: {str(row)[:200]}")
    sid = str(row["id"])
    last = ["not asked"]

    def ended() -> bool:
        code, got = ctx.api.get(f"/api/telemetry/schedules/{sid}")
        last[0] = f"HTTP {code}: {str(got)[:200]}"
        return code == HTTPStatus.OK and isinstance(got, dict) and got.get("state") in ENDED

    wait_until(ended, timeout=WARM_UP_SECS, what=f"the warm-up schedule {sid} ended",
               every=0.2, stop=ctx.stop, error=StackError)  # fmt: skip
    if "'done'" not in last[0]:
        raise StackError(f"the warm-up schedule {sid} did not run: {last[0]}")
    return sid


def _spaceship(ctx: LoadContext) -> subprocess.Popen[bytes] | None:
    settings = ctx.report_dir / STACK_DIR / "web" / "settings.json"
    if not settings.is_file():  # a stack at --host: its own spaceships
        return None
    log = ctx.report_dir / STACK_DIR / "spaceship.log"
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "herald", "spaceship", "--settings", str(settings)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextlib.contextmanager
def udp_receiver(ctx: LoadContext) -> Iterator[TelemetryFixture]:
    """The receiver on 127.0.0.1 (and, for an embedded stack, a spaceship) for the whole test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    receiver = UdpReceiver(sock)
    thread = threading.Thread(target=receiver.serve, name="udp-receiver", daemon=True)
    thread.start()
    ctx.locust_env[UDP_PORT_ENV] = str(receiver.port)
    spaceship = _spaceship(ctx)
    try:
        warm_up_id = _warm_up(ctx, receiver.port)
        yield TelemetryFixture(receiver=receiver, spaceship=spaceship, warm_up_id=warm_up_id)
    finally:
        if spaceship is not None:
            spaceship.terminate()
            try:
                spaceship.wait(STOP_SECS)
            except subprocess.TimeoutExpired:
                spaceship.kill()
                spaceship.wait()
        receiver.stop.set()
        thread.join(5)
        sock.close()


def _named(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (", ..." if len(items) > SHOWN else "")


def check_schedules(ctx: LoadContext) -> CheckResult:
    """Every schedule the load created ended ``done`` with ``packets_sent`` =
    ``packets_expected`` = what was asked, and that many of its packets reached the receiver
    (duplicates counted)."""
    created = ctx.created("schedule")
    ids = [str(c["id"]) for c in created]
    accepted = ctx.successes(ENDPOINT)
    if len(ids) != accepted:
        return CheckResult(
            passed=False, summary=f"{accepted} schedules were accepted but {len(ids)} recorded"
        )
    twice = sorted(i for i, n in Counter(ids).items() if n > 1)
    if twice:
        return CheckResult(passed=False, summary=f"schedule ids created twice: {_named(twice)}")
    if not ids:
        return CheckResult(passed=True, summary="nothing to check: the load created no schedule")
    fixture = ctx.fixture
    assert isinstance(fixture, TelemetryFixture)  # the scenario's fixture
    asked = {str(c["id"]): int(c["packets"]) for c in created}
    ends = [datetime.fromisoformat(str(c["start_at"])).timestamp() + float(c["duration_s"])
            for c in created]  # fmt: skip
    deadline = Deadline(max(0.0, max(ends) - time.time()) + ctx.check_timeout)
    rows: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    while True:
        for sid in ids:
            if sid in rows:
                continue
            status, body = ctx.api.get(f"/api/telemetry/schedules/{sid}")
            if status != 200 or not isinstance(body, dict):
                seen[sid] = f"HTTP {status}: {str(body)[:120]}"
                continue
            seen[sid] = f"{body.get('state')}, {body.get('packets_sent')} sent"
            if body.get("state") in ENDED:
                rows[sid] = body
        if len(rows) == len(ids) or deadline.expired() or ctx.pause():
            break
    # The last datagrams' way through loopback: until each ended stream's count is in.
    while True:
        counts, malformed = fixture.receiver.snapshot()
        if all(counts[s] >= asked[s] for s in rows) or deadline.expired() or ctx.pause():
            break
    return _verdict(ctx, ids=ids, asked=asked, rows=rows, seen=seen, counts=counts,
                    malformed=malformed, warm_up_id=fixture.warm_up_id)  # fmt: skip


def _verdict(
    ctx: LoadContext,
    *,
    ids: list[str],
    asked: dict[str, int],
    rows: dict[str, dict[str, Any]],
    seen: dict[str, str],
    counts: Counter[str],
    malformed: Counter[str],
    warm_up_id: str,
) -> CheckResult:
    not_ended = [f"{s} ({seen.get(s, 'not asked')})" for s in ids if s not in rows]
    not_done = [f"{s} ({rows[s]['state']})" for s in rows if rows[s]["state"] != "done"]
    wrong_count = [
        f"{s} (asked {asked[s]}, expected {rows[s]['packets_expected']}, sent "
        f"{rows[s]['packets_sent']})"
        for s in rows
        if not (asked[s] == rows[s]["packets_expected"] == rows[s]["packets_sent"])
    ]
    short = [f"{s} ({counts[s]}/{asked[s]})" for s in rows if counts[s] < asked[s]]
    extra = [f"{s} ({counts[s]}/{asked[s]})" for s in rows if counts[s] > asked[s]]
    strangers = sorted(set(counts) - set(ids) - {warm_up_id})
    sent = sum(int(r["packets_sent"]) for r in rows.values())
    received = sum(counts[s] for s in ids)
    expected = sum(asked.values())
    problems = []
    if not_ended:
        problems.append(f"{len(not_ended)} not ended: {_named(not_ended)}")
    if not_done:
        problems.append(f"{len(not_done)} not done: {_named(not_done)}")
    if wrong_count:
        problems.append(f"{len(wrong_count)} sent other than asked: {_named(wrong_count)}")
    if short:
        problems.append(f"{len(short)} with packets missing at the receiver: {_named(short)}")
    if extra:
        problems.append(f"{len(extra)} with duplicate packets at the receiver: {_named(extra)}")
    if malformed:
        problems.append(f"{malformed.total()} malformed datagrams: {_named(sorted(malformed))}")
    done = len(ids) - len(not_ended) - len(not_done)
    counted = (
        f"{len(ids):,} schedules created, {done:,} done, {len(not_ended):,} not ended; "
        f"packets {expected:,} asked, {sent:,} sent, {received:,} received"
    )
    after = time.monotonic() - ctx.load_ended
    notes = [f"{len(strangers)} streams this load did not record: {_named(strangers)}"]
    if not strangers:
        notes = []
    figures = {
        "created": len(ids),
        "done": done,
        "not_ended": not_ended,
        "not_done": not_done,
        "sent_other_than_asked": wrong_count,
        "missing_packets": short,
        "duplicate_packets": extra,
        "malformed": dict(malformed),
        "strangers": strangers,
        "packets_asked": expected,
        "packets_sent": sent,
        "packets_received": received,
        "checked_secs_after_load": round(after, 3),
    }
    return CheckResult.of(counted, problems, after=after, notes=notes, figures=figures)


__all__ = ["TelemetryFixture", "UdpReceiver", "check_schedules", "udp_receiver"]
