"""The SMS workload: a reproducible stream of random phone numbers and texts.

Generation is cheap per message: texts are slices of a pool of random characters made once
per run, not strings built a character at a time, and nothing is kept per message, so
memory does not grow with the run's size.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from datetime import UTC, datetime

from herald.contracts import SmsMessage

ALPHABET = string.ascii_letters + string.digits + " " * 12 + ".,!?'-:;()"
POOL_SIZE = 1 << 16
MAX_TEXT = 100
# (country code, digits in the national number): E.164 allows 15 digits in all.
COUNTRIES = ((1, 10), (44, 10), (49, 11), (33, 9), (81, 10), (61, 9), (55, 11), (91, 10))


def message_id(run_id: str, seq: int) -> str:
    """The stable id of message ``seq`` of a run: replays produce the same ids."""
    return f"{run_id}-{seq}"


class SmsGenerator:
    """Messages ``start``, ``start+1``, ... of one run, the same for the same seed."""

    def __init__(self, run_id: str, seed: int) -> None:
        self.run_id = run_id
        self._rng = random.Random(seed)
        self._pool = "".join(self._rng.choices(ALPHABET, k=POOL_SIZE))
        self._ranges = [(f"+{cc}", 10 ** (n - 1), 10**n) for cc, n in COUNTRIES]

    def messages(self, count: int, *, start: int = 0) -> Iterator[SmsMessage]:
        """Yield ``count`` messages, lazily."""
        rng = self._rng
        randrange = rng.randrange
        pool, ranges, run_id = self._pool, self._ranges, self.run_id
        last_offset = POOL_SIZE - MAX_TEXT
        n_ranges = len(ranges)
        now = datetime.now
        for seq in range(start, start + count):
            prefix, low, high = ranges[randrange(n_ranges)]
            offset = randrange(last_offset)
            text = pool[offset : offset + 1 + randrange(MAX_TEXT)]
            if text[0] == " " or text[-1] == " ":
                # A text with spaces at its ends reads like a bug; keep it within 1-100 chars.
                text = text.strip() or "hello"
            yield SmsMessage(
                id=f"{run_id}-{seq}",
                run_id=run_id,
                seq=seq,
                phone=f"{prefix}{randrange(low, high)}",
                text=text,
                created_at=now(UTC),
            )
