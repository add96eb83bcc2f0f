"""notifier: delivers webhook timers' callbacks; a consumer group on ``herald.timers.fire``.

For each fire command it takes the timer for delivery in Postgres (a lease, under the
command's fencing token: a stale command, or a timer another notifier holds, is not
delivered twice at once), POSTs ``{"id": "<timer id>"}`` with Standard Webhooks headers
(``webhook-id`` = the timer id on every attempt), retries transient failures with
exponential backoff and full jitter (honouring ``Retry-After``), records every attempt in the
ledger (``timer_attempts``) and the timer's final state: ``delivered``, or ``failed`` (a
permanent refusal, ``410`` — the endpoint is then disabled —, retries exhausted, or, for
``at_most_once``, an attempt whose outcome is unknown); an exhausted timer goes to
``herald.dlq`` with the reason. A command's offset is committed only once its timer's state is
durable, so a notifier killed mid-delivery leaves the command to another member, which
delivers it again (the same ``webhook-id``) once the dead one's lease has lapsed.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from sqlalchemy.exc import DBAPIError

from herald import contracts, control, kafka
from herald.config import Settings
from herald.db import store
from herald.errors import StorageError
from herald.services import common, dlq
from herald.timers import FIRE, FireCommand, url_rules
from herald.waiting import Backoff, Episode, within_grace

logger = logging.getLogger(__name__)

SECRET_FILE = "webhook-secret"  # noqa: S105 - a file name
# Once the loop has seen the stop, the waits for deliveries under way (the drain's, and each
# deliverer's close) share this grace, counted from then (:meth:`Notifier.wait_limit`): 10 s in
# all, not the drain's 10 and then 1 s for each deliverer. A delivery cut short is left to its
# lease: its command's offset is not committed, and the notifier that reads it next delivers
# it again once the lease lapses (at_most_once: fails it, outcome unknown). The dead letters'
# flushes keep their own limits: the next reader of a command whose timer is settled in
# Postgres (failed) skips it, and would not write its dead letter again.
STOP_GRACE_SECS = 10.0
CLOSE_SECS = 1.0  # each deliverer's close: how long it lets deliveries under way finish
RETRY_SECS = 0.1  # a command not taken (held elsewhere, the database away): tried again after
# The ledger thread wakes at least this often to write what the deliveries reported (a
# retried delivery's attempts come before its result).
LEDGER_WAIT_SECS = 0.05
# ... and waits this long after a transaction before the next, so that each writes a batch.
LEDGER_GAP_SECS = 0.025


def main(argv: Sequence[str] | None = None) -> int:
    """``herald notifier``: deliver callbacks until stopped."""
    args = common.parser("notifier", __doc__.splitlines()[0]).parse_args(
        common.argv_or_default(argv)
    )
    return common.service_main(
        args, lambda s, stop, announcer: run(s, stop=stop, announcer=announcer), service="notifier"
    )


def signing_secrets(settings: Settings) -> list[str]:
    """The secrets that sign callbacks: ``timers.signing_secrets``, or the one kept in
    ``<home>/webhook-secret`` (made once, readable by its owner only)."""
    from herald.webhooks import generate_secret

    if settings.timers.signing_secrets:
        return [s.get_secret_value() for s in settings.timers.signing_secrets]
    path = Path(settings.home).expanduser() / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate_secret() + "\n")
    return [path.read_text().strip()]


@dataclass
class _Command:
    """One consumed fire command, on its way to a durable end."""

    msg: Message
    command: FireCommand | None  # None: unreadable (dead-lettered)
    done: bool = False


@dataclass
class _Deliveries:
    """What the delivery threads hand back to the main loop."""

    attempts: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    results: queue.SimpleQueue[tuple[_Command, Any]] = field(default_factory=queue.SimpleQueue)


class Notifier:
    """Consume fire commands, deliver, record, commit. See the module docstring."""

    def __init__(self, settings: Settings, *, owner: str | None = None) -> None:
        from herald.db.engine import make_engine
        from herald.webhooks import BackgroundDeliverer, Backoff, Deliverer, Mode, Policy

        if settings.database.url is None:
            raise StorageError("database.url is unset: the notifier needs a database")
        cfg = settings.notifier
        self.settings = settings
        self.owner = owner or f"notifier@{socket.gethostname()}:{os.getpid()}"
        self.engine = make_engine(settings.database.url)
        ks = settings.kafka
        self.topic = FIRE.qualified(ks.namespace)
        # A fire command is due now: the embedded broker holds an empty fetch for the whole
        # fetch.wait.max.ms (500 ms by default) even when a record arrives meanwhile, which
        # made callbacks ~200 ms late on average (measured: p50 214 ms -> 25 ms at 5/s).
        prompt: dict[str, Any] = {"fetch.wait.max.ms": 20}
        self.consumer = Consumer(
            kafka.consumer_config(ks, contracts.group_id(ks.namespace, "notifiers"), **prompt)
        )
        self.dead = dlq.DeadLetters(
            Producer(kafka.producer_config(ks)), contracts.DLQ.qualified(ks.namespace), "notifier"
        )
        self.channel = _Deliveries()
        deny, allow = url_rules(settings)
        secrets = signing_secrets(settings)
        self.deliverers = {}
        for mode in (Mode.AT_LEAST_ONCE, Mode.AT_MOST_ONCE):
            deliverer = Deliverer(
                secrets=secrets,
                timeout=cfg.timeout_secs,
                max_in_flight_per_host=cfg.max_in_flight_per_host,
                policy=Policy(
                    mode=mode,
                    max_attempts=cfg.max_attempts,
                    deadline=cfg.deadline_secs,
                    backoff=Backoff(base=cfg.backoff_base_secs, cap=cfg.backoff_cap_secs),
                ),
                deny_networks=deny,
                allow_networks=allow,
                on_attempt=self.channel.attempts.put,
            )
            self.deliverers[str(mode)] = BackgroundDeliverer(
                deliverer, max_pending=cfg.max_pending, name=f"webhooks-{mode}"
            )
        self.partitions: dict[int, deque[_Command]] = {}
        self.inflight: dict[str, _Command] = {}
        self.bases: dict[str, int] = {}  # attempts made before a replay, by timer in flight
        self.waiting: list[tuple[float, int, _Command]] = []  # held elsewhere: try again
        self._seq = 0
        # Reported by the deliveries, not yet written (kept across a failed transaction):
        # the finished ones by timer, and the ledger's rows.
        self.finished: dict[str, tuple[_Command, Any]] = {}
        self.attempt_rows: list[dict[str, Any]] = []
        self.announcer: control.Announcer | None = None
        self._errors = Episode(logger, f"{self.owner}: Kafka consumer error")
        self._outage = Episode(logger, "notifier: database unavailable")
        self._ledger_outage = Episode(logger, "notifier: database unavailable to the ledger")
        # The ledger thread writes the deliveries' outcomes, so that consuming and taking new
        # commands never wait for that transaction (it made every command ~35 ms later).
        self._ledger_stop = threading.Event()
        self._ledger_thread: threading.Thread | None = None
        self._ledger_error: BaseException | None = None
        self._stop_seen: float | None = None  # when the loop saw the stop (monotonic)
        self.delivered = self.failed = self.skipped = 0

    # -- consuming ----------------------------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        for tp in partitions:
            self.partitions.setdefault(tp.partition, deque())
        logger.info("%s assigned %s", self.owner, kafka.names(partitions))
        if self.announcer is not None:
            self.announcer.ready(partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._commit(asynchronous=False)
        for tp in partitions:
            # Not committed: their next owner takes them again (a delivery still under way
            # here keeps its lease, and the next owner finds the timer delivered or waits).
            self.partitions.pop(tp.partition, None)

    def _ingest(self, msgs: list[Message]) -> None:
        decode = msgspec.json.Decoder(FireCommand).decode
        fresh = []
        for msg in msgs:
            if (err := msg.error()) is not None:
                kafka.raise_if_fatal(err, self._errors)
                continue
            queue_ = self.partitions.get(msg.partition() or 0)
            if queue_ is None:
                continue
            try:
                entry = _Command(msg, decode(msg.value() or b""))
            except msgspec.DecodeError as exc:
                self.dead.send(msg, f"{type(exc).__name__}: {exc}")
                entry = _Command(msg, None, done=True)
            queue_.append(entry)
            if entry.command is not None:
                fresh.append(entry)
        self._take(fresh)

    def _latest(self, entries: list[_Command]) -> dict[str, _Command]:
        """One command per timer: the same one twice in a batch, the latest claim's goes on."""
        by_id: dict[str, _Command] = {}
        for entry in entries:
            assert entry.command is not None
            previous = by_id.get(entry.command.timer_id)
            if previous is not None:
                previous_cmd = previous.command
                assert previous_cmd is not None
                if previous_cmd.fence >= entry.command.fence:
                    self.skipped += 1
                    entry.done = True
                    continue
                previous.done = True
            by_id[entry.command.timer_id] = entry
        return by_id

    def _defer_own(self, by_id: dict[str, _Command]) -> dict[str, _Command]:
        """Put off the commands for timers this notifier is still delivering, or whose
        outcome is not yet in the ledger (the same command again after a rebalance, say):
        their claim would pass (the lease is this owner's) and they would go out twice. Each
        is taken again later, and then finds its timer done."""
        mine = [tid for tid in by_id if tid in self.inflight or tid in self.finished]
        if mine:
            self._later([by_id.pop(tid) for tid in mine], time.time() + RETRY_SECS)
        return by_id

    def _take(self, entries: list[_Command]) -> None:
        """Take the commands' timers for delivery (one transaction) and submit them; settle
        at once the commands there is nothing to deliver for."""
        if not entries:
            return
        by_id = self._defer_own(self._latest(entries))
        if not by_id:
            return
        commands = [(tid, e.command.fence) for tid, e in by_id.items() if e.command]
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                store.lock_timers(conn, by_id)  # the claims' ends below are among them
                taken, held, lost = store.claim_deliveries(
                    conn,
                    commands,
                    owner=self.owner,
                    lease_secs=self.settings.notifier.delivery_lease_secs,
                )
                ends = [
                    (d.id, "expired" if d.not_after is not None and d.not_after < now else "failed")
                    for d in taken
                    if d.disabled is not None or (d.not_after is not None and d.not_after < now)
                ]
                store.finish_deliveries(conn, ends, owner=self.owner)
        except DBAPIError:
            # Nothing of it happened: every command is taken again in a while (not lost: an
            # unsettled command holds its partition's offset, forever if forgotten).
            self._later(list(by_id.values()), time.time() + RETRY_SECS)
            raise
        for h in held:
            entry = by_id[h.id]
            assert entry.command is not None
            if h.fence == entry.command.fence and h.state in ("scheduled", "firing"):
                # Another notifier holds it (a dead one, until its lease lapses): try again.
                until = h.lease_until.timestamp() if h.lease_until else 0.0
                self._later([entry], max(until, time.time() + RETRY_SECS))
            else:
                self.skipped += 1  # done, cancelled, expired, or a stale claim's command
                entry.done = True
        for timer_id, why in lost.items():
            # at_most_once, and its last notifier may have sent it: never again.
            self.failed += 1
            by_id[timer_id].done = True
            self.dead.send(by_id[timer_id].msg, why)
        for gone in set(by_id) - {d.id for d in taken} - {h.id for h in held} - set(lost):
            self.skipped += 1  # no such timer
            by_id[gone].done = True
        ended = dict(ends)
        batches: dict[str, list[tuple[Any, _Command]]] = {}
        for d in taken:
            entry = by_id[d.id]
            if d.id not in ended:
                batches.setdefault(d.mode, []).append((self._webhook(d, entry), entry))
                continue
            entry.done = True
            if ended[d.id] == "failed":
                self.failed += 1
                self.dead.send(entry.msg, f"endpoint disabled: {d.disabled}")
        for mode, batch in batches.items():
            self.deliverers[mode].submit_many(batch, self._hand_back)

    def _later(self, entries: list[_Command], at: float) -> None:
        """Take these commands again at ``at`` (a wall-clock time)."""
        for entry in entries:
            self._seq += 1
            heapq.heappush(self.waiting, (at, self._seq, entry))

    def _webhook(self, d: store.Delivery, entry: _Command) -> Any:
        """The webhook to deliver for a taken timer, noted as in flight."""
        from herald.webhooks import timer_webhook

        webhook = timer_webhook(d.id, d.url)
        if d.payload:  # a run's callback: its own body
            webhook = msgspec.structs.replace(webhook, body=bytes(d.payload))
        made = d.attempts - d.attempt_base
        if made:
            # Resumed (its notifier died): numbering and budget go on. After a replay the
            # deadline restarts from this notifier's first attempt.
            first = d.first_attempt_at if not d.attempt_base else None
            webhook = msgspec.structs.replace(
                webhook,
                attempts_made=made,
                first_attempt_at=first.timestamp() if first is not None else None,
            )
        # Before the submission: the ledger thread may see its result at once.
        self.bases[d.id] = d.attempt_base
        self.inflight[d.id] = entry
        return webhook

    def _hand_back(self, entry: _Command, task: asyncio.Task[Any]) -> None:
        """A delivery ended (on its loop's thread): to the ledger thread."""
        self.channel.results.put((entry, task))

    # -- results ------------------------------------------------------------------------------

    def _collect(self, wait: float = 0.0) -> None:
        """Move what the delivery threads reported into ``finished`` and ``attempt_rows``,
        waiting up to ``wait`` seconds for a first result."""
        from herald.webhooks import Outcome

        over: list[str] = []
        while True:
            try:
                if wait > 0.0:
                    entry, task = self.channel.results.get(timeout=wait)
                    wait = 0.0
                else:
                    entry, task = self.channel.results.get_nowait()
            except queue.Empty:
                break
            cmd = entry.command
            assert cmd is not None
            over.append(cmd.timer_id)
            # Into finished before out of inflight: the loop checks both, in that order.
            if not task.cancelled():  # (cancelled: stopped mid-delivery, the lease lapses)
                delivery = task.result()
                if delivery.outcome is not Outcome.ABANDONED:
                    self.finished[cmd.timer_id] = (entry, delivery)
            self.inflight.pop(cmd.timer_id, None)
        # After the results: a delivery's attempts are queued before its result.
        while True:
            try:
                attempt = self.channel.attempts.get_nowait()
            except queue.Empty:
                break
            base = self.bases.get(attempt.webhook_id, 0)
            self.attempt_rows.append(_attempt_row(attempt, self.owner, base))
        for timer_id in over:
            self.bases.pop(timer_id, None)

    def _ledger(self) -> None:
        """The ledger thread: settle what the deliveries report until told to stop."""
        backoff = Backoff(initial=0.2, maximum=5.0)
        try:
            while not self._ledger_stop.is_set():
                try:
                    if self._settle(wait=LEDGER_WAIT_SECS):
                        self._ledger_stop.wait(LEDGER_GAP_SECS)
                    self._ledger_outage.over()
                    backoff.reset()
                except DBAPIError as exc:  # kept, written again once the database is back
                    self._ledger_outage.seen(exc)
                    backoff.wait(self._ledger_stop)
        except BaseException as exc:  # the main loop re-raises it
            self._ledger_error = exc

    def _start_ledger(self) -> None:
        self._ledger_thread = threading.Thread(target=self._ledger, name="notifier-ledger")
        self._ledger_thread.start()

    def _stop_ledger(self) -> None:
        self._ledger_stop.set()
        if self._ledger_thread is not None:
            self._ledger_thread.join()
            self._ledger_thread = None

    def _settle(self, wait: float = 0.0) -> bool:
        """Write what the deliveries reported, in one transaction: ledger rows, final
        states; then dead letters for the failed (each before its command is done). False
        if there was nothing to write."""
        from herald.webhooks import Outcome

        self._collect(wait)
        finished, rows = self.finished, self.attempt_rows
        if not rows and not finished:
            return False
        ends = [
            (timer_id, "delivered" if delivery.outcome is Outcome.DELIVERED else "failed")
            for timer_id, (_entry, delivery) in finished.items()
        ]
        # Until its transaction commits, what the deliveries reported stays (a failed one is
        # written again by the next call: the ledger's rows are idempotent).
        with self.engine.begin() as conn:
            store.lock_timers(conn, [*(r["timer_id"] for r in rows), *finished])
            store.record_attempts(conn, rows)
            mine = store.finish_deliveries(conn, ends, owner=self.owner)
            for timer_id in mine:
                delivery = finished[timer_id][1]
                if delivery.outcome is Outcome.GONE:
                    store.disable_endpoint(conn, delivery.url, f"410 Gone from timer {timer_id}")
        self.finished, self.attempt_rows = {}, []
        for timer_id, state in ends:  # durable now
            entry, delivery = finished[timer_id]
            if timer_id in mine and state == "delivered":
                self.delivered += 1
            elif timer_id in mine:  # (not: its lease lapsed and another took it)
                self.failed += 1
                self.dead.send(entry.msg, f"{delivery.outcome}: {delivery.reason}")
            # Last: the main loop commits the command's offset once it sees this (after
            # flushing the dead letters).
            entry.done = True
        return True

    def _commit(self, *, asynchronous: bool = True) -> None:
        """Commit each partition's prefix of settled commands (after their dead letters).
        Asynchronous in the loop: a commit that is lost only brings commands back, which
        find their timers done."""
        offsets = []
        for partition, entries in self.partitions.items():
            last = None
            while entries and entries[0].done:
                last = entries.popleft()
            if last is not None:
                offsets.append(TopicPartition(self.topic, partition, (last.msg.offset() or 0) + 1))
        if offsets:
            self.dead.flush_or_raise(10)
            if asynchronous:
                self.consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self.consumer.commit(offsets=offsets, asynchronous=False)

    def _renew(self) -> None:
        ids = list(self.inflight)  # one copy: the ledger thread takes finished ones out
        if not ids:
            return
        with self.engine.begin() as conn:
            store.lock_timers(conn, ids)
            store.renew_deliveries(
                conn,
                owner=self.owner,
                ids=ids,
                lease_secs=self.settings.notifier.delivery_lease_secs,
            )

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event, announcer: control.Announcer | None = None) -> int:
        self.announcer = announcer
        for deliverer in self.deliverers.values():
            deliverer.start()
        self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        logger.info("%s ready: %s", self.owner, self.topic)
        lease = self.settings.notifier.delivery_lease_secs
        next_renew = time.monotonic() + lease / 3
        backoff = Backoff(initial=0.2, maximum=5.0)
        self._start_ledger()
        try:
            while not stop.is_set():
                if self._ledger_error is not None:
                    raise self._ledger_error
                try:
                    busy = any(d.full() for d in self.deliverers.values())
                    msgs = self.consumer.consume(500, 0.02) if not busy else []
                    if busy:
                        stop.wait(0.02)
                    self._ingest(msgs)
                    again = []
                    while self.waiting and self.waiting[0][0] <= time.time():
                        again.append(heapq.heappop(self.waiting)[2])
                    self._take(again)
                    if time.monotonic() >= next_renew:
                        self._renew()
                        next_renew = time.monotonic() + lease / 3
                    self._commit()
                    self._outage.over()
                    backoff.reset()
                except DBAPIError as exc:
                    self._outage.seen(exc)
                    backoff.wait(stop)
            if self._stop_seen is None:  # the stop's grace counts from here, the drain included
                self._stop_seen = time.monotonic()
            self._drain()
        finally:
            self._stop_ledger()
            for deliverer in self.deliverers.values():
                # What is left of the grace (after a stop): a delivery it cancels is left to
                # its lease (see STOP_GRACE_SECS).
                deliverer.close(timeout=self.wait_limit(CLOSE_SECS))
            # Both bounded, as every consumer loop's are: a leave the coordinator holds ends
            # with the session, and a dead letter not flushed yet belongs to a record whose
            # offset is not committed either (_commit flushes them first): its next reader
            # writes it again.
            kafka.close_consumer(self.consumer, self.owner)
            self.dead.flush(2)
            self.engine.dispose()
        logger.info(
            "%s stopped ◆ %d delivered ◆ %d failed ◆ %d skipped ◆ %d left to their lease",
            self.owner,
            self.delivered,
            self.failed,
            self.skipped,
            len(self.inflight),
        )
        return 0

    def wait_limit(self, limit: float) -> float:
        """How long one wait for deliveries under way may take: ``limit``, or once the loop
        has seen the stop, what is left of ``STOP_GRACE_SECS`` (0.1 s at least)."""
        since = None if self._stop_seen is None else time.monotonic() - self._stop_seen
        return within_grace(limit, since, STOP_GRACE_SECS)

    def _drain(self) -> None:
        """On stop: let deliveries under way finish (within the grace), record them, commit."""
        seen = time.monotonic() if self._stop_seen is None else self._stop_seen
        deadline = seen + STOP_GRACE_SECS
        while self.inflight and time.monotonic() < deadline and self._ledger_error is None:
            time.sleep(0.05)  # the ledger thread settles them
        self._stop_ledger()
        if self._ledger_error is not None:
            raise self._ledger_error
        self._settle()
        self._commit(asynchronous=False)


def _attempt_row(attempt: Any, owner: str, base: int) -> dict[str, Any]:
    def when(ts: float | None) -> datetime | None:
        return None if ts is None else datetime.fromtimestamp(ts, UTC)

    return {
        "timer_id": attempt.webhook_id,
        "number": base + attempt.number,
        "url": attempt.url,
        "started_at": when(attempt.started_at),
        "duration_ms": attempt.duration_ms,
        "status": attempt.status,
        "error": attempt.error,
        "detail": attempt.detail,
        "sent": attempt.sent,
        "outcome": str(attempt.outcome),
        "retry_after": attempt.retry_after,
        "next_attempt_at": when(attempt.next_attempt_at),
        "notifier": owner,
    }


def run(
    settings: Settings, *, stop: threading.Event, announcer: control.Announcer | None = None
) -> int:
    """Deliver callbacks until ``stop``."""
    notifier = Notifier(settings)
    try:
        ready = common.database_ready(settings, stop, table="timer_attempts")
    except StorageError:
        notifier.consumer.close()
        raise
    if not ready:
        notifier.consumer.close()
        return 0
    return notifier.run(stop, announcer)
