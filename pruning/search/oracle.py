"""The oracle: the best removal set known for each K, searched and measured on the evaluation text.

K=1 needs no search: every single removal is measured. K=2 races all pairs (racing returns the
exhaustive top set; see the engine benchmark). K >= 3 grows the K=2 winner greedily on the
evaluation text: the best set *known*, so regrets against it at K >= 3 are lower bounds.
``best_by_k`` then takes, among all measured sets, the lowest perplexity per K.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from torch import nn

from pruning.data.windows import Window
from pruning.engine.options import EngineOptions
from pruning.models.surgery import num_layers
from pruning.models.variant import Variant
from pruning.search.beam import beam
from pruning.search.racing import SearchResult, race

Measured = Mapping[tuple[int, ...], float]  # removed blocks -> measured perplexity


def race_subsets(
    model: nn.Module, windows: Sequence[Window], k: int, top: int, options: EngineOptions
) -> SearchResult:
    """Race every K-subset of blocks on ``windows`` for the ``top`` best."""
    candidates = [Variant(c) for c in itertools.combinations(range(num_layers(model)), k)]
    return race(model, windows, candidates, top, options)


def search_oracle(
    model: nn.Module, windows: Sequence[Window], k_max: int, options: EngineOptions
) -> tuple[list[Variant], list[SearchResult]]:
    """The oracle's sets for K = 2..``k_max`` on the evaluation ``windows``, and the searches run."""
    if k_max < 2:
        return [], []
    pairs = race_subsets(model, windows, 2, 1, options)
    best = pairs.best[0][0]
    if k_max == 2:
        return [best], [pairs]
    grown = beam(model, windows, k_max, 1, options, start=best)
    return [best, *(grown[k].best[0][0] for k in range(3, k_max + 1))], [pairs]


def best_by_k(measured: Measured) -> dict[int, tuple[tuple[int, ...], float]]:
    """For each number of removed blocks, the measured set with the lowest perplexity (first on ties)."""
    best: dict[int, tuple[tuple[int, ...], float]] = {}
    for drop, ppl in measured.items():
        if drop and ppl < best.get(len(drop), ((), float("inf")))[1]:
            best[len(drop)] = (drop, ppl)
    return best


def oracle_by_k(measured: Measured) -> dict[int, float]:
    """The lowest measured perplexity for each number of removed blocks."""
    return {k: ppl for k, (_, ppl) in best_by_k(measured).items()}
