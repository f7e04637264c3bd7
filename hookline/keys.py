"""Every Redis key name Hookline uses, in one place.

The callback registry (``callbacks.registry``) names its own keys under the
prefix it is given, so that ``callbacks/`` stands alone.
"""
from __future__ import annotations

#: The prefix of every key.
PREFIX = "hl:"
#: The broker's namespace: its keys read ``hl:q:<queue>`` and so on.
NAMESPACE = PREFIX.rstrip(":")

#: Sorted set of unfinished task ids by when their last message was written.
ACTIVE = f"{PREFIX}active"
#: Sorted set of job and webhook retries by when they are due.
SCHEDULE = f"{PREFIX}schedule"
#: The reconciler's lock: one process at a time runs a pass.
RECONCILER_LOCK = f"{PREFIX}reconciler:lock"


def task(task_id: str) -> str:
    """The task's record (a hash)."""
    return f"{PREFIX}task:{task_id}"


def legacy_payload(task_id: str) -> str:
    """Where a task accepted before the payload moved into its record keeps it."""
    return f"{PREFIX}payload:{task_id}"


def task_index(tenant: str) -> str:
    """The tenant's task ids by creation time (a sorted set)."""
    return f"{PREFIX}tasks:{tenant}"


def failed_deliveries(callback_id: str) -> str:
    """The callback's tasks whose webhook failed (a sorted set, for recover)."""
    return f"{PREFIX}failed:{callback_id}"


def idempotency(tenant: str, digest: str) -> str:
    """The answer kept for a tenant's ``Idempotency-Key`` (its SHA-256 hex)."""
    return f"{PREFIX}idem:{tenant}:{digest}"


def claim_owner(process: str) -> str:
    """A web process's requests that hold an ``Idempotency-Key`` (``webapp.claim_owners``)."""
    return f"{PREFIX}idem-owner:{process}"


def api_key(key_id: str) -> str:
    """An API key's tenant and secret hash."""
    return f"{PREFIX}apikey:{key_id}"


#: What every API key's record matches (for ``SCAN``).
API_KEYS_PATTERN = f"{PREFIX}apikey:*"


def tenant_api_keys(tenant: str) -> str:
    """The ids of a tenant's API keys (a set)."""
    return f"{PREFIX}tenant-keys:{tenant}"


def operator_api_keys(name: str) -> str:
    """The ids of an operator's API keys (a set)."""
    return f"{PREFIX}operator-keys:{name}"


#: Every tenant's name that was ever given an API key (a set).
TENANTS = f"{PREFIX}tenants"
#: Set once the tenants set was filled from keys made before it existed.
TENANTS_SCANNED = f"{PREFIX}tenants:scanned"
#: Matches every tenant's set of API key ids.
TENANT_API_KEYS_PATTERN = f"{PREFIX}tenant-keys:*"


def rate_limit(key_id: str) -> str:
    """An API key's token bucket."""
    return f"{PREFIX}ratelimit:{key_id}"


#: The actor whose endings the task store counts (the job actor's name).
COUNTED_ACTOR = "process_vectors"


def finished_counts(actor: str = COUNTED_ACTOR) -> str:
    """Hash of outcome -> tasks of ``actor`` ended so, counted in the step that ends each."""
    return f"{PREFIX}finished:{actor}"


#: The console's session signing key, generated once when none is configured.
CONSOLE_SECRET_KEY = f"{PREFIX}console:secret-key"


def upload(upload_id: str) -> str:
    """An upload's record (a hash); its bytes live in the blob store, never here."""
    return f"{PREFIX}upload:{upload_id}"


def upload_lock(upload_id: str) -> str:
    """The token of the PATCH or DELETE that holds an upload (a string)."""
    return f"{PREFIX}upload:{upload_id}:lock"


def upload_tasks(upload_id: str) -> str:
    """The tasks that read an upload (a set): it stays while any of them is readable."""
    return f"{PREFIX}upload:{upload_id}:tasks"


#: Upload id -> creation time, Unix seconds (a sorted set the retention sweep reads).
UPLOADS_INDEX = f"{PREFIX}uploads:created"
#: Held by the process that runs the upload retention sweep (a string).
UPLOADS_SWEEP_LOCK = f"{PREFIX}uploads:sweep:lock"


def ended_chunks(task_id: str) -> str:
    """The numbers of a task's chunks that have ended (a set: each counts once)."""
    return f"{PREFIX}task:{task_id}:chunks:ended"


#: The channel of the marker write before ``WAIT`` (nobody subscribes to it).
REPLICATION_CHANNEL = f"{PREFIX}replication"


# -- Collections (hookline/vector_collections.py, hookline/vectorstore.py) ----

def collections(tenant: str) -> str:
    """A tenant's collections: name -> description as JSON (a hash)."""
    return f"{PREFIX}colls:{tenant}"


def collection_stats(tenant: str, name: str) -> str:
    """A collection's counts: 'v' version, 'b' bytes, 'n:<dim>' vectors (a hash)."""
    return f"{PREFIX}cstat:{tenant}:{name}"


def collection_vectors(tenant: str, name: str) -> str:
    """A collection's vectors: 8-byte vector key -> record (a hash)."""
    return f"{PREFIX}cvec:{tenant}:{name}"


def collection_tasks(tenant: str, name: str) -> str:
    """Task id -> the ids of that task's vectors in a collection (a hash)."""
    return f"{PREFIX}ctask:{tenant}:{name}"


def job_ids(task_id: str) -> str:
    """The ids a job sent for its vectors, until it ends (a string)."""
    return f"{PREFIX}tids:{task_id}"


#: '<tenant>/<name>' of every collection (a set).
COLLECTION_REGISTRY = f"{PREFIX}collreg"
#: Task id -> a finished job's vectors, for the one step that ends it (a hash).
VECTOR_INBOX = f"{PREFIX}vinbox"
#: Every change of vectors, read by the index process (a stream).
VECTOR_LOG = f"{PREFIX}vlog"
#: Number of the last change in the vector log (a string).
VECTOR_SEQ = f"{PREFIX}vseq"
