"""``python -m hookline.cli``."""
from __future__ import annotations

from hookline.cli.main import main

main()
