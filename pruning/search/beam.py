"""Beam search over removal sets (greedy when the width is 1), iterative like SLEB.

From each kept set of removed blocks, try removing each further block, keep the ``width`` best
by NLL, repeat up to K. Every step is one prefix-shared engine pass over its candidates; costs
are counted in block-forward equivalents (``pruning.engine.cost``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from pruning.data.windows import Window
from pruning.engine.cost import all_subsets_cost
from pruning.engine.options import EngineOptions
from pruning.engine.prefix import evaluate_variants
from pruning.models.surgery import num_layers
from pruning.models.variant import BASE, Variant
from pruning.search.racing import SearchResult


def beam(
    model: nn.Module,
    windows: Sequence[Window],
    k_max: int,
    width: int,
    options: EngineOptions,
    start: Variant = BASE,
) -> dict[int, SearchResult]:
    """For K = |start|+1..``k_max``: the ``width`` best removal sets reachable by beam search.

    The search grows ``start`` (by default the unpruned model) one block at a time.
    """
    n_layers = num_layers(model)
    if not len(start.drop) < k_max < n_layers:
        raise ValueError(
            f"beam search K {k_max!r} is out of range; expected {len(start.drop) + 1}..{n_layers - 1}"
        )
    beams: list[Variant] = [start]
    out: dict[int, SearchResult] = {}
    for k in range(len(start.drop) + 1, k_max + 1):
        candidates = sorted(
            {Variant(tuple(sorted({*b.drop, i}))) for b in beams for i in range(n_layers) if i not in b.drop}
        )
        scores, stats = evaluate_variants(model, windows, candidates, options)
        ranked = sorted(candidates, key=lambda v: (scores[v].ppl, v.drop))[:width]  # the ppl it reports
        beams = ranked
        out[k] = SearchResult(
            tuple((v, scores[v].ppl) for v in ranked),
            len(candidates) * len(windows),
            math.comb(n_layers, k) * len(windows),
            stats.cost * len(windows),
            all_subsets_cost(n_layers, k, stats.head_weight) * len(windows),
            (len(candidates),),
        )
    return out
