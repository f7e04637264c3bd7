"""Listeners stay on loopback unless told otherwise; platforms say so explicitly."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import yaml

from hookline.config import Config, ConfigError
from tests.procs import BIN, ROOT, WEB_ARGV, Process, Stack, free_port, wait_until

sys.path.insert(0, str(ROOT))

import dev  # noqa: E402


def listening(port: int) -> set[str]:
    """The local addresses with a listening TCP socket on ``port``."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def test_both_listeners_default_to_loopback() -> None:
    config = Config.from_env(env={})
    assert (config.bind, config.metrics_bind) == ("127.0.0.1", "127.0.0.1")
    opened = Config.from_env(env={"HOOKLINE_BIND": "0.0.0.0", "HOOKLINE_METRICS_BIND": "[::]"})
    assert (opened.bind, opened.metrics_bind) == ("0.0.0.0", "::")
    for bad in ("0.0.0.0:80", "a b", "http://x"):
        with pytest.raises(ConfigError):
            Config.from_env(env={"HOOKLINE_BIND": bad})


def test_gunicorn_without_hookline_bind_listens_on_loopback_only(
    make_stack: Callable[..., Stack], tmp_path: Path,
) -> None:
    stack = make_stack()
    env = {k: v for k, v in stack.env.items() if k != "HOOKLINE_BIND"}
    web = Process("web-default", WEB_ARGV, dict(env, WEB_CONCURRENCY="1"), tmp_path)
    try:
        wait_until(lambda: requests.get(f"{stack.url}/healthz", timeout=1).ok, 30, "gunicorn answers")
        assert listening(stack.port) == {"127.0.0.1"}
    finally:
        web.stop()


def test_the_metrics_server_without_a_bind_listens_on_loopback_only(
    make_stack: Callable[..., Stack], tmp_path: Path,
) -> None:
    stack = make_stack()
    port = free_port()
    env = {k: v for k, v in stack.env.items() if k != "HOOKLINE_METRICS_BIND"}
    server = Process("metrics", [str(BIN / "python"), "-m", "actors.metrics_server"],
                     dict(env, HOOKLINE_METRICS_PORT=str(port)), tmp_path)
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).ok, 30,
                   "the metrics server answers")
        assert listening(port) == {"127.0.0.1"}
    finally:
        server.stop()


def test_platform_files_open_all_interfaces_explicitly() -> None:
    assert "HOOKLINE_BIND=0.0.0.0 gunicorn" in dev.procfile()["web"]
    compose = yaml.safe_load((ROOT / "deploy/compose.yml").read_text())
    assert compose["x-hookline"]["environment"]["HOOKLINE_BIND"] == "0.0.0.0"
    assert compose["x-hookline"]["environment"]["HOOKLINE_METRICS_BIND"] == "0.0.0.0"
    configmap = yaml.safe_load((ROOT / "deploy/k8s/configmap.yaml").read_text())["data"]
    assert configmap["HOOKLINE_BIND"] == configmap["HOOKLINE_METRICS_BIND"] == "0.0.0.0"
    assert "HOOKLINE_BIND=0.0.0.0" in (ROOT / "deploy/Dockerfile").read_text()


def test_dev_run_keeps_the_procfile_web_on_loopback(tmp_path: Path) -> None:
    # The Procfile's web line opens every interface; a development run's own
    # HOOKLINE_BIND (127.0.0.1 unless the developer sets one) wins over it.
    out = tmp_path / "bind"
    show = f"HOOKLINE_BIND=0.0.0.0 {sys.executable} -c \"import os; open('{out}', 'w').write(os.environ['HOOKLINE_BIND'])\""
    supervisor = dev.Supervisor({"web": show}, dict(os.environ, HOOKLINE_BIND="127.0.0.1"))
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: out.exists() and out.read_text(), 15, "the process starts")
        assert out.read_text() == "127.0.0.1"
    finally:
        supervisor.stop()
        thread.join(10)
    assert dev.split_nice("HOOKLINE_BIND=0.0.0.0 gunicorn -c x")[1] == ["gunicorn", "-c", "x"]
