"""gunicorn settings for the ``web`` process (``gunicorn -c deploy/gunicorn.conf.py``)."""
from __future__ import annotations

import errno
import logging
import os
import socket
import sys

from hookline.config import Config, listen_address

_config = Config.from_env()
#: HOOKLINE_BIND (loopback unless set) and PORT. The Procfile, the image and
#: the compose and k8s files set HOOKLINE_BIND=0.0.0.0: in a container or on
#: a platform the port must be reachable from outside.
bind = listen_address(_config.bind, _config.port)
#: Worker processes; one per core (the handlers are CPU-light but not free).
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
#: Threads per worker: requests mostly wait on Redis, so a few threads keep a
#: core busy without the cost of more processes. gunicorn's gthread worker,
#: closing its own listening socket as soon as it stops (see reuse_port).
worker_class = "webapp.server.ThreadWorker"
threads = int(os.environ.get("HOOKLINE_WEB_THREADS", "4"))
keepalive = 30
#: Each worker listens on a socket of its own (SO_REUSEPORT), and the kernel
#: spreads new connections evenly over them. On one shared socket, whichever
#: worker wakes first takes the connection, so a client pool's keep-alive
#: connections can pile onto one process (seen in bench/run.py: 32 of 32, or
#: two to one), whose threads then contend for its GIL while the other worker
#: idles. Six alternating pairs of 5,000 jobs at 32 clients: submit p99 86 ms
#: against 139, and 512 against 465 jobs/s end to end (medians). Linux only:
#: elsewhere the option lets sockets share a port without spreading
#: connections over them. HOOKLINE_WEB_REUSE_PORT=0 keeps one shared socket,
#: which gunicorn's USR2 binary upgrade needs (it hands the master's sockets
#: to the new master); systemd socket activation keeps it too.
reuse_port = (sys.platform.startswith("linux")
              and os.environ.get("HOOKLINE_WEB_REUSE_PORT", "1") != "0")
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


def on_starting(server):  # type: ignore[no-untyped-def]
    """Check, before any worker starts, that the address can be listened on.

    With ``reuse_port`` the master binds nothing and each worker binds its own
    socket, so a port already taken would only show as workers that fail to
    boot, one after the other, for ever. A probe bound without SO_REUSEPORT
    conflicts with any listener on the port, an older Hookline's included, and
    stops gunicorn at once with the reason. A UNIX socket, port 0 and sockets
    handed over by systemd cannot be shared that way, so they keep gunicorn's
    single socket.
    """
    if not server.cfg.reuse_port:
        return
    addresses = server.cfg.address
    if (os.environ.get("LISTEN_FDS")
            or any(not isinstance(address, tuple) or not address[1] for address in addresses)):
        server.cfg.set("reuse_port", False)
        return
    for host, port in addresses:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                server.log.error("Cannot listen on %s:%s: %s", host, port, reason)
                sys.exit(1)
    # gunicorn's own "Listening at:" line names only the master's sockets:
    # none here, so it would print an empty address. This line says where.
    server.log.error_log.addFilter(_no_empty_listening)
    server.log.info("Each worker listens on its own socket at %s (SO_REUSEPORT)",
                    ", ".join(f"http://{host}:{port}" for host, port in addresses))


def _no_empty_listening(record: logging.LogRecord) -> bool:
    """Drop gunicorn's "Listening at:" line when it names no socket (``reuse_port``)."""
    return not (isinstance(record.msg, str) and record.msg.startswith("Listening at:")
                and isinstance(record.args, tuple) and record.args and record.args[0] == "")
