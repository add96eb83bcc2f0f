"""`invoke load.run`: Locust against the embedded stack, or against a real HTTP server of the
test's own that speaks just enough of herald's runs API to make the outcome certain."""

from __future__ import annotations

import csv
import json
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from herald.load.api import Api
from herald.load.capacity import Capacity, measure_capacity
from herald.load.checks import check_runs
from herald.load.context import CheckResult, LoadContext
from herald.load.locust_process import EndpointStats
from herald.load.receiver import Receiver
from herald.load.telemetry import TelemetryFixture, UdpReceiver, check_schedules
from herald.load.timers import TimersFixture, check_timers
from herald.runtime.ports import free_port
from herald.scenarios.telemetry import Sample, pack
from herald.webhooks import generate_secret, headers
from tests.support.processes import INVOKE, ROOT, clean_env, processes_under
from tests.support.waiting import wait_for

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
        self.timers: dict[str, dict[str, Any]] = {}  # timer id -> GET /api/timers/{id}
        self.schedules: dict[str, dict[str, Any]] = {}  # -> GET /api/telemetry/schedules/{id}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.record(self)
                if self.path == "/api/health":
                    return self.reply(200, {"status": "ok"})
                if self.path == "/text":
                    return self.reply(200, "not JSON")
                if self.path.startswith(("/api/timers/", "/api/telemetry/schedules/")):
                    rows = fake.timers if self.path.startswith("/api/timers/") else fake.schedules
                    row = rows.get(self.path.rsplit("/", 1)[-1])
                    return self.reply(200, row) if row else self.reply(404, {"status": 404})
                if self.path.startswith("/api/runs?"):
                    items = [{"run_id": r} for r in reversed(list(fake.runs))]
                    return self.reply(200, {"items": items})
                run_id = self.path.rsplit("/", 1)[-1]
                if run_id not in fake.runs:
                    return self.reply(404, {"error": f"no run {run_id}", "status": 404})
                n = fake.runs[run_id]
                status, done = ("completed", fake.done.get(run_id, n)) if finish else ("running", 0)
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


def test_measure_capacity_leaves_its_warm_up_out_of_the_steps(tmp_path: Path, serve: Any) -> None:
    fake = serve(finish=True)
    capacity = measure_capacity(
        load_dir=ROOT / "load",
        home=tmp_path,
        environ=clean_env(),
        rates=(4,),
        users=2,
        step_secs=2,
        warmup_secs=2,
        p99_limit_ms=60_000,
        host=fake.url,
    )
    [step] = capacity.steps
    assert step.offered == 4
    [report] = (tmp_path / "load").glob("*-capacity")
    assert sorted(d.name for d in report.iterdir() if d.is_dir()) == ["step-1", "warm-up"]
    # The warm-up's requests reached the server, and are in no step.
    assert fake.posts() > step.stats.requests > 0


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


@pytest.mark.timeout(300)
def test_timers_load_on_the_embedded_stack_delivers_every_timer_once(tmp_path: Path) -> None:
    proc = load_run(
        tmp_path, "--scenario", "timers", "--users", "4", "--spawn-rate", "4", "--run-time", "5s"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = the_report(tmp_path)
    assert re.fullmatch(r"\d{8}T\d{6}Z-timers", report.name)
    for name in ("report.html", "locust_stats.csv", "locust_failures.csv", "created.jsonl",
                 "summary.json", "locust.log", "stack/web.log"):  # fmt: skip
        assert (report / name).is_file(), name
    assert "<html" in (report / "report.html").read_text().lower()
    rows = stats_rows(report)
    posts = int(rows["POST /api/timers"]["Request Count"])
    assert posts >= 4  # each user creates a timer first (the heavier task) or soon after
    assert [r["Failure Count"] for r in rows.values()] == ["0"] * len(rows)
    created = created_lines(report)
    assert [c["kind"] for c in created] == ["timer"] * posts
    assert len({c["id"] for c in created}) == posts
    summary = json.loads((report / "summary.json").read_text())
    assert summary["passed"] is True and summary["check"]["passed"] is True
    figures = summary["check"]["figures"]
    assert (figures["created"], figures["delivered_once"]) == (posts, posts)
    assert (figures["missing"], figures["duplicates"], figures["refused"]) == ([], {}, [])
    assert (figures["early"], figures["not_delivered_in_ledger"], figures["strangers"]) == (
        [], [], []
    )  # fmt: skip
    for where in ("lateness_at_receiver", "lateness_in_ledger"):
        late = figures[where]
        assert late["count"] == posts
        assert 0 <= late["p50_ms"] <= late["p99_ms"] <= late["max_ms"]
    assert (
        f"check timers: passed: {posts} timers created, {posts} delivered exactly once, "
        "0 missing, 0 duplicated (0 extra callbacks)"
    ) in proc.stdout
    assert re.search(r"^  lateness at the receiver \(arrival - due\): p50 [\d,]+ ms, p99 [\d,]+ "
                     rf"ms, max [\d,]+ ms \({posts} timers\)$", proc.stdout, re.M)  # fmt: skip
    assert "  lateness in the ledger (first attempt - due, lateness_ms): p50 " in proc.stdout
    assert re.search(r"^POST /api/timers\s+" + str(posts) + r"\s+0\s", proc.stdout, re.M)
    assert not (report / "stack" / "pgdata").exists()
    assert processes_under(tmp_path) == []


def test_timers_against_a_host_need_its_signing_secret(tmp_path: Path) -> None:
    proc = load_run(tmp_path, "--scenario", "timers", "--host", "http://127.0.0.1:9")
    assert proc.returncode == 2
    assert (
        "herald: --scenario timers with --host: the secret that stack signs callbacks with is "
        "needed to verify them (HERALD_TIMERS_SIGNING_SECRETS, or HERALD_HOME with its "
        "webhook-secret)"
    ) in proc.stdout
    assert not (tmp_path / "load").exists()


def deliver(receiver: Receiver, timer_id: str, secret: str) -> int:
    """POST a timer's callback to the receiver as the notifier does: signed, ``{"id": ...}``."""
    body = json.dumps({"id": timer_id}).encode()
    signed = headers([secret], msg_id=timer_id, timestamp=int(time.time()), body=body)
    request = urllib.request.Request(receiver.url, data=body, headers=signed, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def timers_context(
    tmp_path: Path, fake: FakeHerald, receiver: Receiver, due: dict[str, float], secret: str
) -> LoadContext:
    """What load.run hands check_timers after a load that created timers due at ``due``."""
    lines = [
        json.dumps(
            {"kind": "timer", "id": i, "due_at": datetime.fromtimestamp(at, UTC).isoformat()}
        )
        for i, at in due.items()
    ]
    (tmp_path / "created.jsonl").write_text("".join(f"{line}\n" for line in lines))
    post = EndpointStats("POST", "/api/timers", len(due), 0, 1.0, 1.0, 1.0, 1.0, 1.0)
    return LoadContext(
        scenario="timers",
        report_dir=tmp_path,
        api=Api(fake.url),
        check_timeout=0.5,
        locust_env={},
        stop=threading.Event(),
        poll_every=0.05,
        stats={post.key: post},
        webhook_secrets=(secret,),
        fixture=TimersFixture(receiver=receiver, warm_up_id="warm"),
    )


def ledger(state: str, lateness_ms: float | None = None, attempts: int = 1) -> dict[str, Any]:
    return {"state": state, "lateness_ms": lateness_ms, "attempts": attempts}


def test_check_timers_counts_missing_duplicated_refused_and_early(
    tmp_path: Path, serve: Any
) -> None:
    fake = serve(finish=True)
    secret, wrong = generate_secret(), generate_secret()
    past = time.time() - 1.0
    fake.timers.update(
        {"t-a": ledger("delivered", 12.0), "t-b": ledger("delivered", 20.0, attempts=2),
         "t-c": ledger("scheduled"), "t-d": ledger("failed")}
    )  # fmt: skip
    with Receiver(secrets=(secret,)) as receiver:
        assert [deliver(receiver, i, secret) for i in ("warm", "t-a", "t-b", "t-b", "zzz")] == [
            200
        ] * 5
        assert deliver(receiver, "t-d", wrong) == 401
        ctx = timers_context(tmp_path, fake, receiver, dict.fromkeys(["t-a", "t-b", "t-c", "t-d"],
                             past), secret)  # fmt: skip
        checked = check_timers(ctx)
    assert not checked.passed
    assert checked.summary == (
        "4 timers created, 1 delivered exactly once, 2 missing, 1 duplicated (1 extra callbacks)"
        "; 2 missing: t-c (scheduled), t-d (failed); 1 callbacks refused (signature or body): "
        "t-d: signature: no v1 signature matches any of the secrets"
    )
    figures = checked.figures
    assert figures["missing"] == ["t-c", "t-d"]
    assert figures["duplicates"] == {"t-b": 2}
    assert figures["strangers"] == ["zzz"]
    assert figures["retried"] == ["t-b"]
    assert figures["lateness_in_ledger"] == {"p50_ms": 12.0, "p99_ms": 20.0, "max_ms": 20.0,
                                             "count": 2}  # fmt: skip
    assert figures["lateness_at_receiver"]["count"] == 2
    assert checked.notes[2:] == (
        "duplicates (same webhook-id, at least once): t-b",
        "1 callbacks for timers this load did not record: zzz",
        "1 timers needed more than one attempt: t-b",
    )

    # Duplicates alone are reported, not failed (at least once); an early arrival fails.
    fake.timers.update({"t-e": ledger("delivered", 3.0), "t-f": ledger("delivered", 4.0)})
    with Receiver(secrets=(secret,)) as receiver:
        assert [deliver(receiver, i, secret) for i in ("t-e", "t-e")] == [200, 200]
        twice = check_timers(timers_context(tmp_path, fake, receiver, {"t-e": past}, secret))
        assert twice.passed
        assert twice.summary.startswith(
            "1 timers created, 0 delivered exactly once, 0 missing, 1 duplicated (1 extra "
            "callbacks) ("
        )
        assert deliver(receiver, "t-f", secret) == 200
        early = timers_context(tmp_path, fake, receiver, {"t-f": time.time() + 30}, secret)
        assert check_timers(early).details == ("1 arrived before their due time: t-f",)


@pytest.mark.timeout(300)
def test_telemetry_schedules_load_on_the_embedded_stack_runs_every_schedule(
    tmp_path: Path,
) -> None:
    proc = load_run(tmp_path, "--scenario", "telemetry-schedules", "--users", "3",
                    "--spawn-rate", "3", "--run-time", "4s")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = the_report(tmp_path)
    assert re.fullmatch(r"\d{8}T\d{6}Z-telemetry-schedules", report.name)
    for name in ("report.html", "locust_stats.csv", "locust_failures.csv", "created.jsonl",
                 "summary.json", "locust.log", "stack/web.log", "stack/spaceship.log"):  # fmt: skip
        assert (report / name).is_file(), name
    rows = stats_rows(report)
    posts = int(rows["POST /api/telemetry/schedules"]["Request Count"])
    assert posts >= 3  # each user schedules a stream first (the heavier task) or soon after
    assert [r["Failure Count"] for r in rows.values()] == ["0"] * len(rows)
    created = created_lines(report)
    assert [c["kind"] for c in created] == ["schedule"] * posts
    assert len({c["id"] for c in created}) == posts
    # 1 or 2 s at 10 Hz each: 10 or 20 packets.
    assert all(c["packets"] == round(c["duration_s"] * 10) in (10, 20) for c in created)
    asked = sum(c["packets"] for c in created)
    summary = json.loads((report / "summary.json").read_text())
    assert summary["passed"] is True and summary["check"]["passed"] is True
    figures = summary["check"]["figures"]
    assert (figures["created"], figures["done"]) == (posts, posts)
    assert (figures["packets_asked"], figures["packets_sent"], figures["packets_received"]) == (
        asked, asked, asked
    )  # fmt: skip
    for key in ("not_ended", "not_done", "sent_other_than_asked", "missing_packets",
                "duplicate_packets", "strangers"):  # fmt: skip
        assert figures[key] == [], key
    assert figures["malformed"] == {}
    assert (
        f"check telemetry-schedules: passed: {posts} schedules created, {posts} done, "
        f"0 not ended; packets {asked} asked, {asked} sent, {asked} received"
    ) in proc.stdout
    assert re.search(r"^POST /api/telemetry/schedules\s+" + str(posts) + r"\s+0\s", proc.stdout,
                     re.M)  # fmt: skip
    assert not (report / "stack" / "pgdata").exists()
    assert processes_under(tmp_path) == []


def schedules_context(
    tmp_path: Path, fake: FakeHerald, fixture: TelemetryFixture, asked: dict[str, int], posts: int
) -> LoadContext:
    """What load.run hands check_schedules after a load that created schedules (1 s at 10 Hz
    asking ``asked`` packets each), ended a second ago."""
    start = datetime.fromtimestamp(time.time() - 2.0, UTC).isoformat()
    lines = [json.dumps({"kind": "schedule", "id": i, "packets": n, "start_at": start,
                         "duration_s": 1.0}) for i, n in asked.items()]  # fmt: skip
    (tmp_path / "created.jsonl").write_text("".join(f"{line}\n" for line in lines))
    post = EndpointStats("POST", "/api/telemetry/schedules", posts, 0, 1.0, 1.0, 1.0, 1.0, 1.0)
    return LoadContext(
        scenario="telemetry-schedules",
        report_dir=tmp_path,
        api=Api(fake.url),
        check_timeout=0.5,
        locust_env={},
        stop=threading.Event(),
        poll_every=0.05,
        stats={post.key: post},
        fixture=fixture,
    )


def schedule_row(state: str, expected: int, sent: int) -> dict[str, Any]:
    return {"state": state, "packets_expected": expected, "packets_sent": sent}


def test_check_schedules_names_what_did_not_run_or_arrive(tmp_path: Path, serve: Any) -> None:
    fake = serve(finish=True)
    names = ("ok", "short", "dup", "failed", "wrong", "never", "warm", "zzz")
    ids = {name: f"{n:032x}" for n, name in enumerate(names)}
    fake.schedules.update({
        ids["ok"]: schedule_row("done", 10, 10),
        ids["short"]: schedule_row("done", 10, 10),
        ids["dup"]: schedule_row("done", 10, 10),
        ids["failed"]: schedule_row("failed", 10, 0),
        ids["wrong"]: schedule_row("done", 10, 9),
        ids["never"]: schedule_row("scheduled", 10, 0),
    })  # fmt: skip
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    receiver = UdpReceiver(sock)
    thread = threading.Thread(target=receiver.serve, daemon=True)
    thread.start()
    sample = Sample(1.7e9, 3.7, 1.0, 20.0, 0.5, True)
    sends = {"ok": 10, "short": 7, "dup": 11, "wrong": 9, "warm": 3, "zzz": 2}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        for name, n in sends.items():
            for seq in range(n):
                out.sendto(pack("voyager-1", ids[name], seq, sample), ("127.0.0.1", receiver.port))
        out.sendto(b"junk", ("127.0.0.1", receiver.port))
    total = sum(sends.values())
    wait_for(
        lambda: sum(receiver.snapshot()[0].values()) == total and receiver.snapshot()[1],
        timeout=10,
        what="every datagram at the receiver",
    )
    fixture = TelemetryFixture(receiver=receiver, spaceship=None, warm_up_id=ids["warm"])
    asked = {ids[n]: 10 for n in ("ok", "short", "dup", "failed", "wrong", "never")}
    try:
        assert check_schedules(schedules_context(tmp_path, fake, fixture, asked, posts=7)) == (
            CheckResult(passed=False, summary="7 schedules were accepted but 6 recorded")
        )
        checked = check_schedules(schedules_context(tmp_path, fake, fixture, asked, posts=6))
        receiver.malformed.clear()  # the junk datagram: only a clean stream is left to check
        ok = check_schedules(schedules_context(tmp_path, fake, fixture, {ids["ok"]: 10}, posts=1))
    finally:
        receiver.stop.set()
        thread.join(5)
        sock.close()
    assert not checked.passed
    i = ids
    assert checked.details == (
        f"1 not ended: {i['never']} (scheduled, 0 sent)",
        f"1 not done: {i['failed']} (failed)",
        f"2 sent other than asked: {i['failed']} (asked 10, expected 10, sent 0), "
        f"{i['wrong']} (asked 10, expected 10, sent 9)",
        f"3 with packets missing at the receiver: {i['short']} (7/10), {i['failed']} (0/10), "
        f"{i['wrong']} (9/10)",
        f"1 with duplicate packets at the receiver: {i['dup']} (11/10)",
        "1 malformed datagrams: too short: 4 bytes, a packet has at least 48",
    )
    assert checked.summary.startswith(
        "6 schedules created, 4 done, 1 not ended; packets 60 asked, 39 sent, 37 received; "
    )
    assert checked.figures["strangers"] == [i["zzz"]]  # the warm-up is not a stranger
    assert checked.notes == (f"1 streams this load did not record: {i['zzz']}",)
    assert ok.passed and ok.summary.startswith(
        "1 schedules created, 1 done, 0 not ended; packets 10 asked, 10 sent, 10 received ("
    )
