"""Who is signed in to the console, what they may see, and the CSRF token.

A tenant's key shows that tenant's tasks and callbacks; an operator's key
shows every tenant's, one tenant at a time or all merged (the ``tenant``
query parameter; empty means all). Anything outside the viewer's scope is
``404``, never ``403``, as in the API.
"""
from __future__ import annotations

import dataclasses
import hmac
import secrets
from typing import Any

from flask import abort, g, request, session

from hookline.task_record import Task
from hookline.tenants import Principal
from hookline.vector_collections import NAME_RE, Collection, Collections
from webapp.services import services

#: The session's fields. The key itself is never stored: only its id, which
#: is checked against Redis on every request, so a revoked key signs out.
KEY_ID, CSRF = "key_id", "csrf"
#: Longest id a lookup accepts (longer ones are not ours: 404 at once).
MAX_ID_LENGTH = 64


@dataclasses.dataclass(frozen=True)
class Viewer:
    """The signed-in principal: a tenant, or an operator across tenants."""

    name: str
    operator: bool

    @property
    def owner(self) -> str | None:
        """The tenant objects must belong to; ``None`` for an operator."""
        return None if self.operator else self.name

    def chosen_tenant(self) -> str:
        """The operator's tenant filter from the query string ('' for all)."""
        return (request.values.get("tenant") or "").strip() if self.operator else self.name

    def tenants(self) -> list[str]:
        """The tenants a page of this request reads."""
        if not self.operator:
            return [self.name]
        known = services().keys.tenants()
        chosen = self.chosen_tenant()
        if chosen:
            return [chosen] if chosen in known else []
        return known

    def known_tenants(self) -> list[str]:
        return services().keys.tenants() if self.operator else [self.name]


def sign_in(principal: Principal) -> None:
    """Start a fresh session for ``principal`` (a new CSRF token: no fixation)."""
    session.clear()
    session[KEY_ID] = principal.key_id
    session[CSRF] = secrets.token_urlsafe(32)


def current_viewer() -> Viewer | None:
    """The viewer of this request's session, or ``None`` (signed out, revoked, idle)."""
    key_id = session.get(KEY_ID)
    if not isinstance(key_id, str):
        return None
    principal = services().keys.principal(key_id)
    if principal is None:
        session.clear()
        return None
    return Viewer(principal.tenant, principal.operator)


def viewer() -> Viewer:
    found: Viewer = g.viewer
    return found


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    token = session.get(CSRF)
    if not isinstance(token, str):
        token = session[CSRF] = secrets.token_urlsafe(32)
    return token


def csrf_ok() -> bool:
    """Whether the submitted form carries this session's token."""
    expected = session.get(CSRF)
    presented = request.form.get("csrf_token", "")
    return isinstance(expected, str) and hmac.compare_digest(presented.encode(), expected.encode())


def find_task(task_id: str) -> Task:
    """The task if the viewer may see it; aborts ``404`` otherwise."""
    task = None
    if len(task_id) <= MAX_ID_LENGTH:
        task = services().store.get(task_id, viewer().owner)
    if task is None:
        abort(404)
    return task


def find_callback(cb_id: str) -> dict[str, Any]:
    """The callback's public view, its tenant and its delivery health; ``404`` if not the viewer's."""
    svc = services()
    found = svc.registry.get_for_delivery(cb_id) if len(cb_id) <= MAX_ID_LENGTH else None
    owner = viewer().owner
    if found is None or (owner is not None and found["tenant"] != owner):
        abort(404)
    found.pop("secrets")
    return found


def find_collection(tenant: str, name: str) -> Collection:
    """The tenant's collection if the viewer may see it; aborts ``404`` otherwise."""
    owner = viewer().owner
    found = None
    if (owner is None or owner == tenant) and len(tenant) <= MAX_ID_LENGTH and NAME_RE.match(name):
        found = Collections(services().redis).get(tenant, name)
    if found is None:
        abort(404)
    return found
