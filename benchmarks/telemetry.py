"""Telemetry: how many concurrent 10 Hz streams one spaceship process sustains with no loss
on loopback (figure 10), and the ingestor's frames/s into Postgres (figure 11).

    python benchmarks/telemetry.py [--streams 200,400,600] [--secs 10] [--frames N] [--quick]

Figure 10: for each count, one spaceship's sending loop
(:class:`herald.services.spaceship.Streams`, the service's own code, its stream events going
to an embedded broker) runs that many streams at 10 Hz for ``--secs`` seconds to a UDP
receiver on loopback that counts every datagram. A count is sustained when every packet
arrives (none lost) and the sender sends its last packet within a second of its due time (the
loop keeps up). The receiver is another process, so that it does not share the sender's GIL.
The figure is the largest count sustained.

Figure 11: ``herald ingestor`` (one port) and ``herald recorder``, each its own process, on an
embedded broker and Postgres. Warm-up frames (a stream of their own, not counted) go first
until one is stored (the recorder's group has its partitions); then this process sends
``--frames`` valid packets (10 ships) to the ingestor's port as fast as it takes them: in
batches, waiting while the socket's receive queue (``/proc/net/udp``) holds more than 1 MiB,
so that the kernel drops none. The figure is frames in Postgres / (last one stored - first
one sent), every frame accounted for: Postgres holds exactly the frames sent, each once, and
the kernel counted no drop on the ingestor's socket (else it raises). ``bench.run`` runs both.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from confluent_kafka import Producer
from sqlalchemy import create_engine, text

from _util import HERALD, herald_env, stats
from herald import kafka
from herald.config import load_settings
from herald.db.engine import migrate
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from herald.scenarios.telemetry import Sample, StreamCommand, pack
from herald.services.spaceship import Streams

RATE_HZ = 10.0
STREAMS_FULL, SECS_FULL = (200, 400, 600, 800, 1200), 10.0
STREAMS_QUICK, SECS_QUICK = (50, 100), 3.0
FRAMES_FULL, FRAMES_QUICK = 100_000, 5_000
INGEST_SHIPS = 10
INGEST_BATCH = 200
STORE_TIMEOUT = 300.0
QUEUE_LIMIT = 1024 * 1024  # bytes waiting in the ingestor's socket (its buffer: 8 MiB asked)
SAMPLE = Sample(1.7e9, 3.7, 1.0, 20.0, 0.5, True)
WARM_UP = "f" * 32  # the warm-up stream's schedule id


def _receiver(port: int, count: Any, last: Any, stop: Any, ready: Any) -> None:
    """A separate process (its own GIL): counts the datagrams, notes when the last came."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(0.2)
    ready.set()
    n = 0
    while not stop.is_set():
        try:
            sock.recvfrom(2048)
        except TimeoutError:
            count.value = n
            continue
        n += 1
        last.value = time.time()
    count.value = n
    sock.close()


def trial(streams: int, secs: float, bootstrap: str) -> dict[str, float]:
    settings = load_settings(
        overrides={"kafka": {"bootstrap": bootstrap}, "telemetry": {"max_streams": 1_000_000}}
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    count, last = multiprocessing.Value("q", 0), multiprocessing.Value("d", 0.0)
    stop_rx, ready = multiprocessing.Event(), multiprocessing.Event()
    rx = multiprocessing.Process(target=_receiver, args=(port, count, last, stop_rx, ready))
    rx.start()
    ready.wait(10)
    producer = Producer(kafka.producer_config(settings.kafka))
    loop = Streams(settings, producer, name="bench", events_topic="bench.telemetry.streams")
    start = datetime.now(UTC) + timedelta(seconds=1)
    for i in range(streams):
        loop.submit(
            StreamCommand(
                action="start",
                schedule_id=f"{i:032x}",
                ship=f"ship-{i}",
                host="127.0.0.1",
                port=port,
                rate_hz=RATE_HZ,
                duration_s=secs,
                # Spread over one period, as independent schedules would be.
                start_at=start + timedelta(seconds=(i % 10) / RATE_HZ / 10),
                seed=i,
            )
        )
    stop = threading.Event()
    sender = threading.Thread(target=loop.run, args=(stop,))
    cpu0 = os.times()
    sender.start()
    expected = streams * round(secs * RATE_HZ)
    deadline = time.time() + secs + 30
    while loop.streams_ended < streams and time.time() < deadline:
        time.sleep(0.02)
    ended = time.time()  # the sender's last packet went out (to 20 ms)
    stop.set()
    sender.join()
    cpu = os.times()
    time.sleep(0.5)  # the last datagrams' way through loopback, before counting
    stop_rx.set()
    rx.join()
    producer.flush(10)
    due_end = start.timestamp() + secs
    return {
        "streams": streams,
        "expected": expected,
        "received": count.value,
        "sent": loop.packets_sent,
        "lag_secs": ended - due_end,
        "receiver_lag_secs": last.value - due_end,
        "cpu_secs": (cpu.user - cpu0.user) + (cpu.system - cpu0.system),
    }


def sustained(r: dict[str, float]) -> bool:
    """Every packet arrived and the last went out within a second of its due time."""
    return r["received"] == r["expected"] and r["lag_secs"] < 1.0


@dataclass
class StreamsRun:
    """Figure 10, one run: each count tried and its trial."""

    secs: float
    trials: list[dict[str, float]]

    @property
    def best(self) -> int:
        return max((int(t["streams"]) for t in self.trials if sustained(t)), default=0)


def run_streams(counts: tuple[int, ...], secs: float) -> StreamsRun:
    """Figure 10: each count in turn, on an embedded broker of its own."""
    trials = []
    with EmbeddedBroker() as broker:
        for n in counts:
            r = trial(n, secs, broker.bootstrap)
            trials.append(r)
            print(
                f"{n:>6} streams at 10 Hz: {r['received']:,}/{r['expected']:,} received, last sent "
                f"{r['lag_secs']:+.2f} s from due (received {r['receiver_lag_secs']:+.2f} s), "
                f"{r['cpu_secs']:.1f} s CPU "
                f"{'sustained' if sustained(r) else 'NOT sustained'}",
                flush=True,
            )
    return StreamsRun(secs, trials)


# -- figure 11: the ingestor's frames/s into Postgres --------------------------------------------


@dataclass
class IngestRun:
    frames: int  # sent, and (checked) stored, each once
    secs: float  # first sent to last stored
    send_secs: float  # first sent to last sent

    @property
    def rate(self) -> float:
        return self.frames / max(self.secs, 1e-9)


def _udp_socket_state(port: int) -> tuple[int, int]:
    """The receive queue (bytes) and the drops of the UDP socket bound to ``port``."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            return int(fields[4].split(":")[1], 16), int(fields[-1])
    raise RuntimeError(f"no UDP socket on port {port}")


def _datagrams(frames: int) -> list[bytes]:
    out = []
    for i in range(frames):
        ship = f"ship-{i % INGEST_SHIPS}"
        out.append(pack(ship, f"{i % INGEST_SHIPS:032x}", i // INGEST_SHIPS, SAMPLE))
    return out


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def run_ingest(home: Path, frames: int) -> IngestRun:
    """Figure 11: one ingestor and one recorder, ``frames`` datagrams; raises unless every
    frame is in Postgres once and the kernel dropped none."""
    home.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    port = _free_udp_port()
    datagrams = _datagrams(frames)
    db = EmbeddedDatabase(home / f"pg-{tag}").start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrate(db.url)
        with EmbeddedBroker() as broker:
            settings = load_settings(overrides={"kafka": {"bootstrap": broker.bootstrap}})
            kafka.ensure_topics(settings.kafka)
            env = herald_env(
                HERALD_HOME=str(home), HERALD_KAFKA_BOOTSTRAP=broker.bootstrap,
                HERALD_DATABASE_URL=db.url, PYTHONUNBUFFERED="1",
            )  # fmt: skip
            for service in (["ingestor", "--port", str(port)], ["recorder"]):
                with (home / f"{service[0]}-{tag}.log").open("wb") as log:
                    procs.append(subprocess.Popen([HERALD, *service], stdout=log,
                                                  stderr=subprocess.STDOUT, env=env))  # fmt: skip
            try:
                return _measure(db.url, port, datagrams, procs, home=home, tag=tag)
            finally:
                _stop(procs)
    finally:
        _stop(procs)
        db.stop()


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_COUNT_STREAM = text("SELECT count(*) FROM telemetry_frames WHERE schedule_id = :s")
_COUNT_MEASURED = text("SELECT count(*) FROM telemetry_frames WHERE schedule_id <> :s")


def _measure(
    url: str, port: int, datagrams: list[bytes], procs: list[subprocess.Popen[bytes]],
    *, home: Path, tag: str,
) -> IngestRun:  # fmt: skip
    engine = create_engine(url)

    def stored(stream: str | None = None) -> int:
        """Frames in Postgres: of the measured streams, or of ``stream``."""
        query = _COUNT_STREAM if stream else _COUNT_MEASURED
        with engine.connect() as conn:
            return int(conn.execute(query, {"s": stream or WARM_UP}).scalar_one())

    def alive() -> None:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited {proc.returncode} (logs in {home}, {tag})")

    deadline = time.monotonic() + 120
    while True:  # the ingestor is listening, the recorder has its tables
        alive()
        try:
            _udp_socket_state(port)
            stored()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # The recorder's group gets its partitions some seconds after it starts: warm-up frames
    # (a stream of their own, not counted) until one is stored, then the measured ones.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        seq = 0
        while stored(WARM_UP) == 0:
            alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no warm-up frame stored in 120 s (logs in {home}, {tag})")
            sock.sendto(pack("warm-up", WARM_UP, seq, SAMPLE), ("127.0.0.1", port))
            seq += 1
            time.sleep(0.2)
    limit = QUEUE_LIMIT
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        first = time.time()
        for i in range(0, len(datagrams), INGEST_BATCH):
            while _udp_socket_state(port)[0] > limit:
                time.sleep(0.001)
            for d in datagrams[i : i + INGEST_BATCH]:
                sock.sendto(d, ("127.0.0.1", port))
        sent = time.time()
    deadline = time.monotonic() + STORE_TIMEOUT
    count = stored()
    while count < len(datagrams) and time.monotonic() < deadline:
        alive()
        time.sleep(0.05)
        count = stored()
    last = time.time()
    drops = _udp_socket_state(port)[1]
    with engine.connect() as conn:
        distinct = int(conn.execute(text(
            "SELECT count(*) FROM (SELECT DISTINCT schedule_id, n FROM telemetry_frames"
            " WHERE schedule_id <> :s) f"
        ), {"s": WARM_UP}).scalar_one())  # fmt: skip
    engine.dispose()
    if count != len(datagrams) or distinct != count or drops:
        raise RuntimeError(f"ingest: {len(datagrams):,} sent, {count:,} stored ({distinct:,} "
                           f"distinct), {drops} dropped by the kernel")  # fmt: skip
    return IngestRun(frames=count, secs=last - first, send_secs=sent - first)


def section(streams: list[StreamsRun], ingest: list[IngestRun]) -> str:
    """The report's telemetry section (figures 10 and 11)."""
    if not streams and not ingest:
        return ""
    out = "\n\n## Telemetry\n\n| figure | median | min | max |\n|---|---:|---:|---:|\n"
    if streams:
        best = stats(s.best for s in streams)
        tried = ", ".join(str(int(t["streams"])) for t in streams[0].trials)
        out += (f"| 10. concurrent 10 Hz streams one spaceship sustains, no loss (of {tried}) "
                f"| **{best.median:,.0f}** | {best.min:,.0f} | {best.max:,.0f} |\n")  # fmt: skip
    if ingest:
        rate = stats(r.rate for r in ingest)
        out += (f"| 11. ingestor frames/s into Postgres, {ingest[0].frames:,} frames "
                f"| **{rate.median:,.0f}/s** | {rate.min:,.0f}/s "
                f"| {rate.max:,.0f}/s |\n")  # fmt: skip
    secs = streams[0].secs if streams else 0
    return (
        out
        + f"""
Figure 10 (benchmarks/telemetry.py): one spaceship's sending loop (the service's own
`Streams`) runs each count of streams at 10 Hz for {secs:g} s to a receiver process on
loopback; a count is sustained when every packet arrives and the last goes out within 1 s of
its due time. Figure 11: `herald ingestor` and `herald recorder`, each its own process, take
datagrams sent as fast as the ingestor's socket drains (no kernel drop); frames in Postgres /
(last stored − first sent), every frame stored exactly once (checked, else the run fails).
"""
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--streams", default=None, help="counts to try, comma-separated")
    p.add_argument("--secs", type=float, default=None, help="seconds each count streams")
    p.add_argument("--frames", type=int, default=None, help="datagrams for figure 11")
    p.add_argument("--quick", action="store_true", help="small counts, short streams")
    args = p.parse_args(argv)
    counts = (tuple(int(x) for x in args.streams.split(",")) if args.streams
              else STREAMS_QUICK if args.quick else STREAMS_FULL)  # fmt: skip
    secs = args.secs or (SECS_QUICK if args.quick else SECS_FULL)
    frames = args.frames or (FRAMES_QUICK if args.quick else FRAMES_FULL)
    run = run_streams(counts, secs)
    print(f"one spaceship sustains {run.best:,} streams at 10 Hz with no loss on loopback")
    home = Path(tempfile.mkdtemp(prefix="herald-bench-telemetry-"))
    try:
        ingest = run_ingest(home, frames)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"ingestor: {ingest.rate:,.0f} frames/s into Postgres ({ingest.frames:,} frames)")
    print(section([run], [ingest]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
