"""How the web process listens: a socket per worker, and a clear stop when the port is taken."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.procs import WEB_ARGV, Process, Stack, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the web shares its port over workers on Linux only")

LISTEN, ESTABLISHED = "0A", "01"


def sockets_by_pid(pids: list[int], port: int, state: str) -> Counter[int]:
    """How many TCP sockets on local ``port`` in ``state`` each of ``pids`` holds."""
    inodes: dict[str, int] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed while we looked
            if target.startswith("socket:["):
                inodes[target[8:-1]] = pid
    found: Counter[int] = Counter()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                if fields[9] in inodes:
                    found[inodes[fields[9]]] += 1
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (not ended, nor a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def listening_port(log: str) -> str | None:
    """The port in gunicorn's "Listening at:" line, once it is logged."""
    for line in log.splitlines():
        if "Listening at: http://127.0.0.1:" in line:
            return line.split("http://127.0.0.1:", 1)[1].split()[0]
    return None


def both_workers(web: Process) -> list[int]:
    """The pids of the web's two workers, once both are up."""
    return wait_until(lambda: len(pids := web.children()) == 2 and pids, 10,
                      "both web workers are up")


def test_keep_alive_connections_are_spread_over_the_web_workers(
        make_stack: Callable[..., Stack]) -> None:
    # Given the web with two workers
    stack = make_stack()
    web = stack.start_web(workers=2)
    workers = both_workers(web)
    # Then each worker listens on a socket of its own, and the master on none
    listening = wait_until(
        lambda: (found := sockets_by_pid([web.pid, *workers], stack.port, LISTEN))
        and len(found) == 2 and found, 10, "each worker listens")
    assert listening == {pid: 1 for pid in workers}
    # And the log says where, without gunicorn's line naming the master's (no) sockets
    assert f"Each worker listens on its own socket at http://127.0.0.1:{stack.port}" in web.log()
    assert "Listening at:  (" not in web.log()
    # When a client pool opens 24 keep-alive connections and uses each
    connections = [http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
                   for _ in range(24)]
    try:
        for connection in connections:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
        # Then both workers serve a share of them (all 24 on one worker
        # would leave the other idle while this one's threads queue)
        held = sockets_by_pid(workers, stack.port, ESTABLISHED)
        assert sum(held.values()) == 24
        assert all(held[pid] >= 3 for pid in workers), held
    finally:
        for connection in connections:
            connection.close()


def test_a_port_already_taken_stops_the_web_at_once(
        tmp_path: Path, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    # Given another program listening on the web's port
    with socket.socket() as other:
        other.bind(("127.0.0.1", stack.port))
        other.listen()
        # When the web starts
        web = Process("web", WEB_ARGV, stack.env, tmp_path)
        try:
            # Then it stops with an error that names the address, instead of
            # booting workers that fail, one after the other
            code: int | None = web.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            web.stop()
    log = web.log_path.read_text()
    assert code is not None, "gunicorn kept running on a taken port:\n" + log
    assert code != 0
    assert f"Cannot listen on 127.0.0.1:{stack.port}: in use" in log
    assert "Booting worker" not in log


def test_port_zero_keeps_one_shared_socket(
        tmp_path: Path, make_stack: Callable[..., Stack]) -> None:
    # Given the web asked to listen on any free port (each worker binding port
    # 0 for itself would get a port of its own)
    stack = make_stack()
    env = dict(stack.env, GUNICORN_CMD_ARGS="--bind 127.0.0.1:0", WEB_CONCURRENCY="2")
    web = Process("web", WEB_ARGV, env, tmp_path)
    try:
        # Then the master listens on one port that both workers share
        wait_until(lambda: web.log().count("Booting worker") == 2, 30, "both workers boot")
        port = int(wait_until(lambda: listening_port(web.log()), 10, "the port is logged"))
        assert sockets_by_pid([web.pid], port, LISTEN) == {web.pid: 1}
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        web.stop()


def test_a_worker_that_stops_alone_stops_listening_at_once(
        make_stack: Callable[..., Stack]) -> None:
    # Given the web with two workers, each holding an idle keep-alive
    # connection (a stopping worker lingers about two seconds for those)
    stack = make_stack()
    web = stack.start_web(workers=2)
    workers = set(both_workers(web))
    idle: list[http.client.HTTPConnection] = []
    try:
        while len(sockets_by_pid(list(workers), stack.port, ESTABLISHED)) < 2:
            assert len(idle) < 64, "the kernel never gave the second worker a connection"
            connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            idle.append(connection)
        # When one worker is told to stop (TTOU: one worker fewer)
        web.signal(signal.SIGTTOU)
        # Then its listening socket closes while it still finishes its work,
        # so the kernel sends it no connection it would never accept
        listening = wait_until(
            lambda: len(found := sockets_by_pid(list(workers), stack.port, LISTEN)) == 1
            and found, 10, "the stopping worker stops listening")
        (staying,) = listening
        (stopping,) = workers - {staying}
        # (it still holds its kept-alive client: it closed the socket first,
        # not last, as it ended)
        assert sockets_by_pid([stopping], stack.port, ESTABLISHED)[stopping] >= 1
        # And every new connection meanwhile is answered
        for _ in range(20):
            answer = requests.get(f"{stack.url}/healthz", timeout=5,
                                  headers={"Connection": "close"})
            assert answer.status_code == 200
        assert running(stopping), "the requests should have run while it lingered"
    finally:
        for connection in idle:
            connection.close()


def test_reuse_port_off_keeps_one_shared_socket(make_stack: Callable[..., Stack]) -> None:
    # Given the web told to keep one shared socket
    stack = make_stack(HOOKLINE_WEB_REUSE_PORT="0")
    web = stack.start_web(workers=2)
    workers = both_workers(web)
    # Then the master listens, and the workers share its socket
    assert sockets_by_pid([web.pid], stack.port, LISTEN) == {web.pid: 1}
    assert sum(sockets_by_pid(workers, stack.port, LISTEN).values()) <= 1
    assert requests.get(f"{stack.url}/healthz", timeout=5).status_code == 200
