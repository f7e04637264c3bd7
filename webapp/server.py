"""The gunicorn worker class of the ``web`` process (``deploy/gunicorn.conf.py``).

gunicorn's threaded worker, with one change for ``reuse_port``: each worker
listens on a socket of its own, and the kernel keeps sending new connections
to a socket for as long as it is open. A worker that stops alone (a ``HUP``
reload, ``TTOU``) would keep its socket open while it finishes its requests
and lingers for its kept-alive clients (about two seconds), and then reset
every connection that had queued on it meanwhile. This worker closes its
sockets as soon as it stops accepting, so new connections go to its
siblings from then on.
"""
from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker as GThreadWorker


class ThreadWorker(GThreadWorker):
    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive and self.cfg.reuse_port:
            for listener in self.sockets:
                listener.close()
