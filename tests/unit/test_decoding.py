"""herald.decoding: the hot paths' decoders accept and refuse exactly what msgspec's decoder
of the same contract does, with the same message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from herald import decoding
from herald.contracts import RunProduced
from herald.scenarios import base
from herald.scenarios.sms import SmsGenerator, SmsMessage, SmsResult


def _examples() -> list[tuple[type[msgspec.Struct], msgspec.Struct]]:
    """Every scenario's example payloads whose type has pattern fields."""
    out = []
    for scenario in base.scenarios().values():
        for examples in scenario.examples().values():
            for example in examples:
                kind = type(example.value)
                fields = msgspec.structs.fields(kind)
                if any(decoding._pattern_of(f.type) for f in fields):
                    out.append((kind, example.value))
    return out


EXAMPLES = _examples()
# What breaks a pattern of herald's contracts: a space, a NUL, the empty string, too long.
BREAKERS = ["a b", "a\x00b", "", "x" * 200, "+0123", "é"]


def _outcome(decode: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "ok", msgspec.structs.asdict(decode(raw))
    except msgspec.ValidationError as exc:
        return "refused", str(exc)


def test_the_examples_cover_the_hot_payloads() -> None:
    kinds = {kind for kind, _ in EXAMPLES}
    assert {SmsMessage, SmsResult} <= kinds


@pytest.mark.parametrize(("kind", "value"), EXAMPLES, ids=lambda v: getattr(v, "__name__", ""))
def test_valid_records_decode_to_the_same_values_of_the_payload_type(
    kind: type[msgspec.Struct], value: msgspec.Struct
) -> None:
    raw = msgspec.json.encode(value)
    decoded = decoding.decoder(kind)(raw)
    assert isinstance(decoded, kind)
    assert msgspec.structs.asdict(decoded) == msgspec.structs.asdict(value)
    assert msgspec.json.encode(decoded) == raw


@pytest.mark.parametrize(("kind", "value"), EXAMPLES, ids=lambda v: getattr(v, "__name__", ""))
def test_each_broken_pattern_is_refused_with_msgspecs_message(
    kind: type[msgspec.Struct], value: msgspec.Struct
) -> None:
    fast, full = decoding.decoder(kind), msgspec.json.Decoder(kind).decode
    fields = [f for f in msgspec.structs.fields(kind) if decoding._pattern_of(f.type)]
    refused = 0
    for field in fields:
        for bad in BREAKERS:
            record = msgspec.to_builtins(value)
            record[field.encode_name] = bad
            raw = msgspec.json.encode(record)
            # Twice: a value refused is never remembered as passed.
            assert _outcome(fast, raw) == _outcome(full, raw) == _outcome(fast, raw)
            refused += _outcome(full, raw)[0] == "refused"
    assert refused >= len(fields) * 4  # the space, NUL, empty and too long break every one


def test_a_remembered_value_does_not_pass_another_field() -> None:
    decode = decoding.decoder(SmsMessage)
    [good] = list(SmsGenerator("r1", seed=3).messages(1))
    assert decode(msgspec.json.encode(good)).run_id == "r1"
    again = msgspec.to_builtins(good)
    again["id"] = "r1 0"  # the same run, now a message id with a space
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.id`"):
        decode(msgspec.json.encode(again))


def test_memory_is_bounded_and_checks_go_on_after_it_is_forgotten() -> None:
    decode = decoding.decoder(SmsMessage)
    messages = list(SmsGenerator("r2", seed=4).messages(decoding.REMEMBERED + 10))
    assert [decode(msgspec.json.encode(m)).seq for m in messages] == list(range(len(messages)))
    bad = msgspec.to_builtins(messages[-1])
    bad["phone"] = "12345"
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.phone`"):
        decode(msgspec.json.encode(bad))


def test_a_field_whose_values_never_repeat_stops_being_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import re

    searches: dict[str, int] = {}
    compile_ = re.compile

    def counting(pattern: str) -> Any:
        search = compile_(pattern).search

        def counted(text: str) -> Any:
            searches[pattern] = searches.get(pattern, 0) + 1
            return search(text)

        return type("Counted", (), {"search": staticmethod(counted)})()

    monkeypatch.setattr(decoding.re, "compile", counting)
    decode = decoding.decoder(SmsResult)
    monkeypatch.undo()
    n = 3 * decoding.REMEMBERED
    sent = {
        "sender_id": 1, "status": "sent", "latency_ms": 0.5, "attempts": 1,
        "created_at": "2026-01-01T00:00:00Z", "received_at": "2026-01-01T00:00:00Z",
        "completed_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    runs = [f"r{seq % 3}" for seq in range(n)]  # three runs' results, interleaved
    raws = [
        msgspec.json.encode({"message_id": f"{run}-{seq}", "run_id": run, "seq": seq, **sent})
        for seq, run in enumerate(runs)
    ]
    assert [decode(raw).seq for raw in raws] == list(range(n))
    run_pattern, id_pattern = r"^[A-Za-z0-9_-]{1,64}$", r"^[A-Za-z0-9_:.-]{1,128}$"
    assert searches == {run_pattern: 3, id_pattern: n}
    # The last ten results again (a batch replayed): the run ids are still remembered; the
    # message ids are not (remembered, as they were until the memory first filled, they would
    # not be searched again).
    assert [decode(raw).seq for raw in raws[-10:]] == list(range(n - 10, n))
    assert searches == {run_pattern: 3, id_pattern: n + 10}
    # Both are still checked: a bad value of either is refused, and named.
    for field, bad in (("run_id", "r 1"), ("message_id", "r1 9")):
        record = {**msgspec.json.decode(raws[-1]), field: bad}
        with pytest.raises(msgspec.ValidationError, match=rf"at `\$\.{field}`$"):
            decode(msgspec.json.encode(record))


def test_a_tagged_payload_gets_msgspecs_own_decoder() -> None:
    event = RunProduced(
        run_id="r3", scenario="retail", produced=5, at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    decoded = decoding.decoder(RunProduced)(msgspec.json.encode(event))
    assert type(decoded) is RunProduced
    assert decoded == event
