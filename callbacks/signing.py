"""Standard Webhooks signing and verification.

``verify()`` needs nothing else from Hookline, so a receiver can use it alone::

    from callbacks import verify, SignatureError
    event = verify(request.get_data(), request.headers, "whsec_...")
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from callbacks.errors import SignatureError

SECRET_PREFIX = "whsec_"
#: Seconds a webhook's timestamp may differ from the receiver's clock.
DEFAULT_TOLERANCE = 300


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise SignatureError("the secret is empty")
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the secret is not valid base64") from None


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<base64 HMAC-SHA256>`` signature of one message."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(
    secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes | str
) -> str:
    """The ``webhook-signature`` header: one signature per live secret."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_)


class HeadersLike(Protocol):
    """A dict, werkzeug's ``Headers``, requests' headers: anything with these."""

    def get(self, key: str, /) -> Any: ...

    def items(self) -> Iterable[tuple[Any, Any]]: ...


def _header(headers: HeadersLike, name: str) -> str:
    try:
        value = headers.get(name)  # werkzeug and requests headers ignore case
        if value is None:
            for key, candidate in headers.items():
                if isinstance(key, str) and key.lower() == name:
                    value = candidate
                    break
    except Exception:
        raise SignatureError("the headers cannot be read") from None
    if not isinstance(value, str) or not value:
        raise SignatureError(f"missing {name} header")
    return value


def verify(
    body: bytes | str,
    headers: HeadersLike,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook's signature and timestamp; return its parsed JSON body.

    Raises:
        SignatureError: for every kind of bad input: a header missing or
            malformed, a stale or future timestamp, bad base64, no matching
            signature, a body that is not a JSON object.
    """
    try:
        payload = _as_bytes(body)
    except (TypeError, UnicodeEncodeError):
        raise SignatureError("the body must be bytes or text") from None
    msg_id = _header(headers, "webhook-id")
    raw_ts = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not raw_ts.isascii() or not raw_ts.isdigit() or len(raw_ts) > 12:
        raise SignatureError("webhook-timestamp is not a Unix time in seconds")
    timestamp = int(raw_ts)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise SignatureError("webhook-timestamp is too old")
    if timestamp > current + tolerance:
        raise SignatureError("webhook-timestamp is in the future")
    expected = sign(secret, msg_id, timestamp, payload).split(",", 1)[1].encode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version != "v1" or not value:
            continue
        if hmac.compare_digest(value.encode("utf-8", "replace"), expected):
            break
    else:
        raise SignatureError("no signature matches")
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):
        raise SignatureError("the body is not JSON") from None
    if not isinstance(event, dict):
        raise SignatureError("the body is not a JSON object")
    return event
