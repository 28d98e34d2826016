"""Racing: the best K-unit removal sets without scoring every subset on every window.

- **Racing** (successive halving with a statistical margin): windows are taken in order, each
  in growing chunks of scored positions (``chunk_spans``: 64, 96, 144, 224, 336, ... tokens).
  Every candidate is scored on the first chunk; after each chunk, a candidate is dropped when
  its paired NLL difference to the current N-th best, over the NLL sums of the 16-position
  segments seen so far, is worse by more than ``z`` standard errors; only the survivors go on.
  A chunk continues each survivor from the KV caches the previous chunk left
  (``pruning.engine.chunks``), so a survivor's positions are computed once, as by one full pass.
  Survivors end up scored on every position of every window, and the top N are ranked by that
  perplexity, so their numbers are exact.

Costs are counted in block-forward equivalents (``pruning.engine.cost``) against exhaustive
naive evaluation of the same candidates.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from pruning.common.progress import open_bar
from pruning.data.windows import Window
from pruning.engine.chunks import Carry, ChunkResult, RunnerCache, check_continuation, evaluate_chunk
from pruning.engine.cost import head_weight, naive_cost, variant_shares
from pruning.engine.options import EngineOptions
from pruning.metrics.sums import ppl
from pruning.models.surgery import num_layers
from pruning.models.variant import Variant

SEGMENT_TOKENS = 16  # consecutive scored positions per paired sample of the racing statistic


@dataclass(frozen=True)
class SearchResult:
    """The best sets found, with perplexity, and what finding them cost."""

    best: tuple[tuple[Variant, float], ...]  # (variant, perplexity over all windows), best first
    evaluations: float  # (variant, window) evaluations spent; partial windows count their share
    exhaustive_evaluations: int
    cost: float  # block-forward equivalents spent
    exhaustive_naive_cost: float  # the same for naive evaluation of every candidate on every window
    survivors: tuple[int, ...]  # candidates alive at each chunk (racing) or evaluated (beam)
    stage_costs: tuple[float, ...] = ()  # block-forward equivalents spent per window (racing)
    stage_seconds: tuple[float, ...] = ()  # wall-clock seconds per window: does the count track time?
    peak_cache_bytes: int = 0  # most KV-cache bytes kept between chunks (racing)
    what: str = ""  # which search: "race over 1770 candidates", "beam K=3 (width 1, units all)"
    seconds: float = 0.0  # wall-clock seconds the search took on this machine


def race(
    model: nn.Module,
    windows: Sequence[Window],
    candidates: Sequence[Variant],
    top: int,
    options: EngineOptions,
    z: float = 3.0,
) -> SearchResult:
    """The ``top`` best ``candidates`` by perplexity on ``windows``, found by racing."""
    state = _Race(list(candidates), {v: 0.0 for v in candidates}, {v: [] for v in candidates})
    costs, seconds = [], []
    bar = open_bar(
        f"race over {len(candidates)} candidates: chunks",
        sum(len(chunk_spans(w.scored)) for w in windows),
        options.progress,
    )
    for w, window in enumerate(windows):
        begin, cost, carry = time.perf_counter(), 0.0, None
        spans = chunk_spans(window.scored)
        for c, span in enumerate(spans):
            result = _chunk(model, window, span, carry, options, state)
            carry, cost = result.carry, cost + result.cost
            state.record(result, span, window.scored)
            if (w, c) != (len(windows) - 1, len(spans) - 1):
                state.alive = _eliminate(state.alive, state.segments, state.nll, top, z)
            bar.update(1)
        costs.append(cost)
        seconds.append(time.perf_counter() - begin)
    bar.close()
    tokens = sum(w.scored for w in windows)
    ranked = sorted(state.alive, key=lambda v: (state.nll[v], v.sort_key))[:top]
    best = tuple((v, ppl(state.nll[v], tokens)) for v in ranked)
    shares = variant_shares(model, candidates, max(int(w.ids.shape[0]) for w in windows))
    naive = naive_cost(candidates, num_layers(model), head_weight(model), shares) * len(windows)
    exhaustive = len(candidates) * len(windows)
    return SearchResult(
        best, state.evaluations, exhaustive, sum(costs), naive, tuple(state.survivors),
        tuple(costs), tuple(seconds), state.peak_bytes, f"race over {len(candidates)} candidates",
        sum(seconds),
    )  # fmt: skip


def chunk_spans(scored: int, first: int = 64, growth: float = 1.5, align: int = 16) -> list[tuple[int, int]]:
    """The spans of scored positions a race evaluates a window in: 0-64, 64-96, 96-144, ...

    Each span ends ``growth`` times further than the last, rounded up to ``align`` positions
    (whole paired segments); a remainder shorter than ``first`` joins the last span.
    """
    bounds = [min(first, scored)]
    while bounds[-1] < scored:
        step = math.ceil(bounds[-1] * growth / align) * align
        bounds.append(scored if step + first > scored else step)
    return list(zip([0, *bounds[:-1]], bounds, strict=True))


@dataclass
class _Race:
    """A race's running totals (mutable, private to ``race``)."""

    alive: list[Variant]
    nll: dict[Variant, float]
    segments: dict[Variant, list[float]]  # NLL sums of SEGMENT_TOKENS consecutive positions
    survivors: list[int] = field(default_factory=list)
    evaluations: float = 0.0
    peak_bytes: int = 0
    runners: RunnerCache = field(default_factory=dict)
    continuation: bool | None = None  # KV-cache continuation; None until first checked
    heads_exact: bool | None = None  # batched LM-head scoring; None until first checked

    @property
    def heads(self) -> bool:
        """Whether to batch LM-head scoring (see ``pruning.engine.chunks.evaluate_chunk``)."""
        return self.heads_exact is not False

    def record(self, result: ChunkResult, span: tuple[int, int], scored: int) -> None:
        self.survivors.append(len(self.alive))
        self.evaluations += len(self.alive) * (span[1] - span[0]) / scored
        self.peak_bytes = max(self.peak_bytes, result.carry.nbytes if result.carry else 0)
        for v in self.alive:
            nll = result.nll[v]
            self.nll[v] += float(nll.sum())
            self.segments[v] += [float(s.sum()) for s in torch.split(nll, SEGMENT_TOKENS)]


def _chunk(
    model: nn.Module,
    window: Window,
    span: tuple[int, int],
    carry: Carry | None,
    options: EngineOptions,
    state: _Race,
) -> ChunkResult:
    """One chunk. The first is checked against a full forward pass (batched head scoring), and
    so is the first continued one (KV-cache continuation); what is not exact is turned off."""
    carry = carry if state.continuation is not False else None
    result = evaluate_chunk(model, window, span, state.alive, carry, options, state.runners, state.heads)
    if state.heads_exact is None:
        what = "batched LM-head scoring"
    elif carry is not None and state.continuation is None:
        what = "KV-cache continuation"
    else:
        return result
    probe = state.alive[0]
    exact = check_continuation(model, window, span, probe, result.nll[probe])
    if state.heads_exact is None:
        state.heads_exact = exact
    else:
        state.continuation = exact
    if exact:
        return result
    sys.stderr.write(f"pruning-kit: {what} is not exact for {type(model).__name__}; turned off\n")
    carry = carry if state.continuation is not False else None
    return evaluate_chunk(model, window, span, state.alive, carry, options, state.runners, state.heads)


def _eliminate(
    alive: list[Variant], segments: dict[Variant, list[float]], nll: dict[Variant, float], top: int, z: float
) -> list[Variant]:
    if len(alive) <= top:
        return alive
    ref = sorted(alive, key=lambda v: (nll[v], v.sort_key))[top - 1]  # the current N-th best
    keep = []
    for v in alive:
        diffs = [a - b for a, b in zip(segments[v], segments[ref], strict=True)]
        n = len(diffs)
        mean = sum(diffs) / n
        var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else math.inf
        if mean <= z * math.sqrt(var / n):  # not significantly worse than the N-th best
            keep.append(v)
    return keep
