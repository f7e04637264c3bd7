"""Tenants' vector collections: the job's output.

A collection is a hash ``hl:coll:<tenant>:<name>`` whose fields are task ids
and whose values are that task's L2-normalised float32 vectors, so running a
task twice overwrites its vectors instead of adding them again.
"""
from __future__ import annotations


def collection_key(tenant: str, name: str) -> str:
    return f"hl:coll:{tenant}:{name}"
