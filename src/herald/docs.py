"""Documents generated from the code: the configuration reference (AsyncAPI/OpenAPI later)."""

from __future__ import annotations

import json
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from herald.config import ENV_PREFIX, Settings
from herald.scenarios.base import Parameters as _Section


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, _Section):
            return "(section)"
        if isinstance(value, list) and value and isinstance(value[0], _Section):
            return f"{len(value)} senders (see below)"
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        value = field.default
    if value is None:
        return "unset"
    return f"`{json.dumps(value, default=str)}`"


def _type(field: FieldInfo) -> str:
    text = str(field.annotation).replace("typing.", "").replace("pathlib.", "")
    text = text.replace("<class '", "").replace("'>", "").replace(" | None", ", optional")
    text = text.replace("list[herald.config.WorkerSettings]", "list of senders")
    text = text.replace("pydantic.types.SecretStr", "secret str")
    if text.startswith("Literal["):
        text = "one of " + text[len("Literal[") : -1].replace("'", "`")
    return text


def configuration_reference() -> str:
    """``docs/configuration.md``: every setting, its variable, type, default and meaning."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `herald.config` by `poetry run invoke app.gen-config-docs`;",
        "do not edit by hand.",
        "",
        "Sources, later wins: defaults < config file (`--config`, `$HERALD_CONFIG`, or",
        "`./config.json`) < `./.env` < environment variables < command-line flags. The classic",
        "layout's `progress_monitor` and `sender` keys are read as `monitor` and `senders`.",
        "An invalid value stops the program before anything starts, with exit code 2.",
        "",
        "| key | environment variable | type | default | description |",
        "|---|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, _Section):
            for sub, subfield in annotation.model_fields.items():
                env = f"{ENV_PREFIX}{name}_{sub}".upper()
                lines.append(
                    f"| `{name}.{sub}` | `{env}` | {_type(subfield)} | {_default(subfield)} "
                    f"| {subfield.description or ''} |"
                )
        else:
            env = f"{ENV_PREFIX}{name}".upper()
            lines.append(
                f"| `{name}` | `{env}` | {_type(field)} | {_default(field)} "
                f"| {field.description or ''} |"
            )
    lines += [
        "",
        "## Senders",
        "",
        "`senders` (classic: `sender`) is a list, one entry per sender process; in the",
        "environment, `HERALD_SENDERS` holds it as JSON. Each entry:",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    from herald.config import WorkerSettings

    for sub, subfield in WorkerSettings.model_fields.items():
        lines.append(
            f"| `{sub}` | {_type(subfield)} | {_default(subfield)} | {subfield.description} |"
        )
    defaults = [
        s.model_dump(include={"mean_wait_time", "failure_rate", "latency_distribution"})
        for s in Settings().senders
    ]
    lines += ["", "The default senders:", "", "```json", json.dumps(defaults, indent=2), "```", ""]
    return "\n".join(lines)
