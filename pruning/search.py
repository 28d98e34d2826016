"""Searching for the best K-block removal sets without scoring every subset on every window.

- **Racing** (successive halving with a statistical margin): every candidate is scored on the
  first window; after each window, a candidate is dropped when its paired NLL difference to
  the current N-th best, over the per-segment NLL sums seen so far (``SEGMENTS`` per window),
  is worse by more than ``z`` standard errors; only the survivors go on to the next window.
  The top N are ranked by their perplexity over all windows, so their numbers are exact.
- **Beam search** (greedy when the width is 1), iterative like SLEB: from each kept set of
  removed blocks, try removing each further block, keep the ``width`` best by NLL, repeat
  up to K.

Costs are counted in block forward passes, with the LM head at its FLOP weight (see
``pruning.engine.SweepStats``), against exhaustive naive evaluation of the same candidates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from pruning.engine import EngineOptions, SweepStats, evaluate_variants
from pruning.schedule import plan_schedule
from pruning.surgery import num_layers
from pruning.variants import BASE, Variant
from pruning.windows import Window


@dataclass(frozen=True)
class SearchResult:
    """The best sets found, with perplexity, and what finding them cost."""

    best: tuple[tuple[Variant, float], ...]  # (variant, perplexity over all windows), best first
    evaluations: int  # (variant, window) evaluations spent
    exhaustive_evaluations: int
    cost: float  # block-forward equivalents spent
    exhaustive_naive_cost: float  # the same for naive evaluation of every candidate on every window
    survivors: tuple[int, ...]  # candidates alive on each window (racing)
    stage_costs: tuple[float, ...] = ()  # block-forward equivalents spent per window (racing)
    stage_seconds: tuple[float, ...] = ()  # wall-clock seconds per window: does the count track time?


def race(
    model: nn.Module,
    windows: Sequence[Window],
    candidates: Sequence[Variant],
    top: int,
    options: EngineOptions,
    z: float = 3.0,
) -> SearchResult:
    """The ``top`` best ``candidates`` by perplexity on ``windows``, found by racing."""
    alive = list(candidates)
    segments: dict[Variant, list[float]] = {v: [] for v in alive}
    nll: dict[Variant, float] = {v: 0.0 for v in alive}
    survivors, costs, seconds, evaluations, head_weight = [], [], [], 0, 0.0
    for index, window in enumerate(windows):
        survivors.append(len(alive))
        start = time.perf_counter()
        scores, stats = evaluate_variants(model, [window], alive, options)
        seconds.append(time.perf_counter() - start)
        costs.append(stats.cost)
        evaluations, head_weight = evaluations + len(alive), stats.head_weight
        for v in alive:
            segments[v] += scores[v].segments[0]
            nll[v] += scores[v].nll[0]
        if index < len(windows) - 1:
            alive = _eliminate(alive, segments, nll, top, z)
    tokens = sum(w.scored for w in windows)
    ranked = sorted(alive, key=lambda v: (nll[v], v.drop))[:top]
    best = tuple((v, math.exp(nll[v] / tokens)) for v in ranked)
    naive = _naive_cost(candidates, num_layers(model), head_weight) * len(windows)
    exhaustive = len(candidates) * len(windows)
    return SearchResult(
        best, evaluations, exhaustive, sum(costs), naive, tuple(survivors), tuple(costs), tuple(seconds)
    )


def _eliminate(
    alive: list[Variant], segments: dict[Variant, list[float]], nll: dict[Variant, float], top: int, z: float
) -> list[Variant]:
    if len(alive) <= top:
        return alive
    ref = sorted(alive, key=lambda v: (nll[v], v.drop))[top - 1]  # the current N-th best
    keep = []
    for v in alive:
        diffs = [a - b for a, b in zip(segments[v], segments[ref], strict=True)]
        n = len(diffs)
        mean = sum(diffs) / n
        var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else math.inf
        if mean <= z * math.sqrt(var / n):  # not significantly worse than the N-th best
            keep.append(v)
    return keep


def _naive_cost(candidates: Sequence[Variant], n_layers: int, head_weight: float) -> float:
    naive = plan_schedule(list(candidates), n_layers, share=False)
    return naive.block_passes + head_weight * naive.head_passes


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
    tokens = sum(w.scored for w in windows)
    for k in range(len(start.drop) + 1, k_max + 1):
        candidates = sorted(
            {Variant(tuple(sorted({*b.drop, i}))) for b in beams for i in range(n_layers) if i not in b.drop}
        )
        scores, stats = evaluate_variants(model, windows, candidates, options)
        ranked = sorted(candidates, key=lambda v: (sum(scores[v].nll), v.drop))[:width]
        beams = ranked
        out[k] = SearchResult(
            tuple((v, math.exp(sum(scores[v].nll) / tokens)) for v in ranked),
            len(candidates) * len(windows),
            math.comb(n_layers, k) * len(windows),
            stats.cost * len(windows),
            _cost_all(n_layers, k, stats) * len(windows),
            (len(candidates),),
        )
    return out


def _cost_all(n_layers: int, k: int, stats: SweepStats) -> float:
    """Naive cost of every K-subset plus the unpruned reference, per window."""
    return math.comb(n_layers, k) * (n_layers - k + stats.head_weight) + n_layers + stats.head_weight
