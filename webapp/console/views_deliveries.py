"""Failed deliveries: choose them by query, see how many, confirm, resend in bulk.

A delivery is failed when its retry schedule ran out or a final answer came
(the callback's failed index, ``hookline.keys.failed_deliveries``). Resending
one is what ``POST /callbacks/{id}/recover`` does, for each callback the
query names, through the same function.
"""
from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for

from webapp import actions
from webapp.console import bp
from webapp.console.access import find_callback, viewer
from webapp.console.forms import PAGE_SIZE, FormError, parse_time
from webapp.console.views_callbacks import CALLBACKS_SHOWN
from webapp.services import services


def _selection() -> tuple[list[dict[str, Any]], float, float | None]:
    """The callbacks, and the time range, that the request's query names.

    Raises:
        FormError: a field is not valid.
    """
    since = parse_time(request.values.get("since"), "since") or 0.0
    until = parse_time(request.values.get("until"), "until")
    if until is not None and until <= since:
        raise FormError("until must be after since.")
    cb_id = (request.values.get("callback") or "").strip()
    if cb_id:
        return [find_callback(cb_id)], since, until
    registry = services().registry
    chosen = []
    for tenant in viewer().tenants():
        chosen += registry.list(tenant, CALLBACKS_SHOWN)[0]
    return chosen, since, until


@bp.get("/deliveries/failed")
def failed() -> Response | str:
    who = viewer()
    svc = services()
    try:
        chosen, since, until = _selection()
    except FormError as exc:
        return Response(render_template("console/failed.html", error=str(exc), count=0, rows=[],
                                        args=request.args, tenants=who.known_tenants()), 400)
    by_id = {callback["id"]: callback for callback in chosen}
    count, found = actions.failed_summary(svc, list(by_id), since, until, limit=PAGE_SIZE)
    rows = [{"task_id": task_id, "at": at, "callback": by_id[cb_id]}
            for cb_id, task_id, at in found]
    return render_template("console/failed.html", error=None, count=count, rows=rows[:PAGE_SIZE],
                           args=request.args, tenants=who.known_tenants())


@bp.post("/deliveries/failed/resend")
def resend_failed() -> Response:
    svc = services()
    query = {name: request.form.get(name, "") for name in ("callback", "since", "until", "tenant")}
    try:
        chosen, since, until = _selection()
    except FormError as exc:
        flash(str(exc), "error")
        return redirect(url_for("console.failed", **query))
    queued = sum(actions.recover_failed(svc, callback["id"], since, until) for callback in chosen)
    flash(f"Queued {queued} failed deliveries to be sent again, once each.", "ok")
    return redirect(url_for("console.failed", **{k: v for k, v in query.items() if v}))
