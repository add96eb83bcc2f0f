"""The retail scenario's test helpers: run requests, and the invariants every run's events keep."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald.config import Settings
from herald.scenarios.base import checked
from herald.scenarios.retail import SCENARIO, RetailRun, Store

CUSTOMERS = Path(__file__).resolve().parents[2] / "seed" / "customers.csv"
# A fixed moment to ask for runs at: the same request, the same events.
ASKED_AT = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


def retail_request(
    settings: Settings,
    *,
    seed: int = 7,
    run_id: str = "5e7a11c0ffee",
    requested_at: datetime = ASKED_AT,
    **retail: Any,
) -> RetailRun:
    """A checked retail run request asked for at ``requested_at``, with these ``retail.*``
    settings over the given ones (the customers: the shipped sample)."""
    merged = {
        **settings.model_dump(mode="json")["retail"],
        "customers_list_file": CUSTOMERS,
        **retail,
    }
    chosen = settings.model_copy(update={"retail": type(settings.retail)(**merged)})
    request = SCENARIO.make_request(
        chosen, run_id=run_id, seed=seed, requested_at=requested_at, config={}
    )
    return checked(request)


@dataclass(frozen=True)
class Seen:
    """One event as a test sees it, whatever it was read from."""

    kind: str
    customer: str
    ts: float
    x: int
    y: int


def seen(events: Iterable[Any]) -> list[Seen]:
    """Planned events (``kind``) or decoded records (``status``), as :class:`Seen`."""
    return [Seen(getattr(e, "kind", None) or e.status, e.customer, e.ts, e.x, e.y) for e in events]


def assert_invariants(events: Sequence[Seen], store: Store) -> Counter[str]:
    """Fail on the first event that breaks a rule of the store; the events are in timeline
    order. Returns the count of each kind."""
    where: dict[str, tuple[int, int]] = {}  # who is inside, and where
    last = -1.0
    kinds: Counter[str] = Counter()
    for i, e in enumerate(events):
        kinds[e.kind] += 1
        cell = (e.x, e.y)
        assert e.ts >= last, f"event {i} goes back in time: {e}"
        last = e.ts
        if e.kind == "enter":
            assert e.customer not in where, f"event {i}: {e.customer} enters twice: {e}"
            assert cell == store.entrance, f"event {i}: enter away from the entrance: {e}"
            where[e.customer] = cell
        elif e.kind == "move":
            assert e.customer in where, f"event {i}: a move of a customer not inside: {e}"
            assert store.contains(cell), f"event {i}: a move outside the grid: {e}"
            assert Store.distance(where[e.customer], cell) == 1, (
                f"event {i}: not to an adjacent cell from {where[e.customer]}: {e}"
            )
            where[e.customer] = cell
        else:
            assert e.kind == "exit", f"event {i}: unknown kind: {e}"
            assert e.customer in where, f"event {i}: an exit without an enter: {e}"
            assert cell == store.entrance == where[e.customer], f"event {i}: exit elsewhere: {e}"
            del where[e.customer]
    assert where == {}, f"still inside at the end of the day: {sorted(where)}"
    return kinds
