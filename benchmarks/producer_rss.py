"""Producer memory: peak RSS of the ``herald producer`` process for a run of N messages.

Each measurement starts a fresh embedded broker (it keeps every record in memory, ~160 MB
per million), creates herald's topics, starts ``herald producer`` and submits one run with
``herald submit``. The producer's peak RSS (the kernel's VmHWM) is read until its log says
the run's messages are acknowledged; then it is stopped with SIGTERM.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from _util import (
    HERALD,
    ProcessSampler,
    herald_env,
    run_checked,
    stop_process,
    wait_for,
)
from herald.config import KafkaSettings
from herald.kafka import EMBEDDED_HEARTBEAT_MS, EMBEDDED_SESSION_TIMEOUT_MS, ensure_topics
from herald.runtime.broker import EmbeddedBroker


@dataclass
class ProducerRun:
    messages: int
    ready_rss: int  # bytes, once started and subscribed, before the run
    peak_rss: int  # bytes, until every message of the run was acknowledged
    produce_secs: float  # the producer's own figure: first message to last acknowledgement

    @property
    def rate(self) -> float:
        return self.messages / self.produce_secs


def measure(messages: int, workdir: Path, timeout: float = 600.0) -> ProducerRun:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"producer-{messages}.log"
    with EmbeddedBroker() as broker:
        kafka = {
            "bootstrap": broker.bootstrap,
            "session_timeout_ms": EMBEDDED_SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": EMBEDDED_HEARTBEAT_MS,
        }
        ensure_topics(KafkaSettings.model_validate(kafka))
        config = workdir / "producer-settings.json"
        config.write_text(json.dumps({"kafka": kafka}))
        env = herald_env()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [HERALD, "producer", "--config", str(config)], stderr=log, env=env
            )
        sampler = ProcessSampler(proc.pid).start()
        try:
            wait_for(lambda: "producer ready" in log_path.read_text(), 60, "producer not ready")
            sampler.sample()
            ready_rss = sampler.seen[proc.pid].peak_rss
            submit = [HERALD, "submit", "--config", str(config), "--messages", str(messages)]
            run_id = run_checked(submit, env=env, timeout=60).strip()
            done = re.compile(rf"run {run_id}: \d+ records acknowledged in ([0-9.]+)s")
            wait_for(lambda: done.search(log_path.read_text()) is not None, timeout,
                     f"run {run_id} of {messages} messages not produced")  # fmt: skip
            sampler.sample()
            peak = sampler.seen[proc.pid].peak_rss
        finally:
            sampler.stop()
            stop_process(proc)
    match = done.search(log_path.read_text())
    assert match is not None
    return ProducerRun(messages, ready_rss, peak, float(match.group(1)))
