"""The oracle: the best removal set known for each K, searched and measured on the evaluation text.

K counts units of a space (``pruning.models.variant.UNIT_SPACES``: blocks by default).
K=1 needs no search: every single removal is measured. K=2 races all pairs (racing returns the
exhaustive top set; see the engine benchmark), or, where that is too many pairs, grows the best
single greedily. K >= 3 grows the K=2 winner greedily on the evaluation text, each step raced:
the best set *known*, so regrets against it beyond the exhaustive K are lower bounds.
``best_by_k`` then takes, among all measured sets, the lowest perplexity per K.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace

from torch import nn

from pruning.data.windows import Window
from pruning.engine.options import EngineOptions
from pruning.models.surgery import num_layers
from pruning.models.variant import Variant, from_units, space_names
from pruning.search.beam import beam
from pruning.search.racing import SearchResult, race

Measured = Mapping[Variant, float]  # an unhealed removal -> its measured perplexity


def race_subsets(
    model: nn.Module,
    windows: Sequence[Window],
    k: int,
    top: int,
    options: EngineOptions,
    space: str = "blocks",
) -> SearchResult:
    """Race every K-subset of the units of ``space`` on ``windows`` for the ``top`` best."""
    names = space_names(space, num_layers(model))
    candidates = [from_units(c) for c in itertools.combinations(names, k)]
    found = race(model, windows, candidates, top, options)
    return replace(found, what=f"all {k}-sets of units {space}: {found.what}")


def search_oracle(
    model: nn.Module,
    windows: Sequence[Window],
    k_max: int,
    options: EngineOptions,
    space: str = "blocks",
    best_single: Variant | None = None,
) -> tuple[list[Variant], list[SearchResult]]:
    """The oracle's sets of K = 2..``k_max`` units of ``space`` on the evaluation ``windows``, and
    the searches run: the pair race, or, given the measured ``best_single``, a greedy step from it;
    then the greedy growth's raced steps."""
    if k_max < 2:
        return [], []
    if best_single is None:
        searches = [race_subsets(model, windows, 2, 1, options, space)]
        start = searches[0].best[0][0]
    else:
        searches, start = [], best_single
    grown = (
        beam(model, windows, k_max, 1, options, start=start, space=space) if k_max > start.size(space) else {}
    )
    sets = [start] if best_single is None else []
    return [*sets, *(found.best[0][0] for found in grown.values())], [*searches, *grown.values()]


def best_by_k(measured: Measured, space: str = "blocks") -> dict[int, tuple[Variant, float]]:
    """For each number of removed units of ``space``, the measured set of that space
    (``Variant.within``) with the lowest perplexity (first on ties)."""
    best: dict[int, tuple[Variant, float]] = {}
    for variant, ppl in measured.items():
        k = variant.size(space)
        if k and variant.within(space) and ppl < best.get(k, (variant, float("inf")))[1]:
            best[k] = (variant, ppl)
    return best


def oracle_by_k(measured: Measured, space: str = "blocks") -> dict[int, float]:
    """The lowest measured perplexity for each number of removed units of ``space``."""
    return {k: ppl for k, (_, ppl) in best_by_k(measured, space).items()}
