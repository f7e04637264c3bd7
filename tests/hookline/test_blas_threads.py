"""Every Hookline process runs its matrix products on one BLAS thread, unless
the operator says otherwise."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# What a process reports of the BLAS numpy loaded, after importing a module
# of Hookline's the way its entry point does (Hookline first, numpy through it).
PROBE = """
import json, sys, importlib
importlib.import_module(sys.argv[1])
import threadpoolctl
print(json.dumps([lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                  if lib["user_api"] == "blas"]))
"""


def blas_threads(module: str, **env: str) -> list[int]:
    clean = {name: value for name, value in os.environ.items() if name != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", PROBE, module], env={**clean, **env},
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("module", ["hookline.search", "hookline.index.server", "actors.vectors"])
def test_one_blas_thread_by_default(module: str) -> None:
    assert blas_threads(module) == [1]


def test_the_operators_setting_wins() -> None:
    assert blas_threads("hookline.search", OPENBLAS_NUM_THREADS="2") == [2]
