"""The ``callbacks`` exception tree: one root, a few leaves."""
from __future__ import annotations


class CallbackError(Exception):
    """Root of every error this package raises."""


class SignatureError(CallbackError):
    """A webhook's signature, headers, timestamp or body do not verify."""


class DeliveryError(CallbackError):
    """A delivery attempt failed and may be retried."""


class PermanentDeliveryError(DeliveryError):
    """A delivery attempt failed and retrying would not help."""


class UnsafeUrlError(CallbackError):
    """The URL guard refused a callback URL.

    The message is meant for the user who registered the URL: it names the
    host, the address it resolves to and why that address is not allowed.
    """
