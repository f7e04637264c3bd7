"""The gunicorn worker class of the ``web`` process (``deploy/gunicorn.conf.py``).

gunicorn's threaded worker, with one change for ``reuse_port``: each worker
listens on a socket of its own, and the kernel keeps sending new connections
to a socket for as long as it is open. A worker that stops alone (a ``HUP``
reload, ``TTOU``) would keep its socket open while it finishes its requests
and lingers for its kept-alive clients (about two seconds), and then reset
every connection that had queued on it meanwhile. This worker takes what
has already queued and closes its sockets as soon as it stops accepting, so
new connections go to its siblings from then on. (Only a connection that
arrives in the instant between the two can still be reset; Linux 5.14 and
newer hand it to a sibling with ``net.ipv4.tcp_migrate_req=1``.)
"""
from __future__ import annotations

import select

from gunicorn.workers.gthread import ThreadWorker as GThreadWorker


class ThreadWorker(GThreadWorker):
    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if enabled or self.alive or not self.cfg.reuse_port:
            return
        for listener in self.sockets:
            # Served like any other, with "Connection: close" as the worker stops.
            ready = select.poll()  # not select(): any descriptor number
            ready.register(listener, select.POLLIN)
            try:
                while ready.poll(0):
                    self.accept(listener)
            except OSError as exc:  # out of file descriptors, say: stop taking
                self.log.warning("Connections left on a closing socket: %s", exc)
            listener.close()
