"""The REST API with Flask's test client, against the real database and broker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from flask.testing import FlaskClient
from flask_openapi3.openapi import OpenAPI
from prometheus_client.parser import text_string_to_metric_families

from herald import contracts, runs
from herald.config import Settings
from herald.scenarios import base
from herald.scenarios.sms import OUTBOUND, SmsRun
from herald.web import create_app
from herald.web.app import openapi_text, state
from tests.support.cluster import make_settings
from tests.support.sms import record, results_for
from tests.support.topics import read_topic
from tests.support.web import app, percentile_cont

__all__ = ["app"]  # the fixture


def client_of(app: OpenAPI) -> FlaskClient:
    return app.test_client()


def finished_run(settings: Settings, n: int = 1000) -> tuple[str, list[Any]]:
    request = runs.make_request(settings, messages=n, seed=7)
    batch = results_for(request.run_id, n, t0=datetime.now(UTC) - timedelta(seconds=10))
    assert record(settings, batch, [request]).new == n
    return request.run_id, batch


def fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "invalid request"
    return {d["field"]: d["reason"] for d in body["detail"]}


def test_post_run_publishes_the_request_and_creates_its_row(
    app: OpenAPI, settings: Settings
) -> None:
    client = client_of(app)
    response = client.post("/api/runs", json={"messages": 1234, "rate": 500.5, "seed": 42})
    assert response.status_code == 202
    body = response.get_json()
    run_id = body["run_id"]
    assert body == {
        "run_id": run_id,
        "scenario": "sms",
        "messages": 1234,
        "seed": 42,
        "rate": 500.5,
        "url": f"/api/runs/{run_id}",
        "dashboard_url": f"/runs/{run_id}",
        "start_at": None,
        "timer_url": None,
    }
    assert response.headers["Location"] == f"/api/runs/{run_id}"
    msgs = read_topic(settings, contracts.RUNS.qualified(settings.kafka.namespace), 1)
    assert len(msgs) == 1
    published = base.decode_request(msgs[0].value())
    assert isinstance(published, SmsRun)
    assert (published.run_id, published.messages, published.seed, published.rate) == (
        run_id,
        1234,
        42,
        500.5,
    )
    assert msgs[0].key() == run_id.encode()
    detail = client.get(f"/api/runs/{run_id}").get_json()
    assert detail["status"] == "requested"
    assert (detail["expected"], detail["done"], detail["remaining"], detail["percent"]) == (
        1234,
        0,
        1234,
        0.0,
    )
    assert detail["latency"] == {
        "avg_ms": None,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
        "max_ms": None,
    }
    assert detail["senders"] == []
    assert detail["counts"] == {}


def test_a_run_without_messages_is_the_settings_campaign_or_a_timeline_run(
    app: OpenAPI, settings: Settings
) -> None:
    client = client_of(app)
    sms = client.post("/api/runs", json={"seed": 1})
    assert sms.status_code == 202, sms.get_data(as_text=True)
    assert sms.get_json()["messages"] == settings.producer.num_messages
    retail = client.post("/api/runs", json={"scenario": "retail", "seed": 2})
    assert retail.status_code == 202, retail.get_data(as_text=True)
    assert retail.get_json()["scenario"] == "retail"
    published = [
        base.decode_request(m.value())
        for m in read_topic(settings, contracts.RUNS.qualified(settings.kafka.namespace), 2)
    ]
    # Keyed by run id, the two may sit in different partitions: compared in the same order.
    assert sorted((p.run_id, type(p).__name__) for p in published) == sorted(
        [(sms.get_json()["run_id"], "SmsRun"), (retail.get_json()["run_id"], "RetailRun")]
    )


def test_post_run_rejects_bad_bodies_with_the_field_and_reason(app: OpenAPI) -> None:
    client = client_of(app)
    assert fields(client.post("/api/runs", json={"messages": 0})) == {
        "messages": "Input should be greater than or equal to 1"
    }
    assert fields(client.post("/api/runs", json={"messages": "many"})) == {
        "messages": "Value error, must be a JSON number"
    }
    assert fields(client.post("/api/runs", json={"messages": True})) == {
        "messages": "Value error, must be a JSON number"
    }
    assert fields(client.post("/api/runs", json={"messages": 2.5})) == {
        "messages": "Input should be a valid integer, got a number with a fractional part"
    }
    assert fields(client.post("/api/runs", json={"scenario": "retail", "messages": 1})) == {
        "messages": "the retail scenario has no parameter messages"
    }
    assert fields(client.post("/api/runs", json={"messages": 5, "rate": -1, "seed": -2})) == {
        "rate": "Input should be greater than 0",
        "seed": "Input should be greater than or equal to 0",
    }
    assert fields(client.post("/api/runs", json={"messages": 5, "colour": "red"})) == {
        "colour": "Extra inputs are not permitted"
    }
    assert fields(client.post("/api/runs", json={"messages": 5, "scenario": "nope"})) == {
        "scenario": "Value error, no scenario 'nope'; scenarios: retail, sms, telemetry"
    }
    assert fields(client.post("/api/runs", json={"messages": 5, "scenario": "Bad!"})) == {
        "scenario": "String should match pattern '^[a-z][a-z0-9_]{0,31}$'"
    }
    not_json = client.post("/api/runs", data="{oops", content_type="application/json")
    assert list(fields(not_json)) == ["body"]
    assert list(fields(client.post("/api/runs"))) == ["body"]


def test_run_detail_has_exact_counts_latency_and_senders(app: OpenAPI, settings: Settings) -> None:
    run_id, batch = finished_run(settings, 1000)
    detail = client_of(app).get(f"/api/runs/{run_id}").get_json()
    assert detail["status"] == "completed"
    assert detail["finished_at"] is not None
    assert (detail["expected"], detail["sent"], detail["failed"], detail["done"]) == (
        1000,
        750,
        250,
        1000,
    )
    assert (detail["remaining"], detail["percent"]) == (0, 100.0)
    assert detail["counts"] == {"failed": 250, "sent": 750}
    latencies = [r.latency_ms for r in batch]
    lat = detail["latency"]
    assert lat["avg_ms"] == sum(latencies) / len(latencies)
    assert lat["max_ms"] == 99.0
    for key, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        assert abs(lat[key] - percentile_cont(latencies, q)) < 1e-9, key
    assert detail["throughput"] > 0
    senders = {s["sender_id"]: s for s in detail["senders"]}
    assert sorted(senders) == [0, 1, 2]
    for sid, s in senders.items():
        mine = [r for r in batch if r.worker == sid]
        assert s["sent"] == sum(r.status == "sent" for r in mine)
        assert s["failed"] == sum(r.status == "failed" for r in mine)
        assert s["sent"] + s["failed"] == len(mine)


def test_outcomes_filter_and_page_exactly(app: OpenAPI, settings: Settings) -> None:
    run_id, batch = finished_run(settings, 300)
    client = client_of(app)
    page = client.get(f"/api/runs/{run_id}/outcomes?per_page=100&page=3").get_json()
    assert (page["total"], page["pages"], page["page"], len(page["items"])) == (300, 3, 3, 100)
    everything = []
    for n in (1, 2, 3):
        everything += client.get(f"/api/runs/{run_id}/outcomes?per_page=100&page={n}").get_json()[
            "items"
        ]
    assert sorted(o["message_id"] for o in everything) == sorted(r.id for r in batch)
    failed = client.get(f"/api/runs/{run_id}/outcomes?status=failed&per_page=500").get_json()
    assert failed["total"] == 75
    assert {o["status"] for o in failed["items"]} == {"failed"}
    assert {o["failure_reason"] for o in failed["items"]} == {"carrier rejected"}
    sender1_sent = client.get(f"/api/runs/{run_id}/outcomes?status=sent&sender=1").get_json()
    assert sender1_sent["total"] == sum(1 for r in batch if r.worker == 1 and r.status == "sent")
    beyond = client.get(f"/api/runs/{run_id}/outcomes?page=99").get_json()
    assert (beyond["total"], beyond["items"]) == (300, [])
    one = batch[5]
    got = client.get(f"/api/messages/{one.id}").get_json()
    assert got["message_id"] == one.id
    assert (got["scenario"], got["detail"]) == ("sms", None)
    assert (got["run_id"], got["sender_id"], got["status"], got["latency_ms"]) == (
        run_id,
        one.worker,
        one.status,
        one.latency_ms,
    )


def test_run_callback_urls_follow_the_timers_rules_and_nothing_is_published(
    app: OpenAPI, settings: Settings
) -> None:
    client = client_of(app)
    ftp = {"messages": 10, "callback_url": "ftp://hooks.example.com/x"}
    assert fields(client.post("/api/runs", json=ftp)) == {
        "callback_url": "url scheme 'ftp' is not allowed: only http and https"
    }
    metadata = {"messages": 10, "status_callback_url": "http://169.254.169.254/latest/meta-data"}
    assert fields(client.post("/api/runs", json=metadata)) == {
        "status_callback_url": "url host '169.254.169.254' is 169.254.169.254, in denied network"
        " 169.254.169.254/32 (cloud metadata)"
    }
    # None of them reached the broker.
    assert read_topic(settings, contracts.RUNS.qualified(settings.kafka.namespace), 0) == []


def test_bad_parameters_get_422_with_the_field(app: OpenAPI, settings: Settings) -> None:
    run_id, _ = finished_run(settings, 10)
    client = client_of(app)
    assert fields(client.get("/api/runs?page=0")) == {
        "page": "Input should be greater than or equal to 1"
    }
    assert fields(client.get("/api/runs?per_page=abc")) == {
        "per_page": "Input should be a valid integer, unable to parse string as an integer"
    }
    assert fields(client.get("/api/runs?per_page=501")) == {
        "per_page": "Input should be less than or equal to 500"
    }
    assert list(fields(client.get(f"/api/runs/{run_id}/outcomes?status=Lost%21"))) == ["status"]
    # A well-formed status the run's scenario does not have: nothing, not an error.
    none = client.get(f"/api/runs/{run_id}/outcomes?status=lost").get_json()
    assert (none["total"], none["items"]) == (0, [])
    assert list(fields(client.get(f"/api/runs/{run_id}/outcomes?sender=-1"))) == ["sender"]
    assert list(fields(client.get("/api/runs/bad%20id!"))) == ["run_id"]
    assert list(fields(client.get("/api/runs/" + "x" * 65))) == ["run_id"]
    assert list(fields(client.get("/api/messages/a%00b"))) == ["message_id"]
    assert list(fields(client.get("/metrics?runs=0"))) == ["runs"]


def test_unknown_ids_get_404_and_wrong_methods_405(app: OpenAPI) -> None:
    client = client_of(app)
    missing = uuid.uuid4().hex[:12]
    for path in (
        f"/api/runs/{missing}",
        f"/api/runs/{missing}/outcomes",
        f"/api/messages/{missing}-0",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["status"] == 404
        assert missing in response.get_json()["error"]
    assert client.get("/api/nothing-here").status_code == 404
    wrong = client.delete("/api/runs")
    assert wrong.status_code == 405
    assert wrong.get_json() == {"error": wrong.get_json()["error"], "status": 405}
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_runs_are_paged_most_recent_first(app: OpenAPI, settings: Settings) -> None:
    # Far in the future, so that they sort before every other test's runs in the shared database.
    start = datetime(2200, 1, 1, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 10_000)
    ids = []
    for i in range(5):
        request = msgspec.structs.replace(
            runs.make_request(settings, messages=10 + i), requested_at=start + timedelta(minutes=i)
        )
        record(settings, [], [request])
        ids.append(request.run_id)
    client = client_of(app)
    first = client.get("/api/runs?per_page=2").get_json()
    second = client.get("/api/runs?per_page=2&page=2").get_json()
    assert [r["run_id"] for r in first["items"]] == [ids[4], ids[3]]
    assert [r["run_id"] for r in second["items"]] == [ids[2], ids[1]]
    assert first["total"] >= 5
    assert first["pages"] == -(-first["total"] // 2)
    assert first["items"][0]["expected"] == 14
    assert first["items"][0]["status"] == "requested"


def test_metrics_count_outcomes_and_bucket_latencies(app: OpenAPI, settings: Settings) -> None:
    run_id, batch = finished_run(settings, 400)
    text = client_of(app).get("/metrics?runs=100")
    assert text.status_code == 200
    assert text.content_type.startswith("text/plain")
    samples = [
        s
        for family in text_string_to_metric_families(text.get_data(as_text=True))
        for s in family.samples
        if s.labels.get("run_id") == run_id
    ]

    def value(name: str, **labels: str) -> float:
        found = [
            s.value for s in samples if s.name == name and s.labels == {"run_id": run_id, **labels}
        ]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    for sid in ("0", "1", "2"):
        mine = [r for r in batch if str(r.worker) == sid]
        assert value("herald_outcomes_total", sender=sid, status="sent") == sum(
            r.status == "sent" for r in mine
        )
        assert value("herald_send_latency_seconds_count", sender=sid) == len(mine)
        assert value("herald_send_latency_seconds_bucket", sender=sid, le="+Inf") == len(mine)
        # <= is inclusive: a latency of exactly 50 ms is in the 0.05 s bucket.
        assert value("herald_send_latency_seconds_bucket", sender=sid, le="0.05") == sum(
            r.latency_ms <= 50 for r in mine
        )
        assert (
            abs(
                value("herald_send_latency_seconds_sum", sender=sid)
                - sum(r.latency_ms for r in mine) / 1000
            )
            < 1e-9
        )
    assert value("herald_run_expected_messages") == 400
    assert value("herald_run_finished") == 1


def test_health_lag_and_the_openapi_document(app: OpenAPI, settings: Settings) -> None:
    client = client_of(app)
    health = client.get("/api/health")
    assert health.status_code == 200
    body = health.get_json()
    assert body["status"] == "ok"
    assert body["broker"]["ok"] and body["database"]["ok"]
    assert body["database"]["detail"].startswith("PostgreSQL 18")
    lag = client.get("/api/lag").get_json()
    assert lag["group"] == contracts.group_id(settings.kafka.namespace, "senders")
    assert lag["topic"] == OUTBOUND.qualified(settings.kafka.namespace)
    # Nothing produced yet, no commits: every partition has lag 0 and no committed offset.
    assert [(p["partition"], p["committed"], p["lag"]) for p in lag["partitions"]] == [
        (i, None, 0) for i in range(4)
    ]
    # A server without a token requires none (test_web_security checks that a server with
    # one serves exactly the committed document).
    served = client.get("/api/openapi.json").get_json()
    assert "securitySchemes" not in served["components"]
    assert [
        op for item in served["paths"].values() for op in item.values() if "security" in op
    ] == []
    assert served["paths"].keys() == json.loads(openapi_text("json"))["paths"].keys()


def test_health_reports_an_unreachable_broker_with_503(broker: Any, database: Any) -> None:
    from herald.runtime.ports import free_port

    s = make_settings(broker, database, "unreachable")
    s = s.model_copy(
        update={"kafka": s.kafka.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"})}
    )
    web = create_app(s)
    state(web).broker._timeout = 0.5
    try:
        response = web.test_client().get("/api/health")
    finally:
        state(web).close()
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["broker"]["ok"] is False
    assert body["database"]["ok"] is True


def test_a_finished_runs_event_stream_sends_its_final_state_and_ends(
    app: OpenAPI, settings: Settings
) -> None:
    run_id, _ = finished_run(settings, 200)
    response = client_of(app).get(f"/runs/{run_id}/events")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    text = response.get_data(as_text=True)  # the stream ends by itself
    events = [block for block in text.split("\n\n") if block.startswith("event:")]
    assert len(events) == 1
    name, data = events[0].split("\n", 1)
    assert name == "event: end"
    payload = json.loads(data.removeprefix("data: "))
    assert (payload["run"]["done"], payload["run"]["status"]) == (200, "completed")
    assert sum(b["n"] for b in payload["series"]) == 200
    assert sum(b["failed"] for b in payload["series"]) == 50
    assert payload["lag"]["group"].endswith("herald-senders")
    assert client_of(app).get("/runs/unknown0run/events").status_code == 404


def test_pages_and_docs_are_served_from_the_app_itself(app: OpenAPI, settings: Settings) -> None:
    run_id, _ = finished_run(settings, 5)
    client = client_of(app)
    for path in ("/", f"/runs/{run_id}", "/docs"):
        page = client.get(path)
        assert page.status_code == 200, path
        html = page.get_data(as_text=True)
        assert "http://" not in html and "https://" not in html, path
    docs = client.get("/docs").get_data(as_text=True)
    assert "/docs/assets/js/swagger-ui-bundle.js" in docs
    for asset in (
        "/docs/assets/js/swagger-ui-bundle.js",
        "/static/vendor/chartjs/chart.umd.min.js",
    ):
        with client.get(asset) as response:  # files are streamed: close them
            assert response.status_code == 200, asset
            assert response.mimetype == "text/javascript"
    assert client.get("/runs/not-a-run").status_code == 404
