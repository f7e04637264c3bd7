"""The operator console at ``/console/``: server-rendered pages over the API's own stores.

Views are thin over ``TaskStore``, the callback registry, the collections'
``VectorStore`` and ``Searcher``, and ``webapp.actions`` (the code the API's
views call), with no rule of their own. Pages are Jinja templates (autoescaped); the one script is a static
file of ours (``static/console.js``), as the Content-Security-Policy allows
no inline script.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, Response, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from webapp.console.access import csrf_ok, csrf_token, current_viewer
from webapp.console.session import ConsoleSessionInterface

#: Every console page's policy: scripts and styles from this origin only,
#: no framing, forms post back here only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
#: Endpoints open without signing in.
PUBLIC_ENDPOINTS = frozenset({"console.sign_in", "console.static"})

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static")


@bp.before_request
def _require_sign_in() -> Response | None:
    if request.method == "POST" and not csrf_ok():
        return _error(403, "This form has expired or did not come from this console. "
                           "Reload the page and try again.")
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    found = current_viewer()
    if found is None:
        if request.endpoint == "console.overview_data":
            return Response('{"signed_in": false}', 401, mimetype="application/json")
        return redirect(url_for("console.sign_in"))
    g.viewer = found
    return None


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    if request.endpoint != "console.static":
        resp.headers["Cache-Control"] = "no-store"
    return resp


def _error(status: int, message: str) -> Response:
    return Response(render_template("console/error.html", status=status, message=message), status)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    messages = {404: "There is nothing here, or it is not yours to see."}
    return _error(exc.code or 500, messages.get(exc.code or 0, exc.description or exc.name))


def _local_input(value: float | None) -> str:
    """Unix seconds as a ``datetime-local`` input's value (UTC)."""
    if value is None:
        return ""
    return dt.datetime.fromtimestamp(value, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


@bp.app_template_filter("console_time")
def _console_time(value: float | None) -> str:
    """Unix seconds as the pages show them (UTC), or a dash."""
    if value is None:
        return "—"
    return dt.datetime.fromtimestamp(value, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.context_processor
def _context() -> dict[str, object]:
    return {"csrf_token": csrf_token, "viewer": g.get("viewer"), "as_input": _local_input}


def register(app: Flask) -> None:
    """Mount the console on ``app`` (views are imported here, after the blueprint exists)."""
    from webapp.console import (  # noqa: F401 - importing registers the routes
        views_auth,
        views_callbacks,
        views_collections,
        views_deliveries,
        views_overview,
        views_tasks,
    )

    app.session_interface = ConsoleSessionInterface()
    app.register_blueprint(bp)

