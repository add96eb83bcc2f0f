"""The AsyncAPI document: current, complete, and compatible with the messages of today."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from herald import asyncapi, contracts
from herald.contracts import ControlEvent
from herald.errors import ConfigError, HeraldError
from herald.scenarios import base
from herald.scenarios.retail import (
    RetailEnter,
    RetailExit,
    RetailInjection,
    RetailMove,
    RetailRun,
)
from herald.scenarios.sms import SmsMessage, SmsResult, SmsRun
from herald.scenarios.telemetry import StreamCommand, StreamEvent, TelemetryFrame, TelemetryRun
from herald.services import registry
from herald.timers import FireCommand
from tests.support.contracts import (
    ROOT,
    assert_current,
    committed_document,
    contract,
    format_checker,
    resolve,
)

FIXTURES = ROOT / "tests" / "fixtures" / "contracts"
HTML = ROOT / "docs" / "asyncapi"
# How herald itself decodes each message (None: dead letters, any bytes).
DECODERS: dict[str, Any] = {
    "RunRequest": lambda raw: base.decode_request(raw.encode()),
    "ControlEvent": msgspec.json.Decoder(ControlEvent).decode,
    "SmsMessage": msgspec.json.Decoder(SmsMessage).decode,
    "SmsResult": msgspec.json.Decoder(SmsResult).decode,
    "FireCommand": msgspec.json.Decoder(FireCommand).decode,
    "RetailEnter": msgspec.json.Decoder(RetailEnter).decode,
    "RetailMove": msgspec.json.Decoder(RetailMove).decode,
    "RetailExit": msgspec.json.Decoder(RetailExit).decode,
    "RetailInjection": msgspec.json.Decoder(RetailInjection).decode,
    "StreamCommand": msgspec.json.Decoder(StreamCommand).decode,
    "StreamEvent": msgspec.json.Decoder(StreamEvent).decode,
    "TelemetryFrame": msgspec.json.Decoder(TelemetryFrame).decode,
    "DeadLetter": None,
}
ADDRESSES = {
    "RunRequest": "herald.runs",
    "ControlEvent": "herald.control",
    "SmsMessage": "herald.sms.outbound",
    "SmsResult": "herald.sms.results",
    "FireCommand": "herald.timers.fire",
    "RetailEnter": "herald.retail.enter",
    "RetailMove": "herald.retail.move",
    "RetailExit": "herald.retail.exit",
    "RetailInjection": "herald.retail.injections",
    "StreamCommand": "herald.telemetry.commands",
    "StreamEvent": "herald.telemetry.streams",
    "TelemetryFrame": "herald.telemetry.frames",
    "DeadLetter": "herald.dlq",
}


def test_committed_yaml_is_current() -> None:
    assert_current(
        ROOT / "docs" / "asyncapi.yaml",
        asyncapi.render("yaml"),
        "poetry run invoke app.gen-asyncapi-spec",
    )


def test_committed_openapi_is_current() -> None:
    # The web app owns docs/openapi.json (imported here only: it is not this module's to need).
    openapi_text = importlib.import_module("herald.web.app").openapi_text
    path = ROOT / "docs" / "openapi.json"
    assert_current(path, openapi_text("json"), "poetry run invoke app.gen-api-spec --fmt json")


def test_assert_current_shows_a_unified_diff(tmp_path: Path) -> None:
    stale = ROOT / "docs" / "asyncapi.yaml"
    generated = stale.read_text().replace("title: herald topics", "title: other")
    with pytest.raises(AssertionError) as info:
        assert_current(stale, generated, "regenerate")
    text = str(info.value)
    assert text.startswith("docs/asyncapi.yaml is stale; run `regenerate`:\n")
    assert "\n-  title: herald topics\n+  title: other\n" in text


def test_json_and_yaml_hold_the_same_document() -> None:
    assert json.loads(asyncapi.render("json")) == yaml.safe_load(asyncapi.render("yaml"))
    assert asyncapi.render("yaml") == asyncapi.render("yaml")  # deterministic


def test_every_topic_has_a_channel_with_its_kafka_binding() -> None:
    doc = committed_document()
    assert doc["asyncapi"] == "3.0.0"
    by_address = {c["address"]: c for c in doc["channels"].values()}
    topics = asyncapi.kafka_topics()
    assert set(by_address) == {t.name for t in topics} == set(ADDRESSES.values())
    for topic in topics:
        binding = by_address[topic.name]["bindings"]["kafka"]
        assert binding == {
            "topic": topic.name,
            "partitions": 1 if topic is contracts.CONTROL else 12,
            "replicas": 1,
            "bindingVersion": "0.5.0",
        }
        (message,) = by_address[topic.name]["messages"].values()
        assert ADDRESSES[resolve(doc, message)["name"]] == topic.name


def test_operations_say_who_sends_and_receives_and_in_which_group() -> None:
    doc = committed_document()
    ops = {
        op_id: (
            op["action"],
            resolve(doc, op["channel"])["address"],
            op.get("bindings", {}).get("kafka", {}).get("groupId", {}).get("enum"),
        )
        for op_id, op in doc["operations"].items()
    }
    assert ops == {
        "submitRun": ("send", "herald.runs", None),
        "produceRun": ("receive", "herald.runs", ["herald-producers"]),
        "recordRun": ("receive", "herald.runs", ["herald-recorders"]),
        "monitorRuns": ("receive", "herald.runs", None),
        "produceSmsOutbound": ("send", "herald.sms.outbound", None),
        "workSmsOutbound": ("receive", "herald.sms.outbound", ["herald-senders"]),
        "publishSmsResults": ("send", "herald.sms.results", None),
        "recordSmsResults": ("receive", "herald.sms.results", ["herald-recorders"]),
        "monitorSmsResults": ("receive", "herald.sms.results", None),
        "fireTimers": ("send", "herald.timers.fire", None),
        "startScheduledRuns": ("send", "herald.runs", None),
        "deliverTimers": ("receive", "herald.timers.fire", ["herald-notifiers"]),
        "produceRetailEnter": ("send", "herald.retail.enter", None),
        "produceRetailMove": ("send", "herald.retail.move", None),
        "produceRetailExit": ("send", "herald.retail.exit", None),
        "mergeRetailInjections": ("receive", "herald.retail.injections", None),
        "injectRetailInjections": ("send", "herald.retail.injections", None),
        "recordRetailEnter": ("receive", "herald.retail.enter", ["herald-recorders"]),
        "recordRetailMove": ("receive", "herald.retail.move", ["herald-recorders"]),
        "recordRetailExit": ("receive", "herald.retail.exit", ["herald-recorders"]),
        "monitorRetailEnter": ("receive", "herald.retail.enter", None),
        "monitorRetailMove": ("receive", "herald.retail.move", None),
        "monitorRetailExit": ("receive", "herald.retail.exit", None),
        "startTelemetryStreams": ("send", "herald.telemetry.commands", None),
        "stopTelemetryStreams": ("send", "herald.telemetry.commands", None),
        "runTelemetryStreams": ("receive", "herald.telemetry.commands", ["herald-spaceships"]),
        "reportTelemetryStreams": ("send", "herald.telemetry.streams", None),
        "ingestTelemetryFrames": ("send", "herald.telemetry.frames", None),
        "recordTelemetryStreams": ("receive", "herald.telemetry.streams", ["herald-recorders"]),
        "recordTelemetryFrames": ("receive", "herald.telemetry.frames", ["herald-recorders"]),
        "recordRunProduced": ("receive", "herald.control", ["herald-recorders"]),
        "monitorRunProduced": ("receive", "herald.control", None),
        "announce": ("send", "herald.control", None),
        "orchestrate": ("receive", "herald.control", None),
        "deadLetter": ("send", "herald.dlq", None),
        "monitorDeadLetters": ("receive", "herald.dlq", None),
    }
    # Derived from the service registry: one per (service, operation).
    assert set(ops) == {op.id for _svc, op in registry.operations()}
    # The group ids are the ones the services use.
    assert contracts.group_id("", "senders") == "herald-senders"
    for op in doc["operations"].values():
        (ref,) = op["messages"]
        assert ref["$ref"].startswith(op["channel"]["$ref"] + "/messages/")


def test_servers_and_security_schemes() -> None:
    doc = committed_document()
    servers = doc["servers"]
    assert {name: (s["host"], s["protocol"]) for name, s in servers.items()} == {
        "embedded": ("127.0.0.1:{port}", "kafka"),
        "compose": ("kafka:9092", "kafka"),
        "cluster": ("{broker}:9093", "kafka-secure"),
    }
    assert servers["cluster"]["variables"]["broker"]["enum"] == ["kafka-1", "kafka-2", "kafka-3"]
    schemes = [resolve(doc, s)["type"] for s in servers["cluster"]["security"]]
    assert schemes == ["scramSha512", "X509"]


def test_payload_schemas_are_the_models_schemas() -> None:
    models = (
        RetailRun,
        SmsRun,
        SmsMessage,
        SmsResult,
        RetailEnter,
        RetailMove,
        RetailExit,
        RetailInjection,
        TelemetryRun,
        StreamCommand,
        StreamEvent,
        TelemetryFrame,
        *contracts.CONTROL_EVENTS,
    )
    _, schemas = msgspec.json.schema_components(models, ref_template="#/components/schemas/{name}")
    committed = committed_document()["components"]["schemas"]
    assert {k: v for k, v in committed.items() if k in schemas} == schemas
    assert schemas["SmsResult"]["properties"]["completed_at"]["format"] == "date-time"
    # The run request is any scenario's; the control event is any of the four.
    assert committed["RunRequest"]["oneOf"] == [
        {"$ref": "#/components/schemas/RetailRun"},
        {"$ref": "#/components/schemas/SmsRun"},
        {"$ref": "#/components/schemas/TelemetryRun"},
    ]
    assert [r["$ref"].rsplit("/", 1)[1] for r in committed["ControlEvent"]["oneOf"]] == [
        "ServiceEvent",
        "RunCompleted",
        "RunProduced",
        "RunFigures",
    ]
    # A run request without a scenario is the default scenario's, as it always was.
    assert "scenario" not in committed["SmsRun"]["required"]


def test_dead_letter_headers_are_the_ones_the_services_write() -> None:
    message = committed_document()["components"]["messages"]["DeadLetter"]
    names = set(contracts.DLQ_HEADERS)
    # A datagram's dead letter (the telemetry ingestor's) also names its sender.
    assert set(message["headers"]["properties"]) == {*names, contracts.DLQ_SENDER}
    assert set(message["headers"]["required"]) == names
    assert message["contentType"] == "application/octet-stream"
    # Every service that dead-letters, by the name it writes (from the service registry).
    service = message["headers"]["properties"][contracts.DLQ_SERVICE]["pattern"]
    assert service == "^(ingestor|notifier|producer|recorder|sender-[0-9]+|spaceship)$"
    assert service == registry.dead_letter_service_pattern()


def test_every_example_keeps_the_contract_and_decodes() -> None:
    doc = committed_document()
    for channel in doc["channels"].values():
        check = contract(channel["address"])
        message = resolve(doc, next(iter(channel["messages"].values())))
        assert message["examples"], message["name"]
        decode = DECODERS[message["name"]]
        for example in message["examples"]:
            payload = example["payload"]
            value = payload if decode is not None else None
            assert check.errors(key=None, value=value, headers=example.get("headers")) == []
            if decode is not None:
                decode(json.dumps(payload))  # herald accepts it too


def test_the_dead_letter_example_carries_a_real_decoder_error() -> None:
    (example,) = committed_document()["components"]["messages"]["DeadLetter"]["examples"]
    reason = example["headers"][contracts.DLQ_REASON]
    assert reason == "ValidationError: Object missing required field `id`"
    assert "id" not in json.loads(example["payload"])


def _fixtures(name: str) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = json.loads((FIXTURES / f"{name}.json").read_text())
    return samples


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_messages_of_today_still_keep_the_contract(name: str) -> None:
    """Backward compatibility: a schema that rejects a message of today is a breaking change."""
    samples = _fixtures(name)
    assert len(samples) >= 3
    check = contract(ADDRESSES[name])
    assert check.name == name
    decode = DECODERS[name]
    for sample in samples:
        key = sample["key"].encode() if sample["key"] is not None else None
        value = sample["payload"] if decode is not None else None
        assert check.errors(key=key, value=value, headers=sample.get("headers")) == [], sample
        if decode is not None:
            decode(json.dumps(sample["payload"]))


def test_a_run_request_of_before_scenarios_still_decodes_as_the_default_scenario() -> None:
    old = {"run_id": "old", "messages": 5, "seed": 1, "requested_at": "2025-01-15T09:30:00Z"}
    assert contract("herald.runs").errors(key=b"old", value=old, headers=None) == []
    request = base.decode_request(json.dumps(old).encode())
    assert (type(request), request.scenario, request.expected) == (SmsRun, "sms", 5)


def test_the_compatibility_check_catches_a_breaking_change() -> None:
    # The same check, against a document where `text` became at most 50 characters and a
    # new field became required: both reject messages of today.
    doc = json.loads(json.dumps(committed_document()))
    schema = doc["components"]["schemas"]["SmsMessage"]
    schema["properties"]["text"]["maxLength"] = 50
    schema["required"].append("priority")
    check = contract("herald.sms.outbound", doc)
    errors = [
        check.errors(key=None, value=s["payload"], headers=None) for s in _fixtures("SmsMessage")
    ]
    assert errors[0] == ["payload: 'priority' is a required property"]
    assert sorted(errors[1]) == sorted(
        [
            "payload: 'priority' is a required property",
            f"payload: {_fixtures('SmsMessage')[1]['payload']['text']!r} is too long",
        ]
    )


def test_contracts_reject_what_herald_rejects() -> None:
    check = contract("herald.sms.results")
    good = committed_document()["components"]["messages"]["SmsResult"]["examples"][0]["payload"]
    assert check.errors(key=b"run-1", value=good, headers=None) == []
    assert check.errors(key=b"bad key!", value=good, headers=None) == [
        "key: 'bad key!' does not match '^[A-Za-z0-9_:.-]{1,128}$'"
    ]
    for change, error in (
        ({"status": "lost"}, "'lost' is not one of ['failed', 'sent']"),
        ({"attempts": 0}, "0 is less than the minimum of 1"),
        ({"extra": 1}, "Additional properties are not allowed ('extra' was unexpected)"),
        ({"completed_at": "2025-13-01T00:00:00Z"}, "'2025-13-01T00:00:00Z' is not a 'date-time'"),
        ({"received_at": "yesterday"}, "'yesterday' is not a 'date-time'"),
    ):
        assert check.errors(key=None, value={**good, **change}, headers=None) == [
            f"payload: {error}"
        ]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2025-01-15T09:30:00Z", True),
        ("2025-01-15T09:30:00.123456+02:00", True),
        ("2025-01-15t09:30:00z", True),
        ("2025-01-15T09:30:00", False),  # no offset
        ("2025-01-15 09:30:00Z", False),
        ("2025-02-30T09:30:00Z", False),
        ("2025-01-15T25:30:00Z", False),
    ],
)
def test_date_time_format_is_checked(value: str, ok: bool) -> None:
    assert format_checker().conforms(value, "date-time") is ok


def test_committed_html_shows_the_current_document() -> None:
    """docs/asyncapi/ embeds the document it was rendered from (dereferenced): compare."""
    text = (HTML / "js" / "app.js").read_text()
    start = text.index("const schema = ") + len("const schema = ")
    embedded = json.loads(text[start : text.index("\n};\n", start) + 2])
    doc = asyncapi.document()
    assert embedded["info"] == doc["info"], "docs/asyncapi/ is stale: --fmt html"
    assert _strip(embedded["operations"], drop={"channel", "messages"}) == _strip(
        doc["operations"], drop={"channel", "messages"}
    )
    for channel_id, channel in doc["channels"].items():
        shown = embedded["channels"][channel_id]
        for name, ref in channel["messages"].items():
            assert _strip(shown["messages"][name]) == _deref(doc, resolve(doc, ref)), (
                f"docs/asyncapi/ is stale ({name}); run `poetry run invoke "
                "app.gen-asyncapi-spec --fmt html`"
            )
    assert (HTML / "index.html").stat().st_size > 0


def _strip(node: Any, drop: frozenset[str] | set[str] = frozenset()) -> Any:
    if isinstance(node, dict):
        return {
            k: _strip(v, drop)
            for k, v in node.items()
            if not k.startswith("x-parser-") and k not in drop
        }
    if isinstance(node, list):
        return [_strip(v, drop) for v in node]
    return node


def _deref(doc: dict[str, Any], node: Any) -> Any:
    node = resolve(doc, node)
    if isinstance(node, dict):
        return {k: _deref(doc, v) for k, v in node.items()}
    if isinstance(node, list):
        return [_deref(doc, v) for v in node]
    return node


def test_write_docs_writes_json_and_yaml_and_refuses_other_formats(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    said: list[str] = []
    assert asyncapi.write_docs(tmp_path, "json", say=said.append) == tmp_path / "docs/asyncapi.json"
    assert asyncapi.write_docs(tmp_path, "yaml", say=said.append) == tmp_path / "docs/asyncapi.yaml"
    assert said == ["wrote docs/asyncapi.json", "wrote docs/asyncapi.yaml"]
    assert json.loads((tmp_path / "docs/asyncapi.json").read_text()) == asyncapi.document()
    assert (tmp_path / "docs/asyncapi.yaml").read_text() == asyncapi.render("yaml")
    with pytest.raises(ConfigError, match="unknown format 'xml': one of json, yaml, html"):
        asyncapi.write_docs(tmp_path, "xml")


def test_installing_the_cli_without_npm_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(HeraldError, match=r"npm not found: install Node\.js 20\+"):
        asyncapi.install_tools(tmp_path / "tools", say=lambda _: None)
    assert not (tmp_path / "tools" / "installed.json").exists()


def test_the_cli_installs_from_a_lock_file_that_pins_what_package_json_names() -> None:
    package = json.loads((asyncapi.NPM_PROJECT / "package.json").read_text())
    named = [f"{name}@{pinned}" for name, pinned in package["dependencies"].items()]
    assert named == list(asyncapi.NPM_PACKAGES)
    lock = json.loads((asyncapi.NPM_PROJECT / "package-lock.json").read_text())
    assert lock["lockfileVersion"] == 3
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    for name, pinned in package["dependencies"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == pinned
    # Every package pinned by version and checksum (those bundled inside another package's
    # tarball are covered by its checksum); none by a registry address.
    entries = {path: entry for path, entry in lock["packages"].items() if path}
    assert len(entries) > 1000
    assert [path for path, entry in entries.items() if "resolved" in entry] == []
    unchecked = [p for p, e in entries.items() if "integrity" not in e and not e.get("inBundle")]
    assert unchecked == []
