"""A real webhook receiver for tests: a threaded HTTP server on 127.0.0.1 that records every
request, verifies its signature, and misbehaves per path on demand.

Scripts are lists of actions per path, consumed one per request, then ``then`` for every
request after::

    with WebhookReceiver(secrets=[SECRET]) as rx:
        rx.script("/flaky", [Respond(500)] * 2)          # 500, 500, then 200
        rx.script("/gone", then=Respond(410))
        rx.script("/slow", [Stall(5.0)])                   # past the client's timeout, once
        rx.script("/drop", then=Drop())                    # close without answering
        rx.script("/busy", [Respond(429, {"Retry-After": "1"})])
        rx.down(); ...; rx.up()                            # not listening, then back on the port
    WebhookReceiver(tls=server_context)                    # https (the handshake is recorded)
        rx.wait_for_deliveries("wh1", 3, timeout=10)
"""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from herald.webhooks import VerificationError, verify
from herald.webhooks.signing import ID_HEADER, SecretLike


@dataclass(frozen=True)
class Respond:
    """Answer ``status`` (with headers and body); first wait for ``gate`` when one is given."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    gate: threading.Event | None = None


@dataclass(frozen=True)
class Stall:
    """Answer nothing for ``seconds`` (past the client's timeout), then close."""

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering; ``reset`` sends a TCP RST instead of a FIN."""

    reset: bool = False


Action = Respond | Stall | Drop


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    path: str
    method: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    arrived_at: float  # unix seconds
    webhook_id: str | None
    verified: bool
    verify_error: str | None


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads
    allow_reuse_address = True  # up() binds the same port again at once

    def __init__(self, port: int, receiver: WebhookReceiver, tls: ssl.SSLContext | None) -> None:
        self.receiver = receiver
        self.tls = tls
        super().__init__(("127.0.0.1", port), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        # The handshake runs here, on the connection's own thread, not in accept().
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.receiver._tls_failed(exc)
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.receiver._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.receiver._closed(self.connection)

    def do_POST(self) -> None:
        self.server.receiver._handle(self)

    do_GET = do_POST
    do_PUT = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass  # the records are the log


class WebhookReceiver:
    """The receiver; ``url(path)`` is where to send. Records survive ``down()``/``up()``."""

    def __init__(
        self,
        *,
        secrets: Sequence[SecretLike] = (),
        reject_invalid: bool = True,
        tolerance: float = 300.0,
        default: Action | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._tls = tls
        self.tls_failures: list[str] = []  # handshakes that failed (no HTTP request followed)
        self._secrets = tuple(secrets)
        self._reject_invalid = reject_invalid and bool(self._secrets)
        self._tolerance = tolerance
        self._default: Action = default or Respond(200)
        self._cond = threading.Condition()
        self._requests: list[Received] = []
        self._scripts: dict[str, tuple[list[Action], Action]] = {}
        self._in_flight = 0
        self._max_in_flight = 0
        self._connections: set[socket.socket] = set()
        self._release = threading.Event()  # set when the server goes down: stalls end
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> WebhookReceiver:
        """Listen on a free port of 127.0.0.1."""
        self._listen(0)
        return self

    def stop(self) -> None:
        """Stop listening, release stalled handlers and close every connection."""
        self._shutdown()

    def down(self) -> None:
        """Stop listening and close every open connection: connects are refused until up()."""
        self._shutdown()

    def up(self) -> None:
        """Listen again on the same port."""
        if self._server is not None:
            raise RuntimeError("receiver is already up")
        self._listen(self.port)

    def _listen(self, port: int) -> None:
        server = _Server(port, self, self._tls)
        self._release = threading.Event()
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-receiver"
        )
        self._thread.start()

    def _shutdown(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        self._release.set()
        server.shutdown()
        thread.join()
        with self._cond:
            open_connections = list(self._connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):  # already closed by its peer
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the handler threads, which now see EOF

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, path: str = "/") -> str:
        """The URL of ``path`` on this receiver."""
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    # -- scripting ---------------------------------------------------------------------------

    def script(
        self, path: str, actions: Iterable[Action] = (), *, then: Action | None = None
    ) -> None:
        """Answer requests to ``path`` with ``actions`` in turn, then ``then`` (default 200)."""
        with self._cond:
            self._scripts[path] = (list(actions), then or self._default)

    def _next_action(self, path: str) -> Action:
        with self._cond:
            script = self._scripts.get(path)
            if script is None:
                return self._default
            actions, then = script
            return actions.pop(0) if actions else then

    # -- what arrived ------------------------------------------------------------------------

    def requests(self, path: str | None = None) -> list[Received]:
        """Every request so far (to ``path``, if given), in arrival order."""
        with self._cond:
            return [r for r in self._requests if path is None or r.path == path]

    def ids(self) -> list[str | None]:
        """The webhook-id of every request, in arrival order, duplicates kept."""
        with self._cond:
            return [r.webhook_id for r in self._requests]

    def deliveries(self) -> Counter[str | None]:
        """How many requests arrived per webhook-id (duplicates counted)."""
        return Counter(self.ids())

    @property
    def in_flight(self) -> int:
        """Requests being handled now."""
        with self._cond:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests handled at once so far."""
        with self._cond:
            return self._max_in_flight

    def wait_until(self, predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Wait for ``predicate`` (evaluated under the receiver's lock); fail loudly on timeout."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(
                    f"webhook receiver: timed out after {timeout}s waiting for {what};"
                    f" {len(self._requests)} request(s): {[r.webhook_id for r in self._requests]},"
                    f" {self._in_flight} in flight"
                )

    def wait_for_requests(self, n: int, *, timeout: float, path: str | None = None) -> None:
        """Wait until ``n`` requests (to ``path``, if given) have arrived."""
        self.wait_until(
            lambda: sum(1 for r in self._requests if path is None or r.path == path) >= n,
            timeout=timeout,
            what=f"{n} request(s)" + (f" to {path}" if path else ""),
        )

    def wait_for_deliveries(self, webhook_id: str, n: int, *, timeout: float) -> None:
        """Wait until ``n`` requests carrying ``webhook_id`` have arrived."""
        self.wait_until(
            lambda: sum(1 for r in self._requests if r.webhook_id == webhook_id) >= n,
            timeout=timeout,
            what=f"{n} request(s) with webhook-id {webhook_id}",
        )

    def wait_for_in_flight(self, n: int, *, timeout: float) -> None:
        """Wait until ``n`` requests are being handled at once."""
        self.wait_until(
            lambda: self._in_flight >= n, timeout=timeout, what=f"{n} request(s) in flight"
        )

    # -- handling (on the server's threads) --------------------------------------------------

    def _tls_failed(self, exc: BaseException) -> None:
        with self._cond:
            self.tls_failures.append(f"{type(exc).__name__}: {exc}")
            self._cond.notify_all()

    def _opened(self, conn: socket.socket) -> None:
        with self._cond:
            self._connections.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._cond:
            self._connections.discard(conn)

    def _verify(self, headers: dict[str, str], body: bytes) -> str | None:
        if not self._secrets:
            return "no secret configured"
        try:
            verify(self._secrets, headers=headers, body=body, tolerance=self._tolerance)
        except VerificationError as exc:
            return str(exc)
        return None

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        error = self._verify(headers, body)
        path = handler.path.split("?", 1)[0]
        with self._cond:
            self._requests.append(
                Received(
                    path=path,
                    method=handler.command,
                    headers=headers,
                    body=body,
                    arrived_at=time.time(),
                    webhook_id=headers.get(ID_HEADER),
                    verified=error is None,
                    verify_error=error,
                )
            )
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._cond.notify_all()
        try:
            action = self._next_action(path)
            if error is not None and self._reject_invalid:
                action = Respond(401, body=error.encode())
            self._perform(handler, action)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _perform(self, handler: _Handler, action: Action) -> None:
        release = self._release
        if isinstance(action, Stall):
            release.wait(action.seconds)
            handler.close_connection = True
            return
        if isinstance(action, Drop):
            handler.close_connection = True
            if action.reset:
                # SO_LINGER with a zero timeout makes close() send RST, not FIN; the socket is
                # detached first so the server's own shutdown (a FIN) cannot come before it.
                sock = handler.connection
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                os.close(sock.detach())
            return
        if action.gate is not None:
            while not action.gate.wait(0.05) and not release.is_set():
                pass
        try:
            handler.send_response(action.status)
            for name, value in action.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(action.body)))
            handler.end_headers()
            handler.wfile.write(action.body)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True  # the client gave up (its timeout) and left
