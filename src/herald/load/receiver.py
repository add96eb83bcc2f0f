"""The timers load test's webhook receiver: a real HTTP server on loopback that records every
callback as it arrives, by ``webhook-id`` (duplicates kept), and verifies its Standard
Webhooks signature with the secrets the stack signs with (herald's own
:func:`herald.webhooks.verify`)."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any

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


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads

    def __init__(self, receiver: Receiver, host: str, port: int) -> None:
        self.receiver = receiver
        super().__init__((host, port), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the notifier reuses its connections
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
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_BODY))
        headers = {k.lower(): v for k, v in self.headers.items()}
        error = self.server.receiver._record(self.path, headers, body)
        # A callback that does not verify is refused, as a real receiver must: the notifier
        # then records the attempt as failed, and the check finds the timer undelivered.
        status = 401 if error else 200
        reply = (error or "").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the arrivals are the log


class Receiver:
    """Listens on ``host`` (a free port unless ``port``); :attr:`url` is where timers call.

    ``secrets``: those the stack signs callbacks with (``whsec_…``); every arrival is verified
    against them."""

    def __init__(self, *, secrets: tuple[str, ...], host: str = "127.0.0.1", port: int = 0) -> None:
        self._secrets = secrets
        self._host = host
        self._port = port
        self._lock = threading.Condition()
        self._arrivals: list[Arrival] = []
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The callback URL timers are given."""
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        port = self._server.server_address[1]
        return f"http://{self._host}:{port}{HOOK_PATH}"

    def start(self) -> Receiver:
        """Listen, serving each connection on a thread of its own."""
        self._server = _Server(self, self._host, self._port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="load-webhook-receiver",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, close every kept-alive connection and join the handlers."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join()
        with self._lock:
            kept_alive = list(self._connections)
        for conn in kept_alive:
            with contextlib.suppress(OSError):  # its peer closed it already
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        self._server = self._thread = None

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

    # -- on the server's threads --------------------------------------------------------------

    def _opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

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
