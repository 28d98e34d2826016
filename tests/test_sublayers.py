"""Sub-layer surgery on every supported family, against an independent reference: the original
model with the branch's output forced to zero by a hook (norms and modules left in place)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pruning import count_parameters, load_model, remove_layers
from pruning.metrics import speed
from pruning.models.saving import save_plain, staged_directory
from pruning.models.sublayers import SublayerError, ZeroBranch, branches_of, removed_units
from pruning.models.surgery import get_blocks
from pruning.models.variant import Variant
from pruning.reporting.export import export

FAMILIES = ["tiny-gpt2", "tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-phi3", "tiny-gemma3"]
FAMILIES += ["tiny-opt", "tiny-gptneox", "tiny-falcon"]
IDS = torch.tensor([[5, 80, 17, 256, 99, 3, 44, 71, 12, 200, 9, 31]])  # (1, 12)


def _zero_output(_module: nn.Module, _args: object, out: object) -> object:
    if isinstance(out, tuple):
        return (torch.zeros_like(out[0]), *out[1:])
    assert isinstance(out, torch.Tensor)
    return torch.zeros_like(out)


def _reference(model: nn.Module, drop: list[int], attn: list[int], mlp: list[int]) -> nn.Module:
    """``model`` without ``drop``, and with the listed branches' outputs zeroed by hooks."""
    ref = remove_layers(model, drop, copy=True)
    keep = [i for i in range(len(get_blocks(model))) if i not in drop]
    for unit, given in (("attn", attn), ("mlp", mlp)):
        path = branches_of(ref, unit).of(unit)[0]
        for i in given:
            get_blocks(ref)[keep.index(i)].get_submodule(path).register_forward_hook(_zero_output)
    return ref


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_removed_branches_equal_zeroed_branches_and_their_parameters_are_gone(family):
    model = load_model(f"random:{family}").model
    pruned = remove_layers(model, drop=[3], attn=[0], mlp=[2])
    reference = _reference(model, [3], [0], [2])
    with torch.no_grad():
        assert torch.equal(pruned(IDS).logits, reference(IDS).logits)  # h + 0 is h: exactly
    assert removed_units(get_blocks(pruned)) == ["attn0", "mlp2"]
    blocks = get_blocks(model)
    attn, attn_norms = branches_of(model, "attn").of("attn")
    mlp, mlp_feeders = branches_of(model, "mlp").of("mlp")
    gone = _params(blocks[3]) + _params(blocks[0].get_submodule(attn)) + _params(blocks[2].get_submodule(mlp))
    gone += sum(_params(blocks[0].get_submodule(n)) for n in attn_norms)
    gone += sum(_params(blocks[2].get_submodule(n)) for n in mlp_feeders)
    assert count_parameters(pruned) == count_parameters(model) - gone
    assert not any(isinstance(m, ZeroBranch) for m in model.modules())  # the original is untouched


@pytest.mark.parametrize("family", FAMILIES)
def test_cached_generation_equals_uncached_without_attention_in_block_0(family):
    model = load_model(f"random:{family}").model
    pruned = remove_layers(model, attn=[0, 2], mlp=[1])
    with torch.no_grad():
        cached = pruned.generate(IDS, max_new_tokens=8, do_sample=False, use_cache=True)
        uncached = pruned.generate(IDS, max_new_tokens=8, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)
    cache, _ = speed.start_decode(pruned, IDS)
    n = IDS.shape[1]
    assert cache.get_seq_length() == n and [layer.get_seq_length() for layer in cache.layers] == [n] * 4
    # Blocks 0 and 2 lost their attention: their layers hold one zero per position (of the window,
    # in a sliding layer), not keys.
    for i in (0, 2):
        marks = cache.layers[i].keys
        assert (marks.shape[:2], marks.shape[-1]) == ((1, 1), 1) and 0 < marks.shape[-2] <= n
        assert not marks.any()
    full, _ = speed.start_decode(model, IDS)  # blocks 1 and 3 store what they stored before
    assert [cache.layers[i].keys.numel() for i in (1, 3)] == [full.layers[i].keys.numel() for i in (1, 3)]
    assert full.layers[1].keys.numel() > n


def test_unit_indices_are_validated_with_the_value_quoted():
    model = load_model("random:tiny-llama").model
    with pytest.raises(ValueError, match=r"attn index 4 is out of range; the model has 4 blocks"):
        remove_layers(model, attn=[4])
    with pytest.raises(ValueError, match=r"mlp \[1\] also listed in drop"):
        remove_layers(model, drop=[1], mlp=[-3])
    with pytest.raises(
        ValueError, match=r"attn and mlp \[2\] together remove the whole block; list \[2\] in drop"
    ):
        remove_layers(model, attn=[2], mlp=[2])
    with pytest.raises(SublayerError, match=r"cannot remove an attn sub-layer from Linear blocks"):
        branches_of(nn.Linear(2, 2), "attn")


def test_a_model_without_sub_layers_refuses_to_be_saved(tmp_path):
    lm = load_model("random:tiny-llama")
    pruned = remove_layers(lm.model, attn=[1])
    with pytest.raises(SublayerError, match=r"without sub-layers attn1 cannot be saved: no stock"):
        pruned.save_pretrained(tmp_path / "x")
    assert not (tmp_path / "x").exists()
    remove_layers(lm.model, drop=[1]).save_pretrained(tmp_path / "whole")  # whole blocks still save
    assert (tmp_path / "whole" / "config.json").is_file()
    with pytest.raises(SublayerError), staged_directory(tmp_path / "staged") as stage:
        save_plain(pruned, stage)  # the export path: nothing half-written is left behind
    assert not any(tmp_path.glob("*staged*"))
    with pytest.raises(SublayerError, match="cannot be saved"):
        export(lm, Variant(attn=(1,)), tmp_path / "exported")
    assert not (tmp_path / "exported").exists() and not any(tmp_path.glob(".exported*"))
