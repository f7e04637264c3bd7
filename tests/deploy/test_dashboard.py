"""The Grafana dashboard and the alert rules use the metric contract of SPEC section 6, and only it."""
from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.promql import all_exprs, dashboard_exprs, grouping_labels, metric_names

#: SPEC section 6, plus hookline_webhook_attempts_per_delivery: name as
#: exposed (counters with ``_total``), type, labels.
CONTRACT: dict[str, tuple[str, frozenset[str]]] = {
    "hookline_queue_messages": ("gauge", frozenset({"queue", "state"})),
    "hookline_queue_oldest_age_seconds": ("gauge", frozenset({"queue"})),
    "hookline_workers_alive": ("gauge", frozenset()),
    "hookline_tasks_submitted_total": ("counter", frozenset()),
    "hookline_tasks_finished_total": ("counter", frozenset({"actor", "outcome"})),
    "hookline_task_retries_total": ("counter", frozenset({"actor"})),
    "hookline_tasks_running": ("gauge", frozenset({"actor"})),
    "hookline_task_queue_wait_seconds": ("histogram", frozenset({"actor"})),
    "hookline_task_run_seconds": ("histogram", frozenset({"actor", "outcome"})),
    "hookline_task_end_to_end_seconds": ("histogram", frozenset({"actor", "outcome"})),
    "hookline_webhook_attempts_total": ("counter", frozenset({"result", "status_class"})),
    "hookline_webhook_delivery_seconds": ("histogram", frozenset()),
    "hookline_webhook_pending": ("gauge", frozenset()),
    "hookline_callbacks_disabled_total": ("counter", frozenset({"reason"})),
    "hookline_http_requests_total": ("counter", frozenset({"method", "route", "status"})),
    "hookline_http_request_duration_seconds": ("histogram", frozenset({"method", "route"})),
    "hookline_build_info": ("gauge", frozenset({"version"})),
    "hookline_webhook_attempts_per_delivery": ("histogram", frozenset()),
    "hookline_redis_failovers_total": ("counter", frozenset()),
    "hookline_index_vectors": ("gauge", frozenset()),
    "hookline_index_pending_vectors": ("gauge", frozenset()),
    "hookline_index_lag_seconds": ("histogram", frozenset()),
    "hookline_search_duration_seconds": ("histogram", frozenset()),
    "hookline_upload_bytes_total": ("counter", frozenset()),
    "hookline_task_chunks_total": ("counter", frozenset({"outcome"})),
}
#: Label values the contract enumerates.
LABEL_VALUES = {
    "state": {"ready", "delayed", "dead", "in_flight"},
    "outcome": {"success", "failure", "revoked"},
    "result": {"delivered", "retry", "failed"},
    "status_class": {"2xx", "3xx", "4xx", "5xx", "error"},
    "actor": {"process_vectors", "process_chunk", "deliver_webhook"},
}
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
#: Series that are not Hookline's but that the rules and dashboard may use.
PROMETHEUS_SERIES = {"up": frozenset({"job", "instance"}),
                     "ALERTS": frozenset({"alertname", "alertstate", "severity"})}


def sample_names() -> dict[str, tuple[str, frozenset[str]]]:
    """Every series name the contract exposes, with its family and labels."""
    names = {}
    for family, (kind, labels) in CONTRACT.items():
        if kind == "histogram":
            names[f"{family}_bucket"] = (family, labels | {"le"})
            names[f"{family}_sum"] = (family, labels)
            names[f"{family}_count"] = (family, labels)
        else:
            names[family] = (family, labels)
    return names


SAMPLES = sample_names()
SELECTOR = re.compile(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def labels_of(name: str) -> frozenset[str]:
    if name in SAMPLES:
        return SAMPLES[name][1] | TARGET_LABELS
    return PROMETHEUS_SERIES[name]


EXPRS = all_exprs()


@pytest.mark.parametrize(("where", "expr"), EXPRS, ids=[where for where, _ in EXPRS])
def test_expression_uses_contract_names_with_their_suffixes(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, "selects no metric"
    unknown = names - set(SAMPLES) - set(PROMETHEUS_SERIES)
    # A bare histogram name or a counter without _total selects nothing.
    assert not unknown, f"not in the metric contract (or a wrong suffix): {sorted(unknown)}"


@pytest.mark.parametrize(("where", "expr"), EXPRS, ids=[where for where, _ in EXPRS])
def test_expression_matches_only_labels_and_values_that_exist(where: str, expr: str) -> None:
    for name, matchers in SELECTOR.findall(expr):
        for label, op, value in MATCHER.findall(matchers):
            assert label in labels_of(name), f"{name} has no label {label!r}"
            if label in LABEL_VALUES and name in SAMPLES:
                # A misspelt value silently matches nothing (or, negated, everything).
                alternatives = value.split("|") if op in ("=~", "!~") else [value]
                assert set(alternatives) <= LABEL_VALUES[label], f"{name}{{{label}{op}{value!r}}}"
    available = set().union(*(labels_of(name) for name in metric_names(expr)))
    missing = grouping_labels(expr) - available
    assert not missing, f"groups by labels none of its metrics has: {sorted(missing)}"


@pytest.mark.parametrize(("where", "expr"), EXPRS, ids=[where for where, _ in EXPRS])
def test_quantiles_come_from_buckets_grouped_by_le(where: str, expr: str) -> None:
    if "histogram_quantile" not in expr:
        return
    assert all(name.endswith("_bucket") for name in metric_names(expr)), expr
    assert "le" in grouping_labels(expr), expr
    assert "rate(" in expr, "quantiles of cumulative buckets need rate() first"


def test_broker_gauges_are_never_summed_across_targets() -> None:
    # Every target reports the same broker-wide value; a sum counts it once per target.
    for where, expr in EXPRS:
        for gauge in ("hookline_queue_messages", "hookline_queue_oldest_age_seconds",
                      "hookline_workers_alive", "hookline_webhook_pending"):
            pattern = rf"\bsum\b(\s*by\s*\([^)]*\))?\s*\(\s*{gauge}\b"
            assert not re.search(pattern, expr), f"{where}: {expr}"


def test_the_dashboard_shows_every_metric_of_the_contract() -> None:
    used = {SAMPLES[name][0] for _, expr in dashboard_exprs() for name in metric_names(expr) if name in SAMPLES}
    assert used == set(CONTRACT), f"no panel shows {sorted(set(CONTRACT) - used)}"


def test_the_contract_check_can_fail() -> None:
    # The checks above reject the usual slips.
    assert metric_names("histogram_quantile(0.9, sum by (le) (rate(hookline_task_run_seconds[1m])))") \
        - set(SAMPLES) == {"hookline_task_run_seconds"}
    assert metric_names("rate(hookline_tasks_submitted[5m])") - set(SAMPLES) == {"hookline_tasks_submitted"}
    assert metric_names('sum by (queue) (hookline_queue_messages{state="ready"}) > 1e-9') == {
        "hookline_queue_messages"}


def content_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.extend(panel.get("panels", []))
        if panel["type"] != "row":
            panels.append(panel)
    return panels


def test_dashboard_structure(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "hookline"
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_panel_has_a_query_on_the_templated_datasource(dashboard: dict[str, Any]) -> None:
    panels = content_panels(dashboard)
    assert len(panels) >= 20
    for panel in panels:
        exprs = [t.get("expr", "").strip() for t in panel.get("targets", [])]
        assert any(exprs), f"panel {panel['title']!r} has no query"
        assert all(exprs), f"panel {panel['title']!r} has an empty target"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_legends_name_labels_the_query_keeps(dashboard: dict[str, Any]) -> None:
    for panel in content_panels(dashboard):
        for target in panel["targets"]:
            wanted = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            kept = grouping_labels(target["expr"])
            assert wanted <= kept, f"{panel['title']!r}: legend {target['legendFormat']!r} of {target['expr']}"


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


@pytest.mark.parametrize("histogram", [
    "hookline_task_queue_wait_seconds", "hookline_task_run_seconds", "hookline_task_end_to_end_seconds",
    "hookline_webhook_delivery_seconds",
])
def test_latency_panels_show_p50_p95_p99(histogram: str) -> None:
    quantiles = {
        match
        for _, expr in dashboard_exprs()
        for match in re.findall(rf"histogram_quantile\(\s*([0-9.]+)\s*,[^;]*{histogram}_bucket", expr)
    }
    assert {"0.5", "0.95", "0.99"} <= quantiles, (histogram, quantiles)


def test_api_panels_show_status_and_p99(dashboard: dict[str, Any]) -> None:
    exprs = [expr for _, expr in dashboard_exprs()]
    assert any("hookline_http_requests_total" in e and "status" in grouping_labels(e) for e in exprs)
    assert any(e.startswith("histogram_quantile(0.99") and "hookline_http_request_duration_seconds" in e
               for e in exprs)
