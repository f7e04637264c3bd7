"""Hookline's shared core: configuration, Redis access, the task store and tenants.

Both processes build on it: the web application (``webapp``) and the workers
(``actors``). It imports neither Flask nor Dramatiq.
"""
from __future__ import annotations

import os

__version__ = "0.1.0"

#: One BLAS thread per process, set before anything here imports numpy. Each
#: Hookline process runs many Python threads, and their matrix products are
#: small (a search's re-rank, the index's exact scan of vectors not yet in a
#: graph). OpenBLAS's default, a thread per core in every process, makes those
#: calls contend for the cores and spin between them. Eight clients searching
#: 5,000 vectors (an exact scan) on two cores: 88-170 queries/s (p99 129-331
#: ms) with the default, 762-846/s (p99 18-23 ms) with one thread. An
#: operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
