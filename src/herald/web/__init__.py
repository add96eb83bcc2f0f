"""The web app: REST API under /api, OpenAPI docs, and the live dashboard."""

from __future__ import annotations

from herald.web.app import create_app

__all__ = ["create_app"]
