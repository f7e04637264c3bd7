"""gunicorn settings for the ``web`` process (``gunicorn -c deploy/gunicorn.conf.py``)."""
from __future__ import annotations

import os

bind = f"{os.environ.get('HOOKLINE_BIND', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
#: Worker processes; one per core (the handlers are CPU-light but not free).
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
#: Threads per worker: requests mostly wait on Redis, so a few threads keep a
#: core busy without the cost of more processes.
worker_class = "gthread"
threads = int(os.environ.get("HOOKLINE_WEB_THREADS", "4"))
keepalive = 30
#: Seconds a worker has to finish in-flight requests on SIGTERM.
graceful_timeout = 30
timeout = 60
accesslog = None
errorlog = "-"
#: No runtime control socket (gunicorn >= 25). Its default path is one per
#: user ($XDG_RUNTIME_DIR or ~/.gunicorn), so every instance on a host would
#: take it over from the last, and nothing here uses it: the supervisor
#: (systemd, Kubernetes, the Procfile runner) manages the process.
control_socket_disable = True
# Each worker imports the app itself: prometheus-client files its values by
# pid, so metrics made in the master before a fork would be misfiled.
preload_app = False


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Drop a dead worker's live gauges from the multiprocess folder."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    child_exit(server, worker)
