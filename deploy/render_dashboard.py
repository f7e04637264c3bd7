#!/usr/bin/env python3
"""Render the Grafana dashboard's main panels as a PNG, from a live Prometheus.

No Grafana is needed: each panel's own PromQL is read from
``deploy/grafana/dashboards/hookline.json`` and run as a range query.

    python deploy/render_dashboard.py --prometheus http://127.0.0.1:9090 \
        --out deploy/dashboard.png --since 15m
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import requests

DASHBOARD = Path(__file__).resolve().parent / "grafana" / "dashboards" / "hookline.json"
#: What Grafana would put in for its interval variables, at a 15 s scrape.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def panel_queries(dashboard: dict[str, Any], rate_interval: str = "1m") -> list[tuple[str, list[tuple[str, str]]]]:
    """``(panel title, [(expr, legend format), ...])`` for every panel with targets."""
    out = []
    for panel in dashboard.get("panels", []):
        targets = []
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            for name, value in {**VARIABLES, "$__rate_interval": rate_interval}.items():
                expr = expr.replace(name, value)
            if expr:
                targets.append((expr, target.get("legendFormat", "")))
        if targets:
            out.append((panel["title"], targets))
    return out


def legend(fmt: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)
    return text.strip() or json.dumps(labels)


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    resp = requests.get(f"{prometheus}/api/v1/query_range",
                        params={"query": expr, "start": str(start), "end": str(end), "step": str(step)},
                        timeout=30)
    resp.raise_for_status()
    body = resp.json()
    if body.get("status") != "success":
        raise RuntimeError(f"query failed: {expr}: {body.get('error')}")
    return body["data"]["result"]  # type: ignore[no-any-return]


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"(\d+)([smh])", text)
    if not match:
        raise argparse.ArgumentTypeError("use e.g. 90s, 15m or 2h")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def render(prometheus: str, out: Path, since: float, rate_interval: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dashboard = json.loads(DASHBOARD.read_text())
    panels = panel_queries(dashboard, rate_interval)
    end = time.time()
    start = end - since
    step = max(1.0, since / 240)
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(14, 3.2 * rows), squeeze=False)
    for ax, (title, targets) in zip(axes.flat, panels):
        for expr, fmt in targets:
            for series in query_range(prometheus, expr, start, end, step):
                points = [(float(t) - end, float(v)) for t, v in series["values"]
                          if v not in ("NaN", "+Inf", "-Inf")]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, label=legend(fmt, series["metric"]), linewidth=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds before now", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Hookline", fontsize=13)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--out", type=Path, default=Path("deploy/dashboard.png"))
    parser.add_argument("--since", type=parse_duration, default=parse_duration("15m"))
    parser.add_argument("--rate-interval", default="1m")
    args = parser.parse_args()
    try:
        requests.get(f"{args.prometheus}/-/ready", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        print(f"Prometheus at {args.prometheus} is not reachable: {exc}", file=sys.stderr)
        return 1
    render(args.prometheus, args.out, args.since, args.rate_interval)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
