"""Standard Webhooks signatures: the spec's vector, the reference library, and every bad input."""
from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any

import pytest
import requests.structures
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from callbacks import SignatureError, generate_secret, sign, signature_header, verify

# The test vector published with the Standard Webhooks specification.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = '{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers_for(signature: str = SIGNATURE, ts: object = TIMESTAMP, msg_id: str = MSG_ID) -> dict:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def without(name: str) -> dict:
    return {k: v for k, v in headers_for().items() if k != name}


def test_the_standard_webhooks_test_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY.encode()) == SIGNATURE
    assert signature_header([SECRET], MSG_ID, TIMESTAMP, BODY) == SIGNATURE


def test_verify_returns_the_parsed_body() -> None:
    assert verify(BODY, headers_for(), SECRET, now=TIMESTAMP) == {"test": 2432232314}
    assert verify(BODY.encode(), headers_for(), SECRET, now=TIMESTAMP) == {"test": 2432232314}


@pytest.mark.parametrize("make", [
    lambda h: {k.upper(): v for k, v in h.items()},
    lambda h: {k.title(): v for k, v in h.items()},
    lambda h: Headers(list(h.items())),
    lambda h: requests.structures.CaseInsensitiveDict({k.upper(): v for k, v in h.items()}),
], ids=["UPPER dict", "Title dict", "werkzeug Headers", "requests CaseInsensitiveDict"])
def test_header_names_are_case_insensitive(make: Any) -> None:
    assert verify(BODY, make(headers_for()), SECRET, now=TIMESTAMP) == {"test": 2432232314}


def test_the_tolerance_is_inclusive_both_ways() -> None:
    for now in (TIMESTAMP - 300, TIMESTAMP + 300):
        assert verify(BODY, headers_for(), SECRET, now=now)
    with pytest.raises(SignatureError, match="too old"):
        verify(BODY, headers_for(), SECRET, now=TIMESTAMP + 301)
    with pytest.raises(SignatureError, match="future"):
        verify(BODY, headers_for(), SECRET, now=TIMESTAMP - 301)
    assert verify(BODY, headers_for(), SECRET, now=TIMESTAMP + 3000, tolerance=3600)


def test_the_real_clock_is_used_by_default() -> None:
    now = int(time.time())
    body = '{"type": "task.succeeded"}'
    hdrs = headers_for(sign(SECRET, "msg_now", now, body), now, "msg_now")
    assert verify(body, hdrs, SECRET) == {"type": "task.succeeded"}
    with pytest.raises(SignatureError, match="too old"):
        verify(BODY, headers_for(), SECRET)  # the vector is from 2021


def test_new_secrets_are_whsec_and_32_random_bytes() -> None:
    secrets = {generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_our_signatures_verify_with_the_standardwebhooks_package() -> None:
    secret = generate_secret()
    body = json.dumps({"type": "task.succeeded", "data": {"task_id": "t1", "status": "SUCCESS"}})
    now = int(time.time())
    hdrs = headers_for(sign(secret, "msg_ours", now, body), now, "msg_ours")
    assert standardwebhooks.Webhook(secret).verify(body, hdrs) == json.loads(body)
    assert standardwebhooks.Webhook(secret).verify(body.encode(), hdrs) == json.loads(body)


def test_their_signatures_verify_with_ours() -> None:
    secret = generate_secret()
    body = '{"type": "task.failed", "data": {"error": "bad vector"}}'
    now = int(time.time())
    moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    theirs = standardwebhooks.Webhook(secret).sign("msg_theirs", moment, body)
    assert theirs == sign(secret, "msg_theirs", now, body)
    assert verify(body, headers_for(theirs, now, "msg_theirs"), secret) == json.loads(body)


def test_unpadded_secrets_work_as_in_the_reference_library() -> None:
    padded = generate_secret()
    unpadded = padded.rstrip("=")
    assert unpadded != padded
    assert sign(unpadded, MSG_ID, TIMESTAMP, BODY) == sign(padded, MSG_ID, TIMESTAMP, BODY)
    moment = dt.datetime.fromtimestamp(TIMESTAMP, tz=dt.UTC)
    assert standardwebhooks.Webhook(unpadded).sign(MSG_ID, moment, BODY) == sign(
        padded, MSG_ID, TIMESTAMP, BODY)


def test_a_rotation_header_verifies_with_either_secret() -> None:
    old, new = generate_secret(), generate_secret()
    now = int(time.time())
    header = signature_header([new, old], MSG_ID, now, BODY)
    assert header.split(" ") == [sign(new, MSG_ID, now, BODY), sign(old, MSG_ID, now, BODY)]
    hdrs = headers_for(header, now)
    for secret in (old, new):
        assert verify(BODY, hdrs, secret) == {"test": 2432232314}
        assert standardwebhooks.Webhook(secret).verify(BODY, hdrs) == {"test": 2432232314}
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(BODY, hdrs, generate_secret())


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        signature_header([], MSG_ID, TIMESTAMP, BODY)
    with pytest.raises(SignatureError):
        sign("whsec_not base64!", MSG_ID, TIMESTAMP, BODY)


OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()
SIGNED_LIST = sign(SECRET, MSG_ID, TIMESTAMP, "[1, 2]")
SIGNED_GARBAGE = sign(SECRET, MSG_ID, TIMESTAMP, b"\xff\xfe{")
SIGNED_TEXT = sign(SECRET, MSG_ID, TIMESTAMP, "not json")
SIGNED_DEEP = sign(SECRET, MSG_ID, TIMESTAMP, "[" * 100_000)

BAD_INPUTS: list[tuple[str, Any, Any, Any, str]] = [
    # (case, body, headers, secret, what the error says)
    ("no headers", BODY, {}, SECRET, "webhook-id header is missing"),
    ("headers not a mapping", BODY, None, SECRET, "cannot be read"),
    ("headers a list", BODY, [("webhook-id", MSG_ID)], SECRET, "cannot be read"),
    ("no webhook-id", BODY, without("webhook-id"), SECRET, "webhook-id"),
    ("no webhook-timestamp", BODY, without("webhook-timestamp"), SECRET, "webhook-timestamp"),
    ("no webhook-signature", BODY, without("webhook-signature"), SECRET, "webhook-signature"),
    ("empty webhook-id", BODY, {**headers_for(), "webhook-id": ""}, SECRET, "webhook-id"),
    ("blank signature", BODY, headers_for("   "), SECRET, "webhook-signature"),
    ("header value not text", BODY, {**headers_for(), "webhook-signature": 5}, SECRET, "signature"),
    ("timestamp a word", BODY, headers_for(ts="yesterday"), SECRET, "not a Unix time"),
    ("timestamp negative", BODY, headers_for(ts="-5"), SECRET, "not a Unix time"),
    ("timestamp fractional", BODY, headers_for(ts=f"{TIMESTAMP}.5"), SECRET, "not a Unix time"),
    ("timestamp hex", BODY, headers_for(ts=hex(TIMESTAMP)), SECRET, "not a Unix time"),
    ("timestamp huge", BODY, headers_for(ts="9" * 400), SECRET, "not a Unix time"),
    ("timestamp 40 digits", BODY, headers_for(ts="9" * 40), SECRET, "not a Unix time"),
    ("timestamp arabic digits", BODY, headers_for(ts="١٦١٤٢٦٥٣٣٠"), SECRET, "not a Unix time"),
    ("timestamp stale", BODY, headers_for(ts=TIMESTAMP - 301), SECRET, "too old"),
    ("timestamp future", BODY, headers_for(ts=TIMESTAMP + 301), SECRET, "future"),
    ("signature not base64", BODY, headers_for("v1,!!!not base64!!!"), SECRET, "no signature"),
    ("signature truncated", BODY, headers_for(SIGNATURE[:-4]), SECRET, "no signature"),
    ("signature other version", BODY, headers_for("v2," + SIGNATURE[3:]), SECRET, "no signature"),
    ("signature without comma", BODY, headers_for("v1" + SIGNATURE[3:]), SECRET, "no signature"),
    ("signature only the version", BODY, headers_for("v1"), SECRET, "no signature"),
    ("signature of another body", '{"test": 1}', headers_for(), SECRET, "no signature"),
    ("signature of another id", BODY, headers_for(msg_id="msg_other"), SECRET, "no signature"),
    ("signature of another time", BODY, headers_for(ts=TIMESTAMP + 1), SECRET, "no signature"),
    ("wrong secret", BODY, headers_for(), OTHER_SECRET, "no signature"),
    ("secret not base64", BODY, headers_for(), "whsec_%%%", "not valid base64"),
    ("secret impossible length", BODY, headers_for(), "whsec_abcde", "not valid base64"),
    ("secret empty", BODY, headers_for(), "", "empty"),
    ("secret only the prefix", BODY, headers_for(), "whsec_", "empty"),
    ("secret not text", BODY, headers_for(), None, "must be text"),
    ("secret non-ascii", BODY, headers_for(), "whsec_ü", "not valid base64"),
    ("body not bytes or text", 12345, headers_for(), SECRET, "bytes or text"),
    ("body unencodable text", "\ud800", headers_for(), SECRET, "not valid text"),
    ("id unencodable text", BODY, headers_for(msg_id="\ud800"), SECRET, "webhook-id"),
    ("body not utf-8", b"\xff\xfe{", headers_for(SIGNED_GARBAGE), SECRET, "not JSON"),
    ("body not json", "not json", headers_for(SIGNED_TEXT), SECRET, "not JSON"),
    ("body nested too deep", "[" * 100_000, headers_for(SIGNED_DEEP), SECRET, "not JSON"),
    ("body a list", "[1, 2]", headers_for(SIGNED_LIST), SECRET, "not a JSON object"),
]


@pytest.mark.parametrize("case,body,hdrs,secret,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_every_bad_input_raises_signature_error(case: str, body: Any, hdrs: Any, secret: Any,
                                                message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify(body, hdrs, secret, now=TIMESTAMP)


HEADER_NAMES = st.sampled_from(["webhook-id", "Webhook-Id", "webhook-timestamp",
                                "WEBHOOK-TIMESTAMP", "webhook-signature", "Webhook-Signature", "x"])
HEADER_VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from([MSG_ID, str(TIMESTAMP), SIGNATURE, "v1,", "v1,AAAA", "v1 v1,=", "v1,====",
                     f"{SIGNATURE} v1,{'A' * 43}="]),
    st.integers(), st.none(), st.binary(max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=64), st.text(max_size=64), st.just(BODY)),
    hdrs=st.dictionaries(HEADER_NAMES, HEADER_VALUES),
    secret=st.one_of(st.text(max_size=50), st.just(SECRET), st.just("whsec_"), st.none()),
)
def test_random_input_raises_signature_error_and_nothing_else(body: Any, hdrs: Any, secret: Any) -> None:
    try:
        result = verify(body, hdrs, secret, now=TIMESTAMP)
    except SignatureError:
        return
    # Only a genuinely signed message gets through.
    assert result == {"test": 2432232314}


@settings(max_examples=200, deadline=None)
@given(msg_id=st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s),
       payload=st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10), max_size=5),
       ts=st.integers(min_value=0, max_value=10**11),
       flip=st.integers(min_value=0))
def test_any_signed_message_verifies_and_any_changed_byte_fails(
        msg_id: str, payload: dict, ts: int, flip: int) -> None:
    body = json.dumps(payload).encode()
    hdrs = {"webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign(SECRET, msg_id, ts, body)}
    assert verify(body, hdrs, SECRET, now=ts) == payload
    position = flip % len(body)
    tampered = body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1:]
    with pytest.raises(SignatureError):
        verify(tampered, hdrs, SECRET, now=ts)
