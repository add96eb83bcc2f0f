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
    """The variables the compose file needs: the profile's, and a Postgres password.

    ``POSTGRES_PASSWORD`` from the environment wins; otherwise one is generated once and kept
    in ``<home>/stack/postgres-password`` (the database volume was initialised with it).
    """
    env = dict(os.environ)
    env.update(stack.compose_variables(profile))
    if not env.get("POSTGRES_PASSWORD"):
        path = home.expanduser() / "stack" / "postgres-password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        env["POSTGRES_PASSWORD"] = path.read_text().strip()
    return env
