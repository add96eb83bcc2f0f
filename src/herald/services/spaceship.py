"""spaceship: streams telemetry over UDP when told to; one member of the spaceships' group.

It consumes ``herald.telemetry.commands`` (keyed by schedule id, so a stream's stop comes to
the member that started it). A start command begins a stream: ``rate_hz × duration_s``
samples of the ship's battery, each a CCSDS space packet sent to ``host:port`` at its time
(``start_at + k / rate_hz``; a start that comes late catches up at once). Every stream of
the process shares one sending loop: a heap of the streams' next due packets, one thread, one
socket per address family, so a process carries thousands of streams without a thread for
each. With ``loss`` a stream drops that fraction of its packets before sending (seeded by the
schedule; their sequence counts are used, so the ingestor sees the gaps), and counts them.

Each stream's start and end go on ``herald.telemetry.streams`` (:class:`StreamEvent`: the
packets sent and dropped), from which the recorder keeps the schedule's state and the active
streams' count. A command's offset is committed once the stream is taken on: a spaceship that
dies mid-stream does not resume it (its schedule stays ``streaming``; see docs/telemetry.md).
"""

from __future__ import annotations

import heapq
import logging
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
from confluent_kafka import Consumer, Producer, TopicPartition

from herald import contracts, control, kafka
from herald.config import Settings
from herald.scenarios import telemetry
from herald.scenarios.telemetry import Sample, StreamCommand, StreamEvent, StreamState
from herald.services import common
from herald.services.dlq import DeadLetters

logger = logging.getLogger(__name__)

SOCKET_BUFFER = 4 * 1024 * 1024


def main(argv: Sequence[str] | None = None, *, scenario: str = "telemetry") -> int:
    """``herald spaceship``: run the streams it is told to until stopped."""
    args = common.parser("spaceship", __doc__.splitlines()[0]).parse_args(
        common.argv_or_default(argv)
    )
    return common.service_main(
        args,
        lambda s, stop, announcer: run(s, stop=stop, announcer=announcer),
        service="spaceship",
    )


@dataclass(order=True)
class _Due:
    at: float
    order: int
    stream: _Stream = field(compare=False)


@dataclass
class _Stream:
    command: StreamCommand
    samples: Iterator[Sample]
    address: tuple[str, int]
    family: socket.AddressFamily
    loss: random.Random
    total: int
    k: int = 0
    sent: int = 0
    dropped: int = 0
    stopped: bool = False


class Streams:
    """Every stream of one process, in one sending loop (see the module docstring)."""

    def __init__(
        self, settings: Settings, events: Producer, *, name: str, events_topic: str
    ) -> None:
        self.cfg = settings.telemetry
        self.name = name
        self._events = events
        self._events_topic = events_topic
        self._inbox: queue.SimpleQueue[StreamCommand] = queue.SimpleQueue()
        self._heap: list[_Due] = []
        self._running: dict[str, _Stream] = {}
        self._seen: set[str] = set()  # started here: a command read again is not a new stream
        self._order = 0
        self._sockets: dict[socket.AddressFamily, socket.socket] = {}
        self.packets_sent = self.packets_dropped = self.send_errors = 0
        self.streams_started = self.streams_ended = 0

    @property
    def active(self) -> int:
        return len(self._running)

    def submit(self, command: StreamCommand) -> None:
        """Hand a command to the sending loop (from the consumer's thread)."""
        self._inbox.put(command)

    # -- the loop (one thread) --------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Send due packets until ``stop``; then stop every stream still running."""
        try:
            while not stop.is_set():
                wait = 0.5
                if self._heap:
                    wait = max(0.0, self._heap[0].at - time.time())
                try:
                    command = self._inbox.get(timeout=min(wait, 0.5)) if wait > 0 else None
                except queue.Empty:
                    command = None
                while command is not None:
                    self._take(command)
                    try:
                        command = self._inbox.get_nowait()
                    except queue.Empty:
                        command = None
                self._send_due(time.time())
                self._events.poll(0)
        finally:
            for stream in list(self._running.values()):
                self._end(stream, "stopped", "the spaceship was stopped")
            for sock in self._sockets.values():
                sock.close()

    def _take(self, command: StreamCommand) -> None:
        sid = command.schedule_id
        if command.action == "stop":
            stream = self._running.get(sid)
            if stream is not None:
                stream.stopped = True
                self._end(stream, "stopped")
            return
        if sid in self._seen:
            logger.info("stream %s already started here: its command read again", sid)
            return
        self._seen.add(sid)
        if len(self._running) >= self.cfg.max_streams:
            self._event(
                command,
                "failed",
                reason=f"this spaceship runs telemetry.max_streams ({self.cfg.max_streams})",
            )
            return
        try:
            info = socket.getaddrinfo(command.host, command.port, type=socket.SOCK_DGRAM)[0]
        except OSError as exc:
            self._event(command, "failed", reason=f"{command.host}:{command.port}: {exc}")
            return
        family, address = info[0], info[4]
        stream = _Stream(
            command=command,
            samples=telemetry.samples(
                command,
                orbit_secs=self.cfg.orbit_secs,
                eclipse_fraction=self.cfg.eclipse_fraction,
                model_speed=self.cfg.model_speed,
            ),
            address=(str(address[0]), int(address[1])),
            family=family,
            loss=telemetry.ship_rng(command.seed, f"loss:{sid}"),
            total=telemetry.packets(command.duration_s, command.rate_hz),
        )
        self._running[sid] = stream
        self.streams_started += 1
        self._event(command, "started")
        self._push(stream, command.start_at.timestamp())

    def _push(self, stream: _Stream, at: float) -> None:
        self._order += 1
        heapq.heappush(self._heap, _Due(at, self._order, stream))

    def _socket(self, family: socket.AddressFamily) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            self._sockets[family] = sock
        return sock

    def _send_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0].at <= now:
            stream = heapq.heappop(heap).stream
            if stream.stopped:
                continue
            command = stream.command
            sample = next(stream.samples)
            seq = stream.k
            stream.k += 1
            if command.loss and stream.loss.random() < command.loss:
                stream.dropped += 1
                self.packets_dropped += 1
            else:
                datagram = telemetry.pack(command.ship, command.schedule_id, seq, sample)
                try:
                    self._socket(stream.family).sendto(datagram, stream.address)
                except OSError as exc:
                    self.send_errors += 1
                    if stream.sent == 0 and stream.k == 1:
                        self._end(stream, "failed", f"sending to {stream.address}: {exc}")
                        continue
                else:
                    stream.sent += 1
                    self.packets_sent += 1
            if stream.k >= stream.total:
                self._end(stream, "finished")
            else:
                self._push(stream, command.start_at.timestamp() + stream.k / command.rate_hz)

    def _end(self, stream: _Stream, state: StreamState, reason: str | None = None) -> None:
        stream.stopped = True
        if self._running.pop(stream.command.schedule_id, None) is None:
            return
        self.streams_ended += 1
        self._event(stream.command, state, sent=stream.sent, dropped=stream.dropped, reason=reason)

    def _event(
        self,
        command: StreamCommand,
        state: StreamState,
        *,
        sent: int = 0,
        dropped: int = 0,
        reason: str | None = None,
    ) -> None:
        event = StreamEvent(
            schedule_id=command.schedule_id,
            ship=command.ship,
            event=state,
            packets_sent=sent,
            dropped=dropped,
            spaceship=self.name,
            at=datetime.now(UTC),
            reason=reason,
        )
        if state != "started":
            logger.info(
                "stream %s (%s) %s: %d sent, %d dropped%s",
                command.schedule_id,
                command.ship,
                state,
                sent,
                dropped,
                f" ({reason})" if reason else "",
            )
        while True:
            try:
                self._events.produce(
                    self._events_topic, msgspec.json.encode(event), command.schedule_id
                )
                break
            except BufferError:
                self._events.poll(0.1)


def run(
    settings: Settings, *, stop: threading.Event, announcer: control.Announcer | None = None
) -> int:
    """Run the streams the commands start until ``stop``."""
    ks = settings.kafka
    name = f"spaceship@{socket.gethostname()}:{os.getpid()}"
    commands_topic = telemetry.COMMANDS.qualified(ks.namespace)
    events = Producer(kafka.producer_config(ks, **{"linger.ms": 1}))
    streams = Streams(
        settings,
        events,
        name=name,
        events_topic=telemetry.STREAMS.qualified(ks.namespace),
    )
    sender_stop = threading.Event()
    sender = threading.Thread(target=streams.run, args=(sender_stop,), name="spaceship-send")
    sender.start()

    def on_assign(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if announcer is not None and partitions:
            announcer.ready(partitions)

    consumer = Consumer(kafka.consumer_config(ks, contracts.group_id(ks.namespace, "spaceships")))
    consumer.subscribe([commands_topic], on_assign=on_assign)
    dead = DeadLetters(events, contracts.DLQ.qualified(ks.namespace), "spaceship")

    def handle(batch: kafka.Batch) -> bool:
        for _msg, command in batch.records:
            streams.submit(command)
        return True

    logger.info("%s ready: %s -> UDP", name, commands_topic)
    try:
        kafka.run_consumer(
            consumer,
            decoders={commands_topic: msgspec.json.Decoder(StreamCommand).decode},
            handle=handle,
            stop=stop,
            service="spaceship",
            dead_letters=dead,
            batch_size=100,
            timeout=0.1,
        )
    finally:
        sender_stop.set()
        sender.join()
        left = events.flush(10)
    logger.info(
        "%s stopped ◆ %d streams started ◆ %d ended ◆ %d packets sent ◆ %d dropped (loss) ◆ "
        "%d send errors ◆ %d events undelivered",
        name,
        streams.streams_started,
        streams.streams_ended,
        streams.packets_sent,
        streams.packets_dropped,
        streams.send_errors,
        left,
    )
    return 0
