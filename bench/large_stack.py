"""Processes and data for ``bench/large.py``: a private stack, and a large .npy by ranges."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import redis
import requests
from numpy.lib import format as npy_format

from actors.messages import HEARTBEATS_KEY
from bench.run import BIN, ROOT, free_port, procfile_priority, wait_until
from dev import REDIS_SETTINGS
from hookline.index.protocol import IndexClient, IndexUnavailable

MB = 1_000_000


def npy_header(rows: int, dimension: int) -> bytes:
    """The ``.npy`` header numpy writes for a ``(rows, dimension)`` float32 array."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, dimension)}
    out = tempfile.SpooledTemporaryFile()
    npy_format.write_array_header_1_0(out, header)
    out.seek(0)
    return bytes(out.read())


class Source:
    """The bytes of the file, by range, as views of one repeated block of values."""

    def __init__(self, rows: int, dimension: int, block_bytes: int) -> None:
        self.header = npy_header(rows, dimension)
        self.length = len(self.header) + rows * dimension * 4
        values = np.random.default_rng(0).standard_normal(block_bytes // 4, dtype=np.float32)
        block = values.tobytes()
        self.block_len = len(block)
        self.double = memoryview(block + block)

    def view(self, start: int, end: int) -> bytes | memoryview:
        if start < len(self.header):
            # Only the first PATCH: the header, then values (one copy of < 1 block).
            return self.header[start:] + bytes(self.view(len(self.header), end))
        at = (start - len(self.header)) % self.block_len
        return self.double[at : at + (end - start)]


class Stack:
    """redis-server, gunicorn, and for processing the job and callbacks workers and the index."""

    def __init__(self, workdir: Path, blob_dir: Path, web_workers: int, web_threads: int) -> None:
        self.workdir = workdir
        self.redis_port = free_port()
        self.port = free_port()
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0", "PORT": str(self.port),
            "HOOKLINE_BIND": "127.0.0.1", "HOOKLINE_RATE_LIMIT": "0",
            "HOOKLINE_CALLBACK_ALLOW": "127.0.0.0/8",
            "HOOKLINE_LOG_LEVEL": "WARNING", "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
            "HOOKLINE_BLOB_URL": f"file://{blob_dir}", "HOOKLINE_INDEX_DIR": str(workdir / "index"),
            "WEB_CONCURRENCY": str(web_workers), "HOOKLINE_WEB_THREADS": str(web_threads),
        }
        (workdir / "metrics").mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.named: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                process_group=0)
        self.procs.append(proc)
        self.named[name] = proc
        return proc

    def start(self) -> None:
        server = shutil.which("redis-server") or shutil.which("redis-server", path=str(BIN))
        if server is None:
            raise SystemExit("redis-server not found")
        self._spawn("redis", [server, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--dir", str(self.workdir), *REDIS_SETTINGS])
        self.redis = redis.Redis(port=self.redis_port)
        wait_until(self.redis.ping, 20, "redis-server")
        self.web = self._spawn("web", [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
                                       "webapp.wsgi:app"])
        wait_until(lambda: requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).ok, 60,
                   "gunicorn")

    def key(self) -> str:
        out = subprocess.run([str(BIN / "flask"), "--app", "webapp", "keys", "create", "bench"],
                             cwd=ROOT, env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    def start_workers(self, job_processes: int, job_threads: int) -> None:
        """The Procfile's job worker (with its priority) and a callbacks worker."""
        self._spawn("worker", [*procfile_priority("worker"), str(BIN / "dramatiq"), "actors:setup",
                               "--queues", "jobs", "--processes", str(job_processes),
                               "--threads", str(job_threads)])
        self._spawn("callbacks", [str(BIN / "dramatiq"), "actors:setup", "--queues", "callbacks",
                                  "--processes", "1", "--threads", "4"])
        wait_until(lambda: self.redis.zcard(HEARTBEATS_KEY) >= job_processes + 1, 60, "workers")

    def start_index(self) -> None:
        """The Procfile's index process, once it answers."""
        self._spawn("index", [str(BIN / "python"), "-m", "hookline.index"])
        self.index = IndexClient(str(self.workdir / "index" / "index.sock"))

        def answers() -> bool:
            try:
                self.index.applied()
            except IndexUnavailable:
                return False
            return True

        wait_until(answers, 60, "the index process")

    def index_applied(self) -> int:
        """The number of the last change to the collections that the index has applied."""
        return self.index.applied()

    def reset_peaks(self) -> None:
        """Start every process's ``VmHWM`` again from its present RSS (one pass from the next)."""
        for name in self.named:
            for pid in self.pids(name):
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def pids(self, name: str) -> list[int]:
        """The process ``name`` was started as, and its children."""
        root = self.named[name].pid
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(root)], capture_output=True, text=True)
        return [root, *map(int, out.stdout.split())]

    def cpu_seconds(self, name: str) -> float:
        """User + system CPU of process ``name`` and its children so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids(name):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / ticks

    def peak_rss_mb(self, name: str) -> dict[str, float]:
        """``VmHWM`` (peak resident set) of process ``name`` and each child, in MB."""
        peaks = {}
        for pid in self.pids(name):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[str(pid)] = round(int(line.split()[1]) * 1024 / MB, 1)
        return peaks

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


