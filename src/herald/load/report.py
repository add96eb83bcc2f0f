"""A load test's report directory, its printed summary and ``summary.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald.load import SUMMARY_FILE
from herald.load.context import CheckResult
from herald.load.locust_process import LocustResult

SHOWN_FAILURES = 5


def report_dir_for(home: Path, name: str, now: datetime | None = None) -> Path:
    """A new ``HOME/load/<UTC time>-<name>`` directory."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = home / "load" / f"{stamp}-{name}"
    path, n = base, 1
    while path.exists():  # two in the same second
        n += 1
        path = base.with_name(f"{base.name}.{n}")
    path.mkdir(parents=True)
    return path


def format_summary(result: LocustResult, *, max_failures: float) -> list[str]:
    """Requests, failures, requests/s and percentiles per endpoint; the most frequent
    failures."""
    header = ("endpoint", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
    rows = [
        (
            e.key,
            f"{e.requests:,}",
            f"{e.failures:,}",
            f"{e.rps:,.1f}",
            *(_ms(v) for v in (e.p50_ms, e.p95_ms, e.p99_ms, e.max_ms)),
        )
        for e in (*result.endpoints, *([result.total] if result.total else []))
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([cells[0].ljust(widths[0]), *rest])

    lines = [line(header), *(line(r) for r in rows)]
    if result.total is not None:
        lines.append(
            f"failures: {result.total.failures:,} of {result.total.requests:,} "
            f"({result.failure_ratio:.2%}; at most {max_failures:.2%})"
        )
    lines += [f"  {n:,} x {where}: {error}" for where, error, n in result.failures[:SHOWN_FAILURES]]
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def write_summary(
    report_dir: Path,
    *,
    plan: dict[str, Any],
    result: LocustResult,
    checked: CheckResult | None,
    problems: Sequence[str],
) -> Path:
    """``summary.json``: the plan, every endpoint's figures, the check, the verdict."""
    summary = {
        **plan,
        "endpoints": [asdict(e) | {"key": e.key} for e in result.endpoints],
        "total": asdict(result.total) if result.total else None,
        "failure_ratio": result.failure_ratio,
        "failures": [{"endpoint": e, "error": m, "occurrences": n} for e, m, n in result.failures],
        "check": asdict(checked) if checked else None,
        "passed": not problems,
        "problems": list(problems),
    }
    path = report_dir / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path
