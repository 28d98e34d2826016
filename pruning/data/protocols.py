"""The names of the evaluation protocols and window selections, and the spread selection itself:
plain Python, so that the plugin's option parsers (imported by pytest for every run) can take
them from here without importing torch. ``pruning.data.windows`` defines what each one means.
"""

from __future__ import annotations

import hashlib

PROTOCOLS = ("windows", "sliding", "llamacpp")
SELECTIONS = ("spread", "first")
SPREAD_SEED = 0  # the seed of the default run's window positions (``spread_indices``)


def spread_indices(available: int, count: int, seed: int = SPREAD_SEED) -> list[int]:
    """``count`` of ``available`` window indices (count <= available), one from each of ``count``
    equal stretches, at the position sha256(``seed:j``) gives within stretch j (module
    docstring); the same for the same arguments on every machine and Python."""
    picks = []
    for j in range(count):
        low, high = j * available // count, (j + 1) * available // count
        draw = int.from_bytes(hashlib.sha256(f"{seed}:{j}".encode()).digest()[:8], "big")
        picks.append(low + draw % (high - low))
    return picks
