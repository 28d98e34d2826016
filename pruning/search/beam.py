"""Beam search over removal sets (greedy when the width is 1), iterative like SLEB.

From each kept removal set, try removing each further unit of the search's space (blocks,
attention branches, MLP branches or both: ``pruning.models.variant.UNIT_SPACES``), keep the
``width`` best by NLL, repeat up to K. Each step races its candidates (``pruning.search.racing``:
the prefix-shared, chunked engine; a candidate stops being scored once it is significantly worse,
at z = 3, than the ``width``-th best), so the sets it keeps are scored on every window and
their perplexities are exact, while most candidates are dropped after a window's first tokens.
Costs are counted in block-forward equivalents (``pruning.engine.cost``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from torch import nn

from pruning.data.windows import Window
from pruning.engine.cost import all_subsets_cost, head_weight, variant_shares
from pruning.engine.options import EngineOptions
from pruning.models.surgery import num_layers
from pruning.models.variant import BASE, Variant, from_units, space_names, space_units
from pruning.search.racing import SearchResult, race


def beam(
    model: nn.Module,
    windows: Sequence[Window],
    k_max: int,
    width: int,
    options: EngineOptions,
    start: Variant = BASE,
    space: str = "blocks",
) -> dict[int, SearchResult]:
    """For K = |start|+1..``k_max`` units of ``space``: the ``width`` best sets reachable by beam
    search, growing ``start`` (by default the unpruned model) one unit at a time."""
    names = space_names(space, num_layers(model))
    first = start.size(space) + 1
    if not first <= k_max < len(names):
        raise ValueError(f"beam search K {k_max!r} is out of range; expected {first}..{len(names) - 1}")
    beams: list[Variant] = [start]
    out: dict[int, SearchResult] = {}
    for k in range(first, k_max + 1):
        candidates = sorted(
            {
                from_units([*b.units, name])
                for b in beams
                for name in names
                if name not in space_units(b, space)
            },
            key=lambda v: v.sort_key,
        )
        found = race(model, windows, candidates, width, options)
        beams = [v for v, _ in found.best]
        length = max(int(w.ids.shape[0]) for w in windows)
        shares = variant_shares(model, candidates, length)
        exhaustive = all_subsets_cost(num_layers(model), k, head_weight(model), space, shares)
        out[k] = replace(
            found,
            what=f"beam K={k} (width {width}, units {space}): {found.what}",
            exhaustive_evaluations=math.comb(len(names), k) * len(windows),
            exhaustive_naive_cost=exhaustive * len(windows),
        )
    return out
