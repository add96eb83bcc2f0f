"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256>`` over ``{id}.{timestamp}.{body}``."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets as _random
import time
from collections.abc import Mapping, Sequence

from herald.errors import HeraldError

SECRET_PREFIX = "whsec_"  # noqa: S105 (the serialisation prefix, not a secret)
# The specification's bounds for a symmetric secret: 24 to 64 bytes (192 to 512 bits).
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
DEFAULT_TOLERANCE = 300.0  # seconds either side of now, the reference libraries' window

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

SecretLike = str | bytes


class VerificationError(HeraldError):
    """A webhook's headers or signature do not verify; the message says which check failed."""


def generate_secret(nbytes: int = 32) -> str:
    """A new random secret in its serialised form, ``whsec_<base64>``."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(nbytes)).decode()


def parse_secret(secret: SecretLike) -> bytes:
    """The key bytes of ``whsec_<base64>`` (raw bytes pass through); ValueError names the rule."""
    if isinstance(secret, bytes):
        key = secret
    else:
        if not secret.startswith(SECRET_PREFIX):
            raise ValueError(f"a webhook secret must look like {SECRET_PREFIX}<base64>")
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except binascii.Error as exc:
            raise ValueError(
                f"a webhook secret's part after {SECRET_PREFIX} is not base64"
            ) from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"a webhook secret must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes,"
            f" not {len(key)}"
        )
    return key


def check_id(msg_id: str) -> str:
    """``msg_id`` if it can be signed: not empty and without the ``.`` that delimits the content."""
    # The specification forbids '.' in the id: the signed content is '.'-delimited, and an id
    # with dots would let one message's signature pass for another split differently.
    if not msg_id or "." in msg_id:
        raise ValueError(f"a webhook id must be non-empty and contain no '.', got {msg_id!r}")
    return msg_id


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    content = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.digest(key, content, "sha256")  # one-shot, in C: no HMAC object per signature


def sign(secret: SecretLike, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature, ``v1,<base64>``, of ``body`` sent as ``msg_id`` at ``timestamp``."""
    digest = _digest(parse_secret(secret), check_id(msg_id), timestamp, body)
    return "v1," + base64.b64encode(digest).decode()


def headers(
    secrets: Sequence[SecretLike], *, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed once per secret (several during rotation)."""
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign")
    signatures = " ".join(sign(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets)
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signatures}


def _header(received: Mapping[str, str], name: str) -> str:
    for key, value in received.items():
        if key.lower() == name:
            return value
    raise VerificationError(f"missing header {name}")


def verify(
    secrets: Sequence[SecretLike],
    *,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> str:
    """The webhook id if any ``v1`` signature matches any secret and the timestamp is fresh.

    Comparisons are constant-time (``hmac.compare_digest``); signatures of other versions
    (``v1a``, …) are skipped. Raises :class:`VerificationError` naming the failed check.
    """
    msg_id = _header(headers, ID_HEADER)
    raw_timestamp = _header(headers, TIMESTAMP_HEADER)
    signature_list = _header(headers, SIGNATURE_HEADER)
    if not raw_timestamp.isascii() or not raw_timestamp.isdigit():
        raise VerificationError(f"{TIMESTAMP_HEADER} is not an integer: {raw_timestamp!r}")
    timestamp = int(raw_timestamp)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise VerificationError(f"{TIMESTAMP_HEADER} {timestamp} is older than {tolerance:g}s")
    if timestamp > current + tolerance:
        raise VerificationError(
            f"{TIMESTAMP_HEADER} {timestamp} is more than {tolerance:g}s in the future"
        )
    expected = [_digest(parse_secret(s), msg_id, timestamp, body) for s in secrets]
    for candidate in signature_list.split(" "):
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        # Every secret is compared, matched or not, so timing does not say which one matched.
        matched = False
        for digest in expected:
            matched |= hmac.compare_digest(digest, given)
        if matched:
            return msg_id
    raise VerificationError("no v1 signature matches any of the secrets")
