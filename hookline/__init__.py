"""Hookline's shared core: configuration, Redis access, the task store and tenants.

Both processes build on it: the web application (``webapp``) and the workers
(``actors``). It imports neither Flask nor Dramatiq.
"""
from __future__ import annotations

__version__ = "0.1.0"
