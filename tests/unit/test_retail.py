"""The retail scenario's generator, timeline and settings, without a broker or a database."""

from __future__ import annotations

import math
import threading
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from herald.config import load_settings
from herald.errors import ConfigError
from herald.scenarios.base import TimelineRun
from herald.scenarios.retail import (
    SCENARIO,
    RetailInjection,
    RunTimeline,
    Store,
    StoreDay,
    Truth,
    expected_occupancy,
    read_customers,
)
from herald.timeline import Clock, Ticker, Timeline
from tests.support.retail import ASKED_AT, assert_invariants, retail_request, seen

DAY = 86_400.0


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("HERALD_") or key in SCENARIO.env_aliases:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no ./config.json


def test_a_seeded_day_keeps_every_rule_of_the_store() -> None:
    request = retail_request(load_settings(), consume_from="earliest", duration=DAY)
    events = list(RunTimeline(request).replay())
    kinds = assert_invariants(seen(events), Store.of(request))
    # Every visit is an enter, at least its walk back, and an exit; a day at 6 / 600 s.
    assert kinds["enter"] == kinds["exit"] > 700
    assert kinds["move"] > 10 * kinds["enter"]
    opens, closes = request.opens_at.timestamp(), request.closes_at.timestamp()
    assert opens <= events[0].ts and events[-1].ts <= closes


def test_the_same_seed_gives_the_same_events_and_another_seed_others() -> None:
    settings = load_settings()
    a = list(RunTimeline(retail_request(settings, seed=11, consume_from="earliest")).replay())
    b = list(RunTimeline(retail_request(settings, seed=11, consume_from="earliest")).replay())
    c = list(RunTimeline(retail_request(settings, seed=12, consume_from="earliest")).replay())
    assert len(a) > 1000
    assert a == b
    assert a[:50] != c[:50]


def test_shoppers_keep_to_the_perimeter_with_excursions_into_the_aisles() -> None:
    request = retail_request(load_settings(), consume_from="earliest")
    store = Store.of(request)
    moves = [e for e in RunTimeline(request).replay() if e.kind == "move"]
    on_wall = sum(store.on_wall((e.x, e.y)) for e in moves)
    # A uniform random walk to any adjacent cell is at a cell in proportion to its neighbours
    # (3 at a corner, 5 along a wall, 8 inside): 132 of 388 on the 10 x 6 store's wall, 34%.
    cells = [(x, y) for x in range(store.width) for y in range(store.height)]

    def neighbours(c: tuple[int, int]) -> int:
        return sum(Store.distance(c, d) == 1 for d in cells)

    uniform = sum(neighbours(c) for c in cells if store.on_wall(c)) / sum(map(neighbours, cells))
    assert round(uniform, 3) == 0.340
    assert on_wall / len(moves) > uniform + 0.15
    assert len(moves) - on_wall > 0.2 * len(moves)  # and they do walk into the aisles


@pytest.mark.parametrize("profile", ["flat", "daily"])
def test_mean_occupancy_is_the_configured_average(profile: str) -> None:
    # In steady state the occupancy of this M/G/infinity queue has a time average over T
    # whose variance is λ·E[D²]/T (the integral of its autocovariance λ∫S(s)ds, twice); with
    # dwell times gamma(2, W/2), E[D²] = 1.5·W², so sd = sqrt(1.5·L·W/T): 0.11 for L = 6,
    # W = 600 s over 5 days. Within 4 sd of the model's mean (which allows for the empty
    # store at opening) fails by chance about once in 16,000 seeds.
    days = 5
    request = retail_request(
        load_settings(),
        seed=2024,
        consume_from="earliest",
        duration=days * DAY,
        arrival_profile=profile,
    )
    truth = Truth.of(
        RunTimeline(request).replay(), request.opens_at.timestamp(), request.closes_at.timestamp()
    )
    sd = math.sqrt(1.5 * 6 * 600 / (days * DAY))
    model = expected_occupancy(request)
    assert abs(model - 6) < 0.01  # the start from an empty store costs little over 5 days
    assert abs(truth.occupancy_mean - model) < 4 * sd, (truth.occupancy_mean, model, sd)


def test_memory_does_not_grow_with_the_length_of_the_day() -> None:
    def peak(days: float) -> tuple[int, int]:
        request = retail_request(
            load_settings(),
            consume_from="earliest",
            duration=days * DAY,
            customers_average_in_store=1,
        )
        count = 0
        tracemalloc.start()
        try:
            for _event in RunTimeline(request).replay():
                count += 1
            return count, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short, short_peak = peak(0.5)
    long, long_peak = peak(4)
    assert long > 7 * short  # eight times the events ...
    assert long_peak < 1.5 * short_peak + 64_000, (short_peak, long_peak)  # ... not the memory


def _starts(consume_from: str) -> list[tuple[str, str, float]]:
    request = retail_request(load_settings(), consume_from=consume_from)
    return [(e.kind, e.customer, e.ts) for e in RunTimeline(request).replay()]


def test_consume_from_earliest_latest_or_a_time_starts_at_the_right_event() -> None:
    day = _starts("earliest")
    opens = datetime.combine(ASKED_AT.date(), datetime.min.time(), UTC) + timedelta(hours=8)
    # earliest: the first visit of the day is the first event.
    first_enter = next(ts for kind, _c, ts in day if kind == "enter")
    assert day[0][0] == "enter" and day[0][2] == first_enter >= opens.timestamp()

    def from_(at: datetime) -> list[tuple[str, str, float]]:
        # The day's events of the visits that begin at or after `at`, in the same order.
        began: dict[str, float] = {}
        out = []
        for kind, who, ts in day:
            if kind == "enter":
                began[who] = ts
            if began[who] >= at.timestamp():
                out.append((kind, who, ts))
        return out

    at = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    iso = _starts("2025-01-15T12:00:00Z")
    assert iso == from_(at) and iso[0][0] == "enter" and iso[0][2] >= at.timestamp()
    assert iso[0][2] == min(ts for kind, _c, ts in day if kind == "enter" and ts >= at.timestamp())
    # latest: the time the run was asked for (09:30).
    assert _starts("latest") == from_(ASKED_AT)
    assert len(day) > len(from_(ASKED_AT)) > len(iso) > 0


def test_no_tick_releases_more_than_the_batch_size_and_the_rest_waits() -> None:
    wall = [1000.0]
    request = retail_request(
        load_settings(), consume_from="earliest", consume_batch_size=25, speed=None
    )
    run = RunTimeline(request)
    ticker = Ticker(
        run.timeline, Clock(0.0, 1000.0, None), batch_size=25, expand=run.expand,
        wall=lambda: wall[0],
    )  # fmt: skip
    sizes, backlogs = [], []
    while not ticker.done:
        tick = ticker.tick()
        sizes.append(len(tick.events))
        backlogs.append(tick.backlog)
    total = len(list(RunTimeline(request).replay()))
    assert sum(sizes) == total
    assert max(sizes) == 25 and sizes[:-1] == [25] * (len(sizes) - 1)
    assert backlogs[0] > 0 and backlogs[-1] == 0


def test_due_events_only_on_a_real_time_clock() -> None:
    timeline: Timeline[Timed] = Timeline([[Timed(t) for t in (10.0, 11.0, 12.5, 30.0)]])
    wall = [0.0]
    ticker = Ticker(timeline, Clock(10.0, 0.0, 2.0), batch_size=2, wall=lambda: wall[0])
    assert [e.ts for e in ticker.tick().events] == [10.0]  # simulated 10.0
    wall[0] = 1.0  # simulated 12.0: 11.0 is due, 12.5 not yet
    tick = ticker.tick()
    assert ([e.ts for e in tick.events], tick.backlog) == ([11.0], 0)
    wall[0] = 10.0  # simulated 30.0: three due, two released, one waits
    tick = ticker.tick()
    assert ([e.ts for e in tick.events], tick.backlog) == ([12.5, 30.0], 0)
    assert ticker.done


class Timed:
    def __init__(self, ts: float) -> None:
        self.ts = ts


def test_the_timeline_run_renders_each_event_with_its_place() -> None:
    request = retail_request(
        load_settings(), consume_from="earliest", consume_batch_size=7, speed=None
    )
    published = TimelineRun(SCENARIO.source(request))
    emitted = [emit for _tick, emits in published.ticks(threading.Event()) for emit in emits]
    assert [e.value.seq for e in emitted] == list(range(len(emitted)))
    per_tick = Counter(e.value.tick for e in emitted)
    assert set(per_tick.values()) <= set(range(1, 8)) and max(per_tick.values()) == 7
    assert {e.topic.name for e in emitted} == {
        "herald.retail.enter",
        "herald.retail.move",
        "herald.retail.exit",
    }
    assert all(e.key == e.value.customer for e in emitted)


def test_an_injection_joins_the_timeline_and_replays_exactly() -> None:
    request = retail_request(load_settings(), consume_from="earliest")
    opens = request.opens_at.timestamp()
    journal = [
        RetailInjection(injection_id="a" * 32, run_id=request.run_id, number=1, type="enter",
                        customer="997", ts=opens + 600, x=3, y=0, requested_at=ASKED_AT),
        RetailInjection(injection_id="b" * 32, run_id=request.run_id, number=2, type="move",
                        customer="997", ts=opens + 660, x=3, y=1, requested_at=ASKED_AT),
    ]  # fmt: skip

    def replay() -> list[tuple[str, str, float, int, int, str]]:
        run = RunTimeline(request)
        for injection in [*journal, journal[0]]:  # read twice, merged once
            run.merge(injection)
        return [(e.kind, e.customer, e.ts, e.x, e.y, e.source) for e in run.replay()]

    events = replay()
    assert events == replay()
    mine = [e for e in events if e[1] == "997"]
    # Still inside at closing: walked out (back to the entrance, then out).
    closes = request.closes_at.timestamp()
    assert mine == [
        ("enter", "997", opens + 600, 3, 0, "injected"),
        ("move", "997", opens + 660, 3, 1, "injected"),
        ("move", "997", closes, 3, 0, "closing"),
        ("exit", "997", closes, 3, 0, "closing"),
    ]
    plain = [(e.kind, e.customer, e.ts) for e in RunTimeline(request).replay()]
    assert [e[:3] for e in events if e[1] != "997"] == plain
    assert_invariants(seen(RunTimeline(request).replay()), Store.of(request))


@pytest.mark.parametrize(
    ("kind", "cell", "here", "reason"),
    [
        ("move", (6, 2), (5, 2), "(6, 2) is outside the store: 0 <= x < 6, 0 <= y < 10"),
        ("move", (2, 2), None, "customer 997 is not inside"),
        ("move", (3, 3), (3, 0), "(3, 3) is not adjacent to customer 997's cell (3, 0)"),
        ("exit", (3, 0), None, "customer 997 is not inside"),
        ("exit", (3, 0), (2, 2), "customer 997 is at (2, 2); customers leave through the "
         "entrance (3, 0)"),
        ("enter", (3, 0), (1, 1), "customer 997 is already inside, at (1, 1)"),
        ("enter", (0, 0), None, "customers enter through the entrance (3, 0), not (0, 0)"),
        ("enter", (3, 0), None, None),
        ("move", (2, 1), (3, 0), None),
    ],
)  # fmt: skip
def test_the_store_says_why_an_event_cannot_happen(
    kind: str, cell: tuple[int, int], here: tuple[int, int] | None, reason: str | None
) -> None:
    assert Store(6, 10, (3, 0)).refusal(kind, cell, here, "997") == reason


def test_the_old_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    old = {
        "STORE_HEIGHT": "12",
        "STORE_WIDTH": "8",
        "CUSTOMERS_AVERAGE_IN_STORE": "4.5",
        "CUSTOMERS_LIST_FILE": "shop.csv",
        "ENTER_TOPIC": "customer/enter",
        "MOVE_TOPIC": "customer/move",
        "EXIT_TOPIC": "customer/exit",
        "CONSUME_FREQUENCY": "0.5",
        "CONSUME_FROM": "2025-01-15T12:00:00+01:00",
        "CONSUME_BATCH_SIZE": "50",
        "LOG_LEVEL": "debug",
        "LOG_FILENAME": "retail.log",
    }
    for name, value in old.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    r = s.retail
    assert (r.store_height, r.store_width, r.customers_average_in_store) == (12, 8, 4.5)
    assert r.customers_list_file == Path("shop.csv")
    assert (r.enter_topic, r.move_topic, r.exit_topic) == (
        "customer.enter",
        "customer.move",
        "customer.exit",
    )
    assert (r.consume_frequency, r.consume_batch_size) == (0.5, 50)
    assert r.consume_from == "2025-01-15T11:00:00+00:00"
    assert (s.log_level, s.log_file) == ("DEBUG", Path("retail.log"))
    # herald's own variable wins over the old one.
    monkeypatch.setenv("HERALD_RETAIL_STORE_HEIGHT", "20")
    assert load_settings().retail.store_height == 20


def test_a_bad_setting_names_the_field_and_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUME_FROM", "yesterday")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "retail.consume_from" in str(err.value)
    assert "earliest, latest, or an ISO 8601 time" in str(err.value)
    assert err.value.exit_code == 2


def test_the_customers_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("id,name,weight\n1,Ann,2\n2,Bob,\n")
    assert read_customers(good) == (["1", "2"], [2.0, 1.0])
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n1,Ann\n1,Bob\n")
    with pytest.raises(ConfigError, match=r"line 3: id '1' appears twice"):
        read_customers(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_customers(tmp_path / "missing.csv")


def test_no_customer_is_inside_twice_even_when_few_are_left() -> None:
    # Three customers for an average of six: arrivals find everyone inside and are turned away.
    request = retail_request(load_settings(), consume_from="earliest")
    request = type(request)(**{**_fields(request), "customers": ["a", "b", "c"], "weights": None})
    day = StoreDay(request)
    events = list(day.events())
    assert_invariants(seen(events), Store.of(request))
    assert day.turned_away > 0
    assert {e.customer for e in events} == {"a", "b", "c"}


def _fields(request: object) -> dict[str, object]:
    return {f: getattr(request, f) for f in request.__struct_fields__}  # type: ignore[attr-defined]
