"""What a load test loads: a herald at a URL, or ``herald web`` started for it (embedded
broker and database) and stopped afterwards."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from herald.errors import EXIT_FAILURE, HeraldError
from herald.load import STACK_DIR
from herald.load.api import Api
from herald.load.locust_process import tail
from herald.waiting import wait_until

logger = logging.getLogger(__name__)

START_SECS = 180.0
STOP_SECS = 60.0
WARM_UP_SECS = 120.0
REACH_SECS = 10.0

_URL_LINE = re.compile(r"herald web on (http://\S+) \(")


class StackError(HeraldError):
    """The stack under load did not come up (exit code: ``herald web``'s, when it exited)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class EmbeddedWeb:
    """``herald web`` on a free loopback port: the embedded broker and database (unless the
    environment configures others) and the services of a run, its home (logs, database) in
    ``home``."""

    def __init__(
        self,
        *,
        home: Path,
        env: Mapping[str, str],
        start_timeout: float = START_SECS,
        stop_timeout: float = STOP_SECS,
    ) -> None:
        self.home = home
        self.log_path = home / "web.log"
        self._env = {**env, "HERALD_HOME": str(home)}
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start it; its base URL once it serves, or StackError."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # A session of its own: Ctrl-C reaches this process only, which stops it once, in
            # order (a second signal would make it exit at once).
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "herald", "web", "--host", "127.0.0.1", "--port", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
            )
        url = wait_until(
            self._announced,
            timeout=self._start_timeout,
            what=f"herald web serving (log {self.log_path})",
            every=0.1,
            error=StackError,
        )
        assert url is not None  # without a stop event it returns a URL or raises
        return url

    def _announced(self) -> str | None:
        # Port 0: the port is the one it announces, so no other process can take it first.
        found = _URL_LINE.search(self.log_path.read_text(errors="replace"))
        if found:
            return found.group(1)
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            raise StackError(
                f"herald web exited with code {code} before serving; the end of its log "
                f"({self.log_path}):\n{tail(self.log_path)}",
                exit_code=code or EXIT_FAILURE,
            )
        return None

    def stop(self, *, keep_data: bool = True) -> int | None:
        """SIGTERM, and wait (SIGKILL past ``stop_timeout``); its exit code. Without
        ``keep_data`` its embedded database's files are deleted; its logs stay."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(self._stop_timeout)
        except subprocess.TimeoutExpired:
            logger.warning("herald web did not stop in %gs: killed", self._stop_timeout)
            proc.kill()
            code = proc.wait()
        if not keep_data:
            shutil.rmtree(self.home / "pgdata", ignore_errors=True)
        return code


def warm_up(api: Api, *, stop: threading.Event, timeout: float = WARM_UP_SECS) -> float:
    """Start a 1-message run and wait until it finished, so that every service is up and the
    load meets a warm stack; the seconds it took, or StackError."""
    started = time.monotonic()
    status, body = api.post("/api/runs", {"messages": 1})
    if status != 202 or not isinstance(body, dict) or "url" not in body:
        raise StackError(f"warm-up run: POST /api/runs answered {status}: {str(body)[:200]}")
    url = str(body["url"])

    def finished() -> bool:
        code, run = api.get(url)
        return code == 200 and isinstance(run, dict) and run.get("status") == "completed"

    wait_until(finished, timeout=timeout, what="the warm-up run finished", every=0.2, stop=stop,
               error=StackError)  # fmt: skip
    return time.monotonic() - started


def reachable(api: Api, *, stop: threading.Event, timeout: float = REACH_SECS) -> None:
    """Wait until ``GET /api/health`` answers 200; StackError with its last answer if not."""
    last = ["nothing"]

    def healthy() -> bool:
        status, body = api.get("/api/health")
        last[0] = f"{status}: {str(body)[:200]}" if status else str(body)
        return status == 200

    try:
        wait_until(healthy, timeout=timeout, what="GET /api/health", every=0.5, stop=stop,
                   error=StackError)  # fmt: skip
    except StackError as exc:
        raise StackError(f"{api.base_url}: {exc} (last answer: {last[0]})") from None


@dataclass
class Target:
    """The API under load; for an embedded stack, whether to keep its database's files when
    it stops (set it once the verdict is known: kept for a post-mortem)."""

    api: Api
    embedded: bool
    keep_data: bool = True


@contextlib.contextmanager
def target(
    *,
    host: str | None,
    token: str | None,
    report_dir: Path,
    environ: Mapping[str, str],
    stack_env: Mapping[str, str],
    stop: threading.Event,
    out: Callable[[str], None],
) -> Iterator[Target]:
    """``host`` once it answers, or an embedded stack in ``report_dir/stack``, warmed up,
    with ``stack_env`` and ``token`` in its settings, stopped on the way out."""
    if host is not None:
        api = Api(host, token=token)
        reachable(api, stop=stop)
        yield Target(api=api, embedded=False)
        return
    env = {**environ, **stack_env}
    if token:
        env["HERALD_WEB_API_TOKEN"] = token
    web = EmbeddedWeb(home=report_dir / STACK_DIR, env=env)
    out(f"starting the embedded stack (herald web; log {web.log_path})")
    chosen = Target(api=Api("http://127.0.0.1"), embedded=True)
    try:
        chosen.api = Api(web.start(), token=token)
        took = warm_up(chosen.api, stop=stop)
        out(f"stack ready at {chosen.api.base_url}: a 1-message warm-up run took {took:.1f}s")
        yield chosen
    finally:
        code = web.stop(keep_data=chosen.keep_data)
        if code:
            logger.warning("herald web exited with code %s (log %s)", code, web.log_path)
