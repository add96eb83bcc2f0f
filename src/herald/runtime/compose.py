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
