"""The Flask application: ``create_app()`` builds it."""
from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from hookline import logging as hl_logging
from hookline import metrics
from hookline.config import Config

log = logging.getLogger("hookline.web")


def create_app(config: Config | None = None) -> Flask:
    """Build the application from ``config`` (default: the environment)."""
    from webapp import callbacks_api, cli, ops, problems, tasks
    from webapp.services import WebServices

    config = config or Config.from_env()
    hl_logging.configure(config.log_format, config.log_level)
    app = Flask(__name__)
    # Werkzeug answers 413 before reading a body over this size.
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.extensions["hookline"] = WebServices.build(config)

    problems.register(app)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(callbacks_api.bp)
    app.register_blueprint(ops.bp)
    cli.register(app)
    metrics.initialise()

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers.setdefault("Cache-Control", "no-store")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.http_requests.labels(request.method, route, str(resp.status_code)).inc()
        metrics.http_duration.labels(request.method, route).observe(elapsed)
        if route != "/metrics":
            log.info(
                "request",
                extra={
                    "method": request.method, "route": route, "http_status": resp.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "task_id": g.get("task_id") or (request.view_args or {}).get("task_id"),
                },
            )
        return resp

    return app
