"""Every PromQL expression that deploy/ ships, ready to send to a Prometheus.

``all_exprs()`` lists the dashboard's panel and annotation queries, with
Grafana's variables filled in, and every alert rule's expression, each with a
description of where it comes from, e.g. for an end-to-end test that runs them
all against a Prometheus scraping a real stack.
"""
from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "hookline.json"
ALERTS = DEPLOY / "alerts.yml"

def _render_module() -> Any:
    spec = importlib.util.spec_from_file_location("render_dashboard", DEPLOY / "render_dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: Grafana's built-in variables, as the renderer fills them in.
GRAFANA_VARIABLES: Mapping[str, str] = _render_module().GRAFANA_VARIABLES

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def fill_variables(expr: str, rate_interval: str = "1m") -> str:
    """``expr`` with Grafana's ``$x``, ``${x}`` and ``[[x]]`` variables replaced.

    Raises ``KeyError`` for a variable that is not one of Grafana's built-ins:
    the result would not be PromQL.
    """
    values = {**GRAFANA_VARIABLES, "__rate_interval": rate_interval}

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return values[name]

    return _VARIABLE.sub(replace, expr)


def _panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(rate_interval: str = "1m") -> list[tuple[str, str]]:
    """``(where, expr)`` for every query of the dashboard: panels, then annotations."""
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr", "").strip():
                where = f"dashboard panel {panel.get('title', '?')!r} target {target.get('refId', '?')}"
                out.append((where, fill_variables(target["expr"], rate_interval)))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr", "").strip():
            where = f"dashboard annotation {annotation.get('name', '?')!r}"
            out.append((where, fill_variables(annotation["expr"], rate_interval)))
    return out


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of deploy/alerts.yml, with its group's name under ``"group"``."""
    document = yaml.safe_load(ALERTS.read_text())
    return [{**rule, "group": group["name"]} for group in document["groups"] for rule in group["rules"]]


def alert_exprs() -> list[tuple[str, str]]:
    """``(where, expr)`` for every alerting or recording rule."""
    return [
        (f"alert {rule['alert']}" if "alert" in rule else f"record {rule['record']}", rule["expr"].strip())
        for rule in alert_rules()
    ]


def all_exprs(rate_interval: str = "1m") -> list[tuple[str, str]]:
    """``(where, expr)`` for every dashboard query and every alert rule.

    ``rate_interval`` stands in for Grafana's ``$__rate_interval``: keep it at
    least four scrape intervals of the Prometheus that will run the queries.
    """
    return dashboard_exprs(rate_interval) + alert_exprs()


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                       "and", "or", "unless", "offset", "inf", "nan"})


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (function names and labels left out)."""
    text = _STRING.sub('""', expr)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if match.group(0) in _KEYWORDS or text[match.end():].lstrip().startswith("("):
            continue
        names.add(match.group(0))
    return names


def grouping_labels(expr: str) -> set[str]:
    """Labels named in the expression's ``by``/``without``/``on``/``ignoring`` clauses."""
    return {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",") if label.strip()}
