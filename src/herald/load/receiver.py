"""The timers load test's webhook receiver: a real HTTP server on loopback that records every
callback as it arrives, by ``webhook-id`` (duplicates kept), and verifies its Standard
Webhooks signature with the secrets the stack signs with (herald's own
:func:`herald.webhooks.verify`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from herald.webhooks import VerificationError, verify
from herald.webhooks.signing import ID_HEADER

HOOK_PATH = "/hook"
# Bigger than any timer callback ({"id": "<uuid>"}): a larger body is read no further.
MAX_BODY = 64 * 1024
# The signature's timestamp may be this far from now: generous, since a retried timer keeps
# its first attempt's timestamp for a while on a busy machine.
TOLERANCE_SECS = 600.0


@dataclass(frozen=True)
class Arrival:
    """One callback as it arrived: ``arrived_at`` in unix seconds; ``error`` why its signature
    or its body is wrong (None: signed by a known secret, body ``{"id": <webhook-id>}``)."""

    webhook_id: str | None
    arrived_at: float
    error: str | None


class Receiver:
    """Listens on ``host`` (a free port unless ``port``); :attr:`url` is where timers call.

    ``secrets``: those the stack signs callbacks with (``whsec_…``); every arrival is verified
    against them. The server is aiohttp's, on an event loop of its own thread: 10,000 signed
    callbacks from 64 kept-alive connections cost it 230-300 µs of CPU each (2,500-2,900 a
    second), the standard library's threaded server 330-410 µs (180-1,900 a second); it shares
    the cores with the services it measures."""

    def __init__(self, *, secrets: tuple[str, ...], host: str = "127.0.0.1", port: int = 0) -> None:
        self._secrets = secrets
        self._host = host
        self._port = port
        self._bound: int | None = None
        self._lock = threading.Condition()
        self._arrivals: list[Arrival] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The callback URL timers are given."""
        if self._bound is None:
            raise RuntimeError("the receiver is not started")
        return f"http://{self._host}:{self._bound}{HOOK_PATH}"

    def start(self) -> Receiver:
        """Listen, on an event loop of its own thread; returns once the port is bound."""
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._serve, args=(loop, ready), name="load-webhook-receiver"
        )
        self._thread.start()
        try:
            self._bound = ready.result(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop listening, close every kept-alive connection and join the server's thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._loop = self._thread = None
        self._bound = None

    def _serve(
        self, loop: asyncio.AbstractEventLoop, ready: concurrent.futures.Future[int]
    ) -> None:
        asyncio.set_event_loop(loop)
        app = web.Application()
        # Every POST is recorded, whatever its path (one to another path is refused).
        app.router.add_route("POST", "/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self._host, self._port)
            loop.run_until_complete(site.start())
            ready.set_result(int(runner.addresses[0][1]))  # the port bound (port 0: a free one)
        except BaseException as exc:
            ready.set_exception(exc)
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.content.read(MAX_BODY)
        headers = {k.lower(): v for k, v in request.headers.items()}
        error = self._record(request.path_qs, headers, body)
        # A callback that does not verify is refused, as a real receiver must: the notifier
        # then records the attempt as failed, and the check finds the timer undelivered.
        return web.Response(status=401 if error else 200, body=(error or "").encode())

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def arrivals(self) -> list[Arrival]:
        """Every callback so far, in arrival order, duplicates kept."""
        with self._lock:
            return list(self._arrivals)

    def counts(self) -> Counter[str | None]:
        """Callbacks accepted (signed, well formed) per ``webhook-id``: a timer delivered twice
        counts 2; refused ones are not counted."""
        with self._lock:
            return Counter(a.webhook_id for a in self._arrivals if a.error is None)

    # -- on the server's thread ---------------------------------------------------------------

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> str | None:
        arrived = time.time()
        error = _problem(self._secrets, path, headers, body)
        with self._lock:
            self._arrivals.append(
                Arrival(webhook_id=headers.get(ID_HEADER), arrived_at=arrived, error=error)
            )
            self._lock.notify_all()
        return error


def _problem(
    secrets: tuple[str, ...], path: str, headers: dict[str, str], body: bytes
) -> str | None:
    if path.split("?", 1)[0] != HOOK_PATH:
        return f"POST to {path}, not {HOOK_PATH}"
    try:
        webhook_id = verify(secrets, headers=headers, body=body, tolerance=TOLERANCE_SECS)
    except VerificationError as exc:
        return f"signature: {exc}"
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return f"body is not JSON: {body[:80]!r}"
    if not isinstance(payload, dict) or payload.get("id") != webhook_id:
        return f'body {body[:80]!r} is not {{"id": {webhook_id!r}}}'
    return None
