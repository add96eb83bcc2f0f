"""Small commands: the browser the tests need (herald.tools.ensure_browser)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from herald import tools


def _bin(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def test_a_browser_that_is_there_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("chromium", "chromedriver"):
        _bin(tmp_path, name, "exit 0")
    monkeypatch.setenv("PATH", str(tmp_path))
    said: list[str] = []
    assert tools.ensure_browser(said.append) is True
    assert said == []


def test_a_failing_install_is_reported_and_nothing_pretends_to_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bin(tmp_path, "apt-get", 'echo "E: no network" >&2; exit 100')
    monkeypatch.setenv("PATH", str(tmp_path))
    said: list[str] = []
    assert tools.ensure_browser(said.append) is (os.geteuid() != 0 and False)
    if os.geteuid() == 0:
        assert (
            said[0] == "installing chromium chromium-driver for the browser tests (apt-get, once)"
        )
        assert said[1].endswith("update -qq failed (100): E: no network")
    else:  # pragma: no cover - CI runs as root
        assert said[0].startswith("the dashboard's browser test needs Chromium")


def test_without_apt_get_the_user_is_told_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("apt-get") is None
    said: list[str] = []
    assert tools.ensure_browser(said.append) is False
    assert said == [
        "the dashboard's browser test needs Chromium: apt-get install -y chromium "
        "chromium-driver (as root), then run the tests again"
    ]
