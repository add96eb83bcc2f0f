"""Imported by the fork server (see :mod:`herald.runtime.forks`) before it forks anything:
the modules of every service a run starts, so that each forked service has them already."""

from __future__ import annotations

import importlib

import herald.cli  # noqa: F401 - every forked service starts here
from herald.services import registry

for _service in registry.services():
    if _service.in_run:
        importlib.import_module(_service.entry.split(":")[0])
