"""Bearer API keys, tenants and the per-key rate limit."""
from __future__ import annotations

from flask import g, request

from hookline.tenants import Principal
from webapp.problems import Problem
from webapp.services import services


def authenticate() -> None:
    """``before_request`` for API blueprints: sets ``g.principal``.

    Raises:
        Problem: 401 without a valid key, 429 over the key's rate limit.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401, "Unauthorized", "Send an API key as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="hookline"'},
        )
    svc = services()
    principal = svc.keys.authenticate(token.strip())
    if principal is None:
        raise Problem(
            401, "Unauthorized", "The API key is not valid.",
            headers={"WWW-Authenticate": 'Bearer realm="hookline", error="invalid_token"'},
        )
    if principal.operator:
        raise Problem(403, "Forbidden",
                      "An operator key signs in to the console; the tenant API needs a tenant's key.")
    wait = svc.limiter.check(principal.key_id)
    if wait:
        raise Problem(
            429, "Too Many Requests",
            f"This API key is over its limit of {svc.config.rate_limit:g} requests per second.",
            headers={"Retry-After": str(wait)},
        )
    g.principal = principal


def tenant() -> str:
    principal: Principal = g.principal
    return principal.tenant
