"""Tasks: a searchable list and a detail page with cancel and resend."""
from __future__ import annotations

import orjson
from flask import Response, flash, redirect, render_template, request, url_for

from hookline.task_record import STATUSES
from hookline.task_search import SearchPage
from webapp import actions
from webapp.console import bp
from webapp.console.access import find_task, viewer
from webapp.console.forms import PAGE_SIZE, FormError, cursor, task_query
from webapp.console.readers import readers
from webapp.services import services


@bp.get("/tasks")
def tasks() -> Response | str:
    who = viewer()
    error = None
    page = SearchPage([], None, 0, None)
    try:
        query = task_query(request.args)
        page = readers().search.search(who.tenants(), query, limit=PAGE_SIZE,
                                       cursor=cursor(request.args))
    except (FormError, ValueError) as exc:
        error = str(exc) if isinstance(exc, FormError) else "That cursor is not from this console."
    status = 200 if error is None else 400
    args = {k: v for k, v in request.args.items() if k != "cursor" and v}
    return Response(render_template(
        "console/tasks.html", page=page, error=error, statuses=STATUSES, args=args,
        tenants=who.known_tenants(), chosen_tenant=who.chosen_tenant(),
    ), status)


def _pretty(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


@bp.get("/tasks/<task_id>")
def task(task_id: str) -> str:
    found = find_task(task_id)
    deliveries = services().store.deliveries(task_id)
    timeline = [("created", found.created_at), ("started", found.started_at),
                ("finished", found.finished_at)]
    return render_template(
        "console/task.html", task=found, deliveries=deliveries, timeline=timeline,
        result=_pretty(found.result) if found.result is not None else None,
        metadata=_pretty(found.metadata),
    )


@bp.post("/tasks/<task_id>/cancel")
def cancel(task_id: str) -> Response:
    found = find_task(task_id)
    try:
        outcome = actions.cancel_task(services(), found)
    except LookupError:
        flash("The task is gone (its retention period ended).", "error")
    except actions.Refused as exc:
        flash(str(exc), "error")
    else:
        flash("Cancelled: it will never run." if outcome == "revoked"
              else "Cancel requested: it stops at its next progress point.", "ok")
    return redirect(url_for("console.task", task_id=task_id))


@bp.post("/tasks/<task_id>/resend")
def resend(task_id: str) -> Response:
    found = find_task(task_id)
    try:
        actions.resend_webhook(services(), found)
    except actions.Refused as exc:
        flash(str(exc), "error")
    else:
        flash("The webhook is queued to be sent once more.", "ok")
    return redirect(url_for("console.task", task_id=task_id))
