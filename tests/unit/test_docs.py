from __future__ import annotations

import difflib
import re
from pathlib import Path

from herald.config import env_vars
from herald.docs import configuration_reference

ROOT = Path(__file__).parents[2]


def test_configuration_reference_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    generated = configuration_reference()
    diff = "\n".join(
        difflib.unified_diff(
            committed.splitlines(), generated.splitlines(), "committed", "generated", lineterm=""
        )
    )
    assert committed == generated, (
        f"docs/configuration.md is stale; run `poetry run invoke app.gen-config-docs`:\n{diff}"
    )


def test_reference_names_every_environment_variable() -> None:
    text = configuration_reference()
    for name in env_vars():
        if name != "HERALD_CONFIG":
            assert f"`{name}`" in text
    assert "| `senders.max_in_flight`" not in text  # senders are documented as a list
    assert "| `max_in_flight` | int | `5000` |" in text


def test_every_test_that_guarantees_md_cites_exists() -> None:
    """docs/guarantees.md backs each promise with test names: each must be a test."""
    cited = set(re.findall(r"`(test_\w+)`", (ROOT / "docs" / "guarantees.md").read_text()))
    defined = {
        name
        for path in (ROOT / "tests").rglob("test_*.py")
        for name in re.findall(r"^def (test_\w+)\(", path.read_text(), flags=re.MULTILINE)
    }
    assert len(cited) >= 20
    assert sorted(cited - defined) == []
