"""The ``index`` process: ``python -m hookline.index`` (one per host).

It holds the HNSW graphs once for every web process of its host, follows
the change stream as the single writer, saves its files every
``HOOKLINE_INDEX_SAVE_SECONDS``, and answers searches on a Unix socket.
"""
from __future__ import annotations

import logging
import os
import signal
import socketserver
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis

from hookline import keys, logs, metrics
from hookline import vector_collections as colls
from hookline.config import Config
from hookline.index import snapshot
from hookline.index.hnsw import EMPTY
from hookline.index.priority import lower_priority
from hookline.index.protocol import read_frame, write_frame
from hookline.index.state import IndexState, last_entry, later, trimmed_past
from hookline.memory import return_large_buffers
from hookline.redis_client import UNAVAILABLE, connect
from hookline.vector_collections import Collection, new_collection
from hookline.vectorstore import VectorStore

log = logging.getLogger("hookline.index")

#: Changes read from the stream per call, and how long a read blocks (ms).
#: An entry of a large job's chunk lists 10,000 keys (80 KB): 512 of them,
#: read back after the index waited for its graph, held up to 51 MB of
#: Redis's output buffers (bench/large.py, 1,000,000 vectors); 128 bound
#: that at 10 MB and still gather a few hundred small jobs a second.
READ_COUNT = 128
READ_BLOCK_MS = 500
#: Seconds the follower lets changes gather after a read that found fewer
#: than ``READ_COUNT``. Each step (a stream read, a read of the records, the
#: buffer's update, the metrics) has a fixed cost; under a steady flow of
#: small jobs it ran about once per job. A search waits for the index to
#: reach its change for at most ``HOOKLINE_INDEX_WAIT_SECONDS``, then scores the
#: newest changes itself, so read-your-writes holds either way.
GATHER_SECONDS = 0.01
#: Seconds between checks that the stream kept what the index needs, and
#: between looks for finished vectors a failed step left in the inbox.
CHECK_SECONDS = 5.0
SWEEP_SECONDS = 1.0


class Follower:
    """Keeps ``state`` in step with the stream; the only writer of the graphs."""

    def __init__(self, state: IndexState, client: redis.Redis, config: Config) -> None:
        self.state = state
        self.redis = client
        self.directory = Path(config.index_dir)
        self.save_every = config.index_save_seconds
        self.store = VectorStore(client)
        self.stopping = threading.Event()
        self.last_save = self.last_check = self.last_sweep = time.monotonic()
        self.saver: threading.Thread | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.step()
            except UNAVAILABLE as exc:
                log.warning("Redis unavailable; the index waits", extra={"error": type(exc).__name__})
                self.stopping.wait(1.0)
        if self.saver is not None:
            self.saver.join()
        if self.state.dirty:
            snapshot.save(self.state, self.directory)

    def step(self) -> None:
        state = self.state
        if not state.ready:
            if not snapshot.load(state, self.redis, self.directory):
                state.rebuild()
            metrics.index_vectors.set(state.vectors())
            log.info("index ready", extra={"vectors": state.vectors(), "position": state.position})
        found = self.redis.xread({colls.LOG_KEY: state.position}, count=READ_COUNT,
                                 block=READ_BLOCK_MS)
        read = 0
        for _, entries in found or []:
            read += len(entries)
            state.apply_many([(entry_id.decode(), fields) for entry_id, fields in entries])
            now = time.time()
            for entry_id, fields in entries:
                if fields[b"op"] == b"u":
                    finished_ms = int(entry_id.split(b"-")[0])
                    metrics.index_lag.observe(max(0.0, now - finished_ms / 1000))
        metrics.index_pending_vectors.set(state.pending())
        if 0 < read < READ_COUNT:
            self.stopping.wait(GATHER_SECONDS)
        now = time.monotonic()
        if now - self.last_sweep >= SWEEP_SECONDS:
            self.last_sweep = now
            self.sweep_inbox()
        if now - self.last_check >= CHECK_SECONDS:
            self.last_check = now
            last, _ = last_entry(self.redis)
            if later(state.position, last) or trimmed_past(self.redis, state.position):
                # Redis lost changes the index has, or dropped ones it lacks.
                log.warning("index out of step with the stream; rebuilding")
                state.rebuild()
        if state.dirty and now - self.last_save >= self.save_every and not self.saving():
            self.last_save = now
            # Writing a large graph takes seconds; on a thread of its own it
            # does not hold up the changes that make vectors searchable.
            self.saver = threading.Thread(target=snapshot.save, args=(state, self.directory),
                                          name="index-save", daemon=True)
            self.saver.start()

    def saving(self) -> bool:
        return self.saver is not None and self.saver.is_alive()

    def sweep_inbox(self) -> None:
        """Apply finished vectors whose step did not (an error after the task ended)."""
        for raw in self.redis.hkeys(colls.INBOX_KEY):
            task_id = raw.decode()
            fields: list[Any] = self.redis.hmget(  # type: ignore[assignment]
                keys.task(task_id), ["tenant", "coll", "dim"])
            tenant, name, dim = fields
            if tenant is None or dim is None:
                self.redis.hdel(colls.INBOX_KEY, task_id)
                continue
            collection = self._collection(tenant.decode(), (name or b"default").decode(), int(dim))
            written = self.store.apply_inbox(collection, task_id, int(dim))
            log.warning("applied vectors left in the inbox",
                        extra={"task_id": task_id, "count": written})

    def _collection(self, tenant: str, name: str, dim: int) -> Collection:
        return colls.Collections(self.redis).get(tenant, name) or new_collection(tenant, name, dim)


class Handler(socketserver.BaseRequestHandler):
    server: "IndexServer"

    def handle(self) -> None:
        conn = self.request
        while True:
            try:
                frame = read_frame(conn)
            except (OSError, ValueError):
                return
            if frame is None:
                return
            header, payload = frame
            try:
                reply, body = self.server.answer(header, payload)
            except Exception:  # an answer must not kill the connection's thread silently
                log.exception("search failed")
                reply, body = {"ok": False, "error": "index error"}, b""
            try:
                write_frame(conn, reply, body)
            except OSError:
                return


class IndexServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, state: IndexState, wait_seconds: float) -> None:
        if os.path.exists(path):
            os.unlink(path)  # a socket left by a process that was killed
        super().__init__(path, Handler)
        # Searches read every tenant's vectors: only this user may connect.
        os.chmod(path, 0o600)
        self.state = state
        self.wait_seconds = wait_seconds

    def answer(self, header: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
        if header.get("op") == "ping":
            return {"ok": True, "ready": self.state.ready, "applied": self.state.applied}, b""
        dim, count = int(header["dim"]), int(header["count"])
        if not self.state.ready:
            return {"ok": False, "error": "the index is loading; retry shortly"}, b""
        caught_up = self.state.wait_for(int(header["seq"]), self.wait_seconds)
        # Behind: the caller scores the changes after this position itself.
        queries = np.frombuffer(payload, dtype=np.float32).reshape(-1, dim)
        graph = self.state.graph(header["tenant"], header["name"], dim)
        if graph is None:
            keys = np.full((len(queries), count), EMPTY, dtype=np.int64)
        else:
            keys = graph.search(queries, count)
        reply = {"ok": True, "behind": None if caught_up else self.state.position,
                 "width": keys.shape[1]}
        return reply, keys.tobytes()


def main() -> None:
    config = Config.from_env()
    logs.configure(config.log_format, config.log_level)
    metrics.mark_build()
    # Rebuilds and large jobs read megabytes of records at a time.
    return_large_buffers()
    client = connect(config.redis_url)
    state = IndexState(client, on_change=lambda s: metrics.index_vectors.set(s.vectors()))
    Path(config.index_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    server = IndexServer(config.index_socket_path, state, config.index_wait_seconds)
    follower = Follower(state, client, config)
    signal.signal(signal.SIGTERM, lambda *_: follower.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: follower.stopping.set())
    threading.Thread(target=server.serve_forever, name="index-server", daemon=True).start()
    # Adding to the graphs is the index's heavy work (about 0.1 ms of CPU per
    # vector at d=384). HOOKLINE_INDEX_NICE lowers it below the searches (the
    # server's threads, started above, and their own keep their priority),
    # so that jobs and webhooks sharing the host go first. Threads started
    # from here on, usearch's included, inherit it.
    lower_priority(config.index_nice, "follower")
    log.info("index process ready", extra={"socket": config.index_socket_path})
    try:
        follower.run()
    finally:
        server.shutdown()
        server.server_close()
        if config.prometheus_multiproc_dir:
            from prometheus_client import multiprocess  # noqa: PLC0415

            # Its live gauge must not linger in the host's figures.
            multiprocess.mark_process_dead(os.getpid())
