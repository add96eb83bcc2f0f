"""The code's layout rules that a test can hold: shared test helpers live in tests/support."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
_IMPORT = re.compile(r"^\s*(?:from|import)\s+(tests(?:\.\w+)*)", re.MULTILINE)


def test_no_test_module_imports_another() -> None:
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if "support" in path.parts:
            continue
        for module in _IMPORT.findall(path.read_text()):
            if module != "tests.support" and not module.startswith("tests.support."):
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []


def test_the_check_above_would_catch_one() -> None:
    assert _IMPORT.findall(
        "from tests.conftest import x\nfrom tests.support.cluster import y\n"
    ) == [
        "tests.conftest",
        "tests.support.cluster",
    ]
