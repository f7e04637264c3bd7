#!/usr/bin/env python3
"""Server CPU per request with gunicorn's two writes per answer, and with one.

Runs gunicorn (1 process, gthread, 4 threads) with a trivial WSGI app that
reads a request body of the standard workload's size and answers with a small
JSON document, once with gunicorn's own response and once with
``webapp.serving.CoalescingResponse``, alternating, and drives each with 32
keep-alive clients. It prints requests per second and the gunicorn processes'
CPU per request. Only the answer's writes differ between the two.

    .venv/bin/python bench/answers.py [--n 8000] [--rounds 2]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import BIN, free_port, wait_until  # noqa: E402

APP = """
import os

if os.environ.get("COALESCE") == "1":
    from webapp.serving import install

    install()

ANSWER = b'{"task_id": "00000000-0000-0000-0000-000000000000", "status": "Processing"}'


def app(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("202 Accepted", [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(ANSWER)))])
    return [ANSWER]
"""

BODY = json.dumps({"vector_data": [[0.123456789012345] * 64] * 16, "metadata": {"source": "bench"}}).encode()


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def drive(url: str, n: int, clients: int) -> float:
    """Seconds for ``n`` POSTs from ``clients`` concurrent keep-alive clients."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        gate = asyncio.Semaphore(clients)

        async def one() -> None:
            async with gate, session.post(url, data=BODY, headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                assert resp.status == 202

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - started


def measure(folder: Path, coalesce: bool, n: int) -> tuple[float, float]:
    """Requests per second and microseconds of server CPU per request."""
    port = free_port()
    env = {**os.environ, "COALESCE": "1" if coalesce else "0", "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"}
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread", "--threads", "4",
         "--keep-alive", "30", "answers_app:app"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: requests.post(url, data=b"{}", timeout=1).status_code == 202, 30, "gunicorn")
        pids = [server.pid, *map(int, subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True,
                                                     text=True).stdout.split())]
        asyncio.run(drive(url, 300, 32))  # warm-up
        before = cpu_seconds(pids)
        seconds = asyncio.run(drive(url, n, 32))
        used = cpu_seconds(pids) - before
        return n / seconds, used / n * 1e6
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "answers_app.py").write_text(APP)
        for _ in range(args.rounds):
            for coalesce in (False, True):
                rate, cpu = measure(folder, coalesce, args.n)
                rows.append({"writes_per_answer": 1 if coalesce else 2,
                             "requests_per_s": round(rate), "server_cpu_us_per_request": round(cpu)})
    print(f"{'writes per answer':<20}{'requests/s':>12}{'server CPU us/request':>24}")
    for row in rows:
        print(f"{row['writes_per_answer']:<20}{row['requests_per_s']:>12}{row['server_cpu_us_per_request']:>24}")
    print(json.dumps({"body_bytes": len(BODY), "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
