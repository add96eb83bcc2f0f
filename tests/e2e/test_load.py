"""`invoke load.run`: Locust against the embedded stack, or against a real HTTP server of the
test's own that speaks just enough of herald's runs API to make the outcome certain."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from herald.load.api import Api
from herald.load.capacity import Capacity, measure_capacity
from herald.load.checks import check_runs
from herald.load.context import CheckResult, LoadContext
from herald.load.locust_process import EndpointStats
from herald.runtime.ports import free_port
from tests.support.processes import INVOKE, ROOT, clean_env, processes_under

TOKEN = "load-test-token-0123456789"


def load_run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INVOKE, "load.run", *args],
        env=clean_env(HERALD_HOME=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )


def the_report(tmp_path: Path) -> Path:
    (report,) = (tmp_path / "load").iterdir()
    return report


def stats_rows(report: Path) -> dict[str, dict[str, str]]:
    with (report / "locust_stats.csv").open(newline="") as f:
        return {f"{r['Type']} {r['Name']}".strip(): r for r in csv.DictReader(f)}


def created_lines(report: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (report / "created.jsonl").read_text().splitlines()]


@pytest.mark.timeout(240)
def test_load_run_on_the_embedded_stack_reports_and_checks_every_run(tmp_path: Path) -> None:
    proc = load_run(
        tmp_path, "--scenario", "runs", "--users", "5", "--spawn-rate", "5", "--run-time", "5s"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = the_report(tmp_path)
    assert re.fullmatch(r"\d{8}T\d{6}Z-runs", report.name)
    for name in (
        "report.html",
        "locust_stats.csv",
        "locust_failures.csv",
        "created.jsonl",
        "summary.json",
        "locust.log",
        "stack/web.log",
    ):
        assert (report / name).is_file(), name
    assert "<html" in (report / "report.html").read_text().lower()
    rows = stats_rows(report)
    posts = int(rows["POST /api/runs"]["Request Count"])
    assert posts >= 5  # each user starts a run first
    assert rows["POST /api/runs"]["Failure Count"] == "0"
    assert (
        int(rows["GET /api/runs/{id}"]["Request Count"])
        + int(rows.get("GET /api/runs", {}).get("Request Count", "0"))
        > 0
    )
    assert [r["Failure Count"] for r in rows.values()] == ["0"] * len(rows)
    created = created_lines(report)
    assert [c["kind"] for c in created] == ["run"] * posts
    assert len({c["id"] for c in created}) == posts
    assert f"check runs: passed: {posts} runs finished with done == expected" in proc.stdout
    summary = json.loads((report / "summary.json").read_text())
    assert summary["passed"] is True and summary["check"]["passed"] is True
    assert summary["embedded"] is True and summary["users"] == 5
    assert re.search(r"^POST /api/runs\s+" + str(posts) + r"\s+0\s", proc.stdout, re.M)
    # Passed: the stack's database files are gone, its logs stay; nothing is left running.
    assert not (report / "stack" / "pgdata").exists()
    assert "herald web stopped" in (report / "stack" / "web.log").read_text()
    assert processes_under(tmp_path) == []


class FakeHerald:
    """A real HTTP server with just enough of herald's runs API: it accepts runs (or answers
    ``post_status``), and they finish at once or never; it records every request."""

    def __init__(self, *, finish: bool, post_status: int = 202, token: str | None = None) -> None:
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Authorization
        self.runs: dict[str, int] = {}  # run id -> messages
        self.done: dict[str, int] = {}  # a finished run's done, when it is not its messages
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.record(self)
                if self.path == "/api/health":
                    return self.reply(200, {"status": "ok"})
                if self.path == "/text":
                    return self.reply(200, "not JSON")
                if self.path.startswith("/api/runs?"):
                    items = [{"run_id": r} for r in reversed(list(fake.runs))]
                    return self.reply(200, {"items": items})
                run_id = self.path.rsplit("/", 1)[-1]
                if run_id not in fake.runs:
                    return self.reply(404, {"error": f"no run {run_id}", "status": 404})
                n = fake.runs[run_id]
                status, done = ("finished", fake.done.get(run_id, n)) if finish else ("running", 0)
                return self.reply(200, {"status": status, "done": done, "expected": n})

            def do_POST(self) -> None:
                fake.record(self)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if post_status != 202:
                    return self.reply(post_status, {"error": "unavailable", "status": post_status})
                run_id = uuid.uuid4().hex[:12]
                with fake._lock:
                    fake.runs[run_id] = body["messages"]
                url = f"/api/runs/{run_id}"
                self.reply(202, {"run_id": run_id, "messages": body["messages"], "url": url})

            def reply(self, status: int, body: object) -> None:
                if token and self.headers.get("Authorization") != f"Bearer {token}":
                    status, body = 401, {"error": "a bearer token is required", "status": 401}
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass  # the test reads self.requests

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def record(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(
                (handler.command, handler.path, handler.headers.get("Authorization"))
            )

    def posts(self) -> int:
        return sum(1 for method, path, _ in self.requests if method == "POST")


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[FakeHerald] = []
    threads: list[threading.Thread] = []

    def start(**kwargs: Any) -> FakeHerald:
        fake = FakeHerald(**kwargs)
        thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
        thread.start()
        servers.append(fake)
        threads.append(thread)
        return fake

    yield start
    for fake, thread in zip(servers, threads, strict=True):
        fake.server.shutdown()
        fake.server.server_close()
        thread.join(5)


def test_the_check_fails_when_the_runs_never_finish(tmp_path: Path, serve: Any) -> None:
    fake = serve(finish=False)
    proc = load_run(
        tmp_path,
        "--host",
        fake.url,
        "--users",
        "3",
        "--spawn-rate",
        "3",
        "--run-time",
        "2s",
        "--check-timeout",
        "2",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    n = fake.posts()
    assert n >= 3
    assert f"check runs: FAILED: {n} of {n} runs not finished 2s after the load" in proc.stdout
    assert "load runs: FAILED: the check failed" in proc.stdout
    report = the_report(tmp_path)
    assert len(created_lines(report)) == n
    assert int(stats_rows(report)["POST /api/runs"]["Request Count"]) == n
    summary = json.loads((report / "summary.json").read_text())
    assert summary["passed"] is False and len(summary["check"]["details"]) == n
    assert not (report / "stack").exists()  # a remote target: no stack was started


def test_requests_carry_the_token_and_finished_runs_pass(tmp_path: Path, serve: Any) -> None:
    fake = serve(finish=True, token=TOKEN)
    proc = load_run(
        tmp_path,
        "--host",
        fake.url,
        "--users",
        "2",
        "--spawn-rate",
        "2",
        "--run-time",
        "2s",
        HERALD_WEB_API_TOKEN=TOKEN,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = fake.posts()
    assert f"check runs: passed: {n} runs finished with done == expected" in proc.stdout
    assert {auth for _, _, auth in fake.requests} == {f"Bearer {TOKEN}"}
    assert TOKEN not in proc.stdout + proc.stderr
    assert TOKEN not in (the_report(tmp_path) / "summary.json").read_text()


def test_too_many_failed_requests_fail_the_load(tmp_path: Path, serve: Any) -> None:
    fake = serve(finish=True, post_status=503)
    proc = load_run(
        tmp_path, "--host", fake.url, "--users", "2", "--spawn-rate", "2", "--run-time", "2s"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    n = fake.posts()
    assert re.search(
        rf"load runs: FAILED: {n} of \d+ requests failed \(\d+\.\d\d%, more than "
        r"--max-failures 0\.01\)",
        proc.stdout,
    ), proc.stdout
    assert f"{n} x POST /api/runs: expected 202, got 503" in proc.stdout
    # The check still ran: no run was accepted, none recorded.
    assert "check runs: passed: nothing to check: the load started no run" in proc.stdout


def test_bad_flags_exit_2_before_anything_starts(tmp_path: Path) -> None:
    bad = load_run(tmp_path, "--users", "0", "--run-time", "soon", "--max-failures", "2")
    assert bad.returncode == 2
    assert (
        "herald: --users 0: at least 1; --run-time 'soon' is not a duration (90, 5s, 1m30s, 1h); "
        "--max-failures 2: a ratio from 0 to 1"
    ) in bad.stdout
    more = load_run(tmp_path, "--spawn-rate", "0", "--run-time", "0.5s", "--check-timeout", "0",
                    "--wait-scale", "-1", "--host", "ftp://example")  # fmt: skip
    assert more.returncode == 2
    assert (
        "herald: --spawn-rate 0: more than 0 users/s; --run-time 0.5s: at least 1 second; "
        "--check-timeout 0: more than 0 seconds; --wait-scale -1: 0 or more; "
        "--host 'ftp://example': an http:// or https:// URL"
    ) in more.stdout
    unknown = load_run(tmp_path, "--scenario", "nope")
    assert unknown.returncode == 2
    assert "herald: --scenario 'nope': no such load scenario; choose runs" in unknown.stdout
    assert not (tmp_path / "load").exists()


def test_measure_capacity_steps_through_the_offered_rates(tmp_path: Path, serve: Any) -> None:
    """The benchmarks' function: one Locust run per offered rate, only the tagged tasks."""
    fake = serve(finish=True)
    capacity = measure_capacity(
        load_dir=ROOT / "load",
        home=tmp_path,
        environ=clean_env(),
        rates=(4, None),
        users=2,
        step_secs=3,
        p99_limit_ms=60_000,  # every step within it: the steps, not the machine, are tested
        host=fake.url,
    )
    assert [(s.offered, s.users) for s in capacity.steps] == [(4, 2), (None, 2)]
    assert [s.stats.failures for s in capacity.steps] == [0, 0]
    assert all(s.stats.p99_ms is not None for s in capacity.steps)
    paced, unpaced = (s.stats.requests for s in capacity.steps)
    # Two users at 2 tasks/s each for 3 s, after a start-up run and a first task each at
    # once; as fast as they can, far more.
    assert 8 <= paced <= 18, paced
    assert unpaced > 2 * paced
    assert paced + unpaced == fake.posts()
    assert [path for method, path, _ in fake.requests if method == "GET"] == ["/api/health"]
    assert capacity.best == max(capacity.steps, key=lambda s: s.stats.rps)
    assert Capacity(endpoint=capacity.endpoint, p99_limit_ms=0.0, steps=capacity.steps).best is None


def check_context(
    tmp_path: Path, fake: FakeHerald, created: list[str], posts: int, asked: int | None = None
) -> LoadContext:
    """What load.run hands check_runs, after a load that recorded ``created`` run ids (each
    asking for its fake run's messages, or ``asked``)."""
    lines = [
        json.dumps({"kind": "run", "id": i, "expected": asked or fake.runs.get(i, 10)})
        for i in created
    ]
    (tmp_path / "created.jsonl").write_text("".join(f"{line}\n" for line in lines))
    post = EndpointStats("POST", "/api/runs", posts, 0, 1.0, 1.0, 1.0, 1.0, 1.0)
    return LoadContext(
        scenario="runs",
        report_dir=tmp_path,
        api=Api(fake.url),
        check_timeout=0.5,
        locust_env={},
        stop=threading.Event(),
        poll_every=0.1,
        stats={post.key: post},
    )


def test_check_runs_names_what_is_wrong(tmp_path: Path, serve: Any) -> None:
    fake = serve(finish=True)
    fake.runs.update({"aaa": 10, "bbb": 10, "ccc": 7})
    fake.done["bbb"] = 9
    assert check_runs(check_context(tmp_path, fake, ["aaa", "bbb"], posts=3)) == CheckResult(
        passed=False, summary="3 runs were accepted but 2 recorded in created.jsonl"
    )
    twice = check_runs(check_context(tmp_path, fake, ["aaa", "bbb", "aaa"], posts=3))
    assert twice == CheckResult(passed=False, summary="run ids accepted twice: aaa")
    wrong = check_runs(check_context(tmp_path, fake, ["aaa", "bbb"], posts=2))
    assert wrong.summary == (
        "1 of 2 runs finished with done != expected: bbb finished with done 9/10, asked 10"
    )
    assert not wrong.passed
    ctx = check_context(tmp_path, fake, ["ccc"], posts=1, asked=8)
    assert check_runs(ctx).details == ("ccc finished with done 7/7, asked 8",)
    missing = check_runs(check_context(tmp_path, fake, ["aaa", "zzz"], posts=2))
    assert missing.summary == (
        "1 of 2 runs not finished 0.5s after the load: zzz (HTTP 404: {'error': 'no run zzz', "
        "'status': 404})"
    )
    assert check_runs(check_context(tmp_path, fake, [], posts=0)) == CheckResult(
        passed=True, summary="nothing to check: the load started no run"
    )


def test_the_harness_client_reports_what_answered(serve: Any) -> None:
    fake = serve(finish=True)
    assert Api(fake.url).get("/text") == (200, "not JSON")
    assert Api(fake.url).get("/api/runs/nope") == (404, {"error": "no run nope", "status": 404})
    status, error = Api(f"http://127.0.0.1:{free_port()}").get("/api/health")
    assert status == 0 and "Connection refused" in error
