"""Schemas read from the committed AsyncAPI document (not from the Python model)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator, FormatChecker

ROOT = Path(__file__).parents[2]
ASYNCAPI_YAML = ROOT / "docs" / "asyncapi.yaml"

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats constrain strings only
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper())
    except ValueError:  # e.g. month 13, hour 25
        return False
    return True


def format_checker() -> FormatChecker:
    """jsonschema's checker, with ``date-time`` checked even without rfc3339-validator."""
    checker = FormatChecker()
    checker.checks("date-time")(_is_date_time)
    return checker


@cache
def committed_document() -> dict[str, Any]:
    """The committed ``docs/asyncapi.yaml``."""
    doc: dict[str, Any] = yaml.safe_load(ASYNCAPI_YAML.read_text())
    return doc


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """``node`` with a local ``$ref`` at its top followed."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft7Validator:
    # The document's components ride along so that "#/components/schemas/..." resolves.
    root = {**schema, "components": doc["components"]}
    Draft7Validator.check_schema(root)
    return Draft7Validator(root, format_checker=format_checker())


@dataclass(frozen=True)
class MessageContract:
    """What the document promises about one channel's records."""

    name: str
    payload: Draft7Validator
    key: Draft7Validator
    headers: Draft7Validator | None

    def errors(self, *, key: bytes | None, value: Any, headers: dict[str, str] | None) -> list[str]:
        """Every way a record breaks the contract (empty: it keeps it)."""
        found = [f"payload: {e.message}" for e in self.payload.iter_errors(value)]
        if key is not None:
            found += [f"key: {e.message}" for e in self.key.iter_errors(key.decode())]
        if self.headers is not None:
            found += [f"headers: {e.message}" for e in self.headers.iter_errors(headers or {})]
        return found


def contract(address: str, doc: dict[str, Any] | None = None) -> MessageContract:
    """The contract of the channel whose address is ``address`` (a topic name)."""
    doc = doc or committed_document()
    (channel,) = (c for c in doc["channels"].values() if c["address"] == address)
    (message,) = (resolve(doc, m) for m in channel["messages"].values())
    headers = message.get("headers")
    return MessageContract(
        name=message["name"],
        payload=_validator(doc, message["payload"]),
        key=_validator(doc, message["bindings"]["kafka"]["key"]),
        headers=_validator(doc, headers) if headers is not None else None,
    )


def assert_current(path: Path, generated: str, command: str) -> None:
    """Fail with a unified diff when the committed ``path`` differs from ``generated``."""
    committed = path.read_text()
    if committed != generated:
        diff = "\n".join(
            difflib.unified_diff(
                committed.splitlines(),
                generated.splitlines(),
                f"{path.relative_to(ROOT)} (committed)",
                "generated from the code",
                lineterm="",
            )
        )
        raise AssertionError(f"{path.relative_to(ROOT)} is stale; run `{command}`:\n{diff}")
