"""The official AsyncAPI CLI (npm, installed once into .herald/tools/asyncapi) on our document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from herald import asyncapi
from tests.support.contracts import ASYNCAPI_YAML, ROOT

TOOLS = asyncapi.tools_dir(ROOT)
# The first run installs the CLI from the package index: about a minute, more on a busy machine.
pytestmark = pytest.mark.timeout(900)


def test_the_committed_document_passes_the_official_validator() -> None:
    said: list[str] = []
    executable = asyncapi.install_tools(TOOLS, say=said.append)
    assert executable.is_file()
    assert asyncapi.install_tools(TOOLS, say=said.append) == executable  # idempotent
    assert len(said) in (0, 2)  # "installing ...", "installed ..." the first time only
    proc = asyncapi.validate(ASYNCAPI_YAML, TOOLS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"File {ASYNCAPI_YAML.resolve()} is valid" in proc.stdout
    assert "0 errors, 0 warnings" in proc.stdout


def test_the_validator_rejects_a_broken_document(tmp_path: Path) -> None:
    doc = yaml.safe_load(ASYNCAPI_YAML.read_text())
    doc["operations"]["publishSmsResults"]["action"] = "publish"  # AsyncAPI 2 wording: invalid in 3
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    proc = asyncapi.validate(broken, TOOLS)
    assert proc.returncode != 0
    assert "must be equal to one of the allowed values" in proc.stdout
    assert "operations.publishSmsResults.action" in proc.stdout


def test_html_docs_render_the_current_document(tmp_path: Path) -> None:
    # Rendered into a folder an older rendering left: replaced, not merged.
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "stale.txt").write_text("old")
    index = asyncapi.generate_html(tmp_path / "html", TOOLS, say=lambda _: None)
    assert not (tmp_path / "html" / "stale.txt").exists()
    page = index.read_text()
    for address in ("herald.runs", "herald.sms.outbound", "herald.sms.results", "herald.dlq"):
        assert address in page
    app_js = (tmp_path / "html" / "js" / "app.js").read_text()
    start = app_js.index("const schema = ") + len("const schema = ")
    embedded = json.loads(app_js[start : app_js.index("\n};\n", start) + 2])
    assert embedded["info"] == asyncapi.document()["info"]
