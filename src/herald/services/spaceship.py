"""spaceship: streams telemetry over UDP when told to; one member of the spaceships' group.

It consumes ``herald.telemetry.commands`` (keyed by schedule id, so a stream's stop comes to
the member that holds its partition). A start command begins a stream: ``rate_hz ×
duration_s`` samples of the ship's battery, each a CCSDS space packet sent to ``host:port``
at its time (``start_at + k / rate_hz``; a start that comes late catches up at once). Every
stream of the process shares one sending loop: a heap of the streams' next due packets, one
thread, one socket per address family, so a process carries thousands of streams without a
thread for each. With ``loss`` a stream drops that fraction of its packets before sending
(seeded by the schedule; their sequence counts are used, so the ingestor sees the gaps), and
counts them.

**A partition owns its streams.** A command's offset is committed only once it is done: a
stop, a duplicate or a refusal at once, a start once its stream has ended. So the offset
committed on a partition stops at (never passes) its oldest stream still running
(:class:`Ledger`), and whoever holds the partition next reads that start again:

* **Hand-off.** When a rebalance takes partitions away (or the spaceship stops), their
  streams are stopped at once with a ``handed_off`` event (the packets this member sent of
  them), before the partitions go; the next owner resumes them.
* **Resume.** A start read again (its offset is below the partition's *read mark*, the
  offset up to which a member of the group had read and taken its commands on; kept as the
  committed offsets of a second group, ``spaceships-read``, that never consumes) is resumed
  at the packet due then, ``k0 = ceil((now − start_at) × rate_hz)``, never re-sending one
  before; a start first read is streamed from its first packet. A start read again after
  its stream's time is over ends ``failed`` ("its time passed while no spaceship held it";
  the recorder keeps an earlier end).
* **Progress.** Every ``telemetry.progress_secs`` each running stream's packets sent and
  dropped so far go out (``progress``), so that after a SIGKILL the figures Postgres holds
  lag by at most that long.

Each event (:class:`StreamEvent`) is one *segment*'s account (one spaceship's run of the
stream, from ``first_k``); the recorder adds the segments up, and counts the packets between
the end of one segment's last account and the next segment's ``first_k`` as ``missed``
(docs/telemetry.md, "Guarantees and limits").
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from herald import contracts, control, kafka
from herald.config import Settings
from herald.scenarios import telemetry
from herald.scenarios.telemetry import Sample, StreamCommand, StreamEvent, StreamState
from herald.services import common
from herald.services.dlq import DeadLetters
from herald.waiting import Episode, within_grace

logger = logging.getLogger(__name__)

SOCKET_BUFFER = 4 * 1024 * 1024
TIME_PASSED = "its time passed while no spaceship held it"
HAND_OFF_SECS = 10.0  # how long a rebalance waits for the sending loop to give streams up
# Once told to stop, the waits a spaceship makes before its last flush of the events (a read
# mark's lookup, a hand-off and its flush: a rebalance that consume() serves after the stop)
# share this grace, counted from when the stop was first seen (:class:`_Grace`). The last flush
# keeps its own LAST_FLUSH_SECS: it holds the ends of streams whose commands may be committed
# already (nobody sends those again). With the consumer loop's last turn (0.1 s), the group's
# leave (0.3), the sending loop's last turn (0.5) and the last announcement (2), that stays
# within the 15 s a run gives a service to stop (runtime.processes.STOP_GRACE_SECS).
STOP_GRACE_SECS = 1.5
LAST_FLUSH_SECS = 10.0
MARKS_LOOKUP_SECS = 10.0

Where = tuple[str, int]  # a partition of the commands: (topic, partition)


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


# -- which offsets may be committed ------------------------------------------------------------


class Ledger:
    """Per partition of the commands, the offsets read whose command is not done yet (a
    stream running, or not yet taken on by the sending loop): the offset that may be
    committed is the oldest of them, or the next to read when none is open. And the *read
    mark*: up to which offset the group has read (and taken on) its commands, so that a
    start below it is known to be read again. Thread-safe: the consumer reads and commits,
    the sending loop says what is done."""

    UNKNOWN = 1 << 62  # a read mark that could not be read: every command counts as read again

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Where, set[int]] = {}
        self._next: dict[Where, int] = {}
        self._committed: dict[Where, int] = {}
        self._inherited: dict[Where, int] = {}
        self._marked: dict[Where, int] = {}

    def assign(self, where: Where, read_mark: int) -> None:
        """A partition now held, with the read mark its previous owners left."""
        with self._lock:
            self._inherited[where] = read_mark
            self._open.setdefault(where, set())

    def read(self, where: Where, offset: int) -> bool:
        """A command read at ``offset``, open until :meth:`done`: whether it is read again
        (below the read mark the partition came with)."""
        with self._lock:
            self._open.setdefault(where, set()).add(offset)
            self._next[where] = max(self._next.get(where, 0), offset + 1)
            return offset < self._inherited.get(where, 0)

    def passed(self, where: Where, end: int) -> None:
        """Records before ``end`` were read (those not :meth:`read`: dead-lettered)."""
        with self._lock:
            if where in self._open:
                self._next[where] = max(self._next.get(where, 0), end)

    def done(self, where: Where, offset: int) -> None:
        """The command at ``offset`` is done (its stream ended, or it started none)."""
        with self._lock:
            held = self._open.get(where)
            if held is not None:
                held.discard(offset)

    def safe(self, where: Where) -> int | None:
        """The offset that may be committed: the oldest open command, else the next to read."""
        with self._lock:
            return self._safe(where)

    def _safe(self, where: Where) -> int | None:
        held = self._open.get(where)
        if held:
            return min(held)
        return self._next.get(where)

    def commits(self, wheres: Iterable[Where] | None = None) -> dict[Where, int]:
        """The safe offsets (of ``wheres``, default every partition held) not committed yet."""
        with self._lock:
            out = {}
            for where in list(self._open) if wheres is None else wheres:
                offset = self._safe(where)
                if offset is not None and offset != self._committed.get(where):
                    out[where] = offset
            return out

    def committed(self, offsets: Mapping[Where, int]) -> None:
        with self._lock:
            self._committed.update(offsets)

    def marks(self) -> dict[Where, int]:
        """The read marks that moved (past what was inherited and what was committed)."""
        with self._lock:
            out = {}
            for where, end in self._next.items():
                mark = max(end, self._inherited.get(where, 0))
                if mark < self.UNKNOWN and mark > self._marked.get(where, -1):
                    out[where] = mark
            return out

    def marked(self, marks: Mapping[Where, int]) -> None:
        with self._lock:
            self._marked.update(marks)

    def forget(self, wheres: Iterable[Where]) -> None:
        """Partitions no longer held: their next owner commits them."""
        with self._lock:
            for where in wheres:
                for table in (self._open, self._next, self._committed, self._inherited):
                    table.pop(where, None)
                self._marked.pop(where, None)


# -- the sending loop --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Take:
    command: StreamCommand
    where: Where | None = None
    offset: int = -1
    again: bool = False  # read again: another segment of it may have been sent


@dataclass
class _HandOff:
    partitions: frozenset[Where]
    done: threading.Event = field(default_factory=threading.Event)
    streams: int = 0


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
    where: Where | None
    offset: int
    first_k: int = 0
    k: int = 0
    sent: int = 0
    dropped: int = 0
    reported: tuple[int, int] = (0, 0)
    stopped: bool = False


class Streams:
    """Every stream of one process, in one sending loop (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        events: Producer,
        *,
        name: str,
        events_topic: str,
        ledger: Ledger | None = None,
    ) -> None:
        self.cfg = settings.telemetry
        self.name = name
        self._events = events
        self._events_topic = events_topic
        self._ledger = ledger
        self._inbox: queue.SimpleQueue[_Take | _HandOff] = queue.SimpleQueue()
        self._heap: list[_Due] = []
        self._running: dict[str, _Stream] = {}
        # Started here and not handed off: a command read again is not a new stream.
        self._seen: set[str] = set()
        self._order = 0
        self._sockets: dict[socket.AddressFamily, socket.socket] = {}
        self.packets_sent = self.packets_dropped = self.send_errors = 0
        self.streams_started = self.streams_ended = self.streams_resumed = 0
        self.streams_handed_off = 0

    @property
    def active(self) -> int:
        return len(self._running)

    def submit(
        self,
        command: StreamCommand,
        *,
        where: Where | None = None,
        offset: int = -1,
        again: bool = False,
    ) -> None:
        """Hand a command to the sending loop (from the consumer's thread): read at
        ``offset`` of ``where``, and ``again`` when below its partition's read mark."""
        self._inbox.put(_Take(command, where, offset, again))

    def hand_off(self, partitions: Iterable[Where], timeout: float = HAND_OFF_SECS) -> int:
        """Stop the streams of ``partitions`` now (``handed_off``) and wait until the sending
        loop has: the streams handed off."""
        request = _HandOff(frozenset(partitions))
        self._inbox.put(request)
        if not request.done.wait(timeout):
            logger.warning(
                "%s: the sending loop did not hand off the streams of %s in %gs",
                self.name,
                ",".join(f"{t}[{p}]" for t, p in sorted(request.partitions)),
                timeout,
            )
        return request.streams

    # -- the loop (one thread) --------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Send due packets until ``stop``; then hand off every stream still running (its
        command was not committed: the next owner of its partition resumes it)."""
        next_progress = time.time() + self.cfg.progress_secs
        try:
            while not stop.is_set():
                wait = max(0.0, next_progress - time.time())
                if self._heap:
                    wait = min(wait, max(0.0, self._heap[0].at - time.time()))
                try:
                    item = self._inbox.get(timeout=min(wait, 0.5)) if wait > 0 else None
                except queue.Empty:
                    item = None
                while item is not None:
                    self._handle(item)
                    try:
                        item = self._inbox.get_nowait()
                    except queue.Empty:
                        item = None
                now = time.time()
                self._send_due(now)
                if now >= next_progress:
                    self._progress()
                    next_progress = now + self.cfg.progress_secs
                self._events.poll(0)
        finally:
            for stream in list(self._running.values()):
                self._end(stream, "handed_off", "the spaceship was stopped")
            while True:  # a rebalance waiting on the loop is not left waiting
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _HandOff):
                    item.done.set()
            for sock in self._sockets.values():
                sock.close()

    def _handle(self, item: _Take | _HandOff) -> None:
        if isinstance(item, _HandOff):
            for stream in list(self._running.values()):
                if stream.where in item.partitions:
                    self._end(stream, "handed_off", "its partition was reassigned")
                    item.streams += 1
            item.done.set()
        else:
            self._take(item)

    def _done(self, take: _Take | _Stream) -> None:
        if self._ledger is not None and take.where is not None:
            self._ledger.done(take.where, take.offset)

    def _take(self, take: _Take) -> None:
        command = take.command
        sid = command.schedule_id
        if command.action == "stop":
            stream = self._running.get(sid)
            if stream is not None:
                self._end(stream, "stopped")
            self._done(take)
            return
        if sid in self._seen:
            logger.info("stream %s already started here: its command read again", sid)
            self._done(take)
            return
        total = telemetry.packets(command.duration_s, command.rate_hz)
        first = telemetry.resume_point(command, time.time()) if take.again else 0
        if first >= total:
            self._seen.add(sid)
            self._event(command, "failed", first_k=total, reason=TIME_PASSED)
            self._done(take)
            return
        self._seen.add(sid)
        if len(self._running) >= self.cfg.max_streams:
            self._event(
                command,
                "failed",
                first_k=first,
                reason=f"this spaceship runs telemetry.max_streams ({self.cfg.max_streams})",
            )
            self._done(take)
            return
        try:
            info = socket.getaddrinfo(command.host, command.port, type=socket.SOCK_DGRAM)[0]
        except OSError as exc:
            self._event(
                command, "failed", first_k=first, reason=f"{command.host}:{command.port}: {exc}"
            )
            self._done(take)
            return
        family, address = info[0], info[4]
        loss = telemetry.ship_rng(command.seed, f"loss:{sid}")
        if command.loss:
            for _ in range(first):  # the drops it would have made: the same ones from k0 on
                loss.random()
        stream = _Stream(
            command=command,
            samples=telemetry.samples(
                command,
                orbit_secs=self.cfg.orbit_secs,
                eclipse_fraction=self.cfg.eclipse_fraction,
                model_speed=self.cfg.model_speed,
                first=first,
            ),
            address=(str(address[0]), int(address[1])),
            family=family,
            loss=loss,
            total=total,
            where=take.where,
            offset=take.offset,
            first_k=first,
            k=first,
        )
        self._running[sid] = stream
        self.streams_started += 1
        if take.again:
            self.streams_resumed += 1
            logger.info("stream %s (%s) resumed at packet %d", sid, command.ship, first)
        self._event(command, "started", first_k=first)
        self._push(stream, command.start_at.timestamp() + first / command.rate_hz)

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
                    if stream.sent == 0 and stream.k == stream.first_k + 1:
                        self._end(stream, "failed", f"sending to {stream.address}: {exc}")
                        continue
                else:
                    stream.sent += 1
                    self.packets_sent += 1
            if stream.k >= stream.total:
                self._end(stream, "finished")
            else:
                self._push(stream, command.start_at.timestamp() + stream.k / command.rate_hz)

    def _progress(self) -> None:
        for stream in self._running.values():
            figures = (stream.sent, stream.dropped)
            if figures != stream.reported:
                stream.reported = figures
                self._event(
                    stream.command,
                    "progress",
                    sent=stream.sent,
                    dropped=stream.dropped,
                    first_k=stream.first_k,
                )

    def _end(self, stream: _Stream, state: StreamState, reason: str | None = None) -> None:
        stream.stopped = True
        sid = stream.command.schedule_id
        if self._running.pop(sid, None) is None:
            return
        if state == "handed_off":
            self._seen.discard(sid)  # its partition may come back: then it is resumed here
            self.streams_handed_off += 1
        else:
            self.streams_ended += 1
            self._done(stream)
        self._event(
            stream.command,
            state,
            sent=stream.sent,
            dropped=stream.dropped,
            first_k=stream.first_k,
            reason=reason,
        )

    def _event(
        self,
        command: StreamCommand,
        state: StreamState,
        *,
        sent: int = 0,
        dropped: int = 0,
        first_k: int = 0,
        reason: str | None = None,
    ) -> None:
        event = StreamEvent(
            schedule_id=command.schedule_id,
            ship=command.ship,
            event=state,
            packets_sent=sent,
            dropped=dropped,
            first_k=first_k,
            spaceship=self.name,
            at=datetime.now(UTC),
            reason=reason,
        )
        if state not in ("started", "progress"):
            logger.info(
                "stream %s (%s) %s: %d sent, %d dropped from packet %d%s",
                command.schedule_id,
                command.ship,
                state,
                sent,
                dropped,
                first_k,
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


# -- the service -------------------------------------------------------------------------------


def _wheres(partitions: Iterable[TopicPartition]) -> list[Where]:
    return [(tp.topic, tp.partition) for tp in partitions]


def _commit(client: Consumer, offsets: Mapping[Where, int], failed: Episode) -> bool:
    try:
        client.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
        )
    except KafkaException as exc:
        failed.seen(kafka.reason(exc))
        return False
    failed.over()
    return True


class _Grace:
    """How long one wait of a spaceship may take: its own limit, or once told to stop, what
    is left of ``STOP_GRACE_SECS`` counted from when the stop was first seen (0.1 s at least;
    as :meth:`herald.services.worker.Worker.wait_limit`)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self.seen: float | None = None  # when the stop was first seen (monotonic)

    def limit(self, limit: float) -> float:
        if not self._stop.is_set():
            return limit
        now = time.monotonic()
        if self.seen is None:
            self.seen = now
        return within_grace(limit, now - self.seen, STOP_GRACE_SECS)


class _Member:
    """The spaceship as a member of its group: what it commits, and its streams' fate when
    partitions come and go (the consumer's callbacks and the consumer loop's hooks)."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        streams: Streams,
        ledger: Ledger,
        events: Producer,
        announcer: control.Announcer | None,
        stop: threading.Event,
    ) -> None:
        ks = settings.kafka
        self.name = name
        self.grace = _Grace(stop)
        self.streams = streams
        self.ledger = ledger
        self.events = events
        self.announcer = announcer
        self.commit_failed = Episode(logger, f"{name}: offset commit failed")
        self.mark_failed = Episode(logger, f"{name}: read mark commit failed")
        # Never subscribes: its committed offsets are the commands' read marks (see Ledger).
        self.marks = Consumer(
            kafka.consumer_config(ks, contracts.group_id(ks.namespace, "spaceships-read"))
        )

    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        try:
            # Cut short after the stop, it raises (timed out): the marks are then unknown, so
            # every start read counts as read again (resumed at the packet due, none sent
            # twice), and the partitions are handed off at the close in any case.
            found = self.marks.committed(partitions, timeout=self.grace.limit(MARKS_LOOKUP_SECS))
        except KafkaException as exc:
            logger.warning(
                "%s: read marks of %s unknown (%s): each start read is resumed",
                self.name,
                kafka.names(partitions),
                kafka.reason(exc),
            )
            found = [TopicPartition(tp.topic, tp.partition, Ledger.UNKNOWN) for tp in partitions]
        for tp in found:
            mark = Ledger.UNKNOWN if tp.error is not None else max(0, tp.offset)
            self.ledger.assign((tp.topic, tp.partition), mark)
        logger.info("%s: assigned %s", self.name, kafka.names(partitions))
        if self.announcer is not None:
            self.announcer.ready(partitions)

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._give_up(consumer, partitions, lost=False)

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._give_up(consumer, partitions, lost=True)

    def _give_up(self, consumer: Consumer, partitions: list[TopicPartition], *, lost: bool) -> None:
        if not partitions:
            return
        wheres = _wheres(partitions)
        # Both cut to the grace after the stop. A stream the sending loop has not handed off
        # yet keeps its command open in the ledger: the commit below stops before it, and the
        # next owner reads its start again (the loop hands it off when it gets there, or when
        # it stops). An event not flushed yet stays queued in `events`, whose last flush in
        # run() keeps its full LAST_FLUSH_SECS; only its order before the next owner's resume
        # is then not waited for.
        handed = self.streams.hand_off(wheres, self.grace.limit(HAND_OFF_SECS))
        # its hand-offs on the log before the next owner's resumes
        self.events.flush(self.grace.limit(10))
        if not lost:  # a lost partition's offsets are no longer this member's to commit
            offsets = self.ledger.commits(wheres)
            if offsets and _commit(consumer, offsets, self.commit_failed):
                self.ledger.committed(offsets)
        self.ledger.forget(wheres)
        logger.info(
            "%s: %s %s, %d streams handed off",
            self.name,
            "lost" if lost else "revoked",
            kafka.names(partitions),
            handed,
        )

    def handle(self, batch: kafka.Batch) -> bool:
        """Note the batch's commands as read, commit the read marks, then hand them on."""
        taken = []
        for msg, command in batch.records:
            where, offset = (msg.topic() or "", msg.partition() or 0), msg.offset() or 0
            taken.append(_Take(command, where, offset, self.ledger.read(where, offset)))
        for where, end in batch.ends.items():
            self.ledger.passed(where, end)
        # The read marks first: once a stream may have sent a packet, whoever reads its start
        # again must know it (or it would send that packet twice).
        moved = self.ledger.marks()
        if moved:
            if not _commit(self.marks, moved, self.mark_failed):
                return False  # read again after a backoff
            self.ledger.marked(moved)
        for take in taken:
            self.streams.submit(
                take.command, where=take.where, offset=take.offset, again=take.again
            )
        return True

    def commit(self, consumer: Consumer) -> None:
        """Commit each partition up to its oldest stream still running."""
        offsets = self.ledger.commits()
        if offsets and _commit(consumer, offsets, self.commit_failed):
            self.ledger.committed(offsets)


def run(
    settings: Settings, *, stop: threading.Event, announcer: control.Announcer | None = None
) -> int:
    """Run the streams the commands start until ``stop``; hand them off when it is."""
    ks = settings.kafka
    name = f"spaceship@{socket.gethostname()}:{os.getpid()}"
    commands_topic = telemetry.COMMANDS.qualified(ks.namespace)
    events = Producer(kafka.producer_config(ks, **{"linger.ms": 1}))
    ledger = Ledger()
    streams = Streams(
        settings,
        events,
        name=name,
        events_topic=telemetry.STREAMS.qualified(ks.namespace),
        ledger=ledger,
    )
    sender_stop = threading.Event()
    sender = threading.Thread(target=streams.run, args=(sender_stop,), name="spaceship-send")
    sender.start()
    member = _Member(
        settings,
        name=name,
        streams=streams,
        ledger=ledger,
        events=events,
        announcer=announcer,
        stop=stop,
    )
    consumer = Consumer(kafka.consumer_config(ks, contracts.group_id(ks.namespace, "spaceships")))
    consumer.subscribe(
        [commands_topic],
        on_assign=member.on_assign,
        on_revoke=member.on_revoke,
        on_lost=member.on_lost,
    )
    dead = DeadLetters(events, contracts.DLQ.qualified(ks.namespace), "spaceship")
    logger.info("%s ready: %s -> UDP", name, commands_topic)
    try:
        kafka.run_consumer(
            consumer,
            decoders={commands_topic: msgspec.json.Decoder(StreamCommand).decode},
            handle=member.handle,
            stop=stop,
            service="spaceship",
            dead_letters=dead,
            commit=False,  # member.commit: up to the oldest stream still running
            batch_size=100,
            timeout=0.1,
            idle=lambda: member.commit(consumer),
        )
    finally:
        # The consumer's close (in run_consumer) revoked its partitions: streams handed off.
        sender_stop.set()
        sender.join()
        # Not cut to the grace: the ends of streams (finished, stopped, failed) whose commands'
        # offsets may be committed already are here, and nobody would send them again.
        left = events.flush(LAST_FLUSH_SECS)
        member.marks.close()
    logger.info(
        "%s stopped ◆ %d streams started (%d resumed) ◆ %d ended ◆ %d handed off ◆ "
        "%d packets sent ◆ %d dropped (loss) ◆ %d send errors ◆ %d events undelivered",
        name,
        streams.streams_started,
        streams.streams_resumed,
        streams.streams_ended,
        streams.streams_handed_off,
        streams.packets_sent,
        streams.packets_dropped,
        streams.send_errors,
        left,
    )
    return 0
