"""The ``hookline`` command, a thin layer of click commands over ``hookline.client.Client``.

Run it as ``hookline`` (the console script) or ``python -m hookline.cli``.
"""
from __future__ import annotations

from hookline.cli.main import cli, main

__all__ = ["cli", "main"]
