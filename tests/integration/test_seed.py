"""seed.database and seed.kafka against the real embedded database and broker."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import text

from herald import contracts, kafka
from herald.config import Settings
from herald.db.engine import make_engine
from herald.errors import ConfigError
from herald.scenarios.sms import OUTBOUND, RESULTS, SmsMessage
from herald.seed import default_file, load_seed, seed_database, seed_kafka
from tests.support.contracts import contract
from tests.support.topics import read_topic


def _seed_file(tmp_path: Path) -> tuple[Path, list[str]]:
    spec = json.loads(default_file().read_text())
    tag = uuid.uuid4().hex[:8]
    for run in spec["runs"]:
        run["run_id"] = f"{run['run_id']}-{tag}"
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(spec))
    return path, [r["run_id"] for r in spec["runs"]]


def test_the_default_seed_file_is_reproducible() -> None:
    first, second = load_seed(), load_seed()
    assert [s.request.run_id for s in first] == [
        "seed-storm-warning",
        "seed-water-outage",
        "seed-evacuation-drill",
    ]
    assert [len(s.records) for s in first] == [60, 25, 15]
    for a, b in zip(first, second, strict=True):
        assert msgspec.json.encode(a.results) == msgspec.json.encode(b.results)
        assert msgspec.json.encode([e.value for e in a.records]) == msgspec.json.encode(
            [e.value for e in b.records]
        )
        messages = [e.value for e in a.records]
        assert all(isinstance(m, SmsMessage) for m in messages)
        assert [r.id for r in a.results] == [m.id for m in messages]  # type: ignore[attr-defined]
    # The results come from the scenario's own step, with each run's worker profiles.
    storm = first[0]
    assert {r.worker for r in storm.results} == {0, 1}  # type: ignore[attr-defined]
    assert storm.request.config["seeded"] is True


def test_the_seed_file_ships_in_the_package() -> None:
    path = default_file()
    assert path.parts[-3:] == ("herald", "data", "seed.json")
    assert path.is_file()


def test_a_bad_seed_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "runs": [
                    {
                        "run_id": "x",
                        "messages": 1,
                        "seed": 1,
                        "senders": [{"mean_wait_time": 0.1, "failure_rate": 2}],
                    }
                ]
            }
        )
    )
    with pytest.raises(ConfigError, match="run x: senders: failure_rate: Input should be less"):
        load_seed(bad)
    bad.write_text("{}")
    with pytest.raises(ConfigError, match=r"seed file .*bad.json"):
        load_seed(bad)


def test_seed_database_writes_runs_and_outcomes_once(settings: Settings, tmp_path: Path) -> None:
    path, run_ids = _seed_file(tmp_path)
    runs = load_seed(path)
    url = settings.database.url
    assert url is not None
    assert seed_database(url, runs) == {"runs": 3, "outcomes": 100}
    assert seed_database(url, runs) == {"runs": 0, "outcomes": 0}  # again: nothing duplicated
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT r.run_id, r.expected, r.succeeded, r.failed, count(o.*), "
                    "count(o.*) FILTER (WHERE o.status = 'sent') FROM runs r "
                    "JOIN outcomes o USING (run_id) WHERE r.run_id = ANY(:ids) "
                    "GROUP BY r.run_id ORDER BY r.expected DESC"
                ),
                {"ids": run_ids},
            ).all()
    finally:
        engine.dispose()
    assert [(r[0], r[1], r[4]) for r in rows] == list(
        zip(run_ids, [60, 25, 15], [60, 25, 15], strict=True)
    )
    for _, expected, sent, failed, outcomes, sent_outcomes in rows:
        assert sent + failed == expected == outcomes
        assert sent == sent_outcomes


def test_seed_kafka_publishes_valid_records_on_every_topic(
    settings: Settings, tmp_path: Path
) -> None:
    path, _ = _seed_file(tmp_path)
    runs = load_seed(path)
    counts = seed_kafka(settings.kafka, runs)
    ns = settings.kafka.namespace
    expected = {
        contracts.RUNS: 3,
        OUTBOUND: 100,
        RESULTS: 100,
        contracts.DLQ: 1,
    }
    assert counts == {
        # Every other topic (control, timers, the other scenarios') is created, left empty.
        **{t.qualified(ns): 0 for t in kafka.all_topics() if t not in expected},
        **{t.qualified(ns): n for t, n in expected.items()},
    }
    for topic, n in expected.items():
        check = contract(topic.name)
        records = read_topic(settings, topic.qualified(ns), n)
        for msg in records:
            headers = {k: v.decode() for k, v in (msg.headers() or [])}
            value = msg.value()
            payload = json.loads(value) if topic.payload is not None else value.decode()
            errors = check.errors(key=msg.key(), value=payload, headers=headers or None)
            assert errors == [], (topic.name, errors)
    (dead,) = read_topic(settings, contracts.DLQ.qualified(ns), 1)
    assert dict(dead.headers() or [])[contracts.DLQ_TOPIC] == OUTBOUND.qualified(ns).encode()
