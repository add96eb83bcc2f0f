"""Progress of a run, aggregated from the results stream (never from shared counters)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Latency histogram: logarithmic buckets 2% wide from 0.01 ms up, so a percentile is off by
# at most 1% of its value, in constant memory and with one log() per record.
_GAMMA = 1.02
_INV_LOG_GAMMA = 1.0 / math.log(_GAMMA)
_FLOOR_MS = 0.01


def bucket_of(latency_ms: float) -> int:
    """The histogram bucket of a latency; 0 holds everything under 0.01 ms."""
    if latency_ms < _FLOOR_MS:
        return 0
    return int(math.log(latency_ms / _FLOOR_MS) * _INV_LOG_GAMMA) + 1


def bucket_value(bucket: int) -> float:
    """A bucket's representative latency (the middle of its range, geometrically)."""
    if bucket == 0:
        return 0.0
    return float(_FLOOR_MS * _GAMMA ** (bucket - 0.5))


def percentiles(hist: dict[int, int], qs: Iterable[float]) -> list[float | None]:
    """Latencies at quantiles ``qs`` (0-1) of a histogram; None when it is empty."""
    total = sum(hist.values())
    qs = list(qs)
    if total == 0:
        return [None for _ in qs]
    out: list[float | None] = []
    ordered = sorted(hist.items())
    for q in qs:
        rank = max(1, math.ceil(q * total))
        seen = 0
        for bucket, count in ordered:
            seen += count
            if seen >= rank:
                out.append(bucket_value(bucket))
                break
    return out


@dataclass
class WorkerStats:
    """One worker's share of a run."""

    by_status: dict[str, int] = field(default_factory=dict)
    total: int = 0
    succeeded: int = 0
    latency_sum_ms: float = 0.0


@dataclass
class RunStats:
    """Everything the monitor knows about one run, from its results stream.

    ``statuses`` maps each status of the run's scenario to whether it counts as success;
    ``worker_label`` names a worker in the summary (``sender``: the per-worker figures are
    under ``senders``). The summary speaks the scenario's words: one count per status.
    """

    run_id: str
    statuses: dict[str, bool] = field(default_factory=dict)
    worker_label: str = "worker"
    expected: int | None = None
    requested_at: float | None = None  # wall-clock seconds
    by_status: dict[str, int] = field(default_factory=dict)
    total: int = 0
    succeeded: int = 0
    latency_sum_ms: float = 0.0
    hist: dict[int, int] = field(default_factory=dict)
    workers: dict[int, WorkerStats] = field(default_factory=dict)
    first_result_at: float | None = None  # wall-clock seconds, as the monitor saw it
    last_result_at: float | None = None
    # One byte per message (by its seq): a result seen twice is counted once. Brokers that
    # show aborted transactions' records to read_committed readers (the embedded one does)
    # would otherwise inflate the totals after a worker dies mid-transaction.
    seen: bytearray = field(default_factory=bytearray)
    duplicates: int = 0
    figures: Any = None  # the scenario's own figures (herald.scenarios.base.Figures), if any

    @property
    def failures(self) -> int:
        return self.total - self.succeeded

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.total >= self.expected

    def first_sight(self, seq: int) -> bool:
        """True the first time result ``seq`` is seen; False (and counted) after that."""
        seen = self.seen
        if seq >= len(seen):
            seen.extend(bytes(max(seq + 1 - len(seen), len(seen), 1024)))
        if seen[seq]:
            self.duplicates += 1
            return False
        seen[seq] = 1
        return True

    def add(self, worker: int, status: str, latency_ms: float) -> None:
        """Count one result (the monitor inlines this on its hot path)."""
        w = self.workers.get(worker)
        if w is None:
            w = self.workers[worker] = WorkerStats()
        self.by_status[status] = self.by_status.get(status, 0) + 1
        w.by_status[status] = w.by_status.get(status, 0) + 1
        self.total += 1
        w.total += 1
        if self.statuses.get(status, False):
            self.succeeded += 1
            w.succeeded += 1
        self.latency_sum_ms += latency_ms
        w.latency_sum_ms += latency_ms
        b = bucket_of(latency_ms)
        self.hist[b] = self.hist.get(b, 0) + 1

    def counts(self, by_status: dict[str, int]) -> dict[str, int]:
        """A count for every status of the scenario (0 when unseen), then any other seen."""
        out = {status: by_status.get(status, 0) for status in self.statuses}
        out.update(by_status)
        return out

    def summary(self, now: float, current_rate: float | None = None) -> dict[str, Any]:
        """A JSON-ready snapshot: one count per status (``sent``, ``failed``, ...), %, latency,
        throughput, ETA, and per worker under the worker label's plural (``senders``)."""
        p50, p95, p99 = percentiles(self.hist, (0.5, 0.95, 0.99))
        start = self.requested_at if self.requested_at is not None else self.first_result_at
        end = self.last_result_at if self.complete and self.last_result_at else now
        elapsed = max(0.0, end - start) if start is not None else 0.0
        overall = self.total / elapsed if elapsed > 0 else 0.0
        remaining = None if self.expected is None else max(0, self.expected - self.total)
        rate = current_rate if current_rate is not None else overall
        eta = 0.0 if remaining == 0 else (remaining / rate if remaining and rate > 0 else None)
        return {
            "run_id": self.run_id,
            "expected": self.expected,
            "total": self.total,
            **self.counts(self.by_status),
            "succeeded": self.succeeded,
            "remaining": remaining,
            "percent_done": (
                round(100.0 * self.total / self.expected, 2) if self.expected else None
            ),
            "complete": self.complete,
            "duplicates_ignored": self.duplicates,
            "avg_latency_ms": self.latency_sum_ms / self.total if self.total else None,
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "throughput": overall,
            "throughput_current": rate,
            "elapsed_secs": elapsed,
            "eta_secs": eta,
            "worker_label": self.worker_label,
            "statuses": list(self.counts(self.by_status)),
            f"{self.worker_label}s": {
                str(wid): {
                    **self.counts(w.by_status),
                    "failure_fraction": (w.total - w.succeeded) / w.total if w.total else None,
                    "avg_latency_ms": w.latency_sum_ms / w.total if w.total else None,
                }
                for wid, w in sorted(self.workers.items())
            },
            **(
                {"figures": self.figures.summary(), "figure_lines": self.figures.lines()}
                if self.figures is not None
                else {}
            ),
        }
