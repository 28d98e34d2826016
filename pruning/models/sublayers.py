"""Sub-layer surgery: remove the attention or the MLP branch of chosen blocks.

Every supported block adds two residual branches, ``h + attn(norm_a(h))`` and ``h +
mlp(norm_m(h))`` (in sequence, or in parallel for GPT-NeoX and Falcon). Removing a branch
makes the block add nothing through it: the branch module is replaced by ``ZeroBranch``
(zeros shaped like its input, in the structure the block unpacks, so ``h + 0`` is exactly
``h``) and the norms that feed only that branch by ``nn.Identity``; their parameters leave the
module tree. A norm shared with the other branch (Falcon's parallel ``input_layernorm``) stays.

A removed attention branch keeps no keys or values, but the KV cache still has a layer for its
block, and the model reads positions and mask sizes from the cache's layers (layer 0 first). So
``ZeroBranch`` records how many positions its block has seen: through the cache's public
``update``, one zero per sequence and position, shaped (B, 1, T, 1) instead of (B, H, T, D). The
layer then reports the true length (a full or a sliding-window layer alike), and cached decoding
stays exact even when block 0 has no attention, with no private cache API involved (the attention
call's arguments are a convention of transformers' model code: docs/architecture.md).
No stock config expresses a missing branch, so such a model's ``save_pretrained`` raises
``SublayerError`` instead of writing a model that reloads differently.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import Cache, EncoderDecoderCache

from pruning.models.variant import ATTN, MLP


class SublayerError(ValueError):
    """A sub-layer removal the family cannot express, or a model that cannot be saved."""


@dataclass(frozen=True)
class Branches:
    """Where a family's block keeps its branches: the module whose output is added to the
    residual stream, and the norms that feed only that branch (attribute paths in the block)."""

    attn: str
    attn_norms: tuple[str, ...]
    mlp: str
    mlp_norms: tuple[str, ...]
    mlp_inner: tuple[str, ...] = ()  # modules between the norm and ``mlp`` (OPT's fc1 in the block)

    def of(self, unit: str) -> tuple[str, tuple[str, ...]]:
        """The branch module and the modules that go with it for ``unit`` (``attn`` or ``mlp``)."""
        return (self.attn, self.attn_norms) if unit == ATTN else (self.mlp, self.mlp_norms + self.mlp_inner)


LLAMA_LIKE = Branches("self_attn", ("input_layernorm",), "mlp", ("post_attention_layernorm",))
FAMILIES = {
    "gpt2": Branches("attn", ("ln_1",), "mlp", ("ln_2",)),
    "llama": LLAMA_LIKE,
    "mistral": LLAMA_LIKE,
    "qwen2": LLAMA_LIKE,
    "qwen3": LLAMA_LIKE,
    "phi3": LLAMA_LIKE,
    "gemma3_text": Branches(
        "self_attn",
        ("input_layernorm", "post_attention_layernorm"),
        "mlp",
        ("pre_feedforward_layernorm", "post_feedforward_layernorm"),
    ),
    "gpt_neox": Branches("attention", ("input_layernorm",), "mlp", ("post_attention_layernorm",)),
}


def branches_of(model: nn.Module, unit: str) -> Branches:
    """The family's ``Branches``; ``SublayerError`` naming the family and ``unit`` otherwise."""
    config = getattr(model, "config", None)
    family = str(getattr(config, "model_type", type(model).__name__))
    found = FAMILIES.get(family)
    if family == "opt" and getattr(config, "do_layer_norm_before", True):
        found = Branches("self_attn", ("self_attn_layer_norm",), "fc2", ("final_layer_norm",), ("fc1",))
    if family == "falcon":
        found = _falcon(config)
    if found is None:
        raise SublayerError(
            f"cannot remove an {unit} sub-layer from {family} blocks: this family's branches are not "
            f"known (supported: {', '.join(sorted([*FAMILIES, 'opt', 'falcon']))})"
        )
    return found


@dataclass(frozen=True)
class Residual:
    """How a family's block adds its branches: the module (path in the block) whose output is
    each branch's residual update, and whether both branches read the block's input (parallel
    residual: GPT-NeoX, Falcon) or the MLP reads the input plus attention's update (sequential)."""

    attn_out: str
    mlp_out: str
    parallel: bool


def residual_of(model: nn.Module) -> Residual:
    """The family's ``Residual``; ``SublayerError`` as ``branches_of`` for an unknown family."""
    found = branches_of(model, ATTN)
    config = getattr(model, "config", None)
    family = str(getattr(config, "model_type", ""))
    if family == "gemma3_text":  # a norm after each branch, before the residual add
        return Residual(found.attn_norms[-1], found.mlp_norms[-1], False)
    parallel = (family == "gpt_neox" and bool(getattr(config, "use_parallel_residual", True))) or (
        family == "falcon"
        and (getattr(config, "new_decoder_architecture", False) or getattr(config, "parallel_attn", True))
    )
    return Residual(found.attn, found.mlp, parallel)


def _falcon(config: Any) -> Branches:
    if getattr(config, "new_decoder_architecture", False):
        return Branches("self_attention", ("ln_attn",), "mlp", ("ln_mlp",))
    if getattr(config, "parallel_attn", True):  # one norm feeds both branches: it stays
        return Branches("self_attention", (), "mlp", ())
    return Branches("self_attention", ("input_layernorm",), "mlp", ("post_attention_layernorm",))


def branch_modules(model: nn.Module, block: nn.Module, unit: str) -> list[nn.Module]:
    """The modules of ``block`` that ``unit`` removes: its branch and the norms only it reads."""
    path, feeders = branches_of(model, unit).of(unit)
    return [block.get_submodule(p) for p in (path, *feeders)]


class ZeroBranch(nn.Module):
    """A removed branch: returns zeros shaped like its input (``arity`` > 0: as the first item of
    a tuple of that length, the rest None, the way attention modules return (output, weights)).

    A removed attention branch has the ``layer_idx`` of the module it replaced (renumbered with
    its block by the surgery) and records its input's positions in that layer of the KV cache
    it is called with (see the module docstring)."""

    def __init__(self, unit: str, arity: int, layer_idx: int | None = None) -> None:
        super().__init__()
        self.unit, self.arity, self.layer_idx = unit, arity, layer_idx

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        x = kwargs.get("hidden_states", args[0] if args else None)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"removed {self.unit} branch called without its input hidden states")
        if self.layer_idx is not None:
            record_positions(_cache_in(args, kwargs), x, self.layer_idx)
        zeros = torch.zeros_like(x)  # (B, T, C), or (B*T, C) for OPT's MLP
        return zeros if self.arity == 0 else (zeros, *([None] * (self.arity - 1)))

    def extra_repr(self) -> str:
        return f"removed {self.unit}" + ("" if self.layer_idx is None else f", cache layer {self.layer_idx}")


def record_positions(cache: Cache | None, x: torch.Tensor, layer_idx: int) -> None:
    """Grow ``cache``'s layer ``layer_idx`` by the T positions of ``x`` (B, T, C), storing one
    zero per sequence and position: the layer's length is then the block's true position count."""
    if cache is None:
        return
    if isinstance(cache, EncoderDecoderCache):  # GPT-2 with cross-attention: the self-attention part
        cache = cache.self_attention_cache
    marks = x.new_zeros(x.shape[0], 1, x.shape[-2], 1)  # (B, 1, T, 1) for keys and values alike
    cache.update(marks, marks, layer_idx)


def _cache_in(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Cache | None:
    """The KV cache among an attention call's arguments (``cache``, ``past_key_values`` or
    ``layer_past`` by family and version), or None when it runs without one."""
    for value in (*kwargs.values(), *args):
        if isinstance(value, Cache):
            return value
    return None


def remove_branches(model: nn.Module, blocks: nn.ModuleList, attn: Sequence[int], mlp: Sequence[int]) -> None:
    """Remove the attention branch of ``blocks[i]`` for i in ``attn`` and the MLP branch for i in
    ``mlp``, in place (``model`` must not share these block modules with another model)."""
    for unit, positions in ((ATTN, attn), (MLP, mlp)):
        if not positions:
            continue
        branch, feeders = branches_of(model, unit).of(unit)
        for i in positions:
            block = blocks[i]
            # Every supported attention returns (output, weights); its cache layer is its block's
            # position (the surgery has renumbered the blocks' layer_idx to match).
            removed = ZeroBranch(unit, 2, i) if unit == ATTN else ZeroBranch(unit, 0)
            _replace(block, branch, removed)
            for path in feeders:
                _replace(block, path, nn.Identity())
    if attn or mlp:
        units = [f"attn{i}" for i in attn] + [f"mlp{i}" for i in mlp]
        _refuse_saving(model, units)


def removed_units(blocks: nn.ModuleList) -> list[str]:
    """The units removed from ``blocks`` (``attn3``, ``mlp5``), by block position; [] for none."""
    found = []
    for i, block in enumerate(blocks):
        found += [f"{m.unit}{i}" for m in block.modules() if isinstance(m, ZeroBranch)]
    return found


def _refuse_saving(model: nn.Module, units: list[str]) -> None:
    family = type(model).__name__

    def refuse(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        raise SublayerError(
            f"{family} without sub-layers {', '.join(units)} cannot be saved: no stock transformers "
            "config expresses a block without its attention or MLP branch, and a checkpoint would "
            "reload as a different model"
        )

    object.__setattr__(model, "save_pretrained", types.MethodType(refuse, model))  # shadows the method


def _replace(block: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = block.get_submodule(parent_path) if parent_path else block
    if not hasattr(parent, name):
        raise SublayerError(f"{type(block).__name__} has no {path!r}: its family's branch table is wrong")
    setattr(parent, name, module)
