"""The sender: webhooks over HTTP with asyncio (aiohttp), a per-host limit and the policy.

Many deliveries share one event loop and one connection pool: no thread per request. A
request is POSTed once per attempt, signed afresh (new timestamp) under the same
``webhook-id``; redirects are never followed. The addresses a host resolves to are
checked against the deny list inside the connector's resolver, so the address checked is
the address connected to (no window for DNS rebinding between check and connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import functools
import logging
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from herald import __version__
from herald.webhooks import signing
from herald.webhooks.policy import (
    Decision,
    Mode,
    Outcome,
    Policy,
    Result,
    classify_error,
    classify_status,
    parse_retry_after,
)
from herald.webhooks.records import Attempt, Delivery, Webhook
from herald.webhooks.signing import SecretLike
from herald.webhooks.urls import (
    DEFAULT_DENY,
    NetworkRules,
    UnsafeUrl,
    check_addresses,
    literal_address,
    split_url,
)

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"herald-webhooks/{__version__}"
MAX_EXCERPT = 256  # bytes of an answer's body kept in the attempt record
TARGET_CACHE = 4096  # URLs whose pre-request check a deliverer remembers

# The values of Attempt.error. "Never sent" kinds failed before a connection was handed to
# the request, so the peer cannot have seen it: retrying them is safe in either mode.
ERROR_KINDS = {
    "unsafe_url": "the URL, or an address its host resolves to, is refused (never sent)",
    "invalid_url": "the URL cannot be requested (never sent)",
    "dns": "the host name did not resolve (never sent)",
    "connect": "the TCP connection failed: refused, unreachable (never sent)",
    "connect_timeout": "no connection within the timeout (never sent)",
    "tls": "the TLS handshake or the certificate failed (never sent)",
    "timeout": "no answer within the timeout after the request may have been sent",
    "disconnected": "the peer closed the connection without answering",
    "reset": "the connection was reset before an answer",
    "protocol": "the answer was not valid HTTP",
    "connection": "another connection error after the request may have been sent",
    "cancelled": "the deliverer was stopped during the attempt",
}


class _RefusedAddress(OSError):
    """Raised by the resolver for a denied address; aiohttp wraps it as a DNS error."""

    def __init__(self, unsafe: UnsafeUrl) -> None:
        super().__init__(str(unsafe))
        self.unsafe = unsafe


class CheckedResolver(AbstractResolver):
    """Resolves through ``upstream`` and refuses hosts with any address in a denied network."""

    def __init__(
        self,
        upstream: AbstractResolver,
        *,
        deny_networks: NetworkRules,
        allow_networks: NetworkRules | None,
    ) -> None:
        self._upstream = upstream
        self._deny = deny_networks
        self._allow = allow_networks

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The upstream answer, if every address in it is allowed."""
        results = await self._upstream.resolve(host, port, family)
        try:
            check_addresses(
                host,
                [r["host"] for r in results],
                deny_networks=self._deny,
                allow_networks=self._allow,
            )
        except UnsafeUrl as exc:
            raise _RefusedAddress(exc) from exc
        return results

    async def close(self) -> None:
        """Close the upstream resolver."""
        await self._upstream.close()


@dataclass(frozen=True)
class HostLoad:
    """Requests in flight to one host, and deliveries waiting for one of its slots."""

    in_flight: int
    waiting: int


class _Slot:
    __slots__ = ("active", "semaphore", "users")

    def __init__(self, limit: int) -> None:
        self.semaphore = asyncio.Semaphore(limit)
        self.users = 0
        self.active = 0


class _HostLimiter:
    """At most ``limit`` requests in flight per host; a host's entry lives while it is used.

    ``acquire`` and ``release`` rather than an async context manager: this runs once per
    attempt, and the generator-based manager cost a few per cent of a delivery's CPU."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[str, _Slot] = {}

    async def acquire(self, key: str) -> _Slot:
        """Wait for one of ``key``'s slots; pair with :meth:`release`."""
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(self._limit)
        slot.users += 1
        try:
            await slot.semaphore.acquire()
        except BaseException:  # cancelled while waiting: no slot taken
            self._leave(key, slot)
            raise
        slot.active += 1
        return slot

    def release(self, key: str, slot: _Slot) -> None:
        slot.active -= 1
        slot.semaphore.release()
        self._leave(key, slot)

    def _leave(self, key: str, slot: _Slot) -> None:
        slot.users -= 1
        if slot.users == 0:
            del self._slots[key]

    def load(self) -> dict[str, HostLoad]:
        return {k: HostLoad(s.active, s.users - s.active) for k, s in self._slots.items()}


class _Progress:
    """How far one request got: whether a connection was handed to it."""

    __slots__ = ("connected",)

    def __init__(self) -> None:
        self.connected = False


# The attempt under way in this task; the connector marks it once it hands a connection over.
_PROGRESS: contextvars.ContextVar[_Progress | None] = contextvars.ContextVar(
    "herald_webhook_progress", default=None
)


class _MarkingConnector(aiohttp.TCPConnector):
    """aiohttp's connector, marking the attempt connected when a connection (new or pooled)
    is handed to its request: from then on its bytes may be on the wire, and any failure is
    an unknown outcome, never "not sent". (aiohttp's request tracing could tell the same, but
    it built and dispatched a dozen trace events per request: 16 % of a delivery's CPU.)"""

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        conn = await super().connect(req, traces, timeout)
        progress = _PROGRESS.get()
        if progress is not None:
            progress.connected = True
        return conn


# In order: the first row whose types match gives the kind and whether it is permanent.
_ERROR_TABLE: tuple[
    tuple[type[BaseException] | tuple[type[BaseException], ...], str, bool], ...
] = (
    (aiohttp.ClientConnectorDNSError, "dns", False),
    (aiohttp.InvalidURL, "invalid_url", True),
    (aiohttp.ClientSSLError, "tls", False),
    (aiohttp.ConnectionTimeoutError, "connect_timeout", False),
    (aiohttp.ClientConnectorError, "connect", False),
    (TimeoutError, "timeout", False),
    (aiohttp.ServerDisconnectedError, "disconnected", False),
    (ConnectionResetError, "reset", False),
    ((aiohttp.ClientPayloadError, aiohttp.ClientResponseError), "protocol", False),
)


def _describe(exc: Exception, *, connected: bool) -> tuple[str, bool, str]:
    """The error kind, whether it is permanent, and a readable detail of ``exc``."""
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorDNSError) and isinstance(
        exc.os_error, _RefusedAddress
    ):
        return "unsafe_url", True, exc.os_error.unsafe.reason
    if isinstance(exc, OSError) and exc.errno == errno.ECONNRESET:
        return "reset", False, detail  # aiohttp's ClientOSError carries the errno only
    kind, permanent = next(
        ((k, p) for types, k, p in _ERROR_TABLE if isinstance(exc, types)), ("connection", False)
    )
    if kind == "timeout" and not connected:
        kind = "connect_timeout"  # the attempt's whole budget ran out before a connection
    return kind, permanent, detail


def _status_detail(status: int, location: str | None) -> str | None:
    if 300 <= status <= 399:
        return f"redirect {status} to {location or '(no Location)'} not followed"
    if 200 <= status <= 299:
        return None
    return f"HTTP {status}"


class Deliverer:
    """Delivers webhooks, signed, with retries by ``policy``; use inside one event loop.

    ``secrets`` sign every webhook that brings none of its own (several: rotation).
    ``timeout`` bounds one attempt (connect, send, answer), ``connect_timeout`` its TCP
    connect; the specification suggests 15 to 30 s. ``on_attempt`` is called, on the loop,
    with every attempt record as soon as it ends (keep it quick: hand it to a queue).
    ``dns`` is the resolver asked before the deny-list check (aiohttp's threaded one);
    ``ssl_context`` replaces the default verification (the system's CAs), e.g. for a
    private CA. Certificates are always verified against the URL's host name.
    """

    def __init__(
        self,
        *,
        secrets: Sequence[SecretLike],
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        max_in_flight_per_host: int = 8,
        policy: Policy | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        deny_networks: NetworkRules = DEFAULT_DENY,
        allow_networks: NetworkRules | None = None,
        on_attempt: Callable[[Attempt], None] | None = None,
        clock: Callable[[], float] = time.time,
        dns: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not secrets:
            raise ValueError("a deliverer needs at least one secret to sign with")
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeout and connect_timeout must be positive")
        if max_in_flight_per_host < 1:
            raise ValueError(
                f"max_in_flight_per_host must be at least 1, got {max_in_flight_per_host}"
            )
        self._secrets = tuple(signing.parse_secret(s) for s in secrets)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._policy = policy or Policy()
        self._user_agent = user_agent
        self._deny = deny_networks
        self._allow = allow_networks
        self._on_attempt = on_attempt
        self._clock = clock
        self._dns = dns
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._limiter = _HostLimiter(max_in_flight_per_host)
        self._target = functools.lru_cache(maxsize=TARGET_CACHE)(self._check_target)
        self._session: aiohttp.ClientSession | None = None

    @property
    def policy(self) -> Policy:
        """The retry policy in force."""
        return self._policy

    async def start(self) -> None:
        """Open the connection pool; call on the loop that will deliver."""
        if self._session is not None:
            return
        connector = _MarkingConnector(
            resolver=CheckedResolver(
                self._dns or aiohttp.ThreadedResolver(),
                deny_networks=self._deny,
                allow_networks=self._allow,
            ),
            # The per-host limiter admits requests; a pool limit would only queue them
            # again, inside the attempt's timeout.
            limit=0,
            limit_per_host=0,
            ssl=self._ssl,
            # at_most_once never reuses a kept-alive connection: the peer may have closed it
            # just as the request went out, an "unknown outcome" that would not be retried.
            force_close=self._policy.mode is Mode.AT_MOST_ONCE,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout, sock_connect=self._connect_timeout),
            headers={"User-Agent": self._user_agent},
            cookie_jar=aiohttp.DummyCookieJar(),  # no state carried from one webhook to the next
            trust_env=False,  # no proxy from the environment: it would bypass the address check
            # Answers are read only for a short excerpt: ask for them uncompressed.
            skip_auto_headers=("Accept-Encoding",),
            auto_decompress=False,
        )

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> Deliverer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def load(self) -> dict[str, HostLoad]:
        """Per host (``scheme://host:port``): requests in flight and deliveries waiting."""
        return self._limiter.load()

    async def deliver(self, webhook: Webhook) -> Delivery:
        """Attempt ``webhook`` until the policy says stop; every attempt is in the result.

        A resumed webhook already out of attempts or past its deadline is ``expired`` with
        no new attempt.
        """
        attempts: list[Attempt] = []
        number = webhook.attempts_made
        first_attempt_at = webhook.first_attempt_at
        if (number or first_attempt_at is not None) and self._policy.exhausted(
            attempts_made=number, first_attempt_at=first_attempt_at, now=self._clock()
        ):
            logger.info("webhook %s to %s: expired before a new attempt", webhook.id, webhook.url)
            return Delivery(
                webhook_id=webhook.id, url=webhook.url, outcome=Outcome.EXPIRED, attempts=()
            )
        while True:
            number += 1
            attempt = await self._attempt(webhook, number, first_attempt_at)
            attempts.append(attempt)
            if first_attempt_at is None:
                first_attempt_at = attempt.started_at
            if attempt.outcome is not Outcome.RETRY:
                break
            await asyncio.sleep(attempt.retry_delay or 0.0)
        delivery = Delivery(
            webhook_id=webhook.id,
            url=webhook.url,
            outcome=attempt.outcome,
            attempts=tuple(attempts),
        )
        if delivery.outcome is not Outcome.DELIVERED:
            logger.info(
                "webhook %s to %s: %s after %d attempt(s): %s",
                webhook.id,
                webhook.url,
                delivery.outcome,
                len(attempts),
                delivery.reason,
            )
        return delivery

    async def attempt(self, webhook: Webhook) -> Attempt:
        """One attempt, number ``attempts_made + 1``, for a caller that schedules retries."""
        return await self._attempt(webhook, webhook.attempts_made + 1, webhook.first_attempt_at)

    async def _attempt(
        self, webhook: Webhook, number: int, first_attempt_at: float | None
    ) -> Attempt:
        key, unsafe = self._target(webhook.url)
        if unsafe is not None:
            return self._record(
                webhook,
                number,
                first_attempt_at,
                self._clock(),
                time.monotonic(),
                result=Result.FAILED,
                error="unsafe_url",
                detail=unsafe.reason,
                sent=False,
            )
        slot = await self._limiter.acquire(key)
        try:
            return await self._request(webhook, number, first_attempt_at)
        finally:
            self._limiter.release(key, slot)

    def _check_target(self, url: str) -> tuple[str, UnsafeUrl | None]:
        """The per-host limiter's key for ``url`` and why it is refused, if it is, before any
        resolution: its syntax and scheme, and an IP-literal host (which never reaches the
        resolver). Cached per URL (``_target``): the rules do not change."""
        try:
            scheme, host, port = split_url(url)
            literal = literal_address(host)
            if literal is not None:
                check_addresses(
                    host, [literal], deny_networks=self._deny, allow_networks=self._allow
                )
        except UnsafeUrl as exc:
            return "", exc
        return f"{scheme}://{host}:{port}", None

    async def _request(
        self, webhook: Webhook, number: int, first_attempt_at: float | None
    ) -> Attempt:
        if self._session is None:
            raise RuntimeError("Deliverer.start() was not awaited")
        started_at = self._clock()
        started = time.monotonic()
        signed = signing.headers(
            webhook.secrets or self._secrets,
            msg_id=webhook.id,
            timestamp=int(started_at),
            body=webhook.body,
        )
        signed["Content-Type"] = webhook.content_type
        progress = _Progress()
        _PROGRESS.set(progress)  # this task's own context: the connector marks it
        status: int | None = None
        retry_after: str | None = None
        location: str | None = None
        excerpt: str | None = None
        try:
            async with self._session.post(
                webhook.url,
                data=webhook.body,
                headers=signed,
                allow_redirects=False,
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                location = response.headers.get("Location")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    # The status is the answer; a body that fails to arrive changes nothing.
                    raw = await response.content.read(MAX_EXCERPT)
                    excerpt = raw.decode("utf-8", "replace") or None
        except asyncio.CancelledError:
            self._report(
                self._build(
                    webhook,
                    number,
                    started_at,
                    started,
                    status=status,
                    error="cancelled",
                    detail="the deliverer stopped",
                    sent=progress.connected,
                    decision=Decision(Outcome.ABANDONED),
                )
            )
            raise
        except Exception as exc:
            if status is None:
                kind, permanent, detail = _describe(exc, connected=progress.connected)
                if kind == "timeout":
                    detail = f"no answer within {self._timeout:g}s ({detail})"
                return self._record(
                    webhook,
                    number,
                    first_attempt_at,
                    started_at,
                    started,
                    result=classify_error(sent=progress.connected, permanent=permanent),
                    error=kind,
                    detail=detail,
                    sent=progress.connected,
                )
            # Failing after the status line arrived (closing the response) keeps the answer.
            logger.debug("webhook %s: error after the answer: %r", webhook.id, exc)
        return self._record(
            webhook,
            number,
            first_attempt_at,
            started_at,
            started,
            result=classify_status(status),
            status=status,
            detail=_status_detail(status, location),
            sent=True,
            retry_after=parse_retry_after(retry_after, now=started_at),
            excerpt=excerpt,
        )

    def _record(
        self,
        webhook: Webhook,
        number: int,
        first_attempt_at: float | None,
        started_at: float,
        started: float,
        *,
        result: Result,
        sent: bool,
        status: int | None = None,
        error: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
        excerpt: str | None = None,
    ) -> Attempt:
        """Decide what follows the attempt, build its record and report it."""
        ended_at = started_at + (time.monotonic() - started)
        decision = self._policy.decide(
            result,
            attempt=number,
            now=ended_at,
            first_attempt_at=started_at if first_attempt_at is None else first_attempt_at,
            retry_after=retry_after,
        )
        attempt = self._build(
            webhook,
            number,
            started_at,
            started,
            status=status,
            error=error,
            detail=detail,
            sent=sent,
            decision=decision,
            retry_after=retry_after,
            excerpt=excerpt,
        )
        self._report(attempt)
        return attempt

    def _build(
        self,
        webhook: Webhook,
        number: int,
        started_at: float,
        started: float,
        *,
        status: int | None,
        error: str | None,
        detail: str | None,
        sent: bool,
        decision: Decision,
        retry_after: float | None = None,
        excerpt: str | None = None,
    ) -> Attempt:
        return Attempt(
            webhook_id=webhook.id,
            number=number,
            url=webhook.url,
            started_at=started_at,
            duration_ms=round((time.monotonic() - started) * 1000.0, 3),
            status=status,
            error=error,
            detail=detail,
            sent=sent,
            outcome=decision.outcome,
            retry_after=retry_after,
            retry_delay=decision.delay,
            next_attempt_at=decision.next_attempt_at,
            response_excerpt=excerpt,
        )

    def _report(self, attempt: Attempt) -> None:
        logger.debug(
            "webhook %s attempt %d: status=%s error=%s outcome=%s",
            attempt.webhook_id,
            attempt.number,
            attempt.status,
            attempt.error,
            attempt.outcome,
        )
        if self._on_attempt is not None:
            self._on_attempt(attempt)
