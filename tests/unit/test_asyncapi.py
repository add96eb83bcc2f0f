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
from herald.contracts import RunRequest, SmsMessage, SmsResult
from herald.errors import ConfigError, HeraldError
from tests.contract_schemas import (
    ROOT,
    assert_current,
    committed_document,
    contract,
    format_checker,
    resolve,
)

FIXTURES = ROOT / "tests" / "fixtures" / "contracts"
HTML = ROOT / "docs" / "asyncapi"
MODELS: dict[str, type[msgspec.Struct] | None] = {
    "RunRequest": RunRequest,
    "SmsMessage": SmsMessage,
    "SmsResult": SmsResult,
    "DeadLetter": None,
}


def test_committed_yaml_is_current() -> None:
    assert_current(
        ROOT / "docs" / "asyncapi.yaml",
        asyncapi.render("yaml"),
        "poetry run invoke app.gen-asyncapi-spec",
    )


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_committed_openapi_is_current_when_there_is_one(fmt: str) -> None:
    # The web app owns docs/openapi.*; a document is compared only once it is committed, and
    # the web app is imported only then (it is not this module's to need).
    path = ROOT / "docs" / f"openapi.{fmt}"
    if path.exists():
        openapi_text = importlib.import_module("herald.web.app").openapi_text
        assert_current(path, openapi_text(fmt), f"poetry run invoke app.gen-api-spec --fmt {fmt}")


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
    assert set(by_address) == {t.name for t in contracts.ALL_TOPICS}
    for topic in contracts.ALL_TOPICS:
        binding = by_address[topic.name]["bindings"]["kafka"]
        assert binding == {
            "topic": topic.name,
            "partitions": 12,
            "replicas": 1,
            "bindingVersion": "0.5.0",
        }
        (message,) = by_address[topic.name]["messages"].values()
        name = resolve(doc, message)["name"]
        assert name == (topic.payload.__name__ if topic.payload else "DeadLetter")


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
        "sendSms": ("send", "herald.sms.outbound", None),
        "deliverSms": ("receive", "herald.sms.outbound", ["herald-senders"]),
        "publishResult": ("send", "herald.sms.results", None),
        "recordResult": ("receive", "herald.sms.results", ["herald-recorders"]),
        "monitorResults": ("receive", "herald.sms.results", None),
        "deadLetter": ("send", "herald.dlq", None),
        "monitorDeadLetters": ("receive", "herald.dlq", None),
    }
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
    _, schemas = msgspec.json.schema_components(
        (RunRequest, SmsMessage, SmsResult), ref_template="#/components/schemas/{name}"
    )
    assert committed_document()["components"]["schemas"] == schemas
    assert schemas["SmsResult"]["properties"]["completed_at"]["format"] == "date-time"


def test_dead_letter_headers_are_the_ones_the_services_write() -> None:
    message = committed_document()["components"]["messages"]["DeadLetter"]
    names = {
        contracts.DLQ_REASON,
        contracts.DLQ_TOPIC,
        contracts.DLQ_PARTITION,
        contracts.DLQ_OFFSET,
        contracts.DLQ_SERVICE,
    }
    assert set(message["headers"]["properties"]) == names
    assert set(message["headers"]["required"]) == names
    assert message["contentType"] == "application/octet-stream"


def test_every_example_keeps_the_contract_and_decodes() -> None:
    doc = committed_document()
    for channel in doc["channels"].values():
        check = contract(channel["address"])
        message = resolve(doc, next(iter(channel["messages"].values())))
        assert message["examples"], message["name"]
        model = MODELS[message["name"]]
        for example in message["examples"]:
            payload = example["payload"]
            value = payload if model is not None else None
            assert check.errors(key=None, value=value, headers=example.get("headers")) == []
            if model is not None:
                msgspec.json.decode(json.dumps(payload), type=model)  # herald accepts it too


def test_the_dead_letter_example_carries_a_real_decoder_error() -> None:
    (example,) = committed_document()["components"]["messages"]["DeadLetter"]["examples"]
    reason = example["headers"][contracts.DLQ_REASON]
    assert reason == "ValidationError: Expected `str` of length >= 1 - at `$.text`"
    assert json.loads(example["payload"])["text"] == ""


def _fixtures(name: str) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = json.loads((FIXTURES / f"{name}.json").read_text())
    return samples


@pytest.mark.parametrize("name", sorted(MODELS))
def test_messages_of_today_still_keep_the_contract(name: str) -> None:
    """Backward compatibility: a schema that rejects a message of today is a breaking change."""
    samples = _fixtures(name)
    assert len(samples) >= 3
    address = {"RunRequest": "herald.runs", "SmsMessage": "herald.sms.outbound"}.get(
        name, "herald.sms.results" if name == "SmsResult" else "herald.dlq"
    )
    check = contract(address)
    assert check.name == name
    model = MODELS[name]
    for sample in samples:
        key = sample["key"].encode() if sample["key"] is not None else None
        value = sample["payload"] if model is not None else None
        assert check.errors(key=key, value=value, headers=sample.get("headers")) == [], sample
        if model is not None:
            msgspec.json.decode(json.dumps(sample["payload"]), type=model)


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
