"""herald.webhooks without a network: signatures, the delivery policy, URL checks, records."""

from __future__ import annotations

import asyncio
import base64
import random
import socket

import msgspec
import pytest

from herald.webhooks import (
    DEFAULT_DENY,
    LOOPBACK,
    Attempt,
    BackgroundDeliverer,
    Backoff,
    Deliverer,
    Mode,
    Outcome,
    Policy,
    Result,
    UnsafeUrl,
    VerificationError,
    Webhook,
    check_url,
    classify_error,
    classify_status,
    generate_secret,
    headers,
    networks,
    parse_retry_after,
    parse_secret,
    sign,
    timer_webhook,
    verify,
)
from herald.webhooks.urls import denied_by

# The Standard Webhooks reference test vector (libraries/python/tests/test_webhooks.py,
# test_sign_function, in the standard-webhooks repository), the same in its other libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OLD = "whsec_" + base64.b64encode(b"o" * 24).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"x" * 32).decode()
NOW = 1_700_000_000


def signed(secrets: list[str], body: bytes = b'{"id":"t1"}', ts: int = NOW) -> dict[str, str]:
    return headers(secrets, msg_id="t1", timestamp=ts, body=body)


# -- signatures --------------------------------------------------------------------------------


def test_sign_matches_the_specifications_test_vector() -> None:
    got = sign(SPEC_SECRET, msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP, body=SPEC_BODY)
    assert got == SPEC_SIGNATURE


def test_verify_accepts_the_specifications_test_vector() -> None:
    received = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP)}
    received["webhook-signature"] = SPEC_SIGNATURE
    assert verify([SPEC_SECRET], headers=received, body=SPEC_BODY, now=SPEC_TIMESTAMP) == SPEC_ID


def test_headers_are_the_three_standard_ones() -> None:
    got = signed([NEW])
    assert list(got) == ["webhook-id", "webhook-timestamp", "webhook-signature"]
    assert got["webhook-id"] == "t1"
    assert got["webhook-timestamp"] == str(NOW)
    assert got["webhook-signature"] == sign(NEW, msg_id="t1", timestamp=NOW, body=b'{"id":"t1"}')


def test_verify_accepts_the_right_secret_and_names_the_id() -> None:
    assert verify([NEW], headers=signed([NEW]), body=b'{"id":"t1"}', now=NOW) == "t1"


def test_verify_reads_header_names_in_any_case() -> None:
    upper = {k.upper(): v for k, v in signed([NEW]).items()}
    assert verify([NEW], headers=upper, body=b'{"id":"t1"}', now=NOW) == "t1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"secret": OTHER}, "no v1 signature matches any of the secrets"),
        ({"body": b'{"id":"t2"}'}, "no v1 signature matches any of the secrets"),
        ({"webhook-id": "t2"}, "no v1 signature matches any of the secrets"),
        ({"webhook-timestamp": str(NOW + 1)}, "no v1 signature matches any of the secrets"),
        ({"webhook-signature": "v1,not base64!"}, "no v1 signature matches any of the secrets"),
        ({"webhook-timestamp": "17e8"}, "webhook-timestamp is not an integer: '17e8'"),
        ({"now": NOW + 301}, f"webhook-timestamp {NOW} is older than 300s"),
        ({"now": NOW - 301}, f"webhook-timestamp {NOW} is more than 300s in the future"),
        ({"drop": "webhook-signature"}, "missing header webhook-signature"),
        ({"drop": "webhook-id"}, "missing header webhook-id"),
    ],
)
def test_verify_refuses_and_says_why(change: dict[str, object], message: str) -> None:
    received = signed([NEW])
    body = b'{"id":"t1"}'
    secret, now = NEW, NOW
    for key, value in change.items():
        if key == "secret":
            secret = str(value)
        elif key == "body":
            assert isinstance(value, bytes)
            body = value
        elif key == "now":
            assert isinstance(value, int)
            now = value
        elif key == "drop":
            del received[str(value)]
        else:
            received[key] = str(value)
    with pytest.raises(VerificationError) as caught:
        verify([secret], headers=received, body=body, now=now)
    assert str(caught.value) == message


def test_verify_tolerance_is_inclusive_at_its_edges() -> None:
    body = b'{"id":"t1"}'
    assert verify([NEW], headers=signed([NEW]), body=body, now=NOW + 300) == "t1"
    assert verify([NEW], headers=signed([NEW]), body=body, now=NOW - 300) == "t1"
    assert verify([NEW], headers=signed([NEW]), body=body, now=NOW + 5, tolerance=5) == "t1"


def test_verify_skips_other_versions_and_bad_entries_in_a_signature_list() -> None:
    # The reference library's multi-signature case: junk first, the valid one in between.
    received = signed([NEW])
    good = received["webhook-signature"]
    junk = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    received["webhook-signature"] = " ".join([junk, "v2," + good[3:], good, "v1a,abc", junk])
    assert verify([NEW], headers=received, body=b'{"id":"t1"}', now=NOW) == "t1"
    received["webhook-signature"] = " ".join([junk, "v2," + good[3:]])
    with pytest.raises(VerificationError, match="no v1 signature matches"):
        verify([NEW], headers=received, body=b'{"id":"t1"}', now=NOW)


def test_rotation_signs_with_both_secrets_and_either_verifies() -> None:
    received = signed([NEW, OLD])
    parts = received["webhook-signature"].split(" ")
    assert parts == [
        sign(NEW, msg_id="t1", timestamp=NOW, body=b'{"id":"t1"}'),
        sign(OLD, msg_id="t1", timestamp=NOW, body=b'{"id":"t1"}'),
    ]
    body = b'{"id":"t1"}'
    assert verify([OLD], headers=received, body=body, now=NOW) == "t1"  # a receiver not yet moved
    assert verify([NEW], headers=received, body=body, now=NOW) == "t1"  # a receiver moved
    assert verify([OTHER, NEW], headers=received, body=body, now=NOW) == "t1"
    with pytest.raises(VerificationError, match="no v1 signature matches"):
        verify([OTHER], headers=received, body=body, now=NOW)
    # After the rotation the old secret's signatures stop verifying for a moved receiver.
    with pytest.raises(VerificationError, match="no v1 signature matches"):
        verify([NEW], headers=signed([OLD]), body=body, now=NOW)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "a webhook secret must look like whsec_<base64>"),
        ("whsec_not*base64", "a webhook secret's part after whsec_ is not base64"),
        ("whsec_" + base64.b64encode(b"s" * 16).decode(), "must hold 24 to 64 bytes, not 16"),
        ("whsec_" + base64.b64encode(b"s" * 65).decode(), "must hold 24 to 64 bytes, not 65"),
    ],
)
def test_parse_secret_refuses_malformed_secrets(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")):
        parse_secret(secret)


def test_generated_secrets_parse_and_differ() -> None:
    one, two = generate_secret(), generate_secret()
    assert one.startswith("whsec_") and one != two
    assert len(parse_secret(one)) == 32


def test_ids_with_a_dot_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match=r"contain no '\.'"):
        sign(NEW, msg_id="a.b", timestamp=NOW, body=b"")
    with pytest.raises(ValueError, match=r"contain no '\.'"):
        timer_webhook("a.b", "http://127.0.0.1/")


# -- the delivery policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (200, Result.DELIVERED),
        (201, Result.DELIVERED),
        (202, Result.DELIVERED),
        (204, Result.DELIVERED),
        (299, Result.DELIVERED),
        (100, Result.FAILED),
        (301, Result.FAILED),
        (302, Result.FAILED),
        (307, Result.FAILED),
        (308, Result.FAILED),
        (400, Result.FAILED),
        (401, Result.FAILED),
        (403, Result.FAILED),
        (404, Result.FAILED),
        (405, Result.FAILED),
        (408, Result.RETRY),
        (409, Result.FAILED),
        (410, Result.GONE),
        (413, Result.FAILED),
        (422, Result.FAILED),
        (429, Result.RETRY),
        (451, Result.FAILED),
        (500, Result.RETRY),
        (501, Result.RETRY),
        (502, Result.RETRY),
        (503, Result.RETRY),
        (504, Result.RETRY),
        (599, Result.RETRY),
    ],
)
def test_status_classification(status: int, result: Result) -> None:
    assert classify_status(status) is result


def test_error_classification() -> None:
    assert classify_error(sent=False) is Result.RETRY  # refused, DNS, TLS: nothing went out
    assert classify_error(sent=True) is Result.UNKNOWN  # timeout or reset after sending
    assert classify_error(sent=False, permanent=True) is Result.FAILED  # an unsafe URL


@pytest.mark.parametrize(
    ("result", "mode", "outcome"),
    [
        (Result.DELIVERED, Mode.AT_LEAST_ONCE, Outcome.DELIVERED),
        (Result.DELIVERED, Mode.AT_MOST_ONCE, Outcome.DELIVERED),
        (Result.GONE, Mode.AT_LEAST_ONCE, Outcome.GONE),
        (Result.GONE, Mode.AT_MOST_ONCE, Outcome.GONE),
        (Result.FAILED, Mode.AT_LEAST_ONCE, Outcome.FAILED),
        (Result.FAILED, Mode.AT_MOST_ONCE, Outcome.FAILED),
        (Result.RETRY, Mode.AT_LEAST_ONCE, Outcome.RETRY),
        (Result.RETRY, Mode.AT_MOST_ONCE, Outcome.RETRY),  # nothing sent, or the peer said 5xx
        (Result.UNKNOWN, Mode.AT_LEAST_ONCE, Outcome.RETRY),
        (Result.UNKNOWN, Mode.AT_MOST_ONCE, Outcome.OUTCOME_UNKNOWN),
    ],
)
def test_decision_by_result_and_mode(result: Result, mode: Mode, outcome: Outcome) -> None:
    policy = Policy(mode=mode, rng=random.Random(1))
    decision = policy.decide(result, attempt=1, now=1000.0, first_attempt_at=1000.0)
    assert decision.outcome is outcome
    if outcome is Outcome.RETRY:
        assert decision.delay is not None and decision.next_attempt_at == 1000.0 + decision.delay
    else:
        assert (decision.delay, decision.next_attempt_at) == (None, None)


def test_full_jitter_backoff_exact_values_with_a_seeded_generator() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    assert [backoff.ceiling(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    # random.Random(42).random() yields 0.6394…, 0.0250…, 0.2750…, 0.2232…, 0.7365…, 0.6767…
    # (the Mersenne Twister's sequence, the same on every Python); uniform(0, c) = c * that.
    rng = random.Random(42)
    assert [backoff.delay(n, rng) for n in range(1, 7)] == pytest.approx(
        [
            0.6394267984578837,
            0.05002151044533387,
            1.100117273476477,
            1.785685905190582,
            5.891769713312099,
            5.41359589938329,
        ],
        rel=1e-12,
    )


def test_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    backoff = Backoff(base=0.5, cap=30.0)
    rng = random.Random(3)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        assert backoff.ceiling(attempt) == ceiling
        draws = [backoff.delay(attempt, rng) for _ in range(500)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.9 * ceiling  # the whole range is used, not a fixed fraction
    assert backoff.ceiling(100_000) == 30.0  # no overflow for a huge attempt number


def test_policy_schedules_from_the_end_of_the_attempt() -> None:
    policy = Policy(max_attempts=5, deadline=None, backoff=Backoff(base=0.5, cap=4.0))
    policy.rng.seed(7)
    delays = []
    for attempt in range(1, 5):
        d = policy.decide(Result.RETRY, attempt=attempt, now=1000.0, first_attempt_at=990.0)
        assert d.outcome is Outcome.RETRY and d.delay is not None
        assert d.next_attempt_at == 1000.0 + d.delay
        delays.append(d.delay)
    assert delays == pytest.approx(
        [0.16191638241658118, 0.15084917392450192, 1.3018689460797075, 0.28974514667017104],
        rel=1e-12,
    )
    last = policy.decide(Result.RETRY, attempt=5, now=1000.0, first_attempt_at=990.0)
    assert last.outcome is Outcome.EXPIRED  # the fifth of five attempts was the last


def test_policy_expires_when_the_next_attempt_would_pass_the_deadline() -> None:
    policy = Policy(max_attempts=None, deadline=60.0, backoff=Backoff(base=10.0, cap=10.0))
    policy.rng.seed(5)
    d = policy.decide(Result.RETRY, attempt=1, now=1000.0, first_attempt_at=1000.0)
    assert d.outcome is Outcome.RETRY  # at most 10 s later: well inside the minute
    d = policy.decide(Result.RETRY, attempt=9, now=1051.0, first_attempt_at=1000.0, retry_after=10)
    assert d.outcome is Outcome.EXPIRED  # 1061 > 1000 + 60
    d = policy.decide(
        Result.UNKNOWN, attempt=9, now=1049.0, first_attempt_at=1000.0, retry_after=10
    )
    assert d.outcome is Outcome.RETRY and d.next_attempt_at == 1059.0


def test_retry_after_is_a_floor_and_is_capped() -> None:
    policy = Policy(backoff=Backoff(base=0.1, cap=1.0), max_retry_after=60.0)

    def first(retry_after: float | None) -> tuple[float | None, float | None]:
        d = policy.decide(
            Result.RETRY, attempt=1, now=0.0, first_attempt_at=0.0, retry_after=retry_after
        )
        return d.delay, d.next_attempt_at

    assert first(30.0) == (30.0, 30.0)  # far above the jitter: the peer's wish wins
    assert first(3600.0) == (60.0, 60.0)  # cut to max_retry_after
    policy.rng.seed(11)
    zero = first(0.0)
    policy.rng.seed(11)
    assert first(None) == zero  # "0" asks nothing: the jittered delay stands
    assert zero[0] is not None and 0.0 <= zero[0] <= 0.1


def test_policy_refuses_unbounded_retries_and_bad_values() -> None:
    with pytest.raises(ValueError, match="needs max_attempts or deadline"):
        Policy(max_attempts=None, deadline=None)
    with pytest.raises(ValueError, match="max_attempts must be at least 1, got 0"):
        Policy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff needs 0 < base <= cap"):
        Backoff(base=2.0, cap=1.0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 90.0),  # IMF-fixdate, 90 s after "now"
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 90.0),  # obsolete RFC 850 form
        ("Wed Oct 21 07:28:00 2015", 90.0),  # obsolete asctime form (GMT)
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # in the past: at once
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_both_forms(header: str | None, seconds: float | None) -> None:
    now = 1445412480.0 - 90.0  # 2015-10-21 07:28:00 GMT is 1445412480
    assert parse_retry_after(header, now=now) == seconds


# -- URL safety --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule", "message"),
    [
        ("ftp://example.com/x", "scheme", "url scheme 'ftp' is not allowed: only http and https"),
        ("file:///etc/passwd", "scheme", "url scheme 'file' is not allowed: only http and https"),
        ("example.com/hook", "scheme", "url scheme '(none)' is not allowed: only http and https"),
        ("http:///hook", "host", "url 'http:///hook' has no host"),
        (
            "http://[::1/hook",
            "syntax",
            "url 'http://[::1/hook' is not a valid URL: Invalid IPv6 URL",
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254/32 (cloud metadata)",
            "url host '169.254.169.254' is 169.254.169.254,"
            " in denied network 169.254.169.254/32 (cloud metadata)",
        ),
        (
            "http://[fd00:ec2::254]/",
            "fd00:ec2::254/128 (cloud metadata)",
            "url host 'fd00:ec2::254' is fd00:ec2::254,"
            " in denied network fd00:ec2::254/128 (cloud metadata)",
        ),
        (
            "https://169.254.7.1:8443/",
            "169.254.0.0/16 (link-local)",
            "url host '169.254.7.1' is 169.254.7.1, in denied network 169.254.0.0/16 (link-local)",
        ),
        (
            "http://[fe80::1]/",
            "fe80::/10 (link-local)",
            "url host 'fe80::1' is fe80::1, in denied network fe80::/10 (link-local)",
        ),
        (
            "http://0.0.0.0:8000/",
            "0.0.0.0/8 (this network)",
            "url host '0.0.0.0' is 0.0.0.0, in denied network 0.0.0.0/8 (this network)",
        ),
        (
            "http://224.0.0.251/",
            "224.0.0.0/4 (multicast)",
            "url host '224.0.0.251' is 224.0.0.251, in denied network 224.0.0.0/4 (multicast)",
        ),
        (
            "http://[ff02::1]/",
            "ff00::/8 (multicast)",
            "url host 'ff02::1' is ff02::1, in denied network ff00::/8 (multicast)",
        ),
        (
            "http://[::ffff:169.254.169.254]/",  # an IPv4-mapped IPv6 address is judged as IPv4
            "169.254.169.254/32 (cloud metadata)",
            "url host '::ffff:169.254.169.254' is ::ffff:a9fe:a9fe,"
            " in denied network 169.254.169.254/32 (cloud metadata)",
        ),
    ],
)
def test_check_url_refuses_and_names_the_rule(url: str, rule: str, message: str) -> None:
    with pytest.raises(UnsafeUrl) as caught:
        check_url(url)
    assert caught.value.rule == rule
    assert str(caught.value) == caught.value.reason == message


def test_check_url_accepts_allowed_addresses_with_their_port() -> None:
    checked = check_url("http://127.0.0.1:8080/hook?x=1")  # loopback is not denied by default
    assert (checked.scheme, checked.host, checked.port) == ("http", "127.0.0.1", 8080)
    assert checked.addresses == ("127.0.0.1",)
    assert check_url("https://[2001:db8::5]/").port == 443
    assert check_url("HTTP://192.0.2.10/").port == 80


def test_a_host_resolving_to_a_denied_address_is_refused() -> None:
    with pytest.raises(UnsafeUrl) as caught:
        check_url("http://localhost:8080/", deny_networks=DEFAULT_DENY + LOOPBACK)
    assert caught.value.rule.endswith("(loopback)")
    assert str(caught.value).startswith("url host 'localhost' resolves to ")


def test_one_denied_address_among_several_refuses_the_host() -> None:
    def resolve(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example", 443)
        return ["192.0.2.10", "169.254.169.254"]

    with pytest.raises(UnsafeUrl) as caught:
        check_url("https://hooks.example/", resolve=resolve)
    assert str(caught.value) == (
        "url host 'hooks.example' resolves to 169.254.169.254,"
        " in denied network 169.254.169.254/32 (cloud metadata)"
    )


def test_a_host_that_does_not_resolve_is_refused() -> None:
    def resolve(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UnsafeUrl) as caught:
        check_url("https://nowhere.example/", resolve=resolve)
    assert caught.value.rule == "dns"
    assert "url host 'nowhere.example' does not resolve" in str(caught.value)


def test_allow_networks_override_the_deny_list() -> None:
    deny = DEFAULT_DENY + LOOPBACK
    allow = networks(["127.0.0.1/32"], "test receiver")
    assert check_url("http://127.0.0.1:9/", deny_networks=deny, allow_networks=allow).port == 9
    with pytest.raises(UnsafeUrl, match=r"127.0.0.0/8 \(loopback\)"):
        check_url("http://127.0.0.2:9/", deny_networks=deny, allow_networks=allow)
    assert denied_by("192.0.2.1", deny) is None


# -- records -----------------------------------------------------------------------------------


def test_timer_webhook_posts_the_timer_id() -> None:
    webhook = timer_webhook("timer-42", "https://hooks.example/t")
    assert webhook.id == "timer-42"
    assert webhook.body == b'{"id":"timer-42"}'
    assert webhook.content_type == "application/json"
    assert (webhook.attempts_made, webhook.first_attempt_at, webhook.secrets) == (0, None, None)


def test_webhook_refuses_a_bad_secret_of_its_own() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        Webhook(id="t1", url="http://127.0.0.1/", body=b"{}", secrets=("hunter2",))


def test_an_attempt_is_a_flat_ledger_row_that_round_trips_as_json() -> None:
    attempt = Attempt(
        webhook_id="t1",
        number=2,
        url="https://hooks.example/t",
        started_at=1_700_000_000.25,
        duration_ms=12.5,
        status=503,
        error=None,
        detail="HTTP 503",
        sent=True,
        outcome=Outcome.RETRY,
        retry_after=30.0,
        retry_delay=30.0,
        next_attempt_at=1_700_000_030.3,
        response_excerpt="busy",
    )
    row = msgspec.structs.asdict(attempt)
    assert list(row) == [
        "webhook_id",
        "number",
        "url",
        "started_at",
        "duration_ms",
        "status",
        "error",
        "detail",
        "sent",
        "outcome",
        "retry_after",
        "retry_delay",
        "next_attempt_at",
        "response_excerpt",
    ]
    encoded = msgspec.json.encode(attempt)
    assert b'"outcome":"retry"' in encoded
    assert msgspec.json.decode(encoded, type=Attempt) == attempt


def test_deliverer_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        Deliverer(secrets=[])
    with pytest.raises(ValueError, match="whsec_"):
        Deliverer(secrets=["plain"])
    with pytest.raises(ValueError, match="max_in_flight_per_host must be at least 1, got 0"):
        Deliverer(secrets=[NEW], max_in_flight_per_host=0)


def test_an_unsafe_url_fails_at_once_without_a_request() -> None:
    seen: list[Attempt] = []

    async def deliver() -> tuple[Outcome, list[Attempt]]:
        async with Deliverer(secrets=[NEW], on_attempt=seen.append) as deliverer:
            result = await deliverer.deliver(timer_webhook("t1", "http://169.254.169.254/x"))
            return result.outcome, list(result.attempts)

    outcome, attempts = asyncio.run(deliver())
    assert outcome is Outcome.FAILED
    assert seen == attempts and len(attempts) == 1
    only = attempts[0]
    assert (only.number, only.status, only.error, only.sent) == (1, None, "unsafe_url", False)
    assert only.detail == (
        "url host '169.254.169.254' is 169.254.169.254,"
        " in denied network 169.254.169.254/32 (cloud metadata)"
    )


def test_a_resumed_delivery_out_of_attempts_or_time_makes_no_request() -> None:
    policy = Policy(max_attempts=3, deadline=60.0)
    assert not policy.exhausted(attempts_made=2, first_attempt_at=1000.0, now=1060.0)
    assert policy.exhausted(attempts_made=3, first_attempt_at=1000.0, now=1001.0)
    assert policy.exhausted(attempts_made=1, first_attempt_at=1000.0, now=1060.5)
    assert not policy.exhausted(attempts_made=0, first_attempt_at=None, now=1e12)

    async def deliver(webhook: Webhook) -> tuple[Outcome, int, str | None]:
        async with Deliverer(secrets=[NEW], policy=policy) as deliverer:
            result = await deliverer.deliver(webhook)
            return result.outcome, len(result.attempts), result.reason

    # The URL would be refused if it were tried: nothing is tried.
    late = Webhook(id="t1", url="http://169.254.169.254/", body=b"{}", attempts_made=3)
    assert asyncio.run(deliver(late)) == (
        Outcome.EXPIRED,
        0,
        "no attempt left: out of attempts or past the deadline",
    )


def test_a_background_deliverer_refuses_work_until_started() -> None:
    with pytest.raises(ValueError, match="max_pending must be at least 1, got 0"):
        BackgroundDeliverer(Deliverer(secrets=[NEW]), max_pending=0)
    idle = BackgroundDeliverer(Deliverer(secrets=[NEW]))
    with pytest.raises(RuntimeError, match="BackgroundDeliverer is not running"):
        idle.submit(timer_webhook("t1", "http://127.0.0.1/"))
    with pytest.raises(RuntimeError, match="BackgroundDeliverer is not running"):
        idle.load()
    assert idle.close() == 0  # nothing was started, nothing is abandoned
