"""How many jobs/s one Redis primary carries, with the web and the workers out of the way.

Several client processes replay, against a private redis-server set up as
``dev.py run`` sets it (append-only file, fsync every second), the Redis
work of one job as Hookline's processes do it, through Hookline's own code:

* the web's submit (``TaskStore.submit``: record, payload, index entry and
  broker message in one script);
* the job worker's fetch (a move of the message to its held list, as the
  consumer's ``BLMOVE``), start (``TaskStore.start``) and end
  (``TaskStore.finish``, with the job's output in its collection, the
  webhook's message and the acknowledgement);
* the first attempt's record, made by the job worker itself
  (``TaskStore.record_attempt`` ending the lease ``finish`` took), or with
  ``--queued`` the webhook worker's fetch (the move and the callbacks'
  change counter, in one round trip) and the attempt's record, which
  acknowledges the message.

No job is computed and no webhook sent: each client does nothing but Redis
round trips, so Redis's own CPU per job is what one primary can give. The
figures: jobs/s reached, Redis CPU per job (user + system, from ``INFO cpu``),
the jobs/s at which one Redis core would be saturated (1 / CPU per job),
commands, network bytes and append-only-file bytes per job, and memory per
finished task (what ``HOOKLINE_RESULT_TTL`` keeps, with the output in its
collection apart).

    .venv/bin/python bench/redis_capacity.py --clients 3 --seconds 15
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.events import attempt_record, webhook_id  # noqa: E402
from actors.messages import (  # noqa: E402
    CALLBACKS_QUEUE,
    HEARTBEATS_KEY,
    JOBS_QUEUE,
    NAMESPACE,
    delivery_message,
    job_message,
)
from actors.queue_keys import Keys, decode  # noqa: E402
from callbacks.registry import generation_key  # noqa: E402
from dev import REDIS_SETTINGS  # noqa: E402
from hookline import keys  # noqa: E402
from hookline.ids import new_task_id  # noqa: E402
from hookline.redis_client import confirm_replicated  # noqa: E402
from hookline.task_record import STARTED, SUCCESS  # noqa: E402
from hookline.task_store import TaskStore  # noqa: E402
from hookline.vectorstore import VectorStore  # noqa: E402

#: The standard benchmark's job (bench/RESULTS.md): 16 vectors of 64 values.
VECTORS, DIMENSION = 16, 64
#: Seconds every finished task is kept (HOOKLINE_RESULT_TTL's default).
RESULT_TTL = 7 * 86400
TENANT = "bench"
CALLBACK = "cb_bench"


def start_redis(workdir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server not found")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    workdir = workdir / str(port)
    workdir.mkdir()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                             *REDIS_SETTINGS, "--repl-diskless-sync-delay", "0",
                             "--logfile", str(workdir / "redis.log"), *extra])
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def start_replica(workdir: Path, primary_port: int) -> subprocess.Popen[bytes]:
    proc, port = start_redis(workdir, "--replicaof", "127.0.0.1", str(primary_port))
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 30
    while client.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            raise SystemExit("the replica did not sync")
        time.sleep(0.05)
    return proc


#: Collection descriptions a replaying client keeps, as a job worker does.
KNOWN: dict[str, Any] = {}


def one_job(client: redis.Redis, store: TaskStore, owner: str, payload: bytes, output: bytes,
            wait_replicas: int = 0, inline: bool = True) -> None:
    """The Redis work of one job, in the order and the round trips Hookline makes it."""
    jobs, hooks = Keys(NAMESPACE, JOBS_QUEUE), Keys(NAMESPACE, CALLBACKS_QUEUE)
    task_id = new_task_id()
    # The web: one script.
    store.submit(task_id=task_id, tenant=TENANT, vectors=payload, count=VECTORS, dimension=DIMENSION,
                 metadata_json=b'{"source":"bench"}', collection="default",
                 callback=(CALLBACK, "http://127.0.0.1:9/hook"), message=job_message(task_id))
    if wait_replicas:
        # HOOKLINE_REDIS_MIN_REPLICAS: the web's confirmation step, as it runs it.
        confirm_replicated(client, keys.task(task_id), wait_replicas, 200)
    # The job worker: take a message (any client's), start, end.
    raw = client.lmove(jobs.queue, jobs.held(owner), "RIGHT", "LEFT")
    if raw is None:
        return
    taken = str(decode(raw).args[0])
    outcome, task, _ = store.start(taken, owner, int(time.time() * 1000) - 30_000, "claim-" + taken)
    if outcome != "run" or task is None:
        client.lrem(jobs.held(owner), -1, raw)
        return
    # The job's vectors go in with its end, as the job actor writes them (it
    # keeps the collection's description after its first job).
    vectors = VectorStore(client)
    collection = KNOWN.get(TENANT) or KNOWN.setdefault(
        TENANT, vectors.collections.ensure(TENANT, "default", DIMENSION))
    write = vectors.prepare(collection, taken,
                            np.frombuffer(output, dtype=np.float32).reshape(VECTORS, DIMENSION),
                            None)
    result = {"processed_vectors": VECTORS, "dimension": DIMENSION, "status": "indexed"}
    event = {"task_id": taken, "status": SUCCESS, "result": result}
    if inline:
        # The job worker's own first attempt (HOOKLINE_INLINE_DELIVERY_MS):
        # the end leases the delivery on the schedule, the attempt's record
        # ends the lease.
        store.finish(taken, SUCCESS, delivery=None, result=result, fields={"done": VECTORS},
                     allowed_from=(STARTED,), vectors=write, held=(jobs.held(owner), raw),
                     lease_until=time.time() + 10)
        record = attempt_record(webhook_id(taken), time.time(), "scheduled", status_code=204)
        store.record_attempt(taken, record, "delivered", failed_index=keys.failed_deliveries(CALLBACK),
                             leased=True)
        return
    store.finish(taken, SUCCESS, delivery=delivery_message(taken, callback_id=CALLBACK, event=event),
                 result=result, fields={"done": VECTORS}, allowed_from=(STARTED,),
                 vectors=write, held=(jobs.held(owner), raw))
    # The webhook worker: take a delivery message with the change counter, record the attempt.
    pipe = client.pipeline(transaction=False)
    pipe.lmove(hooks.queue, hooks.held(owner), "RIGHT", "LEFT")
    pipe.get(generation_key(f"{NAMESPACE}:"))
    hook, _ = pipe.execute()
    if hook is None:
        return
    hook_task = str(decode(hook).args[0])
    record = attempt_record(webhook_id(hook_task), time.time(), "scheduled", status_code=204)
    store.record_attempt(hook_task, record, "delivered", failed_index=keys.failed_deliveries(CALLBACK),
                         held=(hooks.held(owner), hook))


def client_process(port: int, seconds: float, counter: Any, wait_replicas: int,
                   inline: bool = True) -> None:
    client = redis.Redis(port=port)
    store = TaskStore(client, result_ttl=RESULT_TTL, heartbeats_key=HEARTBEATS_KEY)
    owner = f"bench-{os.getpid()}"
    client.zadd(HEARTBEATS_KEY, {owner: int(time.time() * 1000)})
    rng = np.random.default_rng(os.getpid())
    payload = rng.random((VECTORS, DIMENSION)).tobytes()
    output = rng.random((VECTORS, DIMENSION)).astype(np.float32).tobytes()
    deadline = time.monotonic() + seconds
    done = 0
    while time.monotonic() < deadline:
        one_job(client, store, owner, payload, output, wait_replicas, inline)
        done += 1
    with counter.get_lock():
        counter.value += done


def snapshot(client: redis.Redis) -> dict[str, float]:
    info = client.info("all")
    calls = sum(v["calls"] for k, v in info.items() if k.startswith("cmdstat_"))
    return {
        "cpu": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        "calls": float(calls),
        "net_in": float(info["total_net_input_bytes"]),
        "net_out": float(info["total_net_output_bytes"]),
        "aof": float(info.get("aof_current_size", 0)),
        "memory": float(info["used_memory"]),
        "time": time.monotonic(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the measured pass")
    parser.add_argument("--replicas", type=int, default=0, help="replicas of the primary")
    parser.add_argument("--wait", type=int, default=0,
                        help="replicas each submit waits for (HOOKLINE_REDIS_MIN_REPLICAS)")
    parser.add_argument("--queued", action="store_true",
                        help="every first attempt from the callbacks queue "
                             "(HOOKLINE_INLINE_DELIVERY_MS=0), not from the job worker")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="hl-redis-capacity-"))
    proc, port = start_redis(workdir)
    replicas = [start_replica(workdir, port) for _ in range(args.replicas)]
    try:
        client = redis.Redis(port=port)
        client.config_set("auto-aof-rewrite-percentage", 0)  # a rewrite would fork mid-pass
        counter: Any = multiprocessing.Value("q", 0)
        warm = multiprocessing.Process(target=client_process, args=(port, 1.0, counter, args.wait, not args.queued))
        warm.start()
        warm.join()
        counter.value = 0
        collection_before = client.memory_usage(keys.collection_vectors(TENANT, "default"), samples=0) or 0
        before = snapshot(client)
        clients = [multiprocessing.Process(target=client_process,
                                           args=(port, args.seconds, counter, args.wait,
                                                 not args.queued))
                   for _ in range(args.clients)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        after = snapshot(client)
        jobs = counter.value
        for replica in replicas:
            replica.terminate()
            replica.wait(timeout=20)
        elapsed = after["time"] - before["time"]
        cpu = after["cpu"] - before["cpu"]
        # SAMPLES 0: every field counted, not an estimate from five.
        record = client.memory_usage(keys.task(client.zrange(keys.task_index(TENANT), -1, -1)[0].decode()),
                                     samples=0)
        collection = (client.memory_usage(keys.collection_vectors(TENANT, "default"), samples=0) or 0) - collection_before
        figures = {
            "clients": args.clients,
            "replicas": args.replicas,
            "wait": args.wait,
            "jobs": jobs,
            "seconds": round(elapsed, 2),
            "jobs_per_s": round(jobs / elapsed, 1),
            "redis_busy": round(cpu / elapsed, 3),
            "redis_cpu_ms_per_job": round(cpu / jobs * 1000, 4),
            "jobs_per_s_at_one_redis_core": round(jobs / cpu),
            "commands_per_job": round((after["calls"] - before["calls"]) / jobs, 2),
            "net_in_bytes_per_job": round((after["net_in"] - before["net_in"]) / jobs),
            "net_out_bytes_per_job": round((after["net_out"] - before["net_out"]) / jobs),
            "aof_bytes_per_job": round((after["aof"] - before["aof"]) / jobs),
            "memory_bytes_per_finished_task": round((after["memory"] - before["memory"] - collection) / jobs),
            "record_bytes": record,
            "collection_bytes_per_job": round(collection / jobs),
            "redis_version": client.info("server")["redis_version"],
            "cpus": os.cpu_count(),
        }
        print(json.dumps(figures, indent=2))
        return 0
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.terminate()
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
