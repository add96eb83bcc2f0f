from __future__ import annotations

import pytest

from herald.errors import ConfigError
from herald.incidents import Incident, Timeline, check


def test_specs_parse_into_incidents() -> None:
    assert Incident.parse("kill:sender-2@3s") == Incident(
        "kill:sender-2@3s", "kill", "sender-2", 3.0
    )
    assert Incident.parse(" pause:sender-1@2.5-6s ") == Incident(
        "pause:sender-1@2.5-6s", "pause", "sender-1", 2.5, 6.0
    )
    assert Incident.parse("db-outage@5s-12s").target is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("db-outage:recorder@1s-2s", "db-outage takes no service"),
        ("crash@1s", "crash needs a service, e.g. crash:sender-0@2s"),
        ("kill:sender-0@1s-2s", "kill happens at one time; no END"),
        ("pause:sender-0@2s", "pause needs START-END with END after START"),
        ("kill:sender-0@soon", "expected KIND:SERVICE@START[-END]"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Incident.parse(spec)


def test_a_run_must_keep_a_sender() -> None:
    services = ["sender-0", "sender-1", "producer", "monitor", "recorder"]
    check([Incident.parse("kill:sender-0@1s")], services, embedded_db=True)
    with pytest.raises(ConfigError, match="killing every sender leaves nobody to send"):
        check(
            [Incident.parse("kill:sender-0@1s"), Incident.parse("kill:sender-1@2s")],
            services,
            embedded_db=True,
        )


def test_timeline_applies_events_in_time_order_once() -> None:
    done: list[str] = []

    def act(name: str) -> object:
        return lambda target: done.append(f"{name} {target}") or f"{name} {target} done"

    timeline = Timeline(
        [Incident.parse("pause:sender-1@1s-3s"), Incident.parse("kill:sender-0@2s")],
        {a: act(a) for a in ("pause", "resume", "kill")},  # type: ignore[misc]
    )
    timeline.apply_due(0.5)
    assert done == []
    timeline.apply_due(2.0)
    assert done == ["pause sender-1", "kill sender-0"]
    assert timeline.killed == {"sender-0"}
    assert [i.spec for i in timeline.pending()] == ["pause:sender-1@1s-3s"]
    timeline.apply_due(10.0)
    timeline.apply_due(11.0)
    assert done == ["pause sender-1", "kill sender-0", "resume sender-1"]
    assert [a["at_secs"] for a in timeline.applied] == [2.0, 2.0, 10.0]
    assert timeline.pending() == []


def test_one_broker_of_three_may_be_killed() -> None:
    services = ["sender-0", "sender-1", "producer", "monitor", "recorder"]
    three = ["broker-1", "broker-2", "broker-3"]
    check([Incident.parse("kill:broker-2@3s")], services, embedded_db=True, brokers=three)
    check(
        [Incident.parse("restart:broker-2@3s"), Incident.parse("pause:broker-1@1s-4s")],
        services,
        embedded_db=True,
        brokers=three,
    )
    only = "only one broker of three can be killed for good"
    with pytest.raises(ConfigError, match=f"'kill:broker-3@4s': {only}"):
        check(
            [Incident.parse("kill:broker-2@3s"), Incident.parse("kill:broker-3@4s")],
            services,
            embedded_db=True,
            brokers=three,
        )
    with pytest.raises(ConfigError, match=f"'kill:broker-1@3s': {only}"):
        check([Incident.parse("kill:broker-1@3s")], services, embedded_db=True, brokers=three[:1])
    # Without the kafka engine there is no broker to name.
    with pytest.raises(ConfigError, match="no service 'broker-2' \\(services: monitor, producer"):
        check([Incident.parse("restart:broker-2@3s")], services, embedded_db=True)


def test_a_restart_with_an_end_is_down_in_between() -> None:
    spec = Incident.parse("restart:broker-2@3s-8s")
    assert (spec.kind, spec.target, spec.start, spec.end) == ("restart", "broker-2", 3.0, 8.0)
    with pytest.raises(ConfigError, match="restart's END must come after its START"):
        Incident.parse("restart:recorder@5s-2s")
    with pytest.raises(ConfigError, match="kill happens at one time; no END"):
        Incident.parse("kill:sender-1@1s-2s")
    calls: list[str] = []
    timeline = Timeline(
        [spec],
        actions={
            "stop": lambda n: calls.append(f"stop {n}") or f"SIGTERM {n} (pid 7)",
            "start": lambda n: calls.append(f"start {n}") or f"{n} started again (pid 8)",
        },
    )
    timeline.apply_due(3.5)
    assert calls == ["stop broker-2"] and timeline.killed == {"broker-2"}
    timeline.apply_due(8.0)
    assert calls == ["stop broker-2", "start broker-2"] and timeline.killed == set()
    assert [a["action"] for a in timeline.applied] == ["stop", "start"]
