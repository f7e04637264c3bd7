"""deploy/: promtool checks, and every dashboard and alert query run on a real Prometheus
scraping a real stack."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import yaml

from tests.procs import ROOT, Process, Receiver, Stack, free_port, wait_until

DEPLOY = ROOT / "deploy"
IN_CI = bool(os.environ.get("CI"))
CONTRACT = {
    "hookline_queue_messages", "hookline_queue_oldest_age_seconds", "hookline_workers_alive",
    "hookline_tasks_submitted_total", "hookline_tasks_finished_total", "hookline_task_retries_total",
    "hookline_tasks_running", "hookline_task_queue_wait_seconds", "hookline_task_run_seconds",
    "hookline_task_end_to_end_seconds", "hookline_webhook_attempts_total",
    "hookline_webhook_delivery_seconds", "hookline_webhook_pending", "hookline_callbacks_disabled_total",
    "hookline_http_requests_total", "hookline_http_request_duration_seconds", "hookline_build_info",
    "hookline_webhook_attempts_per_delivery", "hookline_redis_failovers_total",
    "hookline_index_vectors", "hookline_index_pending_vectors", "hookline_index_lag_seconds",
    "hookline_search_duration_seconds",
    "hookline_upload_bytes_total", "hookline_task_chunks_total",
}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    if IN_CI:
        pytest.fail(f"{name} is not installed (apt-get install prometheus)")
    pytest.skip(f"{name} is not installed here (CI installs it)")


def render_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("render_dashboard", DEPLOY / "render_dashboard.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def dashboard_exprs(rate_interval: str = "1m") -> list[tuple[str, list[str]]]:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/hookline.json").read_text())
    return [(title, [expr for expr, _ in targets])
            for title, targets in render_module().panel_queries(dashboard, rate_interval)]


def alert_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("args", [
    ["check", "config", "deploy/prometheus.yml"],
    ["check", "rules", "deploy/alerts.yml"],
    ["test", "rules", "deploy/alerts_test.yml"],
], ids=["check-config", "check-rules", "test-rules"])
def test_promtool(args: list[str]) -> None:
    result = subprocess.run([tool("promtool"), *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    tests = (DEPLOY / "alerts_test.yml").read_text()
    for name, _ in alert_exprs():
        assert f"alertname: {name}" in tests, name


def test_queries_use_only_contract_metrics() -> None:
    exprs = [e for _, es in dashboard_exprs() for e in es] + [e for _, e in alert_exprs()]
    used = set()
    for expr in exprs:
        used |= {re.sub(r"_(bucket|sum|count)$", "", m) if not m.endswith("_total") else m
                 for m in re.findall(r"hookline_[a-z_]+", expr)}
    assert used <= CONTRACT, used - CONTRACT
    # the dashboard covers every metric family an operator needs
    assert len(used) >= 14


def test_yaml_files_parse() -> None:
    for path in DEPLOY.rglob("*.yml"):
        assert yaml.safe_load(path.read_text()) is not None, path


def test_real_prometheus_answers_every_query(make_stack: Callable[..., Stack], receiver: Receiver,
                                             tmp_path: Path) -> None:
    prometheus = tool("prometheus")
    # Given a running stack: gunicorn with 2 workers, the job worker, the callbacks worker
    stack = make_stack()
    stack.start_web(workers=2)
    stack.start_worker(processes=2)
    stack.start_callbacks()
    metrics_port = free_port()
    metrics_server = Process("metrics", [sys.executable, "-m", "actors.metrics_server"],
                             {**stack.env, "HOOKLINE_METRICS_PORT": str(metrics_port)}, tmp_path)
    wait_until(lambda: requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1).ok, 20,
               "the metrics server answers")
    # And Prometheus, with the shipped config pointed at the test ports
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{stack.port}"]
    config["scrape_configs"][1]["static_configs"][0]["targets"] = [f"127.0.0.1:{metrics_port}"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")
    prom_port = free_port()
    prom = Process("prometheus", [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                                  f"--storage.tsdb.path={tempfile.mkdtemp(dir=tmp_path)}",
                                  f"--web.listen-address=127.0.0.1:{prom_port}"], dict(os.environ), tmp_path)
    api = f"http://127.0.0.1:{prom_port}/api/v1"
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{prom_port}/-/ready", timeout=1).ok, 30,
                   "prometheus is ready")
        # When a workload runs (with webhooks, a failing receiver and a failed task)
        out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "keys", "create", "acme"],
                             env=stack.env, capture_output=True, text=True, check=True, cwd=ROOT)
        auth = {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}
        ok = requests.post(f"{stack.url}/callbacks", json={"url": receiver.url("/ok")}, headers=auth,
                           timeout=5).json()
        receiver.script["/down"] = lambda n: (503, {}, 0.0)
        down = requests.post(f"{stack.url}/callbacks", json={"url": receiver.url("/down")},
                             headers=auth, timeout=5).json()
        for i in range(60):
            cb = down if i % 10 == 0 else ok
            requests.post(f"{stack.url}/tasks", json={"vector_data": [[1.0, 2.0]] * 8,
                                                      "callback_id": cb["id"]}, headers=auth, timeout=5)
        requests.post(f"{stack.url}/tasks", json={"bad": True}, headers=auth, timeout=5)

        def scraped() -> bool:
            result = requests.get(f"{api}/query", params={"query": "up"}, timeout=5).json()
            series = result["data"]["result"]
            return len(series) == 2 and all(s["value"][1] == "1" for s in series)

        wait_until(scraped, 30, "both targets are scraped and up")
        wait_until(lambda: requests.get(f"{api}/query", params={
            "query": "sum(hookline_tasks_finished_total)"}, timeout=5).json()["data"]["result"]
            and float(requests.get(f"{api}/query", params={"query": "sum(hookline_tasks_finished_total)"},
                                   timeout=5).json()["data"]["result"][0]["value"][1]) >= 60,
            60, "prometheus sees the finished tasks")

        def samples_in_window() -> float:
            result = requests.get(f"{api}/query", params={
                "query": "min(count_over_time(hookline_tasks_submitted_total[30s]))"}, timeout=5).json()
            return float(result["data"]["result"][0]["value"][1]) if result["data"]["result"] else 0

        # rate() over 30 s needs a few scrapes of the workload in the window
        wait_until(lambda: samples_in_window() >= 5, 30, "a few scrapes of the workload")
        # Then every dashboard and alert expression runs without error...
        failures = []
        empty_panels = []
        for title, exprs in dashboard_exprs(rate_interval="30s"):
            panel_has_data = False
            for expr in exprs:
                body = requests.get(f"{api}/query", params={"query": expr}, timeout=10).json()
                if body["status"] != "success":
                    failures.append((title, expr, body.get("error")))
                elif body["data"]["result"]:
                    panel_has_data = True
            if not panel_has_data:
                empty_panels.append(title)
        for name, expr in alert_exprs():
            body = requests.get(f"{api}/query", params={"query": expr}, timeout=10).json()
            if body["status"] != "success":
                failures.append((name, expr, body.get("error")))
        assert failures == []
        # ...and every dashboard panel has data
        probe = requests.get(f"{api}/query", params={"query": "hookline_tasks_submitted_total[30s]"},
                             timeout=10).json()
        assert empty_panels == [], probe
        # And the README picture can be drawn from the same Prometheus
        out_png = tmp_path / "dashboard.png"
        render_module().render(f"http://127.0.0.1:{prom_port}", out_png, 120, "30s")
        assert out_png.stat().st_size > 10_000
    finally:
        prom.stop()
        metrics_server.stop()


def test_the_web_opens_no_control_socket(redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Given the web process started with deploy/gunicorn.conf.py, and a runtime
    # folder of its own (where gunicorn puts its control socket by default)
    runtime = tmp_path / "run"
    runtime.mkdir()
    stack = Stack(redis_server.url, tmp_path, XDG_RUNTIME_DIR=str(runtime))
    try:
        stack.start_web(workers=1)
        # Then it answers, and leaves no per-user socket for the next gunicorn
        # on the host to take over
        assert requests.get(stack.url + "/healthz", timeout=5).ok
        assert list(runtime.iterdir()) == []
    finally:
        stack.stop()
