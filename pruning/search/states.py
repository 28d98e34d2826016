"""Hidden states the criteria read: each block's input and output, or each branch's residual
input and its residual update, captured by forward hooks over calibration windows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from pruning.data.windows import Window
from pruning.models.sublayers import residual_of
from pruning.models.surgery import get_blocks
from pruning.models.variant import ATTN, MLP

Pairs = dict[str, tuple[torch.Tensor, torch.Tensor]]  # unit name -> (x, x + c): (N, C) each


def block_states(
    model: nn.Module, windows: Sequence[Window], last_token_only: bool = False
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Inputs and outputs of every block over ``windows``: L x (N, C) each (N tokens or windows)."""
    ins, outs, handles = _recorders(model, last_token_only)
    try:
        _run(model, windows)
    finally:
        for handle in handles:
            handle.remove()
    return [torch.cat(x) for x in ins], [torch.cat(x) for x in outs]


def unit_states(model: nn.Module, windows: Sequence[Window], last_token_only: bool = False) -> Pairs:
    """For every branch (``attn3``, ``mlp3``): its residual input x and x + its update c.

    x is the block's input for attention (and for the MLP of a parallel-residual family), the
    block's input plus attention's update for a sequential family's MLP (``Residual``).
    """
    residual = residual_of(model)
    blocks = get_blocks(model)
    ins, _, handles = _recorders(model, last_token_only)
    updates: dict[str, list[torch.Tensor]] = {}
    for i, block in enumerate(blocks):
        for unit, path in ((ATTN, residual.attn_out), (MLP, residual.mlp_out)):
            store = updates.setdefault(f"{unit}{i}", [])
            handles.append(
                block.get_submodule(path).register_forward_hook(_update_hook(store, last_token_only))
            )
    try:
        _run(model, windows)
    finally:
        for handle in handles:
            handle.remove()
    pairs: Pairs = {}
    for i in range(len(blocks)):
        x = torch.cat(ins[i])  # (N, C)
        attn, mlp = torch.cat(updates[f"attn{i}"]), torch.cat(updates[f"mlp{i}"])
        pairs[f"attn{i}"] = (x, x + attn)
        x_mlp = x if residual.parallel else x + attn
        pairs[f"mlp{i}"] = (x_mlp, x_mlp + mlp)
    return pairs


def _pick(h: torch.Tensor, last_token_only: bool, tokens: int) -> torch.Tensor:
    """(1, T, C) or (T, C) -> (T, C), or its last row (1, C)."""
    flat = h.reshape(tokens, h.shape[-1])
    return (flat[-1:] if last_token_only else flat).float()


def _update_hook(store: list[torch.Tensor], last_token_only: bool) -> Callable[..., None]:
    def hook(_m: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        tokens = out.numel() // out.shape[-1]
        store.append(_pick(out, last_token_only, tokens).clone())  # Falcon adds to it in place

    return hook


def _recorders(
    model: nn.Module, last_token_only: bool
) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]], list[Any]]:
    blocks = get_blocks(model)
    ins: list[list[torch.Tensor]] = [[] for _ in blocks]
    outs: list[list[torch.Tensor]] = [[] for _ in blocks]

    def pre(i: int) -> Callable[..., None]:
        def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            h = args[0] if args else kwargs["hidden_states"]  # (1, T, C)
            ins[i].append(_pick(h, last_token_only, h.shape[-2]))

        return hook

    def post(i: int) -> Callable[..., None]:
        def hook(_m: nn.Module, _a: Any, output: Any) -> None:
            h = output[0] if isinstance(output, tuple) else output  # (1, T, C)
            outs[i].append(_pick(h, last_token_only, h.shape[-2]))

        return hook

    handles = [b.register_forward_pre_hook(pre(i), with_kwargs=True) for i, b in enumerate(blocks)]
    handles += [b.register_forward_hook(post(i)) for i, b in enumerate(blocks)]
    return ins, outs, handles


def _run(model: nn.Module, windows: Sequence[Window]) -> None:
    with torch.inference_mode():
        for window in windows:
            ids = window.ids.unsqueeze(0).to(next(model.parameters()).device)  # (1, T)
            model(input_ids=ids, use_cache=False, logits_to_keep=1)
