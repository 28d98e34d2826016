"""Block-importance criteria, computed on calibration text only.

A criterion maps the model and calibration windows to per-block scores (higher: removing the
block does more damage) and, for each K, the K blocks it would remove. Definitions:
- ``block_influence`` (ShortGPT): 1 - mean over calibration tokens of cos(h_in, h_out), where
  h_in / h_out are a block's input and output hidden states (pre-final-norm); remove lowest.
- ``angular`` (Gromov et al.): d(l, n) = arccos(cos(h_l, h_{l+n})) / pi at the last token of
  each window, averaged over windows, with h_l the input of block l; for K, remove the K
  consecutive blocks l..l+K-1 with the smallest d(l, K); per-block scores are d(l, 1).
- ``taylor`` (Shortened LLaMA's Taylor+): sum over a block's weights of |w * dL/dw|, L the
  mean calibration NLL; remove lowest.
- ``calib_ppl``: perplexity on calibration text with the block removed; remove lowest, one shot.
- ``sleb``: SLEB's iterative greedy: remove the block whose removal gives the lowest
  calibration NLL, then repeat on the pruned model.
- ``last``: remove the last K blocks but the final one (no per-block scores).
- ``random``: a seeded random order (seed 0).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pruning.common.registry import Registry
from pruning.data.windows import Window
from pruning.engine.options import EngineOptions
from pruning.engine.prefix import evaluate_variants
from pruning.models.surgery import get_blocks
from pruning.models.variant import Variant, last_blocks
from pruning.search.beam import beam


@dataclass(frozen=True)
class CriterionInput:
    """What a criterion may look at: the model and calibration windows, never evaluation text."""

    model: nn.Module
    windows: tuple[Window, ...]
    k_max: int
    engine: EngineOptions


@dataclass(frozen=True)
class CriterionResult:
    """Per-block scores (None when the criterion has none), chosen sets per K, and the cost."""

    name: str
    scores: tuple[float, ...] | None
    chosen: dict[int, tuple[int, ...]]
    seconds: float


CriterionFn = Callable[[CriterionInput], tuple[tuple[float, ...] | None, dict[int, tuple[int, ...]]]]
CRITERIA: Registry[CriterionFn] = Registry("criterion")


def run_criterion(name: str, data: CriterionInput) -> CriterionResult:
    """Run criterion ``name`` (``KeyError`` listing the choices when unknown), timed."""
    fn = CRITERIA.get(name)
    start = time.perf_counter()
    scores, chosen = fn(data)
    return CriterionResult(name, scores, chosen, time.perf_counter() - start)


def lowest(scores: Sequence[float], k_max: int) -> dict[int, tuple[int, ...]]:
    """For each K, the K blocks with the lowest scores (ties by index)."""
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    return {k: tuple(sorted(order[:k])) for k in range(1, k_max + 1)}


@CRITERIA.register("block_influence")
def block_influence(data: CriterionInput) -> tuple[tuple[float, ...], dict[int, tuple[int, ...]]]:
    ins, outs = _block_states(data.model, data.windows)
    scores = []
    for h_in, h_out in zip(ins, outs, strict=True):  # each (N, C): all calibration tokens
        scores.append(1.0 - F.cosine_similarity(h_in.double(), h_out.double(), dim=-1).mean().item())
    return tuple(scores), lowest(scores, data.k_max)


@CRITERIA.register("angular")
def angular(data: CriterionInput) -> tuple[tuple[float, ...], dict[int, tuple[int, ...]]]:
    ins, outs = _block_states(data.model, data.windows, last_token_only=True)
    states = [*ins, outs[-1]]  # h_0 .. h_L at the last token of each window: L+1 x (W, C)
    n_layers = len(ins)

    def distance(start: int, n: int) -> float:
        cos = F.cosine_similarity(states[start].double(), states[start + n].double(), dim=-1)
        return float((torch.arccos(cos.clamp(-1, 1)) / math.pi).mean())

    scores = tuple(distance(i, 1) for i in range(n_layers))
    chosen = {}
    for k in range(1, data.k_max + 1):
        best = min(range(n_layers - k + 1), key=lambda s: (distance(s, k), s))
        chosen[k] = tuple(range(best, best + k))
    return scores, chosen


@CRITERIA.register("taylor")
def taylor(data: CriterionInput) -> tuple[tuple[float, ...], dict[int, tuple[int, ...]]]:
    model, blocks = data.model, get_blocks(data.model)
    params = [list(b.parameters()) for b in blocks]
    sums = [0.0] * len(blocks)
    with torch.enable_grad():
        for window in data.windows:
            ids = window.ids.unsqueeze(0).to(next(model.parameters()).device)  # (1, T)
            logits = model(input_ids=ids, use_cache=False).logits[:, window.score_from - 1 : -1]
            loss = F.cross_entropy(logits.float().flatten(0, 1), ids[0, window.score_from :])
            grads = torch.autograd.grad(loss, [p for group in params for p in group])
            it = iter(grads)
            for i, group in enumerate(params):
                sums[i] += sum(float((p.detach() * next(it)).abs().sum()) for p in group)
    return tuple(sums), lowest(sums, data.k_max)


@CRITERIA.register("calib_ppl")
def calib_ppl(data: CriterionInput) -> tuple[tuple[float, ...], dict[int, tuple[int, ...]]]:
    n_layers = len(get_blocks(data.model))
    singles = [Variant((i,)) for i in range(n_layers)]
    scores_by, _ = evaluate_variants(data.model, data.windows, singles, data.engine)
    scores = [scores_by[v].ppl for v in singles]
    return tuple(scores), lowest(scores, data.k_max)


@CRITERIA.register("sleb")
def sleb(data: CriterionInput) -> tuple[tuple[float, ...] | None, dict[int, tuple[int, ...]]]:
    found = beam(data.model, data.windows, data.k_max, 1, data.engine)
    return None, {k: found[k].best[0][0].drop for k in found}


@CRITERIA.register("last")
def last(data: CriterionInput) -> tuple[tuple[float, ...] | None, dict[int, tuple[int, ...]]]:
    n_layers = len(get_blocks(data.model))
    return None, {k: last_blocks(k, n_layers) for k in range(1, data.k_max + 1)}


@CRITERIA.register("random")
def random_order(data: CriterionInput) -> tuple[tuple[float, ...], dict[int, tuple[int, ...]]]:
    n_layers = len(get_blocks(data.model))
    rng = random.Random(0)
    scores = [rng.random() for _ in range(n_layers)]
    return tuple(scores), lowest(scores, data.k_max)


def _block_states(
    model: nn.Module, windows: Sequence[Window], last_token_only: bool = False
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Inputs and outputs of every block over ``windows``: L x (N, C) each (N tokens or windows)."""
    blocks = get_blocks(model)
    ins: list[list[torch.Tensor]] = [[] for _ in blocks]
    outs: list[list[torch.Tensor]] = [[] for _ in blocks]

    def pick(h: torch.Tensor) -> torch.Tensor:  # (1, T, C) -> (T, C) or (1, C)
        return h[0, -1:] if last_token_only else h[0]

    def pre(i: int) -> Callable[..., None]:
        def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            ins[i].append(pick(args[0] if args else kwargs["hidden_states"]).float())

        return hook

    def post(i: int) -> Callable[..., None]:
        def hook(_m: nn.Module, _a: Any, output: Any) -> None:
            outs[i].append(pick(output[0] if isinstance(output, tuple) else output).float())

        return hook

    handles = [b.register_forward_pre_hook(pre(i), with_kwargs=True) for i, b in enumerate(blocks)]
    handles += [b.register_forward_hook(post(i)) for i, b in enumerate(blocks)]
    try:
        with torch.inference_mode():
            for window in windows:
                ids = window.ids.unsqueeze(0).to(next(model.parameters()).device)  # (1, T)
                model(input_ids=ids, use_cache=False, logits_to_keep=1)
    finally:
        for handle in handles:
            handle.remove()
    return [torch.cat(x) for x in ins], [torch.cat(x) for x in outs]
