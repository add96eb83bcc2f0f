"""The real Deliverer against the real test receiver (HTTP over loopback): exact attempt
counts, outcomes, and the same webhook-id on every retry as the receiver saw it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import queue
import random
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from herald.webhooks import (
    DEFAULT_DENY,
    LOOPBACK,
    Attempt,
    BackgroundDeliverer,
    Backoff,
    Deliverer,
    HostLoad,
    Mode,
    Outcome,
    Policy,
    QueueFull,
    UnsafeUrl,
    check_url,
    timer_webhook,
)
from herald.webhooks.deliverer import DEFAULT_USER_AGENT
from tests.support.waiting import wait_for
from tests.support.webhook_receiver import Drop, Respond, Stall, WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"receiver-secret-0123456789abcdef").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the-old-secret-before-rotation!").decode()
WAIT = 30.0  # seconds: a deadline for what should take milliseconds; it fails loudly
SHORT_TIMEOUT = 0.5  # the deliverer's per-attempt timeout where a peer stalls past it


def fast_policy(*, mode: Mode = Mode.AT_LEAST_ONCE, max_attempts: int = 6) -> Policy:
    """Retries within milliseconds (10-20 ms of full jitter), seeded."""
    return Policy(
        mode=mode,
        max_attempts=max_attempts,
        backoff=Backoff(base=0.01, cap=0.02),
        rng=random.Random(1),
    )


@contextlib.contextmanager
def running(*, max_pending: int = 1000, **options: Any) -> Iterator[BackgroundDeliverer]:
    """A deliverer on its background loop, as the notifier will run it; closed afterwards."""
    options.setdefault("secrets", [SECRET])
    options.setdefault("timeout", 5.0)
    options.setdefault("policy", fast_policy())
    with BackgroundDeliverer(Deliverer(**options), max_pending=max_pending) as background:
        yield background


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secrets=[SECRET]) as rx:
        yield rx


def summary(attempts: tuple[Attempt, ...]) -> list[tuple[int, int | None, str | None, bool, str]]:
    return [(a.number, a.status, a.error, a.sent, a.outcome.value) for a in attempts]


class FixedDns(AbstractResolver):
    """A DNS that answers one fixed address per name (no network)."""

    def __init__(self, answers: dict[str, str]) -> None:
        self._answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(
                hostname=host,
                host=self._answers[host],
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=flags,
            )
        ]

    async def close(self) -> None:
        pass


class StepClock:
    """A clock that moves ``step`` seconds per reading, so every attempt has its own second."""

    def __init__(self, start: float, step: float) -> None:
        self._next = start
        self._step = step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            now, self._next = self._next, self._next + self._step
            return now


# -- answers ---------------------------------------------------------------------------------


def test_a_webhook_arrives_once_signed_with_the_timer_id(receiver: WebhookReceiver) -> None:
    with running() as bg:
        delivery = bg.submit(timer_webhook("timer-1", receiver.url("/hook"))).result(WAIT)
    assert delivery.outcome is Outcome.DELIVERED
    assert summary(delivery.attempts) == [(1, 200, None, True, "delivered")]
    [request] = receiver.requests()
    assert (request.path, request.method, request.body) == ("/hook", "POST", b'{"id":"timer-1"}')
    assert request.verified, request.verify_error
    assert request.webhook_id == "timer-1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == DEFAULT_USER_AGENT
    assert request.headers["webhook-signature"].startswith("v1,")
    assert int(request.headers["webhook-timestamp"]) == int(delivery.attempts[0].started_at)


def test_500_three_times_then_200_is_four_attempts_with_one_id(receiver: WebhookReceiver) -> None:
    receiver.script("/flaky", [Respond(500)] * 3)
    with running(clock=StepClock(float(int(time.time())), 7.0)) as bg:
        delivery = bg.submit(timer_webhook("timer-2", receiver.url("/flaky"))).result(WAIT)
    assert delivery.outcome is Outcome.DELIVERED
    assert summary(delivery.attempts) == [
        (1, 500, None, True, "retry"),
        (2, 500, None, True, "retry"),
        (3, 500, None, True, "retry"),
        (4, 200, None, True, "delivered"),
    ]
    assert receiver.ids() == ["timer-2"] * 4
    requests = receiver.requests()
    assert all(r.verified for r in requests), [r.verify_error for r in requests]
    # A fresh timestamp and signature per attempt (the clock moves 7 s per attempt here).
    stamps = [int(r.headers["webhook-timestamp"]) for r in requests]
    assert stamps == [int(a.started_at) for a in delivery.attempts]
    assert [b - a for a, b in itertools.pairwise(stamps)] == [7, 7, 7]
    assert len({r.headers["webhook-signature"] for r in requests}) == 4
    assert all(
        a.retry_delay is not None and 0 <= a.retry_delay <= 0.02 for a in delivery.attempts[:3]
    )


def test_always_500_expires_after_the_last_attempt(receiver: WebhookReceiver) -> None:
    receiver.script("/down", then=Respond(503, body=b"maintenance"))
    with running(policy=fast_policy(max_attempts=3)) as bg:
        delivery = bg.submit(timer_webhook("timer-3", receiver.url("/down"))).result(WAIT)
    assert delivery.outcome is Outcome.EXPIRED
    assert summary(delivery.attempts) == [
        (1, 503, None, True, "retry"),
        (2, 503, None, True, "retry"),
        (3, 503, None, True, "expired"),
    ]
    assert delivery.attempts[-1].next_attempt_at is None
    assert delivery.attempts[-1].response_excerpt == "maintenance"
    assert delivery.reason == "HTTP 503"
    assert receiver.ids() == ["timer-3"] * 3


@pytest.mark.parametrize(
    ("status", "outcome", "detail"),
    [
        (410, Outcome.GONE, "HTTP 410"),
        (404, Outcome.FAILED, "HTTP 404"),
        (400, Outcome.FAILED, "HTTP 400"),
    ],
)
def test_410_and_other_4xx_end_at_the_first_attempt(
    receiver: WebhookReceiver, status: int, outcome: Outcome, detail: str
) -> None:
    receiver.script("/x", then=Respond(status))
    with running() as bg:
        delivery = bg.submit(timer_webhook("timer-4", receiver.url("/x"))).result(WAIT)
    assert delivery.outcome is outcome
    assert summary(delivery.attempts) == [(1, status, None, True, outcome.value)]
    assert delivery.attempts[0].detail == detail
    assert receiver.ids() == ["timer-4"]


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(receiver: WebhookReceiver) -> None:
    receiver.script("/moved", then=Respond(307, {"Location": receiver.url("/elsewhere")}))
    with running() as bg:
        delivery = bg.submit(timer_webhook("timer-5", receiver.url("/moved"))).result(WAIT)
    assert delivery.outcome is Outcome.FAILED
    assert summary(delivery.attempts) == [(1, 307, None, True, "failed")]
    assert delivery.reason == f"redirect 307 to {receiver.url('/elsewhere')} not followed"
    assert [r.path for r in receiver.requests()] == ["/moved"]


def test_429_with_retry_after_waits_as_asked(receiver: WebhookReceiver) -> None:
    receiver.script("/busy", [Respond(429, {"Retry-After": "1"})])
    with running() as bg:
        delivery = bg.submit(timer_webhook("timer-6", receiver.url("/busy"))).result(WAIT)
    assert delivery.outcome is Outcome.DELIVERED
    assert summary(delivery.attempts) == [
        (1, 429, None, True, "retry"),
        (2, 200, None, True, "delivered"),
    ]
    first = delivery.attempts[0]
    # The 1 s asked for is above the 20 ms jitter ceiling, so it is the delay, exactly.
    assert (first.retry_after, first.retry_delay) == (1.0, 1.0)
    assert receiver.ids() == ["timer-6"] * 2


# -- signatures end to end -------------------------------------------------------------------


def test_a_receiver_with_another_secret_refuses_and_it_is_not_retried() -> None:
    with WebhookReceiver(secrets=[OLD_SECRET]) as rx, running() as bg:
        delivery = bg.submit(timer_webhook("timer-7", rx.url("/"))).result(WAIT)
        [request] = rx.requests()
    assert delivery.outcome is Outcome.FAILED
    assert summary(delivery.attempts) == [(1, 401, None, True, "failed")]
    assert delivery.attempts[0].response_excerpt == "no v1 signature matches any of the secrets"
    assert not request.verified
    assert request.verify_error == "no v1 signature matches any of the secrets"


def test_during_rotation_a_receiver_on_either_secret_accepts() -> None:
    with (
        WebhookReceiver(secrets=[OLD_SECRET]) as old_rx,
        WebhookReceiver(secrets=[SECRET]) as new_rx,
        running(secrets=[SECRET, OLD_SECRET]) as bg,
    ):
        on_old = bg.submit(timer_webhook("timer-8", old_rx.url("/"))).result(WAIT)
        on_new = bg.submit(timer_webhook("timer-8", new_rx.url("/"))).result(WAIT)
        requests = old_rx.requests() + new_rx.requests()
    assert (on_old.outcome, on_new.outcome) == (Outcome.DELIVERED, Outcome.DELIVERED)
    assert [r.verified for r in requests] == [True, True]
    assert [len(r.headers["webhook-signature"].split(" ")) for r in requests] == [2, 2]


# -- peers that fail to answer ---------------------------------------------------------------


def test_a_stalled_answer_times_out_and_at_least_once_retries(receiver: WebhookReceiver) -> None:
    receiver.script("/slow", [Stall(30.0)])
    with running(timeout=SHORT_TIMEOUT) as bg:
        delivery = bg.submit(timer_webhook("timer-9", receiver.url("/slow"))).result(WAIT)
    assert delivery.outcome is Outcome.DELIVERED
    assert summary(delivery.attempts) == [
        (1, None, "timeout", True, "retry"),
        (2, 200, None, True, "delivered"),
    ]
    assert delivery.attempts[0].detail == "no answer within 0.5s (TimeoutError)"
    assert receiver.ids() == ["timer-9"] * 2  # the receiver got it twice: dedupe on the id


def test_at_most_once_after_a_timeout_is_outcome_unknown_with_one_request(
    receiver: WebhookReceiver,
) -> None:
    receiver.script("/slow", then=Stall(30.0))
    policy = fast_policy(mode=Mode.AT_MOST_ONCE)
    with running(timeout=SHORT_TIMEOUT, policy=policy) as bg:
        delivery = bg.submit(timer_webhook("timer-10", receiver.url("/slow"))).result(WAIT)
    assert delivery.outcome is Outcome.OUTCOME_UNKNOWN
    assert summary(delivery.attempts) == [(1, None, "timeout", True, "outcome_unknown")]
    assert delivery.maybe_received
    assert receiver.ids() == ["timer-10"]


@pytest.mark.parametrize(("drop", "kind"), [(Drop(), "disconnected"), (Drop(reset=True), "reset")])
def test_a_connection_closed_without_an_answer(
    receiver: WebhookReceiver, drop: Drop, kind: str
) -> None:
    receiver.script("/drop", [drop])
    with running() as bg:
        retried = bg.submit(timer_webhook("timer-11", receiver.url("/drop"))).result(WAIT)
    receiver.script("/drop", [drop])
    with running(policy=fast_policy(mode=Mode.AT_MOST_ONCE)) as bg:
        once = bg.submit(timer_webhook("timer-12", receiver.url("/drop"))).result(WAIT)
    assert summary(retried.attempts) == [
        (1, None, kind, True, "retry"),
        (2, 200, None, True, "delivered"),
    ]
    assert summary(once.attempts) == [(1, None, kind, True, "outcome_unknown")]
    assert receiver.deliveries() == Counter({"timer-11": 2, "timer-12": 1})


@pytest.mark.parametrize("mode", list(Mode))
def test_a_receiver_down_then_back_gets_it_in_either_mode(
    receiver: WebhookReceiver, mode: Mode
) -> None:
    receiver.down()
    refused: list[Attempt] = []

    def on_attempt(attempt: Attempt) -> None:
        if attempt.error == "connect":
            refused.append(attempt)
            if len(refused) == 2:
                receiver.up()  # back on the same port before the third attempt

    with running(policy=fast_policy(mode=mode), on_attempt=on_attempt) as bg:
        delivery = bg.submit(timer_webhook("timer-13", receiver.url("/"))).result(WAIT)
    # A refused connection sent nothing, so even at_most_once may try again.
    assert delivery.outcome is Outcome.DELIVERED
    assert summary(delivery.attempts) == [
        (1, None, "connect", False, "retry"),
        (2, None, "connect", False, "retry"),
        (3, 200, None, True, "delivered"),
    ]
    assert "Connect call failed" in (delivery.attempts[0].detail or "")
    assert receiver.ids() == ["timer-13"]


# -- concurrency -----------------------------------------------------------------------------


def test_the_per_host_limit_is_what_the_receiver_sees(receiver: WebhookReceiver) -> None:
    gate = threading.Event()
    receiver.script("/held", then=Respond(200, gate=gate))
    host = f"http://127.0.0.1:{receiver.port}"
    with running(max_in_flight_per_host=3) as bg:
        futures = [bg.submit(timer_webhook(f"t{i}", receiver.url("/held"))) for i in range(12)]
        receiver.wait_for_in_flight(3, timeout=WAIT)
        # Every other delivery is parked on the host's limit, none is on its way.
        wait_for(
            lambda: bg.load().get(host) == HostLoad(in_flight=3, waiting=9),
            timeout=WAIT,
            what="3 requests in flight and 9 waiting",
        )
        assert receiver.in_flight == 3
        # One cancelled while it waits for a slot gives up its place and takes none.
        futures[11].cancel()
        wait_for(
            lambda: bg.load().get(host) == HostLoad(in_flight=3, waiting=8),
            timeout=WAIT,
            what="3 requests in flight and 8 waiting once one waiting is cancelled",
        )
        gate.set()
        deliveries = [f.result(WAIT) for f in futures[:11]]
        assert bg.load() == {}  # a host's slot is dropped once nothing uses it
    assert futures[11].cancelled()
    assert [d.outcome for d in deliveries] == [Outcome.DELIVERED] * 11
    assert receiver.max_in_flight == 3
    # Each once; the cancelled one never went out.
    assert receiver.deliveries() == Counter({f"t{i}": 1 for i in range(11)})


def test_the_limit_is_per_host_not_global() -> None:
    gate = threading.Event()
    with (
        WebhookReceiver(secrets=[SECRET], default=Respond(200, gate=gate)) as one,
        WebhookReceiver(secrets=[SECRET], default=Respond(200, gate=gate)) as two,
        running(max_in_flight_per_host=2) as bg,
    ):
        futures = [
            bg.submit(timer_webhook(f"{rx.port}-{i}", rx.url("/")))
            for rx in (one, two)
            for i in range(5)
        ]
        one.wait_for_in_flight(2, timeout=WAIT)
        two.wait_for_in_flight(2, timeout=WAIT)  # four at once in all: two per host
        gate.set()
        outcomes = [f.result(WAIT).outcome for f in futures]
        assert (one.max_in_flight, two.max_in_flight) == (2, 2)
        assert (len(one.requests()), len(two.requests())) == (5, 5)
    assert outcomes == [Outcome.DELIVERED] * 10


def test_many_webhooks_with_retries_match_the_receivers_count(receiver: WebhookReceiver) -> None:
    receiver.script("/flaky", [Respond(500)] * 10)
    paths = ["/a", "/flaky", "/b"]
    with running(max_in_flight_per_host=8) as bg:
        futures = [
            bg.submit(timer_webhook(f"m{i}", receiver.url(paths[i % 3]))) for i in range(150)
        ]
        deliveries = [f.result(WAIT) for f in futures]
    assert [d.outcome for d in deliveries] == [Outcome.DELIVERED] * 150
    seen = receiver.deliveries()
    # The ledger (attempts per delivery) and the receiver (requests per id) agree exactly.
    assert seen == Counter({d.webhook_id: len(d.attempts) for d in deliveries})
    assert sum(seen.values()) == 160  # 150 webhooks, 10 of them answered 500 once first
    assert receiver.max_in_flight <= 8
    assert all(r.verified for r in receiver.requests())


def test_a_full_queue_tells_the_caller_to_stop_consuming(receiver: WebhookReceiver) -> None:
    gate = threading.Event()
    receiver.script("/held", then=Respond(200, gate=gate))
    with running(max_pending=2) as bg:
        first = [bg.submit(timer_webhook(f"q{i}", receiver.url("/held"))) for i in range(2)]
        assert bg.full() and bg.pending == 2
        with pytest.raises(QueueFull, match=r"2 deliveries pending \(max 2\)"):
            bg.submit(timer_webhook("q2", receiver.url("/held")), timeout=0)
        assert not bg.wait_for_room(timeout=0)
        gate.set()
        assert bg.wait_for_room(timeout=WAIT)
        third = bg.submit(timer_webhook("q2", receiver.url("/held"))).result(WAIT)
        outcomes = [f.result(WAIT).outcome for f in first] + [third.outcome]
    assert outcomes == [Outcome.DELIVERED] * 3
    assert receiver.deliveries() == Counter({"q0": 1, "q1": 1, "q2": 1})


def test_a_batch_is_delivered_with_one_callback_per_webhook_and_counts_as_pending(
    receiver: WebhookReceiver,
) -> None:
    gate = threading.Event()
    receiver.script("/held", then=Respond(200, gate=gate))
    receiver.script("/gone", then=Respond(410))
    ended: queue.SimpleQueue[tuple[str, Outcome]] = queue.SimpleQueue()

    def done(tag: str, task: asyncio.Task[Any]) -> None:
        ended.put((tag, task.result().outcome))

    with running(max_pending=3) as bg:
        batch = [(timer_webhook(f"b{i}", receiver.url("/held")), f"tag-{i}") for i in range(4)]
        batch.append((timer_webhook("b4", receiver.url("/gone")), "tag-4"))
        bg.submit_many(batch, done)
        # Never blocks: the batch goes past max_pending, and full() says so.
        assert bg.pending == 5 and bg.full()
        assert ended.get(timeout=WAIT) == ("tag-4", Outcome.GONE)
        receiver.wait_for_in_flight(4, timeout=WAIT)
        assert bg.pending == 4 and bg.full()
        gate.set()
        got = sorted(ended.get(timeout=WAIT) for _ in range(4))
        assert bg.wait_for_room(timeout=WAIT) and bg.pending == 0
    assert got == [(f"tag-{i}", Outcome.DELIVERED) for i in range(4)]
    assert ended.empty()
    assert receiver.deliveries() == Counter({"b0": 1, "b1": 1, "b2": 1, "b3": 1, "b4": 1})


def test_closing_cancels_a_batch_in_flight_and_calls_back_for_each(
    receiver: WebhookReceiver,
) -> None:
    gate = threading.Event()
    receiver.script("/held", then=Respond(200, gate=gate))
    ended: list[tuple[str, bool]] = []
    bg = BackgroundDeliverer(Deliverer(secrets=[SECRET], policy=fast_policy())).start()
    try:
        bg.submit_many(
            [(timer_webhook(f"c{i}", receiver.url("/held")), f"tag-{i}") for i in range(2)],
            lambda tag, task: ended.append((tag, task.cancelled())),
        )
        receiver.wait_for_in_flight(2, timeout=WAIT)
    finally:
        abandoned = bg.close(timeout=0)
        gate.set()
    assert abandoned == 2
    assert sorted(ended) == [("tag-0", True), ("tag-1", True)]
    assert bg.pending == 0
    with pytest.raises(RuntimeError, match="not running"):
        bg.submit_many([(timer_webhook("c9", receiver.url("/held")), "late")], lambda t, k: None)


def test_closing_abandons_a_delivery_in_flight_and_reports_it(receiver: WebhookReceiver) -> None:
    gate = threading.Event()
    receiver.script("/held", then=Respond(200, gate=gate))
    seen: list[Attempt] = []
    deliverer = Deliverer(secrets=[SECRET], policy=fast_policy(), on_attempt=seen.append)
    bg = BackgroundDeliverer(deliverer).start()
    try:
        future = bg.submit(timer_webhook("timer-14", receiver.url("/held")))
        receiver.wait_for_in_flight(1, timeout=WAIT)
    finally:
        abandoned = bg.close(timeout=0)
        gate.set()
    assert abandoned == 1
    assert future.cancelled()
    assert [(a.number, a.error, a.sent, a.outcome) for a in seen] == [
        (1, "cancelled", True, Outcome.ABANDONED)
    ]
    assert receiver.ids() == ["timer-14"]


def test_single_attempts_resume_the_count_for_a_caller_that_schedules(
    receiver: WebhookReceiver,
) -> None:
    receiver.script("/flaky", then=Respond(503))
    with running(policy=fast_policy(max_attempts=3)) as bg:
        webhook = timer_webhook("timer-15", receiver.url("/flaky"))
        first = bg.attempt(webhook).result(WAIT)
        # The notifier keeps first.next_attempt_at in its ledger; later, from that row:
        resumed = msgspec.structs.replace(
            webhook, attempts_made=2, first_attempt_at=first.started_at
        )
        third = bg.attempt(resumed).result(WAIT)
    assert (first.number, first.status, first.outcome) == (1, 503, Outcome.RETRY)
    assert first.retry_delay is not None and first.next_attempt_at is not None
    assert first.next_attempt_at > first.started_at
    assert (third.number, third.status, third.outcome) == (3, 503, Outcome.EXPIRED)
    assert receiver.ids() == ["timer-15"] * 2


# -- URL safety at connect time --------------------------------------------------------------


def test_a_host_resolving_to_a_denied_address_is_never_requested(receiver: WebhookReceiver) -> None:
    deny = DEFAULT_DENY + LOOPBACK
    with running(deny_networks=deny) as bg:
        by_name = bg.submit(timer_webhook("timer-16", f"http://localhost:{receiver.port}/")).result(
            WAIT
        )
        by_ip = bg.submit(timer_webhook("timer-17", receiver.url("/"))).result(WAIT)
    for delivery in (by_name, by_ip):
        assert delivery.outcome is Outcome.FAILED
        assert summary(delivery.attempts) == [(1, None, "unsafe_url", False, "failed")]
    assert (by_name.reason or "").startswith("url host 'localhost' resolves to ")
    assert (by_name.reason or "").endswith("(loopback)")
    assert (
        by_ip.reason
        == "url host '127.0.0.1' is 127.0.0.1, in denied network 127.0.0.0/8 (loopback)"
    )
    assert receiver.requests() == []


def test_the_address_connected_to_is_the_address_checked(receiver: WebhookReceiver) -> None:
    # At registration "hooks.test" pointed at an allowed address; by delivery time its DNS
    # answers loopback (rebinding). The deliverer checks the answer it connects with.
    deny = DEFAULT_DENY + LOOPBACK
    url = f"http://hooks.test:{receiver.port}/"
    assert (
        check_url(url, deny_networks=deny, resolve=lambda h, p: ["192.0.2.10"]).port
        == receiver.port
    )
    with pytest.raises(UnsafeUrl):
        check_url(url, deny_networks=deny, resolve=lambda h, p: ["127.0.0.1"])
    dns = FixedDns({"hooks.test": "127.0.0.1"})
    with running(deny_networks=deny, dns=dns) as bg:
        refused = bg.submit(timer_webhook("timer-18", url)).result(WAIT)
    assert summary(refused.attempts) == [(1, None, "unsafe_url", False, "failed")]
    assert refused.reason == (
        "url host 'hooks.test' resolves to 127.0.0.1, in denied network 127.0.0.0/8 (loopback)"
    )
    assert receiver.requests() == []
    # Where loopback is allowed the same name is delivered, to the checked address.
    with running(dns=dns) as bg:
        allowed = bg.submit(timer_webhook("timer-19", url)).result(WAIT)
    assert allowed.outcome is Outcome.DELIVERED
    [request] = receiver.requests()
    assert request.headers["host"] == f"hooks.test:{receiver.port}"


# -- https -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name hooks.test (the openssl command line)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_receiver(certificate: tuple[Path, Path]) -> Iterator[WebhookReceiver]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*certificate)
    with WebhookReceiver(secrets=[SECRET], tls=server) as rx:
        yield rx


def test_https_connects_to_the_checked_address_and_verifies_the_name(
    tls_receiver: WebhookReceiver, certificate: tuple[Path, Path]
) -> None:
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    url = f"https://hooks.test:{tls_receiver.port}/hook"
    with running(dns=FixedDns({"hooks.test": "127.0.0.1"}), ssl_context=trust) as bg:
        delivery = bg.submit(timer_webhook("timer-20", url)).result(WAIT)
    assert summary(delivery.attempts) == [(1, 200, None, True, "delivered")]
    [request] = tls_receiver.requests()
    assert request.verified and request.headers["host"] == f"hooks.test:{tls_receiver.port}"


@pytest.mark.parametrize("trusted", [False, True])
def test_a_failed_handshake_sent_nothing_so_at_most_once_retries_it(
    tls_receiver: WebhookReceiver, certificate: tuple[Path, Path], trusted: bool
) -> None:
    # Untrusted: the system's CAs do not know the certificate. Trusted: the certificate is
    # for hooks.test, and the URL names 127.0.0.1.
    options: dict[str, Any] = {"policy": fast_policy(mode=Mode.AT_MOST_ONCE, max_attempts=2)}
    if trusted:
        options["ssl_context"] = ssl.create_default_context(cafile=str(certificate[0]))
    with running(**options) as bg:
        delivery = bg.submit(timer_webhook("timer-21", tls_receiver.url("/"))).result(WAIT)
        tls_receiver.wait_until(
            lambda: len(tls_receiver.tls_failures) == 2, timeout=WAIT, what="2 failed handshakes"
        )
    assert delivery.outcome is Outcome.EXPIRED
    assert summary(delivery.attempts) == [
        (1, None, "tls", False, "retry"),
        (2, None, "tls", False, "expired"),
    ]
    assert "certificate verify failed" in (delivery.reason or "")
    assert tls_receiver.requests() == []
