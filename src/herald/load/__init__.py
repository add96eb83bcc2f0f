"""Load tests of herald's HTTP API with Locust: ``invoke load.run`` (docs/load.md).

A *load scenario* is a locustfile under ``load/`` plus what herald knows about it
(:mod:`herald.load.scenarios`, the registry): its defaults, the settings the embedded stack
needs for it, an optional fixture beside the load and an optional check after it
(:mod:`herald.load.checks`). :mod:`herald.load.run` runs one load test,
:mod:`herald.load.capacity` measures an endpoint for the benchmarks.

Locust always runs in a subprocess (:mod:`herald.load.locust_process`): importing it
monkey-patches the standard library with gevent, which neither this process's threads nor
pytest's warnings-as-errors survive. Nothing here imports it.
"""

from __future__ import annotations

# What herald tells the locustfiles (load/common.py reads them).
TOKEN_ENV = "HERALD_LOAD_TOKEN"  # noqa: S105 (the name of a variable, not a token)
CREATED_ENV = "HERALD_LOAD_CREATED"
WAIT_SCALE_ENV = "HERALD_LOAD_WAIT_SCALE"
PACE_ENV = "HERALD_LOAD_PACE"
RECEIVER_ENV = "HERALD_LOAD_RECEIVER_URL"  # the timers scenario's webhook receiver
UDP_PORT_ENV = "HERALD_LOAD_UDP_PORT"  # the telemetry-schedules scenario's UDP receiver

# The files of a report directory.
CREATED_FILE = "created.jsonl"
STATS_PREFIX = "locust"  # locust_stats.csv, locust_failures.csv, locust_stats_history.csv, ...
HTML_FILE = "report.html"
SUMMARY_FILE = "summary.json"
LOCUST_LOG = "locust.log"
STACK_DIR = "stack"  # the embedded stack's home: its logs (and database, while kept)
