"""Callbacks: health, enable and disable, a new or rotated secret shown once, recovery."""
from __future__ import annotations

import time
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for

from callbacks import UnsafeUrlError
from webapp import actions
from webapp.console import bp
from webapp.console.access import find_callback, viewer
from webapp.console.forms import FormError, parse_time
from webapp.services import services

#: Callbacks listed per tenant.
CALLBACKS_SHOWN = 100


def _rows(tenants: list[str]) -> list[dict[str, Any]]:
    svc = services()
    rows: list[dict[str, Any]] = []
    for tenant in tenants:
        items, _ = svc.registry.list(tenant, CALLBACKS_SHOWN)
        rows += [{**item, "tenant": tenant} for item in items]
    pipe = svc.redis.pipeline(transaction=False)
    for row in rows:
        pipe.hmget(svc.registry.delivery_key(row["id"]), "failing_since", "last_success_at")
    replies = pipe.execute()
    failed = svc.store.failed_counts([row["id"] for row in rows])
    for row, (failing, success), count in zip(rows, replies, failed):
        row["failing_since"] = float(failing) if failing else None
        row["last_success_at"] = float(success) if success else None
        row["failed"] = count
    return rows


@bp.get("/callbacks")
def callbacks() -> str:
    who = viewer()
    return render_template("console/callbacks.html", rows=_rows(who.tenants()), now=time.time(),
                           tenants=who.known_tenants(), chosen_tenant=who.chosen_tenant())


@bp.post("/callbacks")
def create_callback() -> Response | str:
    who = viewer()
    if who.operator:
        abort(404)  # callbacks belong to tenants; an operator has none
    url = request.form.get("url", "").strip()
    description = request.form.get("description", "").strip()
    if not url or len(url) > 2048 or len(description) > 1024:
        flash("A callback needs a URL of at most 2048 characters.", "error")
        return redirect(url_for("console.callbacks"))
    try:
        services().guard.check(url)
    except UnsafeUrlError as exc:
        flash(str(exc), "error")
        return redirect(url_for("console.callbacks"))
    record, secret = services().registry.create(who.name, url, description)
    return render_template("console/secret.html", callback=record, secret=secret,
                           created=True, expires_at=None)


@bp.post("/callbacks/<cb_id>/enable")
def enable(cb_id: str) -> Response:
    return _set_disabled(cb_id, False)


@bp.post("/callbacks/<cb_id>/disable")
def disable(cb_id: str) -> Response:
    return _set_disabled(cb_id, True)


def _set_disabled(cb_id: str, disabled: bool) -> Response:
    found = find_callback(cb_id)
    services().registry.update(found["tenant"], cb_id, disabled=disabled)
    flash(f"{'Disabled' if disabled else 'Enabled'} {found['url']}.", "ok")
    return redirect(url_for("console.callbacks", tenant=request.form.get("tenant") or None))


@bp.post("/callbacks/<cb_id>/rotate")
def rotate(cb_id: str) -> str:
    found = find_callback(cb_id)
    rotated = actions.rotate_secret(services(), found["tenant"], cb_id)
    if rotated is None:
        abort(404)
    secret, expires_at = rotated
    # The one page that ever shows this secret; it is sent with no-store.
    return render_template("console/secret.html", callback=found, secret=secret,
                           created=False, expires_at=expires_at)


@bp.route("/callbacks/<cb_id>/recover", methods=["GET", "POST"])
def recover(cb_id: str) -> Response | str:
    found = find_callback(cb_id)
    try:
        since = parse_time(request.values.get("since"), "since")
    except FormError as exc:
        return Response(render_template("console/recover.html", callback=found, since=None,
                                        count=None, error=str(exc)), 400)
    if request.method == "GET" or since is None:
        count = None if since is None else actions.count_failed(services(), cb_id, since)
        return render_template("console/recover.html", callback=found, since=since, count=count,
                               error=None)
    queued = actions.recover_failed(services(), cb_id, since)
    flash(f"Queued {queued} deliveries of {found['url']} to be sent again.", "ok")
    return redirect(url_for("console.callbacks"))
