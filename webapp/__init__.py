"""The Flask application: ``create_app()`` builds it."""
from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from hookline import logs, metrics
from hookline.config import Config

log = logging.getLogger("hookline.web")

#: Headers every answer carries unless its handler set them itself.
_DEFAULT_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)


def _security_headers(resp: Response) -> None:
    """``X-Content-Type-Options: nosniff`` always, and the defaults above.

    One pass over the headers instead of a case-insensitive scan per header
    (``setdefault``), on every answer.
    """
    headers = resp.headers
    present = {name.lower() for name in headers.keys()}
    if "x-content-type-options" in present:
        headers["X-Content-Type-Options"] = "nosniff"
    else:
        headers.add("X-Content-Type-Options", "nosniff")
    for name, value in _DEFAULT_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)


def create_app(config: Config | None = None) -> Flask:
    """Build the application from ``config`` (default: the environment)."""
    from webapp import (
        bodylimit,
        callbacks_api,
        cli,
        collections_api,
        console,
        ops,
        problems,
        tasks,
        uploads,
    )
    from webapp.services import WebServices

    config = config or Config.from_env()
    logs.configure(config.log_format, config.log_level)
    app = Flask(__name__)
    # Werkzeug answers 413 before reading a body over this size.
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.extensions["hookline"] = WebServices.build(config)

    problems.register(app)
    bodylimit.register(app, config.max_body_bytes)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(callbacks_api.bp)
    app.register_blueprint(collections_api.bp)
    app.register_blueprint(ops.bp)
    if config.console:
        console.register(app)
    uploads.register(app, config, app.extensions["hookline"].redis)
    cli.register(app)
    metrics.initialise()

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _finish(resp: Response) -> Response:
        _security_headers(resp)
        rule = request.url_rule
        route = rule.rule if rule is not None else "<unmatched>"
        started = g.get("started")
        elapsed = time.perf_counter() - started if started is not None else 0.0
        method = request.method
        metrics.observe_http_request(method, route, resp.status_code, elapsed)
        # Building the context costs more than the call at a level that drops
        # it (WARNING in production), so it is built only when it is logged.
        if route != "/metrics" and log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "method": method, "route": route, "http_status": resp.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "task_id": g.get("task_id") or (request.view_args or {}).get("task_id"),
                },
            )
        return resp

    return app
