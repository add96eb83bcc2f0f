"""docker-compose.yml and docker/Dockerfile, checked statically (no Docker engine needed)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from herald.config import KafkaSettings, env_vars
from herald.runtime import compose as compose_file
from herald.runtime import kafka_config, stack

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"

HERALD = {
    "migrate",
    "sender-0",
    "sender-1",
    "sender-2",
    "sender-3",
    "producer",
    "monitor",
    "recorder",
    "scheduler",
    "notifier",
    "spaceship",
    "ingestor",
    "web",
}
EXPECTED = {
    "testing": {"kafka", "postgres"},
    "dev": {"kafka", "postgres", "kafka-ui"},
    "all": {"kafka", "postgres", "kafka-ui", *HERALD, "web-lb"},
    "cluster": {"kafka-1", "kafka-2", "kafka-3", "postgres", "kafka-ui", *HERALD, "web-lb"},
}
_VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = compose["services"]
    return out


def _in_profile(compose: dict[str, Any], profile: str) -> set[str]:
    return {n for n, s in _services(compose).items() if profile in s.get("profiles", [])}


def test_compose_parses_and_every_service_has_a_profile(compose: dict[str, Any]) -> None:
    assert compose["name"] == stack.COMPOSE_PROJECT
    for name, service in _services(compose).items():
        assert set(service["profiles"]) <= set(stack.PROFILES), name


@pytest.mark.parametrize("profile", stack.PROFILES)
def test_each_profile_runs_exactly_the_expected_services(
    compose: dict[str, Any], profile: str
) -> None:
    assert _in_profile(compose, profile) == EXPECTED[profile]
    assert set(stack.services(profile)) == EXPECTED[profile]


def test_every_image_is_pinned_to_a_version(compose: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in _services(compose).items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[a-z]+)?", tag), f"{name}: {image}"
        if "build" in service:  # herald's own image carries the package's version
            assert image == f"herald:{version}", name
            assert service["build"] == {"context": ".", "dockerfile": "docker/Dockerfile"}


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        check = service.get("healthcheck", {})
        if name == "migrate":
            assert check == {"disable": True}
            assert service["restart"] == "no"
            continue
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name


def test_dependencies_wait_for_health_or_completion(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if dep == "migrate":
                assert spec["condition"] == "service_completed_successfully", name
            else:
                assert spec["condition"] == "service_healthy", (name, dep)
    # migrate needs only Postgres; every other herald service waits for it and the brokers.
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for herald in stack.stack_services()[1:]:
        deps = services[herald.name]["depends_on"]
        assert deps["postgres"] == {"condition": "service_healthy"}
        brokers = {"kafka", *stack.CLUSTER_BROKERS}
        assert {d for d in deps if d.startswith("kafka")} == brokers, herald.name
        for broker in brokers:  # each profile waits for the brokers it runs
            assert deps[broker] == {"condition": "service_healthy", "required": False}
        assert deps["migrate"] == {"condition": "service_completed_successfully"}


def test_herald_services_match_the_service_registry(compose: dict[str, Any]) -> None:
    services = _services(compose)
    herald = {s.name: s for s in stack.stack_services()}
    assert {n for n, s in services.items() if "herald" in str(s.get("image"))} == set(herald)
    # One per instance of each service of the registry: a sender per default profile.
    assert set(herald) == HERALD
    for name, spec in herald.items():
        service = services[name]
        expected = spec.argv(host="0.0.0.0", port=stack.WEB_PORT)
        assert service["command"] == ["herald", *expected], name
        assert service["environment"] == stack.environment(stack.COMPOSE_LOCATION), name
        assert service["profiles"] == ["all", "cluster"]
        if spec.service.health in ("control", "alive"):
            assert service["healthcheck"]["test"] == [
                "CMD",
                "python",
                "-c",
                "import os; os.kill(1, 0)",
            ], name
    assert "/api/health" in " ".join(services["web"]["healthcheck"]["test"])
    # Replicas, reached through the load balancer only.
    assert services["web"]["deploy"] == {"replicas": 2}
    assert "ports" not in services["web"]
    lb = services[stack.LOAD_BALANCER]
    assert lb["ports"] == [f"127.0.0.1:{stack.WEB_PORT}:{stack.WEB_PORT}"]
    assert lb["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert "/api/health" in " ".join(lb["healthcheck"]["test"])


def test_the_load_balancer_spreads_over_every_web_replica_and_streams_events() -> None:
    conf = (ROOT / "docker" / "nginx.conf").read_text()
    assert f"server web:{stack.WEB_PORT} resolve;" in conf  # every replica, as they change
    assert "resolver 127.0.0.11" in conf  # Docker's DNS
    assert f"listen {stack.WEB_PORT};" in conf
    assert "proxy_buffering off;" in conf  # server-sent events are not held back
    lines = [line.strip() for line in conf.splitlines() if not line.strip().startswith("#")]
    assert "proxy_next_upstream error timeout;" in lines  # never a POST a replica got
    compose = yaml.safe_load(COMPOSE.read_text())
    lb = compose["services"][stack.LOAD_BALANCER]
    assert lb["volumes"] == ["./docker/nginx.conf:/etc/nginx/conf.d/default.conf:ro"]


def test_every_herald_variable_is_a_real_setting_and_the_required_ones_are_set(
    compose: dict[str, Any],
) -> None:
    known = env_vars()
    for name, service in _services(compose).items():
        for var in service.get("environment", {}):
            if var.startswith("HERALD_"):
                assert var in known, f"{name}: {var} is not a herald setting"
    for herald in stack.stack_services():
        env = _services(compose)[herald.name]["environment"]
        # Unset, a service would start an embedded broker or database inside its container.
        assert {"HERALD_KAFKA_BOOTSTRAP", "HERALD_DATABASE_URL"} <= set(env)
    # Sender replicas fit the partitions (settings default, as the file does not set it).
    assert "HERALD_KAFKA_PARTITIONS" not in _services(compose)["sender-0"]["environment"]
    senders = [s for s in stack.stack_services() if s.service.scaling == "profiles"]
    assert KafkaSettings().partitions >= len(senders)


def test_required_variables_fail_loudly(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    required = {m.group(1) for m in _VAR.finditer(text) if m.group(2) == "?"}
    assert required == {"POSTGRES_PASSWORD", "HERALD_WEB_API_TOKEN"}
    optional = {m.group(1) for m in _VAR.finditer(text) if m.group(2) == "-"}
    assert optional == set(stack.compose_variables("cluster"))
    postgres = _services(compose)["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    assert stack.COMPOSE_LOCATION.database_url.endswith("@postgres:5432/herald")
    assert f"herald:{postgres['POSTGRES_PASSWORD']}" in stack.COMPOSE_LOCATION.database_url


def test_volumes_hold_broker_and_database_data(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for broker in ("kafka", *stack.CLUSTER_BROKERS):
        assert services[broker]["volumes"] == [f"{broker}-data:/var/lib/kafka/data"]
        assert services[broker]["environment"]["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert services["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql"]
    assert set(compose["volumes"]) == {
        "kafka-data",
        "kafka-1-data",
        "kafka-2-data",
        "kafka-3-data",
        "postgres-data",
    }


def test_cluster_replication_settings_are_consistent(compose: dict[str, Any]) -> None:
    services = _services(compose)
    envs = [services[b]["environment"] for b in stack.CLUSTER_BROKERS]
    factor = stack.CLUSTER_REPLICATION_FACTOR
    assert factor == len(stack.CLUSTER_BROKERS) == 3
    assert stack.compose_variables("cluster") == {"KAFKA_REPLICATION_FACTOR": str(factor)}
    assert stack.compose_variables("all") == {"KAFKA_REPLICATION_FACTOR": "1"}
    node_ids = [env["KAFKA_NODE_ID"] for env in envs]
    assert node_ids == ["1", "2", "3"]
    voters = ",".join(f"{i}@{b}:9093" for i, b in zip(node_ids, stack.CLUSTER_BROKERS, strict=True))
    for broker, env in zip(stack.CLUSTER_BROKERS, envs, strict=True):
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert (
            env["KAFKA_ADVERTISED_LISTENERS"] == f"CLIENT://{broker}:9092,INTERNAL://{broker}:19092"
        )
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == str(factor)
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == str(factor)
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == str(factor)
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == str(stack.CLUSTER_MIN_INSYNC_REPLICAS)
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == str(stack.CLUSTER_MIN_INSYNC_REPLICAS)
        # herald's bootstrap `kafka:9092` reaches the cluster through the shared alias.
        assert services[broker]["networks"] == {"default": {"aliases": ["kafka"]}}
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    assert 1 < stack.CLUSTER_MIN_INSYNC_REPLICAS < factor  # one broker may be down
    single = services["kafka"]["environment"]
    for key in ("KAFKA_DEFAULT_REPLICATION_FACTOR", "KAFKA_MIN_INSYNC_REPLICAS"):
        assert single[key] == "1"


def test_kafka_ui_is_preconfigured_for_the_broker(compose: dict[str, Any]) -> None:
    ui = _services(compose)["kafka-ui"]
    assert ui["image"].startswith("kafbat/kafka-ui:")
    assert ui["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == "kafka:9092"


def _stages(text: str) -> list[str]:
    return re.split(r"(?m)^FROM ", text)[1:]


def test_dockerfile_is_multi_stage_from_the_lock_file_and_not_root() -> None:
    text = DOCKERFILE.read_text()
    stages = _stages(text)
    assert len(stages) == 2
    builder, final = stages
    assert builder.startswith("${PYTHON_IMAGE} AS builder")
    assert re.search(r"ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim", text)
    assert "COPY pyproject.toml poetry.lock" in builder
    assert "poetry export --only main" in builder and "--require-hashes" in builder
    # The final stage copies the virtualenv and installs nothing: no poetry, pip or compilers.
    assert "COPY --from=builder /opt/herald /opt/herald" in final
    for tool in ("poetry", "pip install", "apt-get", "gcc"):
        assert tool not in final, tool
    users = re.findall(r"(?m)^USER (\S+)", final)
    assert users == ["herald"]
    assert 'CMD ["herald"' in final


def test_dockerignore_keeps_the_build_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines
    kept = {line[1:] for line in lines if line.startswith("!")}
    assert kept == {"pyproject.toml", "poetry.lock", "README.md", "src/"}


def test_deploy_docs_name_only_real_settings() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    named = set(re.findall(r"\bHERALD_[A-Z_]+[A-Z]\b", text))
    assert {"HERALD_KAFKA_BOOTSTRAP", "HERALD_KAFKA_CLIENT_CONFIG", "HERALD_DATABASE_URL"} <= named
    assert named - set(env_vars()) == set()
    for image in ("apache/kafka:", "postgres:", "kafbat/kafka-ui:"):
        pinned = {s["image"] for s in yaml.safe_load(COMPOSE.read_text())["services"].values()}
        (tag,) = (i for i in pinned if i.startswith(image))
        assert f"`{tag}`" in text, tag


def test_the_cluster_brokers_run_the_local_engines_settings(compose: dict[str, Any]) -> None:
    # One place writes a node's settings: the local engine's server.properties and, as the
    # image's KAFKA_* variables, the compose cluster's (`invoke stack.gen-compose`).
    services = _services(compose)
    for index, broker in enumerate(stack.CLUSTER_BROKERS):
        assert services[broker]["environment"] == kafka_config.compose_environment(index)
    local = kafka_config.server_properties(
        1, kafka_config.compose_nodes(), log_dirs=kafka_config.COMPOSE_DATA_DIR, bind_host=""
    )
    assert services["kafka-2"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert len(services["kafka-2"]["environment"]) == len(local) + 1  # and CLUSTER_ID
    text = (ROOT / "docker-compose.yml").read_text()
    assert compose_file.with_cluster_services(text) == text, (
        "run: poetry run invoke stack.gen-compose"
    )


def test_the_generated_region_is_found_or_its_absence_said() -> None:
    text = f"services:\n{compose_file.CLUSTER_BEGIN}\n  old: {{}}\n{compose_file.CLUSTER_END}\n"
    out = compose_file.with_cluster_services(text)
    assert "  old: {}" not in out
    assert yaml.safe_load(out.replace("<<: *kafka-common", "image: x"))["services"]["kafka-3"][
        "environment"
    ] == kafka_config.compose_environment(2)
    with pytest.raises(ValueError, match=r'docker-compose\.yml has no "# -- the cluster'):
        compose_file.with_cluster_services("services: {}\n")
