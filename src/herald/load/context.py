"""What a load scenario's check and fixture are given, and what a check returns."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herald.load import CREATED_FILE
from herald.load.api import Api
from herald.load.locust_process import EndpointStats

POLL_SECS = 0.5


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """What a check found: ``summary`` is its one printed line, ``notes`` lines printed below
    it (figures), ``details`` every problem, ``figures`` its measurements (in summary.json)."""

    passed: bool
    summary: str
    details: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        counted: str,
        problems: list[str],
        *,
        after: float,
        notes: list[str],
        figures: dict[str, Any],
    ) -> CheckResult:
        """A check's verdict: failed with every problem on its line, or passed saying how long
        after the load it was made; ``counted`` opens the line either way."""
        if problems:
            return cls(
                passed=False,
                summary=f"{counted}; " + "; ".join(problems),
                details=tuple(problems),
                notes=tuple(notes),
                figures=figures,
            )
        return cls(
            passed=True,
            summary=f"{counted} ({after:.1f}s after the load)",
            notes=tuple(notes),
            figures=figures,
        )


@dataclass(kw_only=True)
class LoadContext:
    """One load test, as its fixture and check see it.

    ``locust_env``: the environment Locust will get (a fixture may add to it: a receiver's
    URL, say); ``webhook_secrets``: those the stack under load signs callbacks with (scenarios
    that receive them); ``fixture``: what the scenario's fixture yielded; ``stats`` (by endpoint,
    ``POST /api/runs``) and ``load_ended`` (``time.monotonic()``) are set once Locust exited.
    """

    scenario: str
    report_dir: Path
    api: Api
    check_timeout: float
    locust_env: dict[str, str]
    stop: threading.Event
    poll_every: float = POLL_SECS
    webhook_secrets: tuple[str, ...] = ()
    fixture: object = None
    stats: dict[str, EndpointStats] = field(default_factory=dict)
    load_ended: float = 0.0

    def created(self, kind: str) -> list[dict[str, Any]]:
        """What the load recorded creating, of ``kind`` (``run``, ...), in order."""
        path = self.report_dir / CREATED_FILE
        if not path.exists():
            return []
        lines = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
        return [entry for entry in lines if entry.get("kind") == kind]

    def successes(self, endpoint: str) -> int:
        """Requests to ``endpoint`` (``POST /api/runs``) that did not fail."""
        found = self.stats.get(endpoint)
        return found.requests - found.failures if found else 0

    def pause(self) -> bool:
        """Wait one polling interval; True if the load test is being stopped (Ctrl-C)."""
        return self.stop.wait(self.poll_every)
