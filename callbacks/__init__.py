"""Webhook mechanics, with no Flask and no Dramatiq in them.

* ``verify()`` / ``sign()``: Standard Webhooks signatures (receivers can use
  ``verify()`` on its own);
* ``UrlGuard``: only public addresses receive webhooks;
* ``Deliverer``: one attempt, to a checked address, with limits;
* ``RetryPolicy`` and ``classify()``: what an answer means and when to retry;
* ``CallbackRegistry``: tenants' endpoints in Redis.
"""
from __future__ import annotations

from callbacks.errors import (
    CallbackError,
    DeliveryError,
    PermanentDeliveryError,
    SignatureError,
    UnsafeUrlError,
)
from callbacks.policy import RetryPolicy, Verdict, classify, parse_retry_after, status_class
from callbacks.signing import generate_secret, sign, signature_header, verify
from callbacks.urlguard import CheckedUrl, UrlGuard

__all__ = [
    "AttemptResult", "CallbackError", "CallbackRegistry", "CheckedUrl", "Deliverer",
    "DeliveryError", "PermanentDeliveryError", "RetryPolicy", "SignatureError", "UnsafeUrlError",
    "UrlGuard", "Verdict", "classify", "generate_secret", "parse_retry_after", "sign",
    "signature_header", "status_class", "verify",
]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # The delivery and registry parts pull in urllib3 and redis; a receiver
    # that only verifies signatures does not pay for them.
    if name in ("Deliverer", "AttemptResult"):
        from callbacks import attempt

        return getattr(attempt, name)
    if name == "CallbackRegistry":
        from callbacks.registry import CallbackRegistry

        return CallbackRegistry
    raise AttributeError(name)
