"""Importance criteria for blocks and sub-layer units, computed on calibration text only.

A criterion maps the model and calibration windows to per-unit scores (higher: removing the
unit does more damage) and, for each K, the K units it would remove. The units are those of a
space (``pruning.models.variant.UNIT_SPACES``: blocks, attention branches, MLP branches, or
both kinds of branch). For a unit with residual input x and residual update c (a block: x its
input, x + c its output; a branch: ``pruning.models.sublayers.Residual``), definitions:
- ``block_influence`` (ShortGPT): 1 - mean over calibration tokens of cos(x, x + c); remove
  lowest (pre-final-norm states).
- ``angular`` (Gromov et al.): for blocks, d(l, n) = arccos(cos(h_l, h_{l+n})) / pi at the last
  token of each window, averaged over windows, with h_l the input of block l; for K, remove the K
  consecutive blocks l..l+K-1 with the smallest d(l, K); per-block scores are d(l, 1). Branches
  are not consecutive in one residual stream, so for them the scores are arccos(cos(x, x + c))
  / pi at the last token and the K lowest are removed.
- ``taylor`` (Shortened LLaMA's Taylor+): sum over a unit's weights (a branch: its module and the
  norms only it reads) of |w * dL(D)/dw|, L(D) the mean NLL over all calibration tokens (the
  gradient of that one loss, then the absolute value); remove lowest.
- ``calib_ppl``: perplexity on calibration text with the unit removed; remove lowest, one shot.
- ``sleb``: SLEB's iterative greedy (BlockPruner's, over branches): remove the unit whose removal
  gives the lowest calibration NLL, then repeat on the pruned model; each further step races its
  candidates (``pruning.search.beam``). Its first step is exactly ``calib_ppl``'s lowest single,
  so the two share one evaluation of the singles (``CalibrationSingles``; the criterion that
  runs first pays for it in its seconds).
- ``last``: remove the last K units but the final block's (no per-unit scores).
- ``random``: a seeded random order (seed 0).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from pruning.common.registry import Registry
from pruning.data.windows import Window
from pruning.engine.options import EngineOptions
from pruning.engine.prefix import evaluate_variants
from pruning.models.sublayers import branch_modules
from pruning.models.surgery import get_blocks
from pruning.models.variant import ATTN, MLP, Variant, from_units, space_names
from pruning.search.beam import beam
from pruning.search.states import block_states, unit_states

Chosen = dict[int, Variant]  # K -> the removal set


class CalibrationSingles:
    """Each single unit's calibration perplexity, evaluated once per input and shared by the
    criteria that need it (``calib_ppl``'s scores, ``sleb``'s first step)."""

    def __init__(self) -> None:
        self._found: dict[str, dict[Variant, float]] = {}

    def of(self, data: CriterionInput) -> dict[Variant, float]:
        """The singles of ``data``'s space -> calibration perplexity (evaluated on first use)."""
        if data.space not in self._found:
            singles = [from_units([name]) for name in data.names]
            found, _ = evaluate_variants(data.model, data.windows, singles, data.engine)
            self._found[data.space] = {v: found[v].ppl for v in singles}
        return self._found[data.space]


@dataclass(frozen=True)
class CriterionInput:
    """What a criterion may look at: the model and calibration windows, never evaluation text."""

    model: nn.Module
    windows: tuple[Window, ...]
    k_max: int
    engine: EngineOptions
    space: str = "blocks"
    singles: CalibrationSingles = field(default_factory=CalibrationSingles, compare=False, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        """The units of the space, in block order (what per-unit scores are indexed by)."""
        return space_names(self.space, len(get_blocks(self.model)))


@dataclass(frozen=True)
class CriterionResult:
    """Per-unit scores (None when the criterion has none), chosen sets per K, and the cost."""

    name: str
    scores: tuple[float, ...] | None
    chosen: Chosen
    seconds: float
    space: str = "blocks"


CriterionFn = Callable[[CriterionInput], tuple[tuple[float, ...] | None, Chosen]]
CRITERIA: Registry[CriterionFn] = Registry("criterion")


def run_criterion(name: str, data: CriterionInput) -> CriterionResult:
    """Run criterion ``name`` (``KeyError`` listing the choices when unknown), timed."""
    fn = CRITERIA.get(name)
    start = time.perf_counter()
    scores, chosen = fn(data)
    return CriterionResult(name, scores, chosen, time.perf_counter() - start, data.space)


def lowest(scores: Sequence[float], k_max: int, names: Sequence[str]) -> Chosen:
    """For each K, the units ``names`` with the K lowest scores (ties by position)."""
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    return {k: from_units([names[i] for i in order[:k]]) for k in range(1, k_max + 1)}


@CRITERIA.register("block_influence")
def block_influence(data: CriterionInput) -> tuple[tuple[float, ...], Chosen]:
    pairs = _pairs(data, last_token_only=False)
    scores = [1.0 - F.cosine_similarity(x.double(), y.double(), dim=-1).mean().item() for x, y in pairs]
    return tuple(scores), lowest(scores, data.k_max, data.names)


@CRITERIA.register("angular")
def angular(data: CriterionInput) -> tuple[tuple[float, ...], Chosen]:
    if data.space != "blocks":
        distances = [_distance(x, y) for x, y in _pairs(data, last_token_only=True)]
        return tuple(distances), lowest(distances, data.k_max, data.names)
    ins, outs = block_states(data.model, data.windows, last_token_only=True)
    states = [*ins, outs[-1]]  # h_0 .. h_L at the last token of each window: L+1 x (W, C)
    n_layers = len(ins)
    scores = tuple(_distance(states[i], states[i + 1]) for i in range(n_layers))
    chosen = {}
    for k in range(1, data.k_max + 1):
        best = min(range(n_layers - k + 1), key=lambda s: (_distance(states[s], states[s + k]), s))
        chosen[k] = Variant(tuple(range(best, best + k)))
    return scores, chosen


def _distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean angular distance arccos(cos(a, b)) / pi over the rows of (N, C) states."""
    cos = F.cosine_similarity(a.double(), b.double(), dim=-1)
    return float((torch.arccos(cos.clamp(-1, 1)) / math.pi).mean())


@CRITERIA.register("taylor")
def taylor(data: CriterionInput) -> tuple[tuple[float, ...], Chosen]:
    """|w * dL(D)/dw| summed over each unit's weights, with L(D) the mean NLL over every scored
    calibration token: the gradient of the one loss over the whole set, accumulated a window at
    a time (each window's mean NLL weighted by its share of the tokens), then the product's
    absolute value, as the paper defines it (not a sum of per-window absolute values)."""
    model = data.model
    params = _unit_parameters(model, data.space)
    flat = [p for group in params for p in group]
    total = [torch.zeros_like(p) for p in flat]  # dL(D)/dw, accumulated
    scored = sum(w.scored for w in data.windows)
    with torch.enable_grad():
        for window in data.windows:
            ids = window.ids.unsqueeze(0).to(next(model.parameters()).device)  # (1, T)
            logits = model(input_ids=ids, use_cache=False).logits[:, window.score_from - 1 : -1]
            loss = F.cross_entropy(logits.float().flatten(0, 1), ids[0, window.score_from :])
            grads = torch.autograd.grad(loss * (window.scored / scored), flat)
            for acc, grad in zip(total, grads, strict=True):
                acc += grad
    it = iter(zip(flat, total, strict=True))
    sums = [sum(float((p.detach() * g).abs().sum()) for p, g in (next(it) for _ in ps)) for ps in params]
    return tuple(sums), lowest(sums, data.k_max, data.names)


def _unit_parameters(model: nn.Module, space: str) -> list[list[nn.Parameter]]:
    """Each unit's own parameters, in ``space_names`` order."""
    blocks = get_blocks(model)
    if space == "blocks":
        return [list(b.parameters()) for b in blocks]
    kinds = (ATTN, MLP) if space == "all" else (space,)
    out = []
    for block in blocks:
        for kind in kinds:
            out.append([p for m in branch_modules(model, block, kind) for p in m.parameters()])
    return out


@CRITERIA.register("calib_ppl")
def calib_ppl(data: CriterionInput) -> tuple[tuple[float, ...], Chosen]:
    scores = list(data.singles.of(data).values())  # in names order
    return tuple(scores), lowest(scores, data.k_max, data.names)


@CRITERIA.register("sleb")
def sleb(data: CriterionInput) -> tuple[tuple[float, ...] | None, Chosen]:
    first = lowest(list(data.singles.of(data).values()), 1, data.names)[1]  # calib_ppl's K=1
    if data.k_max < 2:
        return None, {1: first}
    found = beam(data.model, data.windows, data.k_max, 1, data.engine, start=first, space=data.space)
    return None, {1: first, **{k: found[k].best[0][0] for k in found}}


@CRITERIA.register("last")
def last(data: CriterionInput) -> tuple[tuple[float, ...] | None, Chosen]:
    kept_final = len(data.names) // len(get_blocks(data.model))  # the final block's units stay
    order = data.names[: len(data.names) - kept_final][::-1]
    return None, {k: from_units(order[:k]) for k in range(1, data.k_max + 1)}


@CRITERIA.register("random")
def random_order(data: CriterionInput) -> tuple[tuple[float, ...], Chosen]:
    rng = random.Random(0)
    scores = [rng.random() for _ in data.names]
    return tuple(scores), lowest(scores, data.k_max, data.names)


def _pairs(data: CriterionInput, last_token_only: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each unit's (residual input, residual input + its update): (N, C) each, in names order."""
    if data.space == "blocks":
        ins, outs = block_states(data.model, data.windows, last_token_only)
        return list(zip(ins, outs, strict=True))
    found = unit_states(data.model, data.windows, last_token_only)
    return [found[name] for name in data.names]
