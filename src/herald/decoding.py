"""Decoders for the records a service reads once each, at full rate (a worker's messages, the
recorder's facts): the payload's contract, checked as msgspec checks it, for less CPU.

msgspec checks a ``pattern`` constraint by calling Python's ``re`` from C, about 0.8 µs a
field on the machines herald is measured on: with the run id, the message id and a phone
number that was most of a sender's decode (3.3 µs a message) and half of the recorder's.
:func:`decoder` decodes into a subclass of the payload whose pattern fields carry only their
lengths (checked in C, as before), then checks each pattern itself, remembering the values it
has passed: a run's id is checked once, not once per message. A field whose memory fills in
fewer than twice as many decodes as it holds (most of its values new: a message id, a phone
number) is searched every time instead: remembering a value that never comes again cost more
than the search it would save. The decoded records are
instances of the payload type; what is accepted and what is refused is the same, with the
same message (``Expected `str` matching regex '…' - at `$.field```). A record with several
faults may be refused for another of them than msgspec would name first.

Only a struct's own top-level ``str`` fields are handled this way; a payload with a tag (part
of a tagged union), or without pattern fields, gets msgspec's decoder unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, get_args, get_origin

import msgspec
from msgspec import Meta, Struct

S = TypeVar("S", bound=Struct)

REMEMBERED = 4096  # values remembered a field; then forgotten all at once, and checked again


def _pattern_of(annotation: Any) -> tuple[str, Meta] | None:
    """The pattern of an ``Annotated[str, Meta(pattern=...), ...]`` field, and a Meta with the
    rest of its string constraints (lengths); None for any other field."""
    if get_origin(annotation) is not Annotated:
        return None
    base, *metas = get_args(annotation)
    if base is not str:
        return None
    patterns = [m.pattern for m in metas if isinstance(m, Meta) and m.pattern is not None]
    if len(patterns) != 1:
        return None
    lengths = {"min_length": None, "max_length": None}
    for m in metas:
        if isinstance(m, Meta):
            for key in lengths:
                value = getattr(m, key)
                if value is not None:
                    lengths[key] = value
    return patterns[0], Meta(**lengths)


def decoder(payload: type[S]) -> Callable[[bytes], S]:
    """A JSON decoder for ``payload`` that accepts and refuses what
    ``msgspec.json.Decoder(payload)`` does, checking pattern fields with a memory."""
    config = payload.__struct_config__
    fields = msgspec.structs.fields(payload)
    checked: list[tuple[str, str, str, Callable[[str], object]]] = []
    overrides: list[tuple[str, Any, Any]] = []
    for f in fields:
        found = _pattern_of(f.type)
        if found is None:
            continue
        pattern, lengths = found
        checked.append((f.name, f.encode_name, pattern, re.compile(pattern).search))
        if f.default is not msgspec.NODEFAULT:
            default = msgspec.field(name=f.encode_name, default=f.default)
        elif f.default_factory is not msgspec.NODEFAULT:
            default = msgspec.field(name=f.encode_name, default_factory=f.default_factory)
        else:
            default = msgspec.field(name=f.encode_name)
        overrides.append((f.name, Annotated[str, lengths], default))
    plain = msgspec.json.Decoder(payload).decode
    if not checked or config.tag is not None:
        return plain
    loose_type = msgspec.defstruct(
        payload.__name__,  # its repr reads as the payload's
        overrides,
        bases=(payload,),
        kw_only=True,  # the new fields only (they replace fields of the same names)
        forbid_unknown_fields=config.forbid_unknown_fields,
        module=payload.__module__,
    )
    loose = msgspec.json.Decoder(loose_type).decode
    remembered = [_Check(*c) for c in checked]
    searched: list[_Check] = []  # fields whose values seldom repeat: no memory
    calls = 0

    def decode(raw: bytes) -> S:
        nonlocal calls
        value = loose(raw)
        for check in searched:
            if check.search(getattr(value, check.name)) is None:
                raise check.refused()
        if remembered:
            calls += 1
            filled = None
            for check in remembered:
                text = getattr(value, check.name)
                seen = check.seen
                if text in seen:
                    continue
                if check.search(text) is None:
                    raise check.refused()
                if len(seen) >= REMEMBERED:
                    filled = check
                seen.add(text)
            if filled is not None:  # after the loop, which must not see the list change
                _forget(filled, calls, remembered, searched)
        return value  # type: ignore[return-value]  # an instance of a subclass of S

    return decode


class _Check:
    """One pattern field's check, and the values it has passed lately."""

    __slots__ = ("encoded", "name", "pattern", "search", "seen", "since")

    def __init__(
        self, name: str, encoded: str, pattern: str, search: Callable[[str], object]
    ) -> None:
        self.name, self.encoded, self.pattern, self.search = name, encoded, pattern, search
        self.seen: set[str] = set()
        self.since = 0  # the decoder's calls when ``seen`` was last emptied

    def refused(self) -> msgspec.ValidationError:
        return msgspec.ValidationError(
            f"Expected `str` matching regex {self.pattern!r} - at `$.{self.encoded}`"
        )


def _forget(check: _Check, calls: int, remembered: list[_Check], searched: list[_Check]) -> None:
    """``check``'s memory is full: empty it, or, when it filled in fewer than twice as many
    decodes as it holds (most values were new: an id, a phone number), drop it for good.
    Remembering a value that never comes again costs more than the search it would save."""
    if calls - check.since < 2 * REMEMBERED:
        remembered.remove(check)
        searched.append(check)
        check.seen = set()
    else:
        check.seen.clear()
        check.since = calls
