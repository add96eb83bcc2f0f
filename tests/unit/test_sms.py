from __future__ import annotations

import inspect
import re

import msgspec
import pytest

from herald.scenarios.sms import MAX_TEXT, SmsGenerator, SmsMessage, message_id


def test_messages_are_valid_and_numbered() -> None:
    msgs = list(SmsGenerator("run1", seed=1).messages(2000))
    assert [m.seq for m in msgs] == list(range(2000))
    assert [m.id for m in msgs] == [message_id("run1", i) for i in range(2000)]
    decoder = msgspec.json.Decoder(SmsMessage)
    for m in msgs:
        decoder.decode(msgspec.json.encode(m))  # validates phone pattern and text length
        assert 1 <= len(m.text) <= MAX_TEXT
        assert re.fullmatch(r"\+[1-9][0-9]{7,14}", m.phone)
        assert m.run_id == "run1"
    lengths = {len(m.text) for m in msgs}
    assert min(lengths) <= 5 and max(lengths) >= 95  # the whole 1-100 range is used
    assert len({m.phone for m in msgs}) > 1990


def test_same_seed_same_content_other_seed_other_content() -> None:
    def content(seed: int) -> list[tuple[str, str]]:
        return [(m.phone, m.text) for m in SmsGenerator("r", seed).messages(300)]

    assert content(42) == content(42)
    assert content(42) != content(43)


def test_generation_is_lazy_and_resumable() -> None:
    gen = SmsGenerator("r", 5).messages(10**9)
    assert inspect.isgenerator(gen)
    first = [next(gen) for _ in range(3)]
    assert [m.seq for m in first] == [0, 1, 2]
    later = list(SmsGenerator("r", 5).messages(2, start=500))
    assert [m.seq for m in later] == [500, 501]
    assert later[0].id == "r-500"


@pytest.mark.parametrize(
    ("field", "value"),
    [("phone", "12345"), ("phone", "+0123456789"), ("text", ""), ("text", "x" * 101)],
)
def test_contract_rejects_bad_messages(field: str, value: str) -> None:
    good = msgspec.to_builtins(next(SmsGenerator("r", 1).messages(1)))
    good[field] = value
    with pytest.raises(msgspec.ValidationError, match=f"\\$.{field}"):
        msgspec.json.decode(msgspec.json.encode(good), type=SmsMessage)
