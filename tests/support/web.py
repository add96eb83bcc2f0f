"""Helpers shared by the web tests: an app on the session's real broker and database."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from flask_openapi3.openapi import OpenAPI

from herald.config import Settings
from herald.web import create_app
from herald.web.app import state


@pytest.fixture
def app(settings: Settings) -> Iterator[OpenAPI]:
    web = create_app(settings, stream_interval=0.05)
    web.config["TESTING"] = True
    yield web
    state(web).close()


def percentile_cont(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the nearest ranks."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
