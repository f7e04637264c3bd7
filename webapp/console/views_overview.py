"""The overview: queues, workers, recent outcomes, webhook success; refreshes itself.

Queue and worker figures are the platform's, shared by every tenant, so only
an operator sees them; a tenant sees its own tasks' outcomes and webhooks.
"""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template

from hookline.task_stats import LOOKBACK_SECONDS
from webapp.console import bp
from webapp.console.access import viewer
from webapp.console.readers import readers

#: Seconds between the overview's refreshes (read by the page's script).
REFRESH_SECONDS = 5


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _figures() -> dict[str, Any]:
    """The overview's figures, as the page shows them (text per named field)."""
    who = viewer()
    live: dict[str, str] = {}
    queues: dict[str, dict[str, float]] = {}
    if who.operator:
        figures = readers().queue_figures()
        queues = figures["queues"]
        for queue, states in queues.items():
            for state, value in states.items():
                text = f"{value:.1f} s" if state == "oldest_age" else _number(value)
                live[f"queue.{queue}.{state}"] = text
        live["workers"] = _number(figures["workers"])
        live["webhook_pending"] = _number(figures["webhook_pending"])
    stats = readers().recent_stats(who.tenants())
    for outcome, per_minute in stats.per_minute_totals().items():
        live[f"rate.{outcome}"] = f"{per_minute:.1f}"
    for minute, row in enumerate(stats.per_minute):
        for outcome, count in row.items():
            live[f"minute.{minute}.{outcome}"] = str(count)
    rate = stats.webhook_success_rate
    live["webhook_success"] = "—" if rate is None else f"{rate * 100:.1f} %"
    for state in ("delivered", "failed", "retrying", "pending", "disabled"):
        live[f"delivery.{state}"] = str(stats.deliveries.get(state, 0))
    hours = LOOKBACK_SECONDS / 3600
    live["stats_note"] = (
        f"Counted from the newest {stats.examined:,} tasks (a bound that keeps this page fast)."
        if not stats.complete else
        f"Counted from the {stats.examined:,} tasks created in the last {hours:g} h.")
    return {"live": live, "queues": sorted(queues), "minutes": len(stats.per_minute),
            "window_minutes": stats.window_seconds // 60}


@bp.get("/")
def overview() -> str:
    return render_template("console/overview.html", refresh=REFRESH_SECONDS, **_figures())


@bp.get("/overview.json")
def overview_data() -> Response:
    return jsonify(_figures()["live"])
