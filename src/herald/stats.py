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
class SenderStats:
    """One sender's share of a run."""

    sent: int = 0
    failed: int = 0
    latency_sum_ms: float = 0.0

    @property
    def total(self) -> int:
        return self.sent + self.failed


@dataclass
class RunStats:
    """Everything the monitor knows about one run."""

    run_id: str
    expected: int | None = None
    requested_at: float | None = None  # wall-clock seconds
    sent: int = 0
    failed: int = 0
    latency_sum_ms: float = 0.0
    hist: dict[int, int] = field(default_factory=dict)
    senders: dict[int, SenderStats] = field(default_factory=dict)
    first_result_at: float | None = None  # wall-clock seconds, as the monitor saw it
    last_result_at: float | None = None
    # One byte per message (by its seq): a result seen twice is counted once. Brokers that
    # show aborted transactions' records to read_committed readers (the embedded one does)
    # would otherwise inflate the totals after a sender dies mid-transaction.
    seen: bytearray = field(default_factory=bytearray)
    duplicates: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.failed

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

    def add(self, sender_id: int, status: str, latency_ms: float) -> None:
        """Count one result (the monitor inlines this on its hot path)."""
        sender = self.senders.get(sender_id)
        if sender is None:
            sender = self.senders[sender_id] = SenderStats()
        if status == "sent":
            self.sent += 1
            sender.sent += 1
        else:
            self.failed += 1
            sender.failed += 1
        self.latency_sum_ms += latency_ms
        sender.latency_sum_ms += latency_ms
        b = bucket_of(latency_ms)
        self.hist[b] = self.hist.get(b, 0) + 1

    def summary(self, now: float, current_rate: float | None = None) -> dict[str, Any]:
        """A JSON-ready snapshot: counts, %, latency, throughput, ETA, per sender."""
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
            "sent": self.sent,
            "failed": self.failed,
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
            "senders": {
                str(sid): {
                    "sent": s.sent,
                    "failed": s.failed,
                    "failure_fraction": s.failed / s.total if s.total else None,
                    "avg_latency_ms": s.latency_sum_ms / s.total if s.total else None,
                }
                for sid, s in sorted(self.senders.items())
            },
        }
