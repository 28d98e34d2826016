"""Layer surgery: remove whole transformer blocks (or, with ``pruning.models.sublayers``, the
attention or MLP branch of some) from any decoder family.

After removal the model is a consistent model with fewer layers, not a patched one:
- every ``layer_idx`` attribute inside the kept blocks is renumbered 0..n-1, because the
  KV cache (and Gemma 3's per-layer attention type) is indexed by it;
- ``config.num_hidden_layers`` (``n_layer`` for GPT-2) is updated;
- every per-layer config list (a list as long as the old layer count, such as Gemma 3's
  ``layer_types``) is sliced to the kept blocks, so ``save_pretrained`` output reloads.
"""

from __future__ import annotations

import copy as copy_module
from collections.abc import Iterable, Sequence
from typing import Any, cast

from torch import nn

from pruning.models.sublayers import remove_branches
from pruning.models.variant import check_units, normalize_drop

# Attribute paths of the block list, tried in order.
BLOCK_PATHS = (
    "model.layers",  # LLaMA, Mistral, Qwen2, Gemma, Gemma 3, Phi-3
    "transformer.h",  # GPT-2, Falcon
    "model.decoder.layers",  # OPT
    "gpt_neox.layers",  # GPT-NeoX, Pythia
    "model.language_model.layers",  # multimodal wrappers (Gemma 3 conditional generation)
    "transformer.blocks",  # MPT
)


def find_block_path(model: nn.Module) -> str:
    """The dotted attribute path of the model's transformer block list."""
    lists = [p for p in BLOCK_PATHS if isinstance(_resolve(model, p), nn.ModuleList)]
    for path in lists:
        if len(cast(nn.ModuleList, _resolve(model, path))) > 0:
            return path
    if lists:  # an empty list: a view built for a step that runs no block (see structural_copy)
        return lists[0]
    raise ValueError(
        f"cannot find the transformer blocks of {type(model).__name__}; "
        f"tried the attribute paths {', '.join(BLOCK_PATHS)}"
    )


def get_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's transformer block list."""
    return cast(nn.ModuleList, _resolve(model, find_block_path(model)))


def num_layers(model: nn.Module) -> int:
    """How many transformer blocks the model has."""
    return len(get_blocks(model))


def remove_layers(
    model: nn.Module,
    drop: Iterable[int] = (),
    attn: Iterable[int] = (),
    mlp: Iterable[int] = (),
    copy: bool = False,
) -> nn.Module:
    """A model without the blocks in ``drop``, and without the attention branch of the blocks in
    ``attn`` and the MLP branch of those in ``mlp`` (``pruning.models.sublayers``); the input
    model is never modified. Indices are the original model's (negatives from the end).

    ``copy=False`` returns a new module tree that shares every parameter and buffer with
    ``model`` (cheap; use it for evaluation sweeps). ``copy=True`` returns an independent model.
    """
    n_layers = num_layers(model)
    dropped = normalize_drop(drop, n_layers)
    units = {unit: normalize_drop(given, n_layers, unit) for unit, given in (("attn", attn), ("mlp", mlp))}
    check_units(dropped, units["attn"], units["mlp"])
    keep = [i for i in range(n_layers) if i not in dropped]
    pruned = structural_copy(model, share_weights=not copy, blocks=keep)
    pruned = rebuild_blocks(pruned, list(get_blocks(pruned)), keep, n_layers)
    positions = {unit: [keep.index(i) for i in given] for unit, given in units.items()}
    remove_branches(pruned, get_blocks(pruned), positions["attn"], positions["mlp"])
    return pruned


def structural_copy(model: nn.Module, share_weights: bool, blocks: Sequence[int] | None = None) -> nn.Module:
    """A deep copy of ``model``; with ``share_weights`` every parameter and buffer is shared.

    With ``blocks``, the copy's block list holds copies of just those blocks, in that order:
    the others are never copied, which makes building many pruned views cheap.
    """
    memo: dict[int, Any] = {}
    if share_weights:  # deepcopy the module structure, but map every tensor to itself
        memo = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    if blocks is not None:
        original = get_blocks(model)
        memo[id(original)] = nn.ModuleList(_clone(original[i], memo) for i in blocks)
    return _clone(model, memo)


_BOOKKEEPING = frozenset(vars(nn.Module()))  # nn.Module's own attributes: hook dicts, flags


def _clone(module: nn.Module, memo: dict[int, Any]) -> nn.Module:
    """``copy.deepcopy(module, memo)``, several times faster (engines build a step model per
    candidate): children are cloned, tensors and a module's own attributes (its config, for one)
    go through ``deepcopy`` with ``memo``, and nn.Module's bookkeeping (hook dicts of functions,
    flags), which deepcopy would rebuild item by item, is copied shallowly."""
    if id(module) in memo:
        return cast(nn.Module, memo[id(module)])
    if hasattr(module, "__deepcopy__") or hasattr(module, "__slots__"):
        return copy_module.deepcopy(module, memo)
    new = module.__class__.__new__(module.__class__)
    memo[id(module)] = new
    state: dict[str, Any] = {}
    for key, value in vars(module).items():
        if key == "_modules":
            state[key] = {name: None if m is None else _clone(m, memo) for name, m in value.items()}
        elif key in ("_parameters", "_buffers"):
            state[key] = {name: copy_module.deepcopy(t, memo) for name, t in value.items()}
        elif key in _BOOKKEEPING:  # dicts and sets of hooks (type(v)(v): C speed), or flags
            state[key] = type(value)(value) if isinstance(value, (dict, set)) else value
        else:
            state[key] = copy_module.deepcopy(value, memo)
    new.__dict__.update(state)
    return new


def rebuild_blocks(
    model: nn.Module, blocks: list[nn.Module], sources: list[int], old_count: int
) -> nn.Module:
    """Install ``blocks`` as ``model``'s block list, in place, and make the model consistent.

    ``sources[k]`` is the original index of ``blocks[k]``: it selects the per-layer config
    entries (such as Gemma 3's ``layer_types``) that go with the block.
    """
    kept = nn.ModuleList(blocks)
    _renumber(kept)
    _assign(model, find_block_path(model), kept)
    _update_config(model, sources, old_count)
    return model


def _renumber(blocks: nn.ModuleList) -> None:
    for new_index, block in enumerate(blocks):
        for module in block.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = new_index  # type: ignore[assignment]


def _update_config(model: nn.Module, keep: list[int], old_count: int) -> None:
    for config in _configs(model):
        for key, value in list(vars(config).items()):
            if isinstance(value, (list, tuple)) and len(value) == old_count and key != "architectures":
                setattr(config, key, type(value)(value[i] for i in keep))
        config.num_hidden_layers = len(keep)  # n_layer on GPT-2 through its attribute_map


def _configs(model: nn.Module) -> list[Any]:
    # The top config, and the text config of multimodal wrappers, may both carry the count.
    top = getattr(model, "config", None)
    found = [top] if top is not None else []
    text = getattr(top, "text_config", None)
    if text is not None and text is not top:
        found.append(text)
    for module in model.modules():  # submodels (model.model) hold the same config object
        cfg = getattr(module, "config", None)
        if cfg is not None and all(cfg is not f for f in found):
            found.append(cfg)
    return [c for c in found if hasattr(c, "num_hidden_layers")]


def _resolve(root: nn.Module, path: str) -> object:
    target: object = root
    for part in path.split("."):
        target = getattr(target, part, None)
        if target is None:
            return None
    return target


def _assign(root: nn.Module, path: str, value: nn.Module) -> None:
    *parents, last = path.split(".")
    owner = root
    for part in parents:
        owner = getattr(owner, part)
    setattr(owner, last, value)
