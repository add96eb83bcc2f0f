"""The control topic on the real broker: what a listener returns, once each, and what not."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import TopicPartition

from herald import contracts, control
from herald.config import Settings
from herald.contracts import ServiceEvent
from tests.support.topics import produce_records
from tests.support.waiting import wait_for


def test_a_listener_returns_each_event_since_its_start_once_and_skips_unreadable_records(
    settings: Settings,
) -> None:
    ks = settings.kafka
    topic = contracts.CONTROL.qualified(ks.namespace)
    # An event from before the listener's start: on the topic, within the second it reads
    # back from, and not returned.
    before = control.Announcer(ks, service="sender", instance="sender-0")
    before.started()
    before.close()
    listener = control.Listener(ks, since=datetime.now(UTC))
    announcers = [control.Announcer(ks, service="sender", instance=f"sender-{i}") for i in range(3)]
    try:
        for a in announcers:
            a.started()
        produce_records(settings, topic, [(b"sender-1", b"\xffnot json")])
        for i, a in enumerate(announcers):
            a.ready([TopicPartition("herald.sms.outbound", i)])
            a.stopped(0)
        for a in announcers:
            a.close()
        seen: list[ServiceEvent] = []

        def all_nine() -> bool:
            seen.extend(e for e in listener.poll(0.2) if isinstance(e, ServiceEvent))
            return len(seen) >= 9

        wait_for(all_nine, 30, "nine events")
        # Every record is on the topic now; one more poll finds nothing new.
        seen.extend(listener.poll(0.2))  # type: ignore[arg-type]
    finally:
        listener.close()
    by_instance = {
        name: [(e.state, e.partitions, e.exit_code) for e in seen if e.instance == name]
        for name in ("sender-0", "sender-1", "sender-2")
    }
    assert len(seen) == 9
    assert by_instance == {
        f"sender-{i}": [
            ("started", [], None),
            ("ready", [f"herald.sms.outbound[{i}]"], None),
            ("stopped", [], 0),
        ]
        for i in range(3)
    }
