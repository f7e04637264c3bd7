"""promtool checks the Prometheus config and the alert rules, and runs the rules' unit tests."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import all_exprs
from tests.deploy.tools import promtool


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool(deploy_dir: Path, args: tuple[str, ...]) -> None:
    result = run_promtool(*args, cwd=deploy_dir)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


def test_promtool_runs_from_the_repository_root(deploy_dir: Path) -> None:
    # rule_files are relative to the config file, not to the working directory.
    result = run_promtool("check", "config", "deploy/prometheus.yml", cwd=deploy_dir.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_a_copy_with_a_faster_scrape_stays_valid(deploy_dir: Path, tmp_path: Path) -> None:
    # End-to-end tests scrape every second, from a copy pointed at their own ports.
    config = yaml.safe_load((deploy_dir / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    for job, port in zip(config["scrape_configs"], ("18000", "19191"), strict=True):
        job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "alerts.yml").write_text((deploy_dir / "alerts.yml").read_text())
    result = run_promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_and_alert_expression_parses(tmp_path: Path) -> None:
    # Given every query as a recording rule (promtool parses each rule's PromQL)
    exprs = all_exprs()
    rules = [{"record": f"hookline_check:expr_{i}", "expr": expr} for i, (_, expr) in enumerate(exprs)]
    path = tmp_path / "exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}))
    # When promtool checks them
    result = run_promtool("check", "rules", str(path), cwd=tmp_path)
    # Then every one is valid PromQL
    listing = "\n".join(f"expr_{i}: {where}" for i, (where, _) in enumerate(exprs))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{listing}"
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_rejects_a_broken_expression(tmp_path: Path) -> None:
    # The parse check above can fail: promtool refuses bad PromQL.
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [
        {"record": "hookline_check:bad", "expr": "sum(rate(hookline_tasks_submitted_total[1m])"}]}]}))
    assert run_promtool("check", "rules", str(path), cwd=tmp_path).returncode != 0


def _evaluations(tests: dict[str, Any]) -> dict[str, list[bool]]:
    """For each alert name, whether each of its evaluations in the unit tests expects it firing."""
    seen: dict[str, list[bool]] = {}
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            seen.setdefault(check["alertname"], []).append(bool(check.get("exp_alerts")))
    return seen


def test_every_alert_is_tested_firing_and_quiet(alerts: dict[str, Any], deploy_dir: Path) -> None:
    tests = yaml.safe_load((deploy_dir / "alerts_test.yml").read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    seen = _evaluations(tests)
    names = [rule["alert"] for group in alerts["groups"] for rule in group["rules"] if "alert" in rule]
    assert len(names) == len(set(names)), "alert names must be unique"
    for name in names:
        assert True in seen.get(name, []), f"no unit test sees {name} fire"
        assert False in seen.get(name, []), f"no unit test sees {name} stay quiet"
    assert set(seen) <= set(names), f"tests for unknown alerts: {set(seen) - set(names)}"


def test_every_alert_is_documented(alerts: dict[str, Any], deploy_dir: Path) -> None:
    readme = (deploy_dir / "README.md").read_text()
    for group in alerts["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
            assert f"`{rule['alert']}`" in readme, f"deploy/README.md has no runbook entry for {rule['alert']}"


def test_scrape_config_has_both_jobs_and_the_rules(deploy_dir: Path) -> None:
    config = yaml.safe_load((deploy_dir / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["alerts.yml"]
    assert (deploy_dir / "alerts.yml").exists()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert list(jobs) == ["hookline-api", "hookline-workers"]
    for name, port in (("hookline-api", "8000"), ("hookline-workers", "9191")):
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
        targets = [t for static in jobs[name]["static_configs"] for t in static["targets"]]
        assert targets and all(t.endswith(f":{port}") for t in targets), (name, targets)
