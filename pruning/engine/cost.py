"""The cost model: work counted in block-forward equivalents, defined once.

One unit is one block's forward pass over a whole window. An LM-head pass counts
``head_weight`` units (its matmul parameters over one block's, i.e. its FLOPs per position over
a block's). A pass over part of a window counts its FLOP share (``block_share``). A block that
lost a branch counts the FLOP share of the branch it kept at the evaluated length
(``branch_shares``: attention's share grows with the length, its (query, key) pairs with its
square). Naive cost is what evaluating every variant with its own full forward pass would take.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from pruning.engine.schedule import Schedule, plan_schedule
from pruning.models.parameters import count_parameters
from pruning.models.sublayers import branch_modules
from pruning.models.surgery import get_blocks
from pruning.models.variant import ATTN, MLP, Variant, decode_kept, space_names


@dataclass(frozen=True)
class BranchShares:
    """The FLOP shares of a block pass spent in its attention and its MLP branch (they add to 1)."""

    attn: float = 0.5
    mlp: float = 0.5

    def of(self, code: int) -> float:
        """Block-forward equivalents of running kept block ``code`` (``pruning.models.variant.kept_code``)."""
        removed = decode_kept(code)[1]
        return 1.0 if not removed else self.mlp if removed == ATTN else self.attn


def branch_shares(model: nn.Module, length: int) -> BranchShares:
    """Attention's and the MLP's FLOP share of a block pass over ``length`` positions.

    Attention: its projections' matmul parameters per position plus 2 * heads * head_dim
    multiply-adds per causal (query, key) pair, length * (length + 1) / 2 pairs; MLP: its
    matmul parameters per position (norms are negligible and left out).
    """
    block = get_blocks(model)[0]
    flops: dict[str, float] = {}
    for unit in (ATTN, MLP):
        flops[unit] = sum(count_parameters(m) for m in branch_modules(model, block, unit)) * length
    flops[ATTN] += _pair_flops(model) * length * (length + 1) / 2
    total = flops[ATTN] + flops[MLP]
    return BranchShares(flops[ATTN] / total, flops[MLP] / total)


def weighted_passes(schedule: Schedule, shares: BranchShares) -> float:
    """The schedule's block passes, a block without a branch counting its other branch's share."""
    return sum(shares.of(code) for step in schedule.steps for code in step.run)


def schedule_shares(model: nn.Module, schedule: Schedule, length: int) -> BranchShares:
    """``branch_shares`` at ``length`` when the schedule runs a block without a branch (only then
    does the family need a branch table); the default otherwise, which no whole block reads."""
    return variant_shares(model, [step.variant for step in schedule.steps], length)


def variant_shares(model: nn.Module, variants: Sequence[Variant], length: int) -> BranchShares:
    """``branch_shares`` at ``length`` when a variant removes a branch; the default otherwise."""
    partial = any(v.attn or v.mlp for v in variants)
    return branch_shares(model, length) if partial else BranchShares()


def _pair_flops(model: nn.Module) -> float:
    config: Any = model.config
    heads = int(getattr(config, "num_attention_heads", 1))
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    return 2.0 * heads * head_dim


def forward_cost(block_passes: float, head_passes: float, head_weight: float) -> float:
    """Block-forward equivalents of ``block_passes`` block passes and ``head_passes`` head passes."""
    return block_passes + head_weight * head_passes


def head_weight(model: nn.Module) -> float:
    """LM-head FLOPs per position over one block's (matmul parameters per token)."""
    block_params = count_parameters(get_blocks(model)[0])
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    head_params = count_parameters(head) if isinstance(head, nn.Module) else 0
    return head_params / max(block_params, 1)


def naive_cost(
    variants: Sequence[Variant], n_layers: int, weight: float, shares: BranchShares = BranchShares()
) -> float:
    """Per window: every variant in ``variants`` by its own full forward pass."""
    naive = plan_schedule(list(variants), n_layers, share=False)
    return forward_cost(weighted_passes(naive, shares), naive.head_passes, weight)


def all_subsets_cost(
    n_layers: int, k: int, weight: float, space: str = "blocks", shares: BranchShares = BranchShares()
) -> float:
    """Per window: every K-subset of the units of ``space`` (``pruning.models.variant.UNIT_SPACES``)
    removed, each by its own full pass, plus the unpruned reference.

    A subset costs the full model less its units' shares; over all subsets each unit is left out
    C(U - 1, K - 1) times (both branches of a block add up to the whole block).
    """
    units = space_names(space, n_layers)
    share = {"": 1.0, ATTN: shares.attn, MLP: shares.mlp}
    removed = sum(share[name.rstrip("0123456789")] for name in units)
    subsets = math.comb(len(units), k)
    passes = subsets * n_layers - math.comb(len(units) - 1, k - 1) * removed + n_layers
    return forward_cost(passes, subsets + 1, weight)


def block_share(model: nn.Module, length: int, lo: int, hi: int) -> float:
    """FLOP share of a block pass over input positions [lo, hi) in one over [0, length).

    Projections and MLP cost the block's matmul parameters per position; attention costs
    2 * heads * head_dim multiply-adds per (query, key) pair, and query p sees p + 1 keys.
    """
    linear = float(count_parameters(get_blocks(model)[0]))
    pair = _pair_flops(model)

    def flops(a: int, b: int) -> float:
        return linear * (b - a) + pair * (b * (b + 1) - a * (a + 1)) / 2

    return flops(lo, hi) / flops(0, length)


@dataclass(frozen=True)
class EngineStats:
    """What one engine pass cost: passes, the naive equivalent, memory, and the head's weight."""

    strategy: str  # "prefix" (shared prefixes) or "naive"
    block_passes: float  # blocks without a branch count their kept branch's share
    head_passes: int
    naive_block_passes: float
    naive_head_passes: int
    head_weight: float
    peak_state_bytes: int

    @property
    def cost(self) -> float:
        """Cost in block-forward equivalents."""
        return forward_cost(self.block_passes, self.head_passes, self.head_weight)

    @property
    def naive_cost(self) -> float:
        """Cost of evaluating every variant with a full forward pass."""
        return forward_cost(self.naive_block_passes, self.naive_head_passes, self.head_weight)
