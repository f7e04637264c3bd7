"""Dramatiq side of Hookline: the broker, the job and webhook actors.

Run workers with ``dramatiq actors:setup --queues jobs`` (jobs) and
``dramatiq actors:setup --queues callbacks`` (webhook delivery).
"""
from __future__ import annotations

from actors.broker import build_broker, setup

__all__ = ["build_broker", "setup"]
