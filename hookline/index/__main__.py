"""``python -m hookline.index``: run the index process."""
from __future__ import annotations

from hookline.index.server import main

main()
