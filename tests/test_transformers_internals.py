"""Guards for the transformers internals the code relies on (docs/architecture.md lists them).

Each test checks one convention of transformers' model code that no public API promises, on
every tiny family, and fails naming the installed transformers version and what changed, so an
upgrade that breaks surgery says where instead of failing deep inside a sweep.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import transformers
from transformers import Cache, DynamicCache

from pruning import load_model, remove_layers
from pruning.metrics import speed
from pruning.models.sublayers import ZeroBranch, branches_of
from pruning.models.surgery import get_blocks

FAMILIES = ["tiny-gpt2", "tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-phi3", "tiny-gemma3"]
FAMILIES += ["tiny-opt", "tiny-gptneox", "tiny-falcon"]
IDS = torch.tensor([[5, 80, 17, 256, 99, 3, 44, 71, 12, 200, 9, 31]])  # (1, 12)
VERSION = f"transformers {transformers.__version__}"


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_modules_are_numbered_by_their_block(family):
    """Surgery renumbers ``layer_idx`` to index the KV cache (pruning.models.surgery)."""
    model = load_model(f"random:{family}").model
    path = branches_of(model, "attn").attn
    found = [getattr(block.get_submodule(path), "layer_idx", None) for block in get_blocks(model)]
    assert found == list(range(len(found))), (
        f"{VERSION}: {family}'s attention modules no longer carry their block's layer_idx "
        f"(found {found}); the surgery's renumbering and the removed branches' cache layers rely on it"
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_the_attention_call_carries_the_cache_and_returns_output_and_weights(family):
    """A removed attention branch finds the cache among its call's arguments and answers as
    attention does, a tuple (output, weights) (pruning.models.sublayers.ZeroBranch)."""
    model = load_model(f"random:{family}").model
    seen: list[tuple[bool, type]] = []
    path = branches_of(model, "attn").attn

    def hook(module, args, kwargs, output):
        has_cache = any(isinstance(v, Cache) for v in (*args, *kwargs.values()))
        seen.append((has_cache, type(output)))

    get_blocks(model)[0].get_submodule(path).register_forward_hook(hook, with_kwargs=True)
    with torch.no_grad():
        model(input_ids=IDS, use_cache=True)
    assert seen == [(True, tuple)], (
        f"{VERSION}: {family}'s attention call no longer passes the KV cache as an argument, or no "
        f"longer returns a tuple (seen: {seen}); ZeroBranch records a removed branch's positions there"
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_a_prefilled_cache_holds_one_layer_of_keys_and_values_per_block(family):
    """The engine copies cache layers between step models (``Cache.layers``, each with
    ``keys`` and ``values`` of shape (B, H, T, D)) and passes a cache by the forward's own name."""
    model = load_model(f"random:{family}").model
    parameters = inspect.signature(model.forward).parameters
    assert "cache" in parameters or "past_key_values" in parameters, (
        f"{VERSION}: {family}'s forward takes neither `cache` nor `past_key_values`"
    )
    cache, _ = speed.start_decode(model, IDS)
    assert isinstance(cache, DynamicCache) and len(cache.layers) == len(get_blocks(model)), (
        f"{VERSION}: {family}'s cache is a {type(cache).__name__} with {len(cache.layers)} layers"
    )
    shapes = [tuple(layer.keys.shape) for layer in cache.layers]
    assert all(len(s) == 4 and s[0] == 1 and 0 < s[2] <= IDS.shape[1] for s in shapes), (
        f"{VERSION}: {family}'s cache layers no longer hold keys shaped (B, H, T, D): {shapes}"
    )


def test_surgery_slices_every_per_layer_config_list():
    """Gemma 3 picks each block's attention mask by ``config.layer_types``: surgery slices it."""
    model = load_model("random:tiny-gemma3").model
    pruned = remove_layers(model, drop=[0], attn=[2])
    types = list(model.config.layer_types)
    assert list(pruned.config.layer_types) == types[1:], (
        f"{VERSION}: gemma3's per-layer config list `layer_types` is no longer sliced with the blocks"
    )
    assert sum(isinstance(m, ZeroBranch) for m in pruned.modules()) == 1
