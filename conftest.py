"""In-repository defaults only: the WikiText-2 that ``make bench`` uses, for direct pytest runs.

``pytest benchmarks/`` from a checkout with ``../shared/data`` beside it measures the same text
as ``make bench``; an explicit ``PRUNING_DATA_DIR`` always wins.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"

if "PRUNING_DATA_DIR" not in os.environ and (SHARED_DATA / "wikitext-2").is_dir():
    os.environ["PRUNING_DATA_DIR"] = str(SHARED_DATA)
