"""Signing in with an API key (a tenant's or an operator's) and signing out."""
from __future__ import annotations

import logging

from flask import Response, redirect, render_template, request, session, url_for

from webapp.console import bp
from webapp.console.access import current_viewer
from webapp.console.access import sign_in as start_session
from webapp.services import services

log = logging.getLogger("hookline.console")

#: Longest key the form accepts (keys are about 70 characters).
MAX_KEY_LENGTH = 200


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response | str:
    if request.method == "GET":
        if current_viewer() is not None:
            return redirect(url_for("console.overview"))
        return render_template("console/sign_in.html", error=None)
    key = request.form.get("api_key", "").strip()
    principal = services().keys.authenticate(key) if 0 < len(key) <= MAX_KEY_LENGTH else None
    if principal is None:
        # The key itself is never logged, only that a sign-in failed.
        log.info("console sign-in refused")
        return Response(render_template("console/sign_in.html",
                                        error="That key is not valid."), 401)
    start_session(principal)
    log.info("console sign-in", extra={"tenant": principal.tenant})
    return redirect(url_for("console.overview"))


@bp.post("/sign-out")
def sign_out() -> Response:
    session.clear()
    return redirect(url_for("console.sign_in"))
