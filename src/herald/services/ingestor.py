"""ingestor: telemetry datagrams on UDP ports -> ``herald.telemetry.frames``.

It listens on every port of ``telemetry.port_min``..``telemetry.port_max`` (or the ``--port``
given: one ingestor per port scales it out), in one thread. Each datagram is decoded and
checked as a CCSDS space packet (:func:`herald.scenarios.telemetry.unpack`); a malformed one
goes to ``herald.dlq`` unchanged, with the reason and the sender's address in its headers
(``herald.dlq.topic`` is ``udp:<port>``, its offset the datagram's number on that port). A
good one is numbered within its stream from its 14-bit sequence count (unwrapped), marked when
it comes after a later one (reordered), and published as a :class:`TelemetryFrame` keyed by
ship. Loss is what the streams' schedules expected less the frames stored (Postgres); the
ingestor logs its own counts per ship when it stops.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from confluent_kafka import Producer

from herald import contracts, control, kafka
from herald.config import Settings
from herald.errors import ConfigError
from herald.scenarios import telemetry
from herald.scenarios.telemetry import PacketError, StreamOrder, TelemetryFrame
from herald.services import common

logger = logging.getLogger(__name__)

RECEIVE_BUFFER = 8 * 1024 * 1024
MAX_DATAGRAM = 65_535


def main(argv: Sequence[str] | None = None, *, scenario: str = "telemetry") -> int:
    """``herald ingestor [--port N]``: ingest telemetry datagrams until stopped."""
    p = common.parser("ingestor", __doc__.splitlines()[0])
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="listen on this UDP port only (default: every port of telemetry.port_min.."
        "telemetry.port_max)",
    )
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    args = p.parse_args(common.argv_or_default(argv))
    return common.service_main(
        args,
        lambda s, stop, announcer: run(
            s, stop=stop, announcer=announcer, ports=_ports(s, args.port), host=args.host
        ),
        service="ingestor",
        check=lambda s: _check_ports(s, args.port),
    )


def _check_ports(settings: Settings, port: int | None) -> None:
    _ports(settings, port)


def _ports(settings: Settings, port: int | None) -> list[int]:
    if port is None:
        return list(settings.telemetry.ports)
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: not a UDP port (1 to 65535)")
    return [port]


class Ingest:
    """Decodes, checks, numbers and publishes datagrams (see the module docstring)."""

    def __init__(self, producer: Producer, *, namespace: str, name: str) -> None:
        self._producer = producer
        self._frames = telemetry.FRAMES.qualified(namespace)
        self._dlq = contracts.DLQ.qualified(namespace)
        self.name = name
        self._orders: dict[str, StreamOrder] = {}
        self._numbers: Counter[int] = Counter()  # datagrams received per port
        self.received: Counter[str] = Counter()  # per ship
        self.reordered: Counter[str] = Counter()
        self.malformed = 0
        self._encode = msgspec.json.Encoder().encode

    def datagram(self, data: bytes, sender: tuple[str, int], port: int) -> None:
        """Take one datagram that came from ``sender`` on ``port``."""
        number = self._numbers[port]
        self._numbers[port] += 1
        where = f"{sender[0]}:{sender[1]}"
        try:
            packet = telemetry.unpack(data)
        except PacketError as exc:
            self._dead_letter(data, f"PacketError: {exc}", where, port, number)
            return
        order = self._orders.get(packet.schedule_id)
        if order is None:
            order = self._orders[packet.schedule_id] = StreamOrder()
        n, late = order.place(packet.seq)
        ship, s = packet.ship, packet.sample
        self.received[ship] += 1
        if late:
            self.reordered[ship] += 1
        frame = TelemetryFrame(
            id=f"{packet.schedule_id}:{n}",
            schedule_id=packet.schedule_id,
            ship=ship,
            apid=packet.apid,
            seq=packet.seq,
            n=n,
            t=s.t,
            voltage=s.voltage,
            current=s.current,
            temperature=s.temperature,
            soc=s.soc,
            sunlit=s.sunlit,
            reordered=late,
            sender=where,
            ingestor=self.name,
            received_at=datetime.now(UTC),
        )
        self._produce(self._frames, self._encode(frame), ship.encode())

    def _dead_letter(self, data: bytes, reason: str, sender: str, port: int, number: int) -> None:
        self.malformed += 1
        logger.warning("malformed datagram from %s on port %d: %s", sender, port, reason)
        headers: list[tuple[str, str | bytes | None]] = [
            (contracts.DLQ_REASON, reason[: contracts.DLQ_MAX_REASON].encode()),
            (contracts.DLQ_TOPIC, f"udp:{port}".encode()),
            (contracts.DLQ_PARTITION, b"0"),
            (contracts.DLQ_OFFSET, str(number).encode()),
            (contracts.DLQ_SERVICE, b"ingestor"),
            (contracts.DLQ_SENDER, sender.encode()),
        ]
        self._produce(self._dlq, data[: contracts.DLQ_MAX_VALUE], None, headers)

    def _produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                self._producer.poll(0.05)
        self._producer.poll(0)


def _bind(host: str, ports: Sequence[int]) -> list[socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    out = []
    try:
        for port in ports:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((host, port))
            sock.setblocking(False)
            out.append(sock)
    except OSError as exc:
        for sock in out:
            sock.close()
        raise ConfigError(f"ingestor: cannot listen on {host} UDP port {port}: {exc}") from None
    return out


def run(
    settings: Settings,
    *,
    stop: threading.Event,
    announcer: control.Announcer | None = None,
    ports: Sequence[int] | None = None,
    host: str = "127.0.0.1",
) -> int:
    """Ingest datagrams on ``ports`` (default: the configured range) until ``stop``."""
    ports = list(settings.telemetry.ports) if ports is None else list(ports)
    sockets = _bind(host, ports)
    name = f"ingestor@{socket.gethostname()}:{os.getpid()}"
    producer = Producer(kafka.producer_config(settings.kafka))
    ingest = Ingest(producer, namespace=settings.kafka.namespace, name=name)
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ, sock.getsockname()[1])
    if announcer is not None:
        announcer.ready()
    logger.info("%s ready: UDP %s ports %s -> %s", name, host, ports, telemetry.FRAMES.name)
    try:
        while not stop.is_set():
            for key, _events in selector.select(timeout=0.2):
                ready: socket.socket = key.fileobj  # type: ignore[assignment]
                port: int = key.data
                # Drain the socket: many datagrams arrive between two selects.
                for _ in range(1000):
                    try:
                        data, sender = ready.recvfrom(MAX_DATAGRAM)
                    except BlockingIOError:
                        break
                    ingest.datagram(data, sender[:2], port)
    finally:
        selector.close()
        for sock in sockets:
            sock.close()
        left = producer.flush(10)
    per_ship = ", ".join(
        f"{ship} {ingest.received[ship]} ({ingest.reordered[ship]} reordered)"
        for ship in sorted(ingest.received)
    )
    logger.info(
        "%s stopped ◆ %d frames ◆ %d malformed ◆ %d undelivered ◆ %s",
        name,
        ingest.received.total(),
        ingest.malformed,
        left,
        per_ship or "no ship",
    )
    return 0
