"""Webhook mechanics, with no Flask and no Dramatiq in them.

* ``verify()``, ``sign()``, ``signature_header()``: Standard Webhooks
  signatures; a receiver can use ``verify()`` on its own;
* ``UrlGuard``: only public addresses receive webhooks;
* ``Deliverer``: one attempt, to a checked address, with limits;
* ``RetryPolicy``, ``classify()``: what an answer means and when to retry;
* ``CallbackRegistry``: tenants' endpoints in Redis.

Importing the package loads only the signing code; the other parts (and
their imports: ``urllib3``, ``redis``) load when first used.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from callbacks.errors import (
    CallbackError,
    DeliveryError,
    PermanentDeliveryError,
    SignatureError,
    UnsafeUrlError,
)
from callbacks.signing import generate_secret, sign, signature_header, verify

if TYPE_CHECKING:
    from callbacks.attempt import AttemptResult, Deliverer
    from callbacks.policy import RetryPolicy, Verdict, classify, parse_retry_after, status_class
    from callbacks.registry import CallbackRegistry
    from callbacks.urlguard import CheckedUrl, UrlGuard

_LAZY = {
    "AttemptResult": "callbacks.attempt",
    "Deliverer": "callbacks.attempt",
    "RetryPolicy": "callbacks.policy",
    "Verdict": "callbacks.policy",
    "classify": "callbacks.policy",
    "parse_retry_after": "callbacks.policy",
    "status_class": "callbacks.policy",
    "CallbackRegistry": "callbacks.registry",
    "CheckedUrl": "callbacks.urlguard",
    "UrlGuard": "callbacks.urlguard",
}

__all__ = [
    "AttemptResult", "CallbackError", "CallbackRegistry", "CheckedUrl", "Deliverer",
    "DeliveryError", "PermanentDeliveryError", "RetryPolicy", "SignatureError", "UnsafeUrlError",
    "UrlGuard", "Verdict", "classify", "generate_secret", "parse_retry_after", "sign",
    "signature_header", "status_class", "verify",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'callbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
