"""The app for a pre-fork server: ``gunicorn "herald.web.wsgi:app('<settings file>')"``, as
``herald web`` runs it when ``web.workers`` is above 1. Each worker process builds its own app
(its own database pool, Kafka producer and event streams) from the settings file ``herald
web`` wrote; the API token, never written to a file, comes from the environment
(``HERALD_WEB_API_TOKEN``)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask


def target(settings_file: Path) -> str:
    """gunicorn's app argument for ``settings_file``."""
    return f"herald.web.wsgi:app({str(settings_file)!r})"


def app(settings_file: str) -> Flask:
    """A worker's app."""
    from herald.config import load_resolved
    from herald.services.common import configure_logging
    from herald.web.app import create_app

    settings = load_resolved(Path(settings_file))
    configure_logging(settings.log_level)
    return create_app(settings)
