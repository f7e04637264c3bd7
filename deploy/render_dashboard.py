#!/usr/bin/env python3
"""Draw the Grafana dashboard's main panels as a PNG, from a live Prometheus.

No Grafana is needed: each time-series panel's own PromQL is read from
``deploy/grafana/dashboards/hookline.json``, Grafana's interval variables are
filled in, and every query runs as a range query against Prometheus's HTTP
API. One subplot per panel, titled as the panel, one line per series, named by
the target's ``legendFormat``.

    python deploy/render_dashboard.py --prometheus http://127.0.0.1:9090 \\
        --out deploy/dashboard.png --since 15m

Exit status: 0 when every query answered, 1 when some failed (the picture is
still written, with the error in the panel), 2 when Prometheus is unreachable.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

DASHBOARD = Path(__file__).resolve().parent / "grafana" / "dashboards" / "hookline.json"

#: What Grafana substitutes for its built-in variables, for a 15 s scrape
#: interval and a one-hour view; ``$__rate_interval`` is overridden per call.
GRAFANA_VARIABLES: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
#: Panel types drawn by default; stat panels summarise the same queries.
MAIN_PANEL_TYPES = ("timeseries",)
#: Largest number of points asked of Prometheus per series.
MAX_POINTS = 240
#: Seconds to wait for one Prometheus answer.
HTTP_TIMEOUT = 30.0
#: Y-axis caption per Grafana unit.
UNIT_CAPTIONS = {"s": "seconds", "ops": "per second", "reqps": "requests per second",
                 "percentunit": "ratio"}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class PrometheusError(Exception):
    """Prometheus could not be reached or refused a query."""


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """``expr`` with Grafana variables (``$x``, ``${x}``, ``[[x]]``) replaced.

    Variables not in ``variables`` are left as they are.
    """

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return variables.get(name, match.group(0))

    return _VARIABLE.sub(replace, expr)


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of ``dashboard`` in order, including those inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _panels_with_queries(
    dashboard: Mapping[str, Any], rate_interval: str, types: tuple[str, ...] | None
) -> list[tuple[dict[str, Any], list[tuple[str, str]]]]:
    variables = {**GRAFANA_VARIABLES, "__rate_interval": rate_interval}
    out = []
    for panel in iter_panels(dashboard):
        if types is not None and panel.get("type") not in types:
            continue
        queries = [
            (substitute(target["expr"], variables), target.get("legendFormat", ""))
            for target in panel.get("targets", [])
            if target.get("expr", "").strip() and not target.get("hide")
        ]
        if queries:
            out.append((panel, queries))
    return out


def panel_queries(
    dashboard: Mapping[str, Any],
    rate_interval: str = "1m",
    *,
    types: tuple[str, ...] | None = None,
) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(panel title, [(expr, legend format), ...]), ...]`` for every panel with queries.

    Grafana's variables are filled in (``$__rate_interval`` with ``rate_interval``);
    hidden targets and empty expressions are left out, and so are panels whose
    type is not in ``types`` when it is given.
    """
    return [(panel.get("title", ""), queries)
            for panel, queries in _panels_with_queries(dashboard, rate_interval, types)]


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    """A series' name from a Grafana legend format (``{{label}}`` placeholders)."""
    if fmt and fmt != "__auto":
        text = _LEGEND_LABEL.sub(lambda m: labels.get(m.group(1), ""), fmt).strip()
        if text:
            return text
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}" if shown else "value"


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``90s``, ``15m`` or ``2h``."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number and a unit, e.g. 90s, 15m, 2h")
    return float(int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)])


def check_reachable(session: requests.Session, prometheus: str) -> None:
    """Raise ``PrometheusError`` unless Prometheus answers that it is ready."""
    try:
        resp = session.get(f"{prometheus}/-/ready", timeout=5)
    except requests.RequestException as exc:
        raise PrometheusError(f"cannot reach Prometheus at {prometheus}: {exc}") from exc
    if resp.status_code != 200:
        raise PrometheusError(
            f"Prometheus at {prometheus} is not ready: HTTP {resp.status_code} {resp.text.strip()[:200]}"
        )


def query_range(
    session: requests.Session, prometheus: str, expr: str, start: float, end: float, step: float
) -> list[dict[str, Any]]:
    """The matrix Prometheus answers for ``expr``; ``PrometheusError`` if it refuses."""
    try:
        resp = session.get(
            f"{prometheus}/api/v1/query_range",
            params={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
            timeout=HTTP_TIMEOUT,
        )
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise PrometheusError(f"{expr}: {exc}") from exc
    if body.get("status") != "success":
        raise PrometheusError(f"{expr}: {body.get('errorType', 'error')}: {body.get('error')}")
    return list(body["data"]["result"])


def _number(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else math.nan


Line = tuple[str, list[datetime], list[float]]


def _drop_flat_zero(lines: list[Line]) -> tuple[list[Line], int]:
    """``lines`` without those that stay at 0 (or have no value), unless all do; and how many went.

    Every known series exists from the start at 0 (so that rate() and alerts
    see it), which would bury the few that move under a long legend.
    """

    def flat_zero(values: list[float]) -> bool:
        return all(v == 0 or math.isnan(v) for v in values)

    moving = [line for line in lines if not flat_zero(line[2])]
    if not moving:
        return lines, 0
    return moving, len(lines) - len(moving)


def render(
    prometheus: str,
    out: Path,
    since: float,
    rate_interval: str = "1m",
    *,
    dashboard_path: Path = DASHBOARD,
    types: tuple[str, ...] = MAIN_PANEL_TYPES,
) -> list[str]:
    """Draw the last ``since`` seconds of the dashboard's panels into ``out`` (PNG).

    Returns the queries that failed (their panels show the error); raises
    ``PrometheusError`` if Prometheus cannot be reached at all.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    dashboard = json.loads(dashboard_path.read_text())
    panels = _panels_with_queries(dashboard, rate_interval, types)
    if not panels:
        raise ValueError(f"{dashboard_path} has no panel of type {', '.join(types)} with a query")
    session = requests.Session()
    check_reachable(session, prometheus)
    end = time.time()
    start = end - since
    step = max(1.0, math.ceil(since / MAX_POINTS))
    cols = 2 if len(panels) < 9 else 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.4 * rows), squeeze=False)
    failures = []
    for ax, (panel, queries) in zip(axes.flat, panels):
        errors = []
        lines = []
        for expr, fmt in queries:
            try:
                result = query_range(session, prometheus, expr, start, end, step)
            except PrometheusError as exc:
                errors.append(str(exc))
                continue
            for series in result:
                times = [datetime.fromtimestamp(float(t), UTC) for t, _ in series["values"]]
                values = [_number(v) for _, v in series["values"]]
                lines.append((legend(fmt, series["metric"]), times, values))
        shown, hidden = _drop_flat_zero(lines)
        for label, times, values in shown:
            ax.plot(times, values, label=label, linewidth=1.2)
        ax.set_title(panel.get("title", ""), fontsize=10)
        ax.set_xlim(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        if unit == "percentunit":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if unit in UNIT_CAPTIONS:
            ax.set_ylabel(UNIT_CAPTIONS[unit], fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            note = f"{hidden} idle series not shown" if hidden else None
            ax.legend(fontsize=7, loc="upper left", title=note, title_fontsize=7)
        elif not errors:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")
        if errors:
            ax.text(0.5, 0.5, "query failed:\n" + "\n".join(e[:90] for e in errors), transform=ax.transAxes,
                    ha="center", va="center", color="red", fontsize=7, wrap=True)
            failures.extend(errors)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    stamp = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M UTC")
    fig.suptitle(f"{dashboard.get('title', 'Dashboard')}: {since / 60:g} minutes to {stamp}", fontsize=13)
    # Leave the top strip to the title.
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.5 / (3.4 * rows)))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL")
    parser.add_argument("--out", type=Path, default=Path("deploy/dashboard.png"), help="PNG to write")
    parser.add_argument("--since", type=parse_duration, default=parse_duration("15m"),
                        help="how far back to draw, e.g. 15m (default) or 2h")
    parser.add_argument("--rate-interval", default="1m",
                        help="what $__rate_interval stands for (default 1m: four 15 s scrapes)")
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD, help="dashboard JSON to draw")
    args = parser.parse_args(argv)
    prometheus = args.prometheus.rstrip("/")
    try:
        failures = render(prometheus, args.out, args.since, args.rate_interval, dashboard_path=args.dashboard)
    except PrometheusError as exc:
        print(f"render_dashboard: {exc}", file=sys.stderr)
        return 2
    for failure in failures:
        print(f"render_dashboard: query failed: {failure}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
