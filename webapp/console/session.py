"""The console's session: a signed cookie that names who signed in, never their key.

Flask's signed-cookie session, with the cookie scoped to ``/console``,
``HttpOnly``, ``SameSite=Strict`` and ``Secure`` when the request came over
HTTPS (gunicorn takes ``X-Forwarded-Proto`` from a proxy it trusts). The
signature's timestamp is renewed by every page, so a cookie whose signature
is older than ``HOOKLINE_CONSOLE_IDLE_TIMEOUT`` is refused: the idle timeout.
The signing key is ``HOOKLINE_SECRET_KEY``, or one generated once and kept in
Redis so that every web process signs alike. Requests outside ``/console``
get Flask's null session and pay for nothing else.
"""
from __future__ import annotations

import secrets
import threading
from typing import Any

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

from hookline import keys
from webapp.services import WebServices, services

#: The cookie's name and path.
COOKIE_NAME = "hookline_console"
COOKIE_PATH = "/console"
#: Endpoints that do not count as activity (the overview's own refresh).
PASSIVE_ENDPOINTS = frozenset({"console.overview_data"})




class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions for ``/console`` only, with an idle timeout."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._lock = threading.Lock()

    def signing_key(self, svc: WebServices) -> str:
        """The configured key, or the one kept in Redis (made by whoever asks first)."""
        if self._key is None:
            with self._lock:
                if self._key is None:
                    key = svc.config.secret_key
                    if not key:
                        svc.redis.set(keys.CONSOLE_SECRET_KEY, secrets.token_urlsafe(48), nx=True)
                        key = svc.redis.get(keys.CONSOLE_SECRET_KEY).decode()
                    self._key = key
        return self._key

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        return URLSafeTimedSerializer(
            self.signing_key(services()), salt=self.salt, serializer=self.serializer,
            signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method},
        )

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(COOKIE_PATH + "/"):
            return None  # Flask's null session: nothing read, nothing written
        serializer = self.get_signing_serializer(app)
        assert serializer is not None
        value = request.cookies.get(COOKIE_NAME)
        if not value:
            return self.session_class()
        try:
            data = serializer.loads(value, max_age=services().config.console_idle_timeout)
        except BadSignature:  # a forged, tampered or idle-expired cookie
            return self.session_class()
        return self.session_class(data)

    def get_cookie_name(self, app: Flask) -> str:
        return COOKIE_NAME

    def get_cookie_path(self, app: Flask) -> str:
        return COOKIE_PATH

    def get_cookie_domain(self, app: Flask) -> str | None:
        return None

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Strict"

    def should_set_cookie(self, app: Flask, session: Any) -> bool:
        # Every page renews the signature's timestamp (the idle clock); the
        # overview's background refresh does not, or an open tab would never idle out.
        if request.endpoint in PASSIVE_ENDPOINTS:
            return bool(session.modified)
        return True
