"""Workers on hosts of their own: job and webhook workers plus a metrics server per host.

Two worker hosts, each a network namespace on a bridge (tests/ha/hosts.py),
reach Redis and the webhook receiver over the bridge's address, never
loopback. Tasks pass end to end with that layout; a real Prometheus scrapes
the web host and both worker hosts; what each host counts adds up, and the
broker-wide gauges (queue depth, live workers) are the same from every host.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from tests.deploy.tools import find_tool
from tests.ha.cluster import RedisNode
from tests.ha.hosts import Host, HostNetwork
from tests.ha.test_failover_e2e import api_key
from tests.procs import BIN, ROOT, Process, Receiver, Stack, free_port, wait_until

IN_CI = bool(os.environ.get("CI"))
#: Tasks sent through the two-host layout.
TASKS = 40


@pytest.fixture
def network() -> Iterator[HostNetwork]:
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("network namespaces need root, and CI runs as root")
        pytest.skip("network namespaces need root (CI runs as root)")
    made = HostNetwork(2)
    if not made.isolated:
        print("\nnetwork namespaces refused here: each host has a loopback address of its own instead")
    try:
        yield made
    finally:
        made.close()


def listen_also(receiver: Receiver, address: str) -> ThreadingHTTPServer:
    """The receiver, listening on ``address`` too (it records into the same list)."""
    server = ThreadingHTTPServer((address, 0), receiver.server.RequestHandlerClass)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_host(host: Host, env: dict[str, str], log_dir: Path) -> list[Process]:
    """A job worker, a webhook worker and a metrics server on ``host``, with its own metrics folder."""
    metrics_dir = tempfile.mkdtemp(prefix=f"hl-{host.name}-", dir=log_dir)
    # A worker-only host is scraped from another machine: its metrics server
    # listens on the host's own address (loopback is the default).
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, "HOOKLINE_METRICS_PORT": str(host.metrics_port),
           "HOOKLINE_METRICS_BIND": host.address}
    dramatiq = [str(BIN / "dramatiq"), "actors:setup", "--processes", "1"]
    procs = [
        Process(f"{host.name}-jobs", host.argv([*dramatiq, "--queues", "jobs", "--threads", "4"]),
                env, log_dir),
        Process(f"{host.name}-callbacks", host.argv([*dramatiq, "--queues", "callbacks", "--threads", "8"]),
                env, log_dir),
        Process(f"{host.name}-metrics", host.argv([sys.executable, "-m", "actors.metrics_server"]),
                env, log_dir),
    ]
    for worker in procs[:2]:
        wait_until(lambda w=worker: "worker process ready" in w.log(), 60, f"{worker.name} boots")
    return procs


def start_prometheus(targets: dict[str, list[str]], tmp_path: Path) -> tuple[Process, str]:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["scrape_configs"][0]["static_configs"][0]["targets"] = targets["api"]
    config["scrape_configs"][1]["static_configs"][0]["targets"] = targets["workers"]
    config.pop("rule_files", None)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    prom = Process("prometheus", [find_tool("prometheus", "prometheus", required_in_ci=True), f"--config.file={tmp_path / 'prometheus.yml'}",
                                  f"--storage.tsdb.path={tempfile.mkdtemp(dir=tmp_path)}",
                                  f"--web.listen-address=127.0.0.1:{port}"], dict(os.environ), tmp_path)
    api = f"http://127.0.0.1:{port}/api/v1"
    wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).ok, 30, "prometheus is ready")
    return prom, api


def query(api: str, expr: str) -> dict[str, float]:
    """``{instance: value}`` of an instant query."""
    result = requests.get(f"{api}/query", params={"query": expr}, timeout=5).json()["data"]["result"]
    return {r["metric"].get("instance", ""): float(r["value"][1]) for r in result}


@pytest.mark.slow
def test_workers_on_two_other_hosts_run_tasks_and_add_up_in_prometheus(
    network: HostNetwork, receiver: Receiver, tmp_path: Path
) -> None:
    # Given Redis and the receiver on the web host's bridge address, not loopback
    redis_node = RedisNode(tmp_path, "redis", host=network.web_address)
    redis_node.start()
    hook_server = listen_also(receiver, network.web_address)
    hook_url = f"http://{network.web_address}:{hook_server.server_address[1]}/hook"
    redis_url = f"redis://{network.web_address}:{redis_node.port}/0"
    # And the web on the web host, and on each of two worker hosts a job
    # worker, a webhook worker and a metrics server
    stack = Stack(redis_url, tmp_path, HOOKLINE_CALLBACK_ALLOW=network.subnet)
    procs: list[Process] = []
    prom: Process | None = None
    try:
        stack.start_web(workers=1)
        for host in network.hosts:
            procs += start_host(host, stack.env, tmp_path)
        for host in network.hosts:
            target = f"http://{host.address}:{host.metrics_port}/metrics"
            wait_until(lambda t=target: requests.get(t, timeout=1).ok, 20, f"{host.name}'s metrics server answers")
        # And a real Prometheus scraping the web host and both worker hosts
        prom, api = start_prometheus({
            "api": [f"127.0.0.1:{stack.port}"],
            "workers": [f"{h.address}:{h.metrics_port}" for h in network.hosts],
        }, tmp_path)
        # Then the worker hosts' processes reach Redis from their own addresses
        peers = {c["addr"].rsplit(":", 1)[0] for c in redis_node.client().client_list()}
        if network.isolated:
            assert {h.address for h in network.hosts} <= peers, peers

        # When tasks with a callback are submitted
        auth = api_key(stack)
        callback = requests.post(f"{stack.url}/callbacks", json={"url": hook_url}, headers=auth,
                                 timeout=10).json()
        assert "id" in callback, callback
        task_ids = []
        for i in range(TASKS):
            resp = requests.post(f"{stack.url}/tasks", json={"vector_data": [[float(i), 1.0]],
                                                             "callback_id": callback["id"]},
                                 headers=auth, timeout=10)
            assert resp.status_code == 202, resp.text
            task_ids.append(resp.json()["task_id"])
        # Then every task succeeds and its webhook arrives over the bridge
        wait_until(lambda: all(requests.get(f"{stack.url}/tasks/{t}", headers=auth, timeout=5)
                               .json()["status"] == "SUCCESS" for t in task_ids), 60, "every task succeeds")
        wait_until(lambda: len({r["headers"]["webhook-id"] for r in receiver.received("/hook")}) == TASKS,
                   60, "every webhook arrives")

        # And Prometheus scrapes all three hosts
        wait_until(lambda: sorted(query(api, "up").values()) == [1.0, 1.0, 1.0], 30, "three targets up")
        hosts = {f"{h.address}:{h.metrics_port}" for h in network.hosts}
        # And the exact ending count (kept in Redis) reads the same from every host
        finished = 'sum by (instance) (hookline_tasks_finished_total{outcome="success"})'
        wait_until(lambda: set(query(api, finished).values()) == {float(TASKS)}, 30,
                   "every host reports every ending")
        # And the runs each worker host measured add up to every task, with both doing some
        runs = 'sum by (instance) (hookline_task_run_seconds_count{outcome="success"})'
        wait_until(lambda: sum(v for i, v in query(api, runs).items() if i in hosts) == TASKS,
                   30, "the hosts' runs add up")
        per_host = {i: v for i, v in query(api, runs).items() if i in hosts}
        print(f"\nfinished per host: {per_host} ({'namespaces' if network.isolated else 'loopback addresses'})")
        assert len(per_host) == 2 and all(v > 0 for v in per_host.values()), per_host
        delivered = 'sum by (instance) (hookline_webhook_attempts_total{result="delivered"})'
        wait_until(lambda: sum(v for i, v in query(api, delivered).items() if i in hosts) >= TASKS,
                   30, "the hosts' delivered webhooks add up")
        # And every host sees the four worker processes of both hosts alive
        wait_until(lambda: set(query(api, "hookline_workers_alive").values()) == {4.0}, 30,
                   "every target reports 4 live workers")

        # When the job workers stop and more tasks wait
        for proc in procs:
            if proc.name.endswith("-jobs"):
                proc.stop()
        for _ in range(7):
            requests.post(f"{stack.url}/tasks", json={"vector_data": [[1.0]]}, headers=auth, timeout=10)
        # Then the queue depth is the broker's, the same from every host, and
        # the stopped workers no longer count as alive
        ready = 'hookline_queue_messages{queue="jobs",state="ready"}'
        wait_until(lambda: (lambda v: len(v) == 3 and set(v.values()) == {7.0})(query(api, ready)), 30,
                   "every target reports 7 ready jobs")
        wait_until(lambda: set(query(api, "hookline_workers_alive").values()) == {2.0}, 30,
                   "every target reports the 2 webhook workers left")
    finally:
        if prom is not None:
            prom.stop()
        for proc in procs:
            proc.stop()
        stack.stop()
        hook_server.shutdown()
        hook_server.server_close()
        redis_node.stop()
