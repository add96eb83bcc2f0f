"""Helpers shared by the web tests: an app on the session's real broker and database."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_openapi3.openapi import OpenAPI

from herald.config import Settings
from herald.web import create_app
from herald.web.app import state
from herald.web.server import serve
from tests.support.waiting import wait_for


@pytest.fixture
def app(settings: Settings) -> Iterator[OpenAPI]:
    web = create_app(settings, stream_interval=0.05)
    web.config["TESTING"] = True
    yield web
    state(web).close()


@contextmanager
def serving(settings: Settings, *, threads: int = 4) -> Iterator[str]:
    """``herald web``'s server (waitress, no embedded stack) on ``settings``, on a free
    loopback port, in a thread: its URL. Stopped and joined afterwards."""
    stop = threading.Event()
    urls: list[str] = []
    thread = threading.Thread(
        target=serve,
        args=(settings,),
        kwargs={
            "host": "127.0.0.1",
            "port": 0,
            "stop": stop,
            "threads": threads,
            "on_ready": urls.append,
        },
        daemon=True,
    )
    thread.start()
    try:
        yield wait_for(lambda: urls and urls[0], 30, "the web server")
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


@pytest.fixture
def web_url(settings: Settings) -> Iterator[str]:
    """:func:`serving` on the session's broker and database."""
    with serving(settings) as url:
        yield url


def percentile_cont(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the nearest ranks."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def first_event(web: FlaskClient, path: str) -> tuple[str, Any]:
    """The first server-sent event of ``path``: its name and its data (decoded)."""
    response = web.get(path, buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    chunks = iter(response.response)
    try:
        assert next(chunks) == b"retry: 3000\n\n"
        name, data = next(chunks).decode().strip().split("\n", 1)
    finally:
        response.close()
    return name.removeprefix("event: "), json.loads(data.removeprefix("data: "))
