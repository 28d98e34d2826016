"""The cost model: work counted in block-forward equivalents, defined once.

One unit is one block's forward pass over a whole window. An LM-head pass counts
``head_weight`` units (its matmul parameters over one block's, i.e. its FLOPs per position over
a block's). A pass over part of a window counts its FLOP share (``block_share``). Naive cost is
what evaluating every variant with its own full forward pass would take.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from pruning.engine.schedule import plan_schedule
from pruning.models.parameters import count_parameters
from pruning.models.surgery import get_blocks
from pruning.models.variant import Variant


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


def naive_cost(variants: Sequence[Variant], n_layers: int, weight: float) -> float:
    """Per window: every variant in ``variants`` by its own full forward pass."""
    naive = plan_schedule(list(variants), n_layers, share=False)
    return forward_cost(naive.block_passes, naive.head_passes, weight)


def all_subsets_cost(n_layers: int, k: int, weight: float) -> float:
    """Per window: every K-subset removal by its own full pass, plus the unpruned reference."""
    subsets = math.comb(n_layers, k)
    return forward_cost(subsets * (n_layers - k) + n_layers, subsets + 1, weight)


def block_share(model: nn.Module, length: int, lo: int, hi: int) -> float:
    """FLOP share of a block pass over input positions [lo, hi) in one over [0, length).

    Projections and MLP cost the block's matmul parameters per position; attention costs
    2 * heads * head_dim multiply-adds per (query, key) pair, and query p sees p + 1 keys.
    """
    config: Any = model.config
    heads = int(getattr(config, "num_attention_heads", 1))
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    linear = float(count_parameters(get_blocks(model)[0]))
    pair = 2.0 * heads * head_dim

    def flops(a: int, b: int) -> float:
        return linear * (b - a) + pair * (b * (b + 1) - a * (a + 1)) / 2

    return flops(lo, hi) / flops(0, length)


@dataclass(frozen=True)
class EngineStats:
    """What one engine pass cost: passes, the naive equivalent, memory, and the head's weight."""

    strategy: str  # "prefix" (shared prefixes) or "naive"
    block_passes: int
    head_passes: int
    naive_block_passes: int
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
