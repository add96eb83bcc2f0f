"""Session-scoped real services: the embedded Kafka broker and PostgreSQL, started once.
Helpers the tests share live in ``tests/support``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald import kafka
from herald.config import ENGINES, Settings
from herald.db.engine import migrate
from herald.runtime import kafka_jars
from herald.runtime.apache_kafka import ApacheKafkaCluster
from herald.runtime.broker import EmbeddedBroker
from herald.runtime.database import EmbeddedDatabase
from tests.support.cluster import make_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _forked_services_coverage() -> None:
    """Under ``--cov``, services forked by a run's fork server (herald.runtime.forks) are
    measured by coverage's multiprocessing support, whose data file is COVERAGE_FILE (else
    ``.coverage`` in the run's working directory, where pytest-cov would never combine it):
    point it where pytest-cov's own subprocesses write theirs."""
    datafile = os.environ.get("COV_CORE_DATAFILE")
    if datafile:
        os.environ["COVERAGE_FILE"] = datafile


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The tier is the folder: tests/unit -> unit, and so on.
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=ENGINES,
        default="tansu",
        help="the broker of the session's `broker` fixture: tansu (the embedded default) or "
        "kafka (one Apache Kafka broker, jars in the checkout's .herald/; invoke testing.tests "
        "--engine kafka)",
    )


@pytest.fixture(scope="session")
def kafka_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unpacked distribution's layout (``KAFKA_HOME/libs``) around Maven's jars, fetched
    once into the checkout's .herald/: a test's herald home starts without jars."""
    runtime = kafka_jars.resolve(
        home=Path(__file__).parents[1] / ".herald", environ=dict(os.environ)
    )
    dist = tmp_path_factory.mktemp("kafka-home")
    (dist / "libs").symlink_to(runtime.lib)
    return dist


@pytest.fixture(scope="session")
def broker_engine(request: pytest.FixtureRequest) -> str:
    """The engine the session's broker runs: ``tansu`` or ``kafka`` (not ``engine``: tests
    name their SQLAlchemy engines so)."""
    return str(request.config.getoption("engine"))


@pytest.fixture(scope="session")
def broker(
    broker_engine: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedBroker]:
    if broker_engine == "kafka":
        # The tests speak to it as to the embedded broker: its bootstrap, short group timeouts
        # (the local cluster accepts them: group.min.session.timeout.ms).
        logs = tmp_path_factory.mktemp("kafka")
        with ApacheKafkaCluster(brokers=1, home=ROOT / ".herald", log_dir=logs) as cluster:
            yield cluster  # type: ignore[misc]
        return
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    db = EmbeddedDatabase(tmp_path_factory.mktemp("pg") / "data").start()
    migrate(db.url)
    yield db
    db.stop()


@pytest.fixture
def namespace() -> str:
    """A fresh namespace: unique topics, groups and transactional ids for this test."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(broker: EmbeddedBroker, database: EmbeddedDatabase, namespace: str) -> Settings:
    s = make_settings(broker, database, namespace)
    kafka.ensure_topics(s.kafka)
    return s
