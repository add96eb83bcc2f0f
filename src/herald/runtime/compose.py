"""The stack with a Docker engine: ``docker compose`` on ``docker-compose.yml``."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from herald.runtime import stack


def docker_available() -> bool:
    """True when a Docker engine answers and the compose plugin is installed."""
    if shutil.which("docker") is None:
        return False
    for probe in (["docker", "info"], ["docker", "compose", "version"]):
        try:
            done = subprocess.run(probe, capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if done.returncode != 0:
            return False
    return True


def compose_argv(root: Path, profiles: tuple[str, ...], *args: str) -> list[str]:
    """``docker compose -f docker-compose.yml --profile P... ARGS``."""
    argv = ["docker", "compose", "-f", str(root / "docker-compose.yml")]
    argv += ["--project-name", stack.COMPOSE_PROJECT]
    for profile in profiles:
        argv += ["--profile", profile]
    return [*argv, *args]


def compose_environment(home: Path, profile: str) -> dict[str, str]:
    """The variables the compose file needs: the profile's, a Postgres password and the web
    API's token.

    ``POSTGRES_PASSWORD`` and ``HERALD_WEB_API_TOKEN`` from the environment win; otherwise each
    is generated once and kept in ``<home>/stack/postgres-password`` (the database volume was
    initialised with it) and ``<home>/stack/web-api-token``.
    """
    env = dict(os.environ)
    env.update(stack.compose_variables(profile))
    for variable, file in (
        ("POSTGRES_PASSWORD", "postgres-password"),
        ("HERALD_WEB_API_TOKEN", "web-api-token"),  # GET it from there to call the API
    ):
        if not env.get(variable):
            path = home.expanduser() / "stack" / file
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_urlsafe(24))
                path.chmod(0o600)
            env[variable] = path.read_text().strip()
    return env


# docker-compose.yml's cluster brokers are written by `invoke stack.gen-compose` between these
# lines, from the local engine's own node settings (kafka_config): they cannot drift apart.
CLUSTER_BEGIN = "  # -- the cluster's brokers: written by `poetry run invoke stack.gen-compose` --"
CLUSTER_END = "  # -- end of the cluster's brokers --"


def cluster_services_yaml() -> str:
    """The compose services of the ``cluster`` profile's brokers (YAML, indented as in the
    ``services:`` mapping), their environment from :func:`kafka_config.compose_environment`."""
    from herald.runtime import kafka_config

    out: list[str] = []
    for index, name in enumerate(stack.CLUSTER_BROKERS):
        out += [
            f"  {name}:",
            "    <<: *kafka-common",
            "    profiles: [cluster]",
            "    environment:",
        ]
        env = kafka_config.compose_environment(index, len(stack.CLUSTER_BROKERS))
        out += [f"      {key}: {_yaml_scalar(value)}" for key, value in env.items()]
        out += [
            "    networks: {default: {aliases: [kafka]}}",
            f"    volumes: [{name}-data:{kafka_config.COMPOSE_DATA_DIR}]",
            "",
        ]
    return "\n".join(out)


def _yaml_scalar(value: str) -> str:
    # Quoted: compose wants strings, and digits or `false` would be read as numbers, booleans.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def with_cluster_services(text: str) -> str:
    """``text`` (docker-compose.yml) with its generated region rewritten."""
    lines = text.split("\n")
    try:
        begin, end = lines.index(CLUSTER_BEGIN), lines.index(CLUSTER_END)
    except ValueError:
        raise ValueError(
            f"docker-compose.yml has no {CLUSTER_BEGIN.strip()!r} ... {CLUSTER_END.strip()!r} "
            "region"
        ) from None
    return "\n".join([*lines[: begin + 1], cluster_services_yaml(), *lines[end:]])
