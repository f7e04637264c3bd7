"""deploy/render_dashboard.py: which queries it takes from the dashboard, and how it draws them."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.deploy.promql import dashboard_exprs
from tests.procs import free_port


def test_takes_every_time_series_panel_with_its_own_queries(
    render_dashboard: ModuleType, dashboard: dict[str, Any]
) -> None:
    # Given the shipped dashboard
    timeseries = [p for p in dashboard["panels"] if p["type"] == "timeseries"]
    # When the renderer extracts its main panels' queries
    panels = render_dashboard.panel_queries(dashboard, "1m", types=("timeseries",))
    # Then there is one entry per time-series panel, in order, with that panel's targets
    assert [title for title, _ in panels] == [p["title"] for p in timeseries]
    for (title, queries), panel in zip(panels, timeseries, strict=True):
        assert [legend for _, legend in queries] == [t["legendFormat"] for t in panel["targets"]], title
        for (expr, _), target in zip(queries, panel["targets"], strict=True):
            assert expr == target["expr"].replace("$__rate_interval", "1m"), title
            assert "$" not in expr, title


def test_without_a_type_filter_every_query_is_taken(render_dashboard: ModuleType, dashboard: dict[str, Any]) -> None:
    taken = [expr for _, queries in render_dashboard.panel_queries(dashboard, "30s") for expr, _ in queries]
    # the same queries, in the same order, as the helper that end-to-end tests use
    panel_exprs = [expr for where, expr in dashboard_exprs("30s") if where.startswith("dashboard panel")]
    assert taken == panel_exprs
    assert not any(title == "" for title, _ in render_dashboard.panel_queries(dashboard))
    assert any("[30s]" in expr for expr in taken)


def test_rows_hidden_targets_and_collapsed_panels(render_dashboard: ModuleType) -> None:
    dashboard = {"panels": [
        {"type": "row", "title": "Tasks", "collapsed": False, "panels": []},
        {"type": "timeseries", "title": "A", "targets": [
            {"expr": "rate(x_total[$__rate_interval])", "legendFormat": "{{actor}}"},
            {"expr": "rate(y_total[5m])", "hide": True},
            {"expr": "  "},
        ]},
        {"type": "row", "title": "More", "collapsed": True, "panels": [
            {"type": "timeseries", "title": "B", "targets": [{"expr": "max(z) [${__interval}]"}]},
        ]},
        {"type": "stat", "title": "C", "targets": [{"expr": "up"}]},
        {"type": "text", "title": "D"},
    ]}
    assert render_dashboard.panel_queries(dashboard, "2m", types=("timeseries",)) == [
        ("A", [("rate(x_total[2m])", "{{actor}}")]),
        ("B", [("max(z) [15s]", "")]),
    ]
    assert [t for t, _ in render_dashboard.panel_queries(dashboard)] == ["A", "B", "C"]


@pytest.mark.parametrize(("expr", "expected"), [
    ("rate(a[$__rate_interval])", "rate(a[1m])"),
    ("rate(a[${__rate_interval}])", "rate(a[1m])"),
    ("rate(a[[[__interval]]])", "rate(a[15s])"),
    ("a / $__interval_ms", "a / 15000"),
    ("rate(a[$__interval])", "rate(a[15s])"),
    ("increase(a[$__range])", "increase(a[1h])"),
    ("a{job=\"$job\"}", "a{job=\"$job\"}"),
])
def test_grafana_variables_are_filled_in(render_dashboard: ModuleType, expr: str, expected: str) -> None:
    assert render_dashboard.substitute(expr, {**render_dashboard.GRAFANA_VARIABLES}) == expected


@pytest.mark.parametrize(("fmt", "labels", "expected"), [
    ("{{queue}} {{state}}", {"queue": "jobs", "state": "ready"}, "jobs ready"),
    ("p99", {}, "p99"),
    ("{{ route }}", {"route": "/tasks"}, "/tasks"),
    ("", {"__name__": "up", "job": "x"}, '{job="x"}'),
    ("{{missing}}", {}, "value"),
])
def test_legend_follows_grafana_legend_format(
    render_dashboard: ModuleType, fmt: str, labels: dict[str, str], expected: str
) -> None:
    assert render_dashboard.legend(fmt, labels) == expected


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers /-/ready and /api/v1/query_range with a few points per query."""

    queries: list[str] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/-/ready":
            self._send(200, b"Prometheus Server is Ready.\n", "text/plain")
            return
        params = parse_qs(url.query)
        expr = params["query"][0]
        type(self).queries.append(expr)
        if "broken" in expr:
            error = {"status": "error", "errorType": "bad_data", "error": "parse error"}
            self._send(400, json.dumps(error).encode(), "application/json")
            return
        start, end, step = (float(params[k][0]) for k in ("start", "end", "step"))
        values: list[list[float | str]] = [
            [start + i * step, str(math.sin(i / 5) + 1)] for i in range(int((end - start) / step))
        ]
        values.append([end, "NaN"])
        body: dict[str, Any] = {"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"queue": "jobs", "state": "ready", "outcome": "success"}, "values": values}]}}
        self._send(200, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_prometheus() -> Iterator[str]:
    FakePrometheus.queries = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_draws_one_subplot_per_panel_from_range_queries(
    render_dashboard: ModuleType, dashboard: dict[str, Any], fake_prometheus: str, tmp_path: Path
) -> None:
    # When the renderer draws the shipped dashboard from a Prometheus
    out = tmp_path / "dashboard.png"
    failures = render_dashboard.render(fake_prometheus, out, 900, "1m")
    # Then it sent every time-series query, as range queries, and wrote a PNG
    expected = [e for _, qs in render_dashboard.panel_queries(dashboard, "1m", types=("timeseries",)) for e, _ in qs]
    assert FakePrometheus.queries == expected
    assert failures == []
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 20_000


def test_a_failed_query_is_reported_and_the_rest_still_drawn(
    render_dashboard: ModuleType, fake_prometheus: str, tmp_path: Path
) -> None:
    dashboard = tmp_path / "d.json"
    dashboard.write_text(json.dumps({"title": "T", "panels": [
        {"type": "timeseries", "title": "good", "fieldConfig": {"defaults": {"unit": "percentunit"}},
         "targets": [{"expr": "max(hookline_webhook_pending)", "legendFormat": "{{queue}}"}]},
        {"type": "timeseries", "title": "bad", "targets": [{"expr": "broken("}]},
    ]}))
    out = tmp_path / "d.png"
    result = subprocess.run(
        [sys.executable, "deploy/render_dashboard.py", "--prometheus", fake_prometheus, "--out", str(out),
         "--since", "5m", "--dashboard", str(dashboard)],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "query failed: broken(: bad_data: parse error" in result.stderr
    assert out.stat().st_size > 5_000


def test_exits_non_zero_with_a_clear_message_when_prometheus_is_unreachable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "never.png"
    result = subprocess.run(
        [sys.executable, "deploy/render_dashboard.py", "--prometheus", url, "--out", str(out)],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert f"cannot reach Prometheus at {url}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_rejects_a_malformed_duration(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "deploy/render_dashboard.py", "--since", "fortnight", "--out", str(tmp_path / "x.png")],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "use a number and a unit" in result.stderr


def test_idle_series_are_left_out_only_beside_moving_ones(render_dashboard: ModuleType) -> None:
    nan = math.nan
    moving: tuple[str, list[Any], list[float]] = ("delivered 2xx", [], [0.0, 3.0, nan])
    idle: tuple[str, list[Any], list[float]] = ("failed 3xx", [], [0.0, 0.0, 0.0])
    empty: tuple[str, list[Any], list[float]] = ("retry 4xx", [], [nan, nan])
    assert render_dashboard._drop_flat_zero([idle, moving, empty]) == ([moving], 2)
    assert render_dashboard._drop_flat_zero([idle, empty]) == ([idle, empty], 0)
