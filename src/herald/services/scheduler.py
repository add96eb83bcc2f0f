"""scheduler: fires due items (timers, scheduled runs) at their due time; any number of replicas.

Each replica claims the items due within ``scheduler.lookahead_secs`` that nobody holds, with
``FOR UPDATE SKIP LOCKED``, under a lease of ``scheduler.lease_secs``; every claim bumps the
item's fencing token. Claimed items wait in an in-process timer heap and are published at
their due time (never before), not a polling interval later, without waiting for the broker;
every ``MARK_SECS`` those it acknowledged are marked fired in one transaction, fenced: a
replica whose claim was taken over (it was paused past its lease) cannot mark it, and the
notifier ignores a fire command whose token is not the item's latest. A replica that dies
leaves its claims to expire after the lease: another replica fires them. A new item due soon
wakes the replicas at once (Postgres LISTEN/NOTIFY); otherwise they claim every
``scheduler.poll_secs``, and again at once after a full batch (a burst is claimed batch after
batch). A lease is extended only for a claim that would still be held when it ends (with the
lookahead shorter than the lease, only one whose firing is held up): renewing every claim held
cost a statement over thousands of rows every few seconds, on the firing loop.

Publication is at least once: a replica that dies between publishing and marking leaves the
item to be published again by the next claim; downstream is idempotent on the item's id.
"""

from __future__ import annotations

import functools
import heapq
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from sqlalchemy.exc import DBAPIError

from herald import control, kafka
from herald.config import Settings
from herald.db import store
from herald.db.store import Claimed
from herald.errors import BrokerError, StorageError
from herald.services import common
from herald.timers import FIRE, NOTIFY_CHANNEL, FireCommand
from herald.waiting import Backoff, Episode

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECS = 10.0  # a record not acknowledged by then is not marked: it lapses
# How often the acknowledged publications are marked fired (one transaction for all of them).
MARK_SECS = 0.05
# Fire commands go to one partition for this long, then the next: a produce request carries
# one partition's batch, and keyed by timer id 1,000 commands a second over 12 partitions
# made ~650 requests a second, which cost the embedded broker ~70% of a core.
STICKY_SECS = 0.01
# How often the held claims are looked over for a lease to extend (in memory; a statement only
# when one needs it: see renew()).
RENEW_CHECK_SECS = 0.5


def main(argv: Sequence[str] | None = None) -> int:
    """``herald scheduler``: fire due items until stopped."""
    args = common.parser("scheduler", __doc__.splitlines()[0]).parse_args(
        common.argv_or_default(argv)
    )
    return common.service_main(
        args,
        lambda s, stop, announcer: run(s, stop=stop, announcer=announcer),
        service="scheduler",
    )


class Scheduler:
    """One replica: claims, a timer heap, publication, fenced marks. See the module doc."""

    def __init__(self, settings: Settings, *, owner: str | None = None) -> None:
        from herald.db.engine import make_engine

        if settings.database.url is None:
            raise StorageError("database.url is unset: the scheduler needs a database")
        self.settings = settings
        self.cfg = settings.scheduler
        self.owner = owner or f"scheduler@{socket.gethostname()}:{os.getpid()}"
        self.engine = make_engine(settings.database.url)
        # Batched: at 1,000 timers due per second a record per produce request (linger 1 ms,
        # a flush per firing) cost the embedded broker ~70% of a core.
        self.producer = Producer(
            kafka.producer_config(
                settings.kafka, **{"message.timeout.ms": int(PUBLISH_TIMEOUT_SECS * 1000)}
            )
        )
        self.namespace = settings.kafka.namespace
        self.fire_topic = FIRE.qualified(self.namespace)
        self._fire_partitions: int | None = None  # from the topic's metadata, on first use
        self.heap: list[tuple[float, int, Claimed]] = []  # (due, wall clock), seq, claim
        self.held: dict[str, Claimed] = {}
        self.lease_ends: dict[str, float] = {}  # by held claim: when its lease ends (wall clock)
        self._seq = 0
        self.wake = threading.Event()
        self._outage = Episode(logger, "scheduler: database unavailable")
        # Published, not yet acknowledged; acknowledged or past their not_after, not yet
        # marked; the broker's refusals not yet reported.
        self.unacked = 0
        self.acked: list[Claimed] = []
        self.late: list[Claimed] = []
        self.failures: list[KafkaError] = []
        self.fired = self.fenced = self.expired = 0
        self._next_claim = self._next_renew = self._next_mark = 0.0  # monotonic

    # -- claims -------------------------------------------------------------------------------

    def claim(self) -> int:
        """Claim what is due soon; the number claimed."""
        started = time.time()  # the leases end no earlier than this + lease_secs
        with self.engine.begin() as conn:
            claims = store.claim_due(
                conn,
                owner=self.owner,
                lease_secs=self.cfg.lease_secs,
                ahead_secs=self.cfg.lookahead_secs,
                batch=self.cfg.batch,
            )
        lease_end = started + self.cfg.lease_secs
        for c in claims:
            self.held[c.id] = c
            self.lease_ends[c.id] = lease_end
            self._seq += 1
            heapq.heappush(self.heap, (c.due_at.timestamp(), self._seq, c))
        return len(claims)

    def renew(self) -> None:
        """Extend the leases of the claims this replica will still hold when their lease is
        near its end (most fire long before: the lookahead is shorter than the lease); forget
        what was taken over."""
        now = time.time()
        margin = self.cfg.lease_secs / 3
        ids = [
            timer_id
            for timer_id, c in self.held.items()
            if max(c.due_at.timestamp(), now) + margin > self.lease_ends[timer_id]
        ]
        if not ids:
            return
        with self.engine.begin() as conn:
            store.lock_timers(conn, ids)
            kept = store.renew_claims(
                conn, owner=self.owner, ids=ids, lease_secs=self.cfg.lease_secs
            )
        for timer_id in kept:
            self.lease_ends[timer_id] = now + self.cfg.lease_secs
        lost = set(ids) - kept
        if lost:
            logger.warning("%s: %d claims taken over or cancelled", self.owner, len(lost))
            for timer_id in lost:  # their heap entries are skipped when they come due
                del self.held[timer_id], self.lease_ends[timer_id]

    # -- firing -------------------------------------------------------------------------------

    def due(self, now: float) -> list[Claimed]:
        """The claims whose due time has come (by the wall clock: never before it)."""
        out = []
        while self.heap and self.heap[0][0] <= now:
            claim = heapq.heappop(self.heap)[2]
            # Only the claim held now: one claimed again (its lease had lapsed) leaves its
            # earlier entry in the heap, with a stale fence; one taken over leaves its entry.
            if self.held.get(claim.id) is claim:
                del self.held[claim.id], self.lease_ends[claim.id]
                out.append(claim)
        return out

    def fire(self, claims: list[Claimed]) -> None:
        """Publish each claim's record (one past its ``not_after`` is expired instead, by the
        next :meth:`mark`); not waiting for the broker: its acknowledgements come back through
        the producer's poll, and :meth:`mark` marks the acknowledged fired."""
        now = datetime.now(UTC)
        sticky = self._sticky_partition()
        for c in claims:
            if c.not_after is not None and c.not_after < now:
                self.late.append(c)
                continue
            topic = c.topic if not self.namespace else f"{self.namespace}.{c.topic}"
            acked = functools.partial(self._acked, c)
            if topic == self.fire_topic and sticky is not None:
                # Still keyed by timer id; no order per timer is needed (a newer claim's
                # command wins by its fencing token, wherever it lands).
                self.producer.produce(topic, record_of(c), c.key, sticky, on_delivery=acked)
            else:
                self.producer.produce(topic, record_of(c), c.key, on_delivery=acked)
            self.unacked += 1

    def _sticky_partition(self) -> int | None:
        """The fire topic's partition for now: the same for ``STICKY_SECS``, then the next
        (None until the topic's metadata is known: partitioned by key meanwhile)."""
        if self._fire_partitions is None:
            try:
                meta = self.producer.list_topics(self.fire_topic, timeout=PUBLISH_TIMEOUT_SECS)
                self._fire_partitions = len(meta.topics[self.fire_topic].partitions) or None
            except KafkaException as exc:
                logger.warning("%s: no metadata for %s: %s", self.owner, self.fire_topic, exc)
                return None
            if self._fire_partitions is None:
                return None
        return int(time.monotonic() / STICKY_SECS) % self._fire_partitions

    def _acked(self, claim: Claimed, err: KafkaError | None, _msg: Message) -> None:
        self.unacked -= 1
        if err is None:
            self.acked.append(claim)
        else:  # not marked: its lease lapses and it is published again (at least once)
            self.failures.append(err)

    def mark(self, timeout: float = 0.0) -> None:
        """Serve the broker's acknowledgements (waiting up to ``timeout`` seconds for those
        outstanding), then, in one transaction, mark the acknowledged claims fired, fenced,
        and expire the late ones. What a failed transaction leaves is marked by the next call;
        a record the broker refused raises :class:`BrokerError` once the rest is marked."""
        deadline = time.monotonic() + timeout
        self.producer.poll(0)
        while self.unacked and (left := deadline - time.monotonic()) > 0:
            self.producer.poll(left)
        acked, late = self.acked, self.late
        if acked or late:
            with self.engine.begin() as conn:
                store.lock_timers(conn, (c.id for c in (*acked, *late)))
                marked = store.mark_fired_many(conn, acked, owner=self.owner)
                expired = sum(store.expire_claim(conn, c) for c in late)
            self.acked, self.late = [], []
            self.fired += len(marked)
            self.expired += expired
            fenced = [c.id for c in acked if c.id not in marked]
            if fenced:
                self.fenced += len(fenced)
                logger.warning(
                    "%s: %d claims were fenced (taken over): %s",
                    self.owner,
                    len(fenced),
                    fenced[:5],
                )
        if self.failures:
            failures, self.failures = self.failures, []
            raise BrokerError(
                f"{len(failures)} due items not acknowledged by the broker ({failures[0]}):"
                " published again once their leases lapse"
            )

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event, announcer: control.Announcer | None = None) -> int:
        listener = threading.Thread(
            target=self._listen, args=(stop,), name="scheduler-listen", daemon=True
        )
        listener.start()
        self._next_renew = time.monotonic() + RENEW_CHECK_SECS
        backoff = Backoff(initial=0.2, maximum=5.0)
        if announcer is not None:
            announcer.ready()
        logger.info(
            "%s ready: lease %gs, lookahead %gs",
            self.owner,
            self.cfg.lease_secs,
            self.cfg.lookahead_secs,
        )
        try:
            while not stop.is_set():
                try:
                    self._tick()
                    self._outage.over()
                    backoff.reset()
                except _OUTAGES as exc:
                    self._outage.seen(exc)
                    backoff.wait(stop)
                    continue
                self._sleep()
        finally:
            try:
                self.mark(timeout=5.0)
            except _OUTAGES as exc:  # what is not marked lapses and is published again
                logger.warning("%s: the last publications not marked fired: %s", self.owner, exc)
            finally:
                self.engine.dispose()
        logger.info(
            "%s stopped ◆ %d fired ◆ %d fenced ◆ %d expired ◆ %d claims left to lapse",
            self.owner,
            self.fired,
            self.fenced,
            self.expired,
            len(self.held),
        )
        return 0

    def _tick(self) -> None:
        """One turn of the loop: claim when it is time (or woken), renew, fire what is due,
        mark what the broker acknowledged."""
        mono = time.monotonic()
        if self.wake.is_set() or mono >= self._next_claim:
            self.wake.clear()
            # A full batch: more may be due (a burst): claim again at once.
            full = self.claim() >= self.cfg.batch
            self._next_claim = mono if full else mono + self.cfg.poll_secs
        if self.held and mono >= self._next_renew:
            self.renew()
            self._next_renew = mono + RENEW_CHECK_SECS
        ready = self.due(time.time())
        if ready:
            self.fire(ready)
        if mono >= self._next_mark:
            self._next_mark = mono + MARK_SECS
            self.mark()

    def _sleep(self) -> None:
        """Until the next claim, renewal, due time or mark, or a wake."""
        wait = self._next_claim - time.monotonic()
        if self.heap:
            wait = min(wait, self.heap[0][0] - time.time())
        if self.held:
            wait = min(wait, self._next_renew - time.monotonic())
        if self.unacked or self.acked or self.late or self.failures:
            # Acknowledgements to serve: they come through the producer's poll (a new item due
            # soon waits up to MARK_SECS for the loop to see its wake). librdkafka counts whole
            # milliseconds: under one is no wait at all (5.4 million turns in a 30 s run).
            wait = min(wait, self._next_mark - time.monotonic())
            self.producer.poll(max(wait, 0.001) if wait > 0 else 0)
        else:
            self.wake.wait(max(0.0, wait))

    def _listen(self, stop: threading.Event) -> None:
        """LISTEN for new items due soon; wake the loop when one comes."""
        import psycopg

        from herald.db.pg import conninfo

        assert self.settings.database.url is not None
        backoff = Backoff(initial=0.5, maximum=5.0)
        while not stop.is_set():
            try:
                with psycopg.connect(conninfo(self.settings.database.url), autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff.reset()
                    while not stop.is_set():
                        for _notice in conn.notifies(timeout=0.5, stop_after=1):
                            self.wake.set()
            except psycopg.OperationalError:
                backoff.wait(stop)
        self.wake.set()  # the loop may be asleep until its next claim: let it see the stop


def record_of(claim: Claimed) -> bytes:
    """What a claim publishes: a webhook's fire command (with the claim's fencing token), or
    the payload stored with the item."""
    if claim.kind != "webhook":
        return claim.payload
    assert claim.url is not None
    command = FireCommand(
        timer_id=claim.id,
        url=claim.url,
        mode=claim.mode,  # type: ignore[arg-type]  # the column holds one of the two
        due_at=claim.due_at,
        not_after=claim.not_after,
        fence=claim.fence,
    )
    return msgspec.json.encode(command)


# A database or broker away: retried with backoff, logged once per episode.
_OUTAGES = (DBAPIError, BrokerError)


def run(
    settings: Settings, *, stop: threading.Event, announcer: control.Announcer | None = None
) -> int:
    """Fire due items until ``stop``."""
    scheduler = Scheduler(settings)
    try:
        ready = common.database_ready(settings, stop, table="timers")
    except StorageError:
        scheduler.engine.dispose()
        raise
    if not ready:
        scheduler.engine.dispose()
        return 0
    return scheduler.run(stop, announcer)
