"""Telemetry: how many concurrent 10 Hz streams one spaceship process sustains with no loss
on loopback.

    python benchmarks/telemetry.py [--streams 200,400,800,1600] [--secs 10]

For each count, one spaceship's sending loop (:class:`herald.services.spaceship.Streams`, the
service's own code, its stream events going to an embedded broker) runs that many streams at
10 Hz for ``--secs`` seconds to a UDP receiver on loopback that counts every datagram. A count
is sustained when every packet arrives (none lost) and the sender sends its last packet within
a second of its due time (the loop keeps up). The receiver is another process, so that it does
not share the sender's GIL. Not yet part of ``bench.run``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from confluent_kafka import Producer

from herald import kafka
from herald.config import load_settings
from herald.runtime.broker import EmbeddedBroker
from herald.scenarios.telemetry import StreamCommand
from herald.services.spaceship import Streams

RATE_HZ = 10.0


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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--streams", default="200,400,800,1600")
    p.add_argument("--secs", type=float, default=10.0)
    args = p.parse_args()
    best = 0
    with EmbeddedBroker() as broker:
        for n in (int(x) for x in args.streams.split(",")):
            r = trial(n, args.secs, broker.bootstrap)
            ok = r["received"] == r["expected"] and r["lag_secs"] < 1.0
            print(
                f"{n:>6} streams at 10 Hz: {r['received']:,}/{r['expected']:,} received, last sent "
                f"{r['lag_secs']:+.2f} s from due (received {r['receiver_lag_secs']:+.2f} s), "
                f"{r['cpu_secs']:.1f} s CPU "
                f"{'sustained' if ok else 'NOT sustained'}",
                flush=True,
            )
            if ok:
                best = n
    print(f"one spaceship sustains {best:,} streams at 10 Hz with no loss on loopback")
    return 0


if __name__ == "__main__":
    sys.exit(main())
