"""Standard Webhooks signing and verify(): the spec's test vector and every kind of bad input."""
from __future__ import annotations

import base64
import json

import pytest
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks import SignatureError, generate_secret, sign, signature_header, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = '{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str = EXPECTED, ts: int | str = TIMESTAMP, msg_id: str = MSG_ID) -> dict:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_the_standard_webhooks_test_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY.encode()) == EXPECTED


def test_verify_accepts_the_vector_and_any_header_casing() -> None:
    assert verify(BODY, headers(), SECRET, now=TIMESTAMP) == {"test": 2432232314}
    upper = {k.upper(): v for k, v in headers().items()}
    assert verify(BODY.encode(), upper, SECRET, now=TIMESTAMP + 200) == {"test": 2432232314}


def test_secrets_are_whsec_and_32_random_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != generate_secret()


def test_cross_checked_with_the_standardwebhooks_package() -> None:
    secret = generate_secret()
    body = json.dumps({"type": "task.succeeded", "data": {"task_id": "x"}})
    ts = 1_700_000_000
    ours = {"webhook-id": "msg_1", "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, "msg_1", ts, body)}
    theirs = standardwebhooks.Webhook(secret)
    import datetime as dt

    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    assert theirs.sign("msg_1", moment, body) == ours["webhook-signature"]
    assert verify(body, ours, secret, now=ts) == json.loads(body)


def test_a_rotation_header_verifies_with_either_secret() -> None:
    old, new = generate_secret(), generate_secret()
    header = signature_header([new, old], MSG_ID, TIMESTAMP, BODY)
    assert len(header.split(" ")) == 2
    for secret in (old, new):
        assert verify(BODY, headers(header), secret, now=TIMESTAMP)
    with pytest.raises(SignatureError):
        verify(BODY, headers(header), generate_secret(), now=TIMESTAMP)


BAD = [
    ("no headers", BODY, {}, SECRET),
    ("no id", BODY, {k: v for k, v in headers().items() if k != "webhook-id"}, SECRET),
    ("no timestamp", BODY, {k: v for k, v in headers().items() if k != "webhook-timestamp"}, SECRET),
    ("no signature", BODY, {k: v for k, v in headers().items() if k != "webhook-signature"}, SECRET),
    ("timestamp not a number", BODY, headers(ts="yesterday"), SECRET),
    ("timestamp negative", BODY, headers(ts="-5"), SECRET),
    ("timestamp huge", BODY, headers(ts="9" * 40), SECRET),
    ("timestamp unicode digits", BODY, headers(ts="١٦١٤٢٦٥٣٣٠"), SECRET),
    ("stale", BODY, headers(), SECRET),  # checked with the real clock
    ("signature bad base64", BODY, headers("v1,!!!not base64!!!"), SECRET),
    ("signature wrong version", BODY, headers("v2," + EXPECTED[3:]), SECRET),
    ("signature no comma", BODY, headers("v1"), SECRET),
    ("signature of another body", '{"test": 1}', headers(), SECRET),
    ("other id", BODY, headers(msg_id="msg_other"), SECRET),
    ("wrong secret", BODY, headers(), "whsec_" + base64.b64encode(b"x" * 32).decode()),
    ("secret bad base64", BODY, headers(), "whsec_%%%"),
    ("secret empty", BODY, headers(), ""),
    ("body not utf-8 json", b"\xff\xfe", headers(sign(SECRET, MSG_ID, TIMESTAMP, b"\xff\xfe")), SECRET),
    ("body a list", "[1]", headers(sign(SECRET, MSG_ID, TIMESTAMP, "[1]")), SECRET),
    ("non-string header", BODY, {**headers(), "webhook-signature": 5}, SECRET),
]


@pytest.mark.parametrize("name,body,hdrs,secret", BAD, ids=[b[0] for b in BAD])
def test_every_bad_input_raises_signature_error_only(name: str, body, hdrs, secret) -> None:  # type: ignore[no-untyped-def]
    now = None if name == "stale" else TIMESTAMP
    with pytest.raises(SignatureError):
        verify(body, hdrs, secret, now=now)


def test_future_timestamps_are_refused() -> None:
    with pytest.raises(SignatureError, match="future"):
        verify(BODY, headers(), SECRET, now=TIMESTAMP - 301)


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=64), st.text(max_size=64)),
    hdrs=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "x"]),
        st.one_of(st.text(max_size=80), st.sampled_from(["v1,", "v1,AAAA", str(TIMESTAMP), "v1 v1,="])),
    ),
    secret=st.one_of(st.text(max_size=40), st.just(SECRET)),
)
def test_random_input_never_leaks_another_exception(body, hdrs, secret) -> None:  # type: ignore[no-untyped-def]
    try:
        verify(body, hdrs, secret, now=TIMESTAMP)
    except SignatureError:
        pass
