"""Standard Webhooks signing and verification (``webhook-id``, ``-timestamp``, ``-signature``).

``verify()`` needs nothing else from Hookline, so a receiver can use it alone::

    from callbacks import SignatureError, verify

    try:
        event = verify(request.get_data(), request.headers, "whsec_...")
    except SignatureError:
        return "", 400
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from secrets import token_bytes
from typing import Any, Protocol

from callbacks.errors import SignatureError

SECRET_PREFIX = "whsec_"
#: Random bytes in a new signing secret.
SECRET_BYTES = 32
#: Seconds a webhook's timestamp may differ from the receiver's clock.
DEFAULT_TOLERANCE = 300
#: Longest ``webhook-timestamp`` accepted, in digits (Unix seconds have 10).
_MAX_TIMESTAMP_DIGITS = 15
_VERSION = "v1"
_ID, _TIMESTAMP, _SIGNATURE = "webhook-id", "webhook-timestamp", "webhook-signature"


class HeadersLike(Protocol):
    """werkzeug's ``Headers`` and the like: not a ``Mapping``, but enough of one."""

    def get(self, key: str, /) -> Any: ...

    def items(self) -> Iterable[tuple[Any, Any]]: ...


Headers = Mapping[str, str] | HeadersLike


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret (unpadded base64 is accepted).

    Raises:
        SignatureError: the secret is not text, not base64, or empty.
    """
    if not isinstance(secret, str):
        raise SignatureError("the signing secret must be text")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the signing secret is not valid base64") from None
    if not key:
        raise SignatureError("the signing secret is empty")
    return key


def _body_bytes(body: bytes | str) -> bytes:
    """Raises ``SignatureError`` when ``body`` is neither bytes nor encodable text."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError:
            raise SignatureError("the body is not valid text") from None
    raise SignatureError("the body must be bytes or text")


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    try:
        prefix = f"{msg_id}.{timestamp}.".encode()
    except UnicodeEncodeError:
        raise SignatureError("webhook-id is not valid text") from None
    return hmac.new(key, prefix + body, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<base64 HMAC-SHA256>`` signature of one message.

    Raises:
        SignatureError: ``secret`` is malformed.
    """
    digest = _digest(_key(secret), msg_id, timestamp, _body_bytes(body))
    return f"{_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes | str
) -> str:
    """The ``webhook-signature`` header: one signature per live secret, space-separated.

    Raises:
        ValueError: ``secrets`` is empty.
        SignatureError: one of the secrets is malformed.
    """
    if not secrets:
        raise ValueError("at least one secret is needed to sign a webhook")
    payload = _body_bytes(body)
    return " ".join(
        f"{_VERSION},{base64.b64encode(_digest(_key(s), msg_id, timestamp, payload)).decode('ascii')}"
        for s in secrets
    )


def _header(headers: Headers, name: str) -> str:
    """One header, whatever the casing of the mapping's keys.

    Raises:
        SignatureError: the header is missing, empty, or the mapping unreadable.
    """
    try:
        # werkzeug's and requests' headers ignore case in get(); a plain dict
        # may hold any casing, so fall back to a scan.
        value: Any = headers.get(name)
        if value is None:
            for key, candidate in headers.items():
                if isinstance(key, str) and key.lower() == name:
                    value = candidate
                    break
    except (AttributeError, TypeError, ValueError, LookupError):
        raise SignatureError("the webhook headers cannot be read") from None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str) or not value.strip():
        raise SignatureError(f"the {name} header is missing or empty")
    return value.strip()


def _timestamp(text: str, tolerance: int, now: float | None) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_TIMESTAMP_DIGITS:
        raise SignatureError("webhook-timestamp is not a Unix time in seconds")
    timestamp = int(text)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise SignatureError("webhook-timestamp is too old")
    if timestamp > current + tolerance:
        raise SignatureError("webhook-timestamp is in the future")
    return timestamp


def _any_matches(header: str, expected: bytes) -> bool:
    matched = False
    for candidate in header.split():
        version, comma, encoded = candidate.partition(",")
        if version != _VERSION or not comma:
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # Every candidate is compared, in constant time each.
        matched |= hmac.compare_digest(given, expected)
    return matched


def verify(
    body: bytes | str,
    headers: Headers,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook's signature and timestamp; return its parsed JSON body.

    ``headers`` is any mapping (a dict in any casing, werkzeug's or requests'
    headers). ``now`` (Unix seconds) replaces the clock, for tests.

    Raises:
        SignatureError: for every kind of bad input, and nothing else: a
            malformed secret, a header missing or malformed, a timestamp that
            is not an integer or lies more than ``tolerance`` seconds in the
            past or the future, no signature that matches, a body that is not
            a JSON object.
    """
    key = _key(secret)
    payload = _body_bytes(body)
    msg_id = _header(headers, _ID)
    timestamp = _timestamp(_header(headers, _TIMESTAMP), tolerance, now)
    signatures = _header(headers, _SIGNATURE)
    if not _any_matches(signatures, _digest(key, msg_id, timestamp, payload)):
        raise SignatureError("no signature matches")
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SignatureError("the body is not JSON") from None
    if not isinstance(event, dict):
        raise SignatureError("the body is not a JSON object")
    return event
