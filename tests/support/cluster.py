"""Settings for the session's real broker and database, and services run in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from herald import kafka
from herald.config import Settings, load_settings
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase


def make_settings(
    broker: EmbeddedBroker, database: EmbeddedDatabase | None, namespace: str, **overrides: Any
) -> Settings:
    """Settings pointed at the session's broker (and database), under a test's namespace."""
    base: dict[str, Any] = {
        "kafka": {
            "bootstrap": broker.bootstrap,
            "namespace": namespace,
            "session_timeout_ms": kafka.EMBEDDED_SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": kafka.EMBEDDED_HEARTBEAT_MS,
            "partitions": 4,
        },
        # The session's database is shared: runs other tests leave unfinished would count
        # toward this limit (test_web_security sets and tests it).
        "limits": {"max_concurrent_runs": 100_000},
    }
    if database is not None:
        base["database"] = {"url": database.url}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_settings(overrides=base)


class ServiceThread:
    """A service's ``run()`` in a thread, stopped through its stop event."""

    def __init__(self, target: Callable[..., int], settings: Settings, **kwargs: Any) -> None:
        self.stop = threading.Event()
        self.result: int | None = None
        self.error: BaseException | None = None

        def body() -> None:
            try:
                self.result = target(settings, stop=self.stop, **kwargs)
            except BaseException as exc:  # re-raised in join() for the test to see
                self.error = exc

        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 30.0) -> int | None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "service did not stop in time"
        if self.error is not None:
            raise self.error
        return self.result
