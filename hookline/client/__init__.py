"""Hookline's Python client: ``Client(url, api_key)`` and its exceptions.

Imports only ``requests`` (and the standard library), so scripts and the
``hookline`` command can use it without the server's dependencies.
"""
from __future__ import annotations

from hookline.client.client import DEFAULT_URL, Client
from hookline.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    HooklineError,
    Locked,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
    WaitTimeout,
)
from hookline.client.models import TERMINAL

__all__ = [
    "DEFAULT_URL", "TERMINAL", "ApiError", "BadRequest", "Client", "Conflict", "HooklineError", "Locked",
    "NotFound", "PayloadTooLarge", "RateLimited", "ServerError", "TransportError", "Unauthorized",
    "Unavailable", "UnsupportedMediaType", "ValidationFailed", "WaitTimeout",
]
