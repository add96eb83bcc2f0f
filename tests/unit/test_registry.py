"""The registries: scenarios (herald.scenarios.base) and services (herald.services.registry),
and what is derived from them."""

from __future__ import annotations

import gc
import sys

import msgspec
import pytest

from herald import cli
from herald.config import load_settings
from herald.errors import ConfigError
from herald.scenarios import base, retail, sms
from herald.services import registry


def test_the_scenario_registry_finds_every_scenario_module() -> None:
    assert list(base.scenarios()) == ["retail", "sms", "telemetry"]
    assert base.get("sms") is sms.SCENARIO and base.get("retail") is retail.SCENARIO
    with pytest.raises(
        ConfigError, match=r"^no scenario 'nope'; scenarios: retail, sms, telemetry$"
    ):
        base.get("nope")
    assert [t.name for t in base.all_topics()] == [
        "herald.retail.enter",
        "herald.retail.move",
        "herald.retail.exit",
        "herald.retail.injections",
        "herald.sms.outbound",
        "herald.sms.results",
        "herald.telemetry.commands",
        "herald.telemetry.streams",
        "herald.telemetry.frames",
    ]
    settings = load_settings(overrides={"kafka": {"namespace": "ns"}})
    assert list(base.by_facts_topic(settings)) == [
        "ns.herald.retail.enter",
        "ns.herald.retail.move",
        "ns.herald.retail.exit",
        "ns.herald.sms.results",
    ]


def test_a_scenario_may_rename_its_topics_through_its_settings() -> None:
    settings = load_settings(overrides={"retail": {"enter_topic": "customer/enter"}})
    names = [t.name for t in base.all_topics(settings)]
    assert names[:2] == ["customer.enter", "herald.retail.move"]
    facts = base.by_facts_topic(settings)
    assert facts["customer.enter"].topic.payload is retail.RetailEnter
    assert facts["customer.enter"].scenario is retail.SCENARIO
    assert base.renamed(sms.RESULTS, settings) is sms.RESULTS  # nothing else is renamed


def test_a_run_request_is_decoded_by_its_scenario() -> None:
    raw = (
        b'{"run_id": "r1", "scenario": "sms", "seed": 3, "messages": 7, '
        b'"requested_at": "2025-01-15T09:30:00Z"}'
    )
    request = base.decode_request(raw)
    assert isinstance(request, sms.SmsRun) and request.expected == 7
    with pytest.raises(msgspec.ValidationError, match="unknown scenario 'x'"):
        base.decode_request(b'{"run_id": "r1", "scenario": "x"}')
    with pytest.raises(msgspec.DecodeError):
        base.decode_request(b"not json")


def test_the_monitors_view_reads_the_envelope_by_its_json_names() -> None:
    view = base.result_view(sms.SmsResult)
    result = next(iter(sms.SCENARIO.examples()["SmsResult"])).value
    decoded = msgspec.json.decode(msgspec.json.encode(result), type=view)
    assert (decoded.run_id, decoded.seq, decoded.worker, decoded.status) == (
        "7f3a9c2e41b0",
        0,
        2,
        "sent",
    )
    # A fact without a worker (a timeline's event) reads as worker 0; its latency by its name.
    view = base.result_view(retail.RetailMove)
    move = next(iter(retail.SCENARIO.examples()["RetailMove"])).value
    decoded = msgspec.json.decode(msgspec.json.encode(move), type=view)
    assert (decoded.worker, decoded.status, decoded.latency_ms) == (0, "move", move.latency_ms)


def test_services_in_start_order_with_the_workers_first() -> None:
    names = [s.name for s in registry.services()]
    assert names == [
        "sender",
        "producer",
        "monitor",
        "recorder",
        "web",
        "scheduler",
        "notifier",
        "spaceship",
        "ingestor",
        "migrate",
    ]
    sender = registry.get("sender")
    assert (sender.scaling, sender.health, sender.scenario) == ("profiles", "control", "sms")
    assert [s.name for s in registry.services() if s.needs_database] == [
        "recorder",
        "web",
        "scheduler",
        "notifier",
        "migrate",
    ]
    with pytest.raises(ConfigError, match="no service 'nope'"):
        registry.get("nope")


def test_a_runs_instances_expand_the_worker_per_profile() -> None:
    settings = load_settings(overrides={"senders": [{}, {"failure_rate": 0.5}]})
    got = [(i.name, i.args) for i in registry.instances(settings)]
    assert got == [
        ("sender-0", ("sender", "--id", "0")),
        ("sender-1", ("sender", "--id", "1")),
        ("producer", ("producer",)),
        ("monitor", ("monitor",)),
        ("recorder", ("recorder",)),
        ("spaceship", ("spaceship",)),
        ("ingestor", ("ingestor",)),
    ]
    # herald web's embedded stack adds the timer services: its API takes timers.
    web = [i.name for i in registry.instances(settings, role="web")]
    # Not the telemetry services: their UDP ports are fixed, another stack may hold them.
    assert web == [name for name, _ in got[:-2]] + ["scheduler", "notifier"]
    whole = [i.name for i in registry.instances(settings, role="stack")]
    assert whole == [
        "sender-0",
        "sender-1",
        "producer",
        "monitor",
        "recorder",
        "web",
        "scheduler",
        "notifier",
        "spaceship",
        "ingestor",
        "migrate",
    ]
    # A run of a scenario without workers starts no other scenario's workers.
    assert [i.name for i in registry.instances(settings, scenario="retail")] == [
        "producer",
        "monitor",
        "recorder",
    ]


def test_the_cli_is_derived_from_the_registry() -> None:
    text = cli.usage()
    for svc in registry.services():
        assert f"  {svc.name}" in text, svc.name
    assert "  sender --id N" in text and "  submit" in text and "  sim" in text
    assert cli.command("nope") is None
    assert callable(cli.command("sender")) and callable(cli.command("sim"))
    assert cli.main(["nope"]) == 2
    assert cli.main([]) == 2 and cli.main(["--help"]) == 0


def test_the_dead_letter_header_names_every_service_that_dead_letters() -> None:
    assert [s.name for s in registry.dead_letter_writers()] == [
        "sender",
        "producer",
        "recorder",
        "notifier",
        "spaceship",
        "ingestor",
    ]
    assert registry.dead_letter_service_pattern() == (
        "^(ingestor|notifier|producer|recorder|sender-[0-9]+|spaceship)$"
    )


def test_the_herald_command_exits_with_mains_code_after_freezing_its_heap(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["herald", "nosuch"])
    frozen = gc.get_freeze_count()
    try:
        with pytest.raises(SystemExit) as exited:
            cli.entry()
        assert exited.value.code == 2
        assert gc.get_freeze_count() > frozen  # what was alive skips the exit's collections
    finally:
        gc.unfreeze()  # this process goes on
    assert capsys.readouterr().err == f"herald: unknown command 'nosuch'\n\n{cli.usage()}\n"
